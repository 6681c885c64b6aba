import KVCore
import Testing
import TestSupport

@testable import KVStore

@Suite("Applying remote rows")
struct ApplyTests {
    @Test("a newer row wins with a fresh local seq; older and equal rows are ignored")
    func mergeRules() async throws {
        try await withStore { store, _ in
            let local = try await store.put(key: "k", value: bytes("local"))
            #expect(local.version == Version(lamport: 1, origin: nodeA))

            #expect(try await store.apply([remote("k", "from B", lamport: 5)]) == ApplyResult(applied: 1, ignored: 0))
            let won = try #require(try await store.get(key: "k"))
            #expect(won == StoredRecord(record: remote("k", "from B", lamport: 5), seq: 2))

            // Older, and the same version again (even with other bytes): nothing changes.
            let result = try await store.apply([
                remote("k", "older", lamport: 4, origin: nodeC), remote("k", "replay", lamport: 5),
            ])
            #expect(result == ApplyResult(applied: 0, ignored: 2))
            #expect(try await store.get(key: "k") == won)

            // Same lamport, greater origin: wins the tie.
            #expect(try await store.apply([remote("k", "from C", lamport: 5, origin: nodeC)]).applied == 1)
            #expect(try await store.get(key: "k")?.record == remote("k", "from C", lamport: 5, origin: nodeC))
            #expect(try await store.get(key: "k")?.seq == 3)
        }
    }

    /// The store decides inside its upsert (SQL, origins compared as SQLite compares TEXT);
    /// `Merge.shouldReplace` is the rule. Random pairs of versions, with origins that differ
    /// in case, length and punctuation, must get the same answer from both.
    @Test("the upsert's version comparison agrees with Merge.shouldReplace on random pairs")
    func upsertAgreesWithTheMergeRule() async throws {
        let seed = SeededRandom.seed()
        var random = SeededRandom(seed: seed)
        let origins = ["A", "B", "AB", "a", "b", "node-7", "node_7", "node.7", "Z9", "B-"].map(node)
        try await withStore(id: node("local")) { store, _ in
            for round in 0..<SeededRandom.fuzzRounds(300) {
                let key = "k\(round)"
                let stored = Version(lamport: Int64.random(in: 1...4, using: &random), origin: origins.randomElement(using: &random)!)
                let incoming = Version(lamport: Int64.random(in: 1...4, using: &random), origin: origins.randomElement(using: &random)!)
                // Equal versions with other contents too: the store keeps what it holds, as Merge.winner does.
                let storedRow = remote(key, "stored", lamport: stored.lamport, origin: stored.origin)
                let incomingRow = remote(key, round % 3 == 0 ? nil : "incoming", lamport: incoming.lamport, origin: incoming.origin)
                _ = try await store.apply([storedRow])
                let result = try await store.apply([incomingRow])
                let expected = Merge.shouldReplace(stored: stored, with: incoming)
                #expect(result.applied == (expected ? 1 : 0), "seed \(seed): stored \(stored), incoming \(incoming)")
                #expect(try await store.get(key: key)?.record == Merge.winner(storedRow, incomingRow), "seed \(seed)")
            }
        }
    }

    @Test("a remote tombstone wins like any row, and a local write after it wins over it")
    func remoteTombstone() async throws {
        try await withStore { store, _ in
            _ = try await store.put(key: "k", value: bytes("v"))
            #expect(try await store.apply([remote("k", nil, lamport: 9)]).applied == 1)
            #expect(try await store.get(key: "k")?.record.isTombstone == true)
            let again = try await store.put(key: "k", value: bytes("back"))
            #expect(again.version.lamport == 10)
            #expect(try await store.list(prefix: "", after: nil, limit: 5).map(\.key) == ["k"])
        }
    }

    @Test("the clock observes remote lamports, applied or not, so the next local write is later")
    func clockObserves() async throws {
        try await withStore { store, _ in
            _ = try await store.apply([remote("x", "1", lamport: 100, origin: nodeC)])
            // Ignored (B < C at lamport 100) but still observed; then a later one is ignored too.
            #expect(try await store.apply([remote("x", "2", lamport: 100)]).ignored == 1)
            #expect(try await store.state().lamport == 100)
            let next = try await store.put(key: "y", value: [])
            #expect(next.version.lamport == 101)
            #expect(next.version > Version(lamport: 100, origin: nodeC))
        }
    }

    @Test(
        "a batch with one invalid record changes nothing, not even the clock",
        arguments: [
            (remote("", "empty key", lamport: 50), StoreError.invalidRecord(index: 1, reason: KeyError.empty.description)),
            (remote("ok", "lamport 0", lamport: 0), StoreError.invalidRecord(index: 1, reason: "lamport 0 is below 1")),
            (remote("bad\u{1}", "control", lamport: 50), StoreError.invalidRecord(index: 1, reason: KeyError.controlCharacter(1).description)),
        ])
    func atomicBatch(bad: Record, expected: StoreError) async throws {
        try await withStore { store, _ in
            _ = try await store.put(key: "existing", value: bytes("v"))
            let before = try await store.state()
            let batch = [remote("first", "1", lamport: 500), bad, remote("existing", "3", lamport: 600)]
            await #expect(throws: expected) {
                try await store.apply(batch)
            }
            #expect(try await store.state() == before)
            #expect(try await store.get(key: "first") == nil)
            #expect(try await store.get(key: "existing")?.record.value == bytes("v"))
            #expect(try await store.changes(after: 0, limit: 10).count == 1)
            // The in-memory clock did not move either.
            #expect(try await store.put(key: "next", value: []).version.lamport == before.lamport + 1)
        }
    }

    @Test("rows of one batch for the same key merge among themselves")
    func duplicateKeys() async throws {
        try await withStore { store, _ in
            let result = try await store.apply([
                remote("k", "3", lamport: 3), remote("k", "7", lamport: 7), remote("k", "5", lamport: 5),
            ])
            #expect(result == ApplyResult(applied: 2, ignored: 1))
            #expect(try await store.get(key: "k")?.record.value == bytes("7"))
            #expect(try await store.changes(after: 0, limit: 10).map(\.seq) == [2])
        }
    }
}
