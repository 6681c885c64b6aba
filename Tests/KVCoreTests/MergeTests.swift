import KVCore
import Testing
import TestSupport

/// Random histories over a few keys, origins and Lamport times, small enough that collisions
/// (same key, same lamport, different origin) are common.
private struct HistoryGenerator {
    var random: SeededRandom
    let origins = try! ["A", "B", "C", "node-10"].map { try NodeID($0) }  // constants, valid ids
    let keys = ["x", "y", "z", "a/b"]

    mutating func record(key: String? = nil) -> Record {
        let key = key ?? keys.randomElement(using: &random)!
        let version = Version(
            lamport: Int64.random(in: 1...6, using: &random),
            origin: origins.randomElement(using: &random)!)
        // A version names one write: its contents follow from it, as on real nodes.
        let seed = UInt64(version.lamport) &* 31 &+ UInt64(version.origin.rawValue.utf8.count) &+ UInt64(key.utf8.count &* 7)
        let value: [UInt8]? = seed % 3 == 0 ? nil : (0..<Int(seed % 4)).map { UInt8(($0 + Int(seed)) % 3) }
        return Record(key: key, value: value, version: version)
    }
}

private let iterations = 2_000

@Suite("Merge laws")
struct MergeTests {
    @Test func winnerIsCommutativeAssociativeAndIdempotent() {
        let seed = SeededRandom.seed()
        var generator = HistoryGenerator(random: SeededRandom(seed: seed))
        for _ in 0..<iterations {
            let a = generator.record(key: "k")
            let b = generator.record(key: "k")
            let c = generator.record(key: "k")
            #expect(Merge.winner(a, b) == Merge.winner(b, a), "commutative; replay with KV_SEED=\(seed)")
            #expect(
                Merge.winner(Merge.winner(a, b), c) == Merge.winner(a, Merge.winner(b, c)),
                "associative; replay with KV_SEED=\(seed)")
            #expect(Merge.winner(a, a) == a, "idempotent; replay with KV_SEED=\(seed)")
            let w = Merge.winner(a, b)
            #expect(w.version == max(a.version, b.version), "the greater version wins; KV_SEED=\(seed)")
        }
    }

    @Test func replicasConvergeWhateverTheOrderAndDuplicates() {
        let seed = SeededRandom.seed()
        var generator = HistoryGenerator(random: SeededRandom(seed: seed))
        for _ in 0..<200 {
            let history = (0..<Int.random(in: 1...30, using: &generator.random)).map { _ in generator.record() }
            var reference: [String: Record] = [:]
            for record in history { Merge.apply(record, to: &reference) }
            for _ in 0..<5 {
                // Another replica: the same rows shuffled, some delivered two or three times.
                var delivery = history
                for record in history where Bool.random(using: &generator.random) {
                    delivery.append(record)
                }
                delivery.shuffle(using: &generator.random)
                var replica: [String: Record] = [:]
                for record in delivery { Merge.apply(record, to: &replica) }
                #expect(replica == reference, "replica diverged; replay with KV_SEED=\(seed)")
            }
            // Merging whole states is the same law one level up.
            let (left, right) = history.split(at: history.count / 2)
            #expect(Merge.merge(state(left), state(right)) == reference, "KV_SEED=\(seed)")
            #expect(Merge.merge(state(right), state(left)) == reference, "KV_SEED=\(seed)")
            #expect(Merge.merge(reference, reference) == reference, "KV_SEED=\(seed)")
        }
    }

    @Test func shouldReplaceOnlyForAStrictlyGreaterVersion() throws {
        let a = try NodeID("A")
        let b = try NodeID("B")
        #expect(Merge.shouldReplace(stored: nil, with: Version(lamport: 1, origin: a)))
        #expect(Merge.shouldReplace(stored: Version(lamport: 1, origin: a), with: Version(lamport: 2, origin: a)))
        #expect(Merge.shouldReplace(stored: Version(lamport: 2, origin: a), with: Version(lamport: 2, origin: b)))
        #expect(!Merge.shouldReplace(stored: Version(lamport: 2, origin: b), with: Version(lamport: 2, origin: a)))
        #expect(!Merge.shouldReplace(stored: Version(lamport: 2, origin: a), with: Version(lamport: 2, origin: a)))
        #expect(!Merge.shouldReplace(stored: Version(lamport: 3, origin: a), with: Version(lamport: 2, origin: b)))
    }

    @Test func aTombstoneWinsOrLosesByVersionLikeAnyWrite() throws {
        let a = try NodeID("A")
        let put = Record(key: "k", value: [1], version: Version(lamport: 5, origin: a))
        let delete = Record(key: "k", value: nil, version: Version(lamport: 6, origin: a))
        let oldDelete = Record(key: "k", value: nil, version: Version(lamport: 4, origin: a))
        #expect(Merge.winner(put, delete) == delete)
        #expect(Merge.winner(put, oldDelete) == put)
    }

    @Test func anEqualVersionKeepsTheStoredRowAsTheStoreDoes() throws {
        let a = try NodeID("A")
        let stored = Record(key: "k", value: [1], version: Version(lamport: 5, origin: a))
        let sameVersionOtherBytes = Record(key: "k", value: [2], version: Version(lamport: 5, origin: a))
        let sameVersionTombstone = Record(key: "k", value: nil, version: Version(lamport: 5, origin: a))
        #expect(Merge.winner(stored, sameVersionOtherBytes) == stored)
        #expect(Merge.winner(stored, sameVersionTombstone) == stored)
        #expect(Merge.winner(sameVersionTombstone, stored) == sameVersionTombstone)
    }

    private func state(_ records: some Sequence<Record>) -> [String: Record] {
        var result: [String: Record] = [:]
        for record in records { Merge.apply(record, to: &result) }
        return result
    }
}

extension Array {
    fileprivate func split(at index: Int) -> (ArraySlice<Element>, ArraySlice<Element>) {
        (self[..<index], self[index...])
    }
}
