import KVCore
import SQLite
import Testing
import TestSupport

@testable import KVStore

@Suite("Local writes")
struct WriteTests {
    @Test("each write is stamped with a greater lamport of this node and the next seq")
    func versionsStamped() async throws {
        try await withStore(id: nodeB) { store, _ in
            var receipts: [WriteReceipt] = []
            receipts.append(try await store.put(key: "a", value: bytes("1")))
            receipts.append(try await store.put(key: "b", value: bytes("2")))
            receipts.append(try await store.put(key: "a", value: bytes("3")))
            receipts.append(try await store.delete(key: "b"))
            #expect(receipts.map(\.version.lamport) == [1, 2, 3, 4])
            #expect(receipts.allSatisfy { $0.version.origin == nodeB })
            #expect(receipts.map(\.seq) == [1, 2, 3, 4])
            #expect(receipts.map(\.key) == ["a", "b", "a", "b"])

            let a = try #require(try await store.get(key: "a"))
            #expect(a == StoredRecord(record: Record(key: "a", value: bytes("3"), version: receipts[2].version), seq: 3))
            let state = try await store.state()
            #expect(state.id == nodeB)
            #expect(state.lamport == 4)
            #expect(state.lastSeq == 4)
            #expect(state.liveKeys == 1)
        }
    }

    @Test("the clock and next seq survive closing and re-opening")
    func countersSurviveRestart() async throws {
        try await withTemporaryDirectoryPath { directory in
            let path = directory + "/node.db"
            let first = try await openStore(path)
            _ = try await first.put(key: "x", value: bytes("1"))
            _ = try await first.apply([remote("y", "2", lamport: 40)])
            _ = try await first.delete(key: "x")
            let before = try await first.state()
            await first.close()
            #expect(before.lamport == 41)
            #expect(before.lastSeq == 3)

            let second = try await openStore(path)
            let after = try await second.state()
            let receipt = try await second.put(key: "z", value: [])
            await second.close()
            #expect(after == before)
            #expect(receipt.version.lamport == 42)
            #expect(receipt.seq == 4)
        }
    }

    @Test("a delete writes a tombstone that get returns and list hides, known key or not")
    func tombstones() async throws {
        try await withStore { store, _ in
            _ = try await store.put(key: "k", value: bytes("v"))
            let deleted = try await store.delete(key: "k")
            let stored = try #require(try await store.get(key: "k"))
            #expect(stored.record.isTombstone)
            #expect(stored.record.version == deleted.version)
            #expect(stored.seq == deleted.seq)

            let unknown = try await store.delete(key: "never-seen")
            let tombstone = try #require(try await store.get(key: "never-seen"))
            #expect(tombstone == StoredRecord(record: Record(key: "never-seen", value: nil, version: unknown.version), seq: unknown.seq))

            #expect(try await store.list(prefix: "", after: nil, limit: 10).isEmpty)
            #expect(try await store.get(key: "other") == nil)
            #expect(try await store.state().liveKeys == 0)
        }
    }

    @Test("an empty value is a value, not a delete")
    func emptyValue() async throws {
        try await withStore { store, _ in
            _ = try await store.put(key: "e", value: [])
            let stored = try #require(try await store.get(key: "e"))
            #expect(stored.record.value == [])
            #expect(try await store.list(prefix: "", after: nil, limit: 10).map(\.size) == [0])
        }
    }

    @Test("a key that breaks the rules is refused and nothing is written")
    func invalidKey() async throws {
        try await withStore { store, _ in
            await #expect(throws: StoreError.invalidKey(key: "", reason: .empty)) {
                try await store.put(key: "", value: bytes("v"))
            }
            await #expect(throws: StoreError.invalidKey(key: "a\u{7F}", reason: .controlCharacter(0x7F))) {
                try await store.delete(key: "a\u{7F}")
            }
            let state = try await store.state()
            #expect(state.lamport == 0)
            #expect(state.lastSeq == 0)
            // The writer goes on after a refused request.
            #expect(try await store.put(key: "ok", value: []).seq == 1)
        }
    }

    @Test("configurePeers adds peers and updates URLs but keeps marks and unlisted peers")
    func peers() async throws {
        try await withStore { store, _ in
            try await store.configurePeers([
                PeerConfig(id: nodeB, url: "http://b:1"), PeerConfig(id: nodeC, url: "http://c:1"),
            ])
            #expect(
                try await store.peers() == [
                    PeerState(id: nodeB, url: "http://b:1", epoch: nil, pulledSeq: 0, pushedSeq: 0, lastContact: nil),
                    PeerState(id: nodeC, url: "http://c:1", epoch: nil, pulledSeq: 0, pushedSeq: 0, lastContact: nil),
                ])
            _ = try await store.writer.submit { session in
                try session.connection.run(
                    "UPDATE peers SET epoch = 'e', pulled_seq = 7, pushed_seq = 5, last_contact = 't' WHERE id = 'B'")
            }
            try await store.configurePeers([PeerConfig(id: nodeB, url: "http://b:2")])
            #expect(
                try await store.peers() == [
                    PeerState(id: nodeB, url: "http://b:2", epoch: "e", pulledSeq: 7, pushedSeq: 5, lastContact: "t"),
                    PeerState(id: nodeC, url: "http://c:1", epoch: nil, pulledSeq: 0, pushedSeq: 0, lastContact: nil),
                ])
            // Peer changes are not rows of the feed.
            #expect(try await store.state().lastSeq == 0)
        }
    }

    @Test("close lets queued writes finish, is idempotent, and later calls throw closed")
    func close() async throws {
        try await withTemporaryDirectoryPath { directory in
            let path = directory + "/node.db"
            let store = try await openStore(path)
            let gate = WriterGate()
            let held = Task { try await gate.hold(store) }
            await gate.entered()
            let puts = (0..<10).map { index in
                Task { try await store.put(key: "k\(index)", value: bytes("\(index)")) }
            }
            #expect(await eventually { store.writer.pendingCount == 10 })
            let closing = Task { await store.close() }
            // Reads are refused as soon as closing begins; the queued puts are still waiting.
            #expect(
                await eventually {
                    do {
                        _ = try await store.get(key: "k0")
                        return false
                    } catch {
                        return error as? StoreError == .closed
                    }
                })
            #expect(store.writer.pendingCount == 10)
            gate.release()
            try await held.value
            for put in puts { _ = try await put.value }
            await closing.value
            await store.close()
            await #expect(throws: StoreError.closed) { try await store.put(key: "late", value: []) }
            await #expect(throws: StoreError.closed) { try await store.get(key: "k0") }
            await #expect(throws: StoreError.closed) { try await store.state() }

            let reopened = try await openStore(path)
            let keys = try await reopened.list(prefix: "k", after: nil, limit: 100).map(\.key)
            await reopened.close()
            #expect(keys.count == 10)
        }
    }
}
