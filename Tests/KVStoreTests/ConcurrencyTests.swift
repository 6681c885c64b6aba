import KVCore
import Testing

@testable import KVStore

@Suite("One writer, group commit, reads beside it")
struct ConcurrencyTests {
    @Test("500 puts from 50 tasks all succeed with distinct seqs, in fewer transactions than writes")
    func concurrentPuts() async throws {
        try await withStore { store, _ in
            let receipts = try await withThrowingTaskGroup(of: [WriteReceipt].self) { group in
                for task in 0..<50 {
                    group.addTask {
                        var receipts: [WriteReceipt] = []
                        for index in 0..<10 {
                            receipts.append(try await store.put(key: "t\(task)/\(index)", value: bytes("\(index)")))
                        }
                        return receipts
                    }
                }
                return try await group.reduce(into: []) { $0 += $1 }
            }
            #expect(receipts.count == 500)
            #expect(Set(receipts.map(\.seq)) == Set(1...500))
            #expect(Set(receipts.map(\.version.lamport)) == Set(1...500))
            let statistics = store.statistics()
            #expect(statistics.requests == 500)
            // Typically 10-30 transactions; the exact grouping is checked in `grouping`.
            #expect(statistics.transactions < 250, "\(statistics)")
            #expect(try await store.state().liveKeys == 500)
        }
    }

    @Test("requests that queue up during a commit are committed together", arguments: [true, false])
    func grouping(groupCommit: Bool) async throws {
        try await withStore(configure: { $0.groupCommit = groupCommit }) { store, _ in
            let gate = WriterGate()
            let held = Task { try await gate.hold(store) }
            await gate.entered()
            let before = store.statistics()
            let puts = (0..<100).map { index in
                Task { try await store.put(key: "k\(index)", value: []) }
            }
            #expect(await eventually { store.writer.pendingCount == 100 })
            gate.release()
            try await held.value
            var seqs: Set<Int64> = []
            for put in puts { seqs.insert(try await put.value.seq) }
            #expect(seqs == Set(1...100))
            let after = store.statistics()
            // The held request's transaction, then the 100 waiting puts.
            #expect(after.transactions - before.transactions == (groupCommit ? 2 : 101))
            #expect(after.largestGroup == (groupCommit ? 100 : 1))
        }
    }

    @Test("maxGroupSize bounds a group")
    func groupLimit() async throws {
        try await withStore(configure: { $0.maxGroupSize = 30 }) { store, _ in
            let gate = WriterGate()
            let held = Task { try await gate.hold(store) }
            await gate.entered()
            let puts = (0..<100).map { index in Task { try await store.put(key: "k\(index)", value: []) } }
            #expect(await eventually { store.writer.pendingCount == 100 })
            gate.release()
            try await held.value
            for put in puts { _ = try await put.value }
            #expect(store.statistics().transactions == 1 + 4)  // 30 + 30 + 30 + 10
            #expect(store.statistics().largestGroup == 30)
        }
    }

    @Test("a failing request in a group rolls back alone")
    func failureIsolated() async throws {
        try await withStore { store, _ in
            let gate = WriterGate()
            let held = Task { try await gate.hold(store) }
            await gate.entered()
            let good = Task { try await store.put(key: "good", value: []) }
            let bad = Task { try await store.apply([remote("x", "1", lamport: 3), remote("", "2", lamport: 4)]) }
            let alsoGood = Task { try await store.apply([remote("y", "1", lamport: 9)]) }
            #expect(await eventually { store.writer.pendingCount == 3 })
            gate.release()
            try await held.value
            let first = try await good.value
            await #expect(throws: StoreError.invalidRecord(index: 1, reason: KeyError.empty.description)) {
                try await bad.value
            }
            #expect(try await alsoGood.value == ApplyResult(applied: 1, ignored: 0))
            #expect(first.seq == 1)
            #expect(try await store.get(key: "x") == nil)
            #expect(try await store.get(key: "y")?.seq == 2)
            #expect(store.statistics().transactions == 2)
        }
    }

    @Test("a read completes while the writer is held inside a big write transaction")
    func readDuringWrite() async throws {
        try await withStore { store, _ in
            _ = try await store.put(key: "k", value: bytes("old"))
            let committed = try await store.state()
            let gate = WriterGate()
            let batch = (0..<20_000).map { remote("bulk/\($0)", "value \($0)", lamport: 10) }
            // Inside the transaction: a big apply and a new value for "k", then hold.
            let held = Task {
                try await gate.hold(store) { session in
                    let result = try session.apply(batch)
                    _ = try session.writeLocal(key: "k", value: bytes("new"))
                    return result
                }
            }
            await gate.entered()
            // The writer is provably inside its transaction until `release()`: these reads
            // return, and see the last committed state, not the open transaction.
            let during = try await store.get(key: "k")
            let state = try await store.state()
            let feed = try await store.changes(after: committed.lastSeq, limit: 10)
            let listed = try await store.list(prefix: "bulk/", after: nil, limit: 10)
            #expect(store.statistics().transactions == 1)
            gate.release()
            let applied = try await held.value

            #expect(during?.record.value == bytes("old"))
            #expect(state == committed)
            #expect(feed.isEmpty)
            #expect(listed.isEmpty)
            #expect(applied.applied == 20_000)
            #expect(try await store.get(key: "k")?.record.value == bytes("new"))
            #expect(try await store.state().lastSeq == committed.lastSeq + 20_001)
        }
    }

    @Test("more concurrent reads than pooled connections all complete")
    func readsBeyondPool() async throws {
        try await withStore(configure: { $0.readConnections = 1 }) { store, _ in
            _ = try await store.put(key: "k", value: bytes("v"))
            let values = try await withThrowingTaskGroup(of: [UInt8]?.self) { group in
                for _ in 0..<200 {
                    group.addTask { try await store.get(key: "k")?.record.value }
                }
                return try await group.reduce(into: []) { $0.append($1) }
            }
            #expect(values.count == 200)
            #expect(values.allSatisfy { $0 == bytes("v") })
        }
    }
}
