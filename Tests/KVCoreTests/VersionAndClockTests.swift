import KVCore
import Testing
import TestSupport

@Suite("Version order and Lamport clock")
struct VersionAndClockTests {
    @Test func versionOrderIsTotalAndTransitive() throws {
        let seed = SeededRandom.seed()
        var random = SeededRandom(seed: seed)
        let origins = try ["A", "B", "AB", "a", "b", "Z9", "é"].compactMap { try? NodeID($0) } + [NodeID("A-1")]
        func any() -> Version {
            Version(lamport: Int64.random(in: 1...4, using: &random), origin: origins.randomElement(using: &random)!)
        }
        for _ in 0..<3_000 {
            let (x, y, z) = (any(), any(), any())
            let relations = [x < y, x == y, y < x].filter { $0 }.count
            #expect(relations == 1, "exactly one of <, ==, > holds; KV_SEED=\(seed)")
            if x < y && y < z { #expect(x < z, "transitive; KV_SEED=\(seed)") }
            if x.lamport != y.lamport { #expect((x < y) == (x.lamport < y.lamport), "lamport first") }
        }
    }

    @Test func originBreaksTiesByteWise() throws {
        // "B" (0x42) sorts before "a" (0x61) byte-wise, whatever a locale would say.
        let upper = Version(lamport: 3, origin: try NodeID("B"))
        let lower = Version(lamport: 3, origin: try NodeID("a"))
        #expect(upper < lower)
        #expect(Version(lamport: 3, origin: try NodeID("A")) < Version(lamport: 3, origin: try NodeID("AA")))
    }

    @Test func clockNeverGoesBackwards() {
        let seed = SeededRandom.seed()
        var random = SeededRandom(seed: seed)
        for _ in 0..<200 {
            var clock = LamportClock(now: Int64.random(in: 0...100, using: &random))
            var highest = clock.now
            for _ in 0..<100 {
                if Bool.random(using: &random) {
                    let stamped = clock.tick()
                    #expect(stamped > highest, "tick issues a time later than any seen; KV_SEED=\(seed)")
                    highest = stamped
                } else {
                    let seen = Int64.random(in: 0...200, using: &random)
                    clock.observe(seen)
                    #expect(clock.now == max(highest, seen), "observe takes the max; KV_SEED=\(seed)")
                    highest = clock.now
                }
            }
        }
    }

    @Test func clockSaturatesInsteadOfWrapping() {
        var clock = LamportClock(now: Int64.max - 1)
        #expect(clock.tick() == Int64.max)
        #expect(clock.tick() == Int64.max)
        clock.observe(5)
        #expect(clock.now == Int64.max)
    }

    @Test func negativeStartIsClampedToZero() {
        #expect(LamportClock(now: -7).now == 0)
    }
}

@Suite("Accepted clock range")
struct ClockBoundTests {
    @Test func rowsBeyondTheJumpOrTheCeilingAreRefused() {
        #expect(LamportClock.accepts(1, now: 0))
        #expect(LamportClock.accepts(LamportClock.maxJump, now: 0))
        #expect(!LamportClock.accepts(LamportClock.maxJump + 1, now: 0))
        #expect(LamportClock.accepts(LamportClock.maxJump + 1_000, now: 1_000))
        #expect(!LamportClock.accepts(0, now: 10))
        #expect(!LamportClock.accepts(-1, now: 10))
        #expect(!LamportClock.accepts(Int64.max, now: Int64.max - 1), "never above the ceiling")
        #expect(!LamportClock.accepts(LamportClock.ceiling + 1, now: LamportClock.ceiling))
        #expect(LamportClock.accepts(LamportClock.ceiling, now: LamportClock.ceiling - 1))
    }
}
