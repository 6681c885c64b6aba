import ClusterSimulator
import Foundation
import Synchronization
import Testing
import TestSupport

/// The replication protocol in the deterministic simulator (Tests/Simulator): many seeded runs
/// of whole clusters with every kind of fault, each checking its invariants at every step and
/// at the end. A failure prints its seed; `KV_SIM_SEED=N` replays exactly that run, and
/// `KV_SIM_SEEDS=N` runs N seeds (the long mode asks for 100 000).
@Suite("Deterministic simulation of whole clusters")
struct SimulationTests {
    /// How many seeds the suite runs: 500 in CI, `KV_SIM_SEEDS` on demand.
    static var seedCount: Int {
        ProcessInfo.processInfo.environment["KV_SIM_SEEDS"].flatMap(Int.init) ?? 500
    }

    /// The options of seed `seed`: 3 to 9 nodes, every fault.
    static func options(seed: UInt64) -> SimulationOptions {
        var random = SeededRandom(seed: seed)
        return SimulationOptions(nodes: 3 + Int(random.next() % 7), seed: seed)
    }

    @Test("500 seeded runs of 3 to 9 nodes under drops, duplicates, delays, partitions, crashes and clock jumps keep every invariant")
    func seededRunsKeepTheInvariants() async throws {
        let first = ProcessInfo.processInfo.environment["KV_SIM_SEED"].flatMap(UInt64.init)
        let seeds: [UInt64] = first.map { [$0] } ?? (0..<UInt64(Self.seedCount)).map { 0x5EED_0000 + $0 }
        let tally = Tally()
        let started = ContinuousClock.now
        // Four runs at a time: a run waits on its stores' threads much of the time, so four keep
        // two cores busy.
        try await withThrowingTaskGroup(of: Void.self) { group in
            for _ in 0..<4 {
                group.addTask {
                    while let index = tally.take(below: seeds.count) {
                        let seed = seeds[index]
                        var options = Self.options(seed: seed)
                        options.keepTrace = first != nil
                        let report = try await Simulation(options).run()
                        if first != nil {
                            let filter = ProcessInfo.processInfo.environment["KV_SIM_TRACE"] ?? ""
                            for line in report.traceTail where filter.isEmpty || line.contains(filter) { print(line) }
                        }
                        tally.count(events: report.statistics.events, writes: report.statistics.writes)
                        if !report.violations.isEmpty {
                            tally.fail("seed \(seed) (\(report.nodes) nodes; replay with KV_SIM_SEED=\(seed)): \(report.violations.joined(separator: "; "))")
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
        let took = ContinuousClock.now - started
        print("figures: simulation: \(seeds.count) seeds in \(took), \(tally.events) events, \(tally.writes) client writes")
        let found = tally.failures
        #expect(found.isEmpty, "\(found.count) of \(seeds.count) seeds broke an invariant:\n\(found.prefix(5).joined(separator: "\n"))")
    }

    @Test("the same seed gives the same run, event for event")
    func aSeedReplaysBitForBit() async throws {
        for seed: UInt64 in [1, 2] {
            let first = try await Simulation(Self.options(seed: seed)).run()
            let second = try await Simulation(Self.options(seed: seed)).run()
            #expect(first.traceHash == second.traceHash, "seed \(seed) ran differently twice")
            #expect(first.statistics.events == second.statistics.events)
            #expect(first.violations.isEmpty, "seed \(seed): \(first.violations)")
        }
        let other = try await Simulation(Self.options(seed: 3)).run()
        let one = try await Simulation(Self.options(seed: 1)).run()
        #expect(other.traceHash != one.traceHash, "two seeds gave the same run: the trace sees nothing")
    }

    @Test("with all links up, a write crosses each link about once")
    func aQuietClusterSendsEachWriteOncePerPeer() async throws {
        for nodes in [3, 5, 9] {
            var options = SimulationOptions(nodes: nodes, seed: 7)
            options.faults = .none
            options.writes = 200
            let filter = ProcessInfo.processInfo.environment["KV_SIM_TRACE"]
            options.keepTrace = filter != nil
            let report = try await Simulation(options).run()
            for line in report.traceTail where line.contains(filter ?? "") { print(line) }
            #expect(report.violations.isEmpty, "\(report.violations)")
            let perWrite = report.statistics.rowsPerWrite
            let counts = report.statistics
            print("figures: \(nodes) nodes, all links up: \(perWrite) rows per write (own \(counts.rowsPushedOwn), forwarded \(counts.rowsForwarded), pulled \(counts.rowsPulled), repaired \(counts.rowsRepaired), \(counts.writes) writes, \(counts.events) events)")
            #expect(perWrite <= 1.1 * Double(nodes - 1), "\(nodes) nodes sent \(perWrite) rows per write")
            #expect(perWrite >= Double(nodes - 1) * 0.99, "\(nodes) nodes sent \(perWrite) rows per write: some peer missed writes")
        }
    }
}

/// The seeds handed out to the runners, and what failed.
private final class Tally: Sendable {
    private let state = Mutex<(next: Int, failures: [String], events: Int, writes: Int)>((0, [], 0, 0))

    func count(events: Int, writes: Int) {
        state.withLock {
            $0.events += events
            $0.writes += writes
        }
    }

    var events: Int { state.withLock { $0.events } }
    var writes: Int { state.withLock { $0.writes } }

    func take(below count: Int) -> Int? {
        state.withLock { state in
            guard state.next < count else { return nil }
            defer { state.next += 1 }
            return state.next
        }
    }

    func fail(_ line: String) { state.withLock { $0.failures.append(line) } }

    var failures: [String] { state.withLock { $0.failures } }
}
