import KVCore
import Testing
import TestSupport

@testable import KVStore

@Suite("The store's side of replication: feed pages, marks and epochs")
struct ReplicationStoreTests {
    private func withPeeredStore(_ body: (KVStore) async throws -> Void) async throws {
        try await withStore { store, _ in
            try await store.configurePeers([PeerConfig(id: nodeB, url: "http://127.0.0.1:1")])
            try await body(store)
        }
    }

    @Test("a feed page is bounded by rows and bytes, and covers the gaps up to the last seq at the end")
    func feedPages() async throws {
        try await withPeeredStore { store in
            for index in 0..<10 { _ = try await store.put(key: "k\(index)", value: Array(repeating: 1, count: 100)) }
            _ = try await store.put(key: "k9", value: [2])  // k9 moves from seq 10 to 11: a gap at 10

            let byRows = try await store.feed(after: 0, maxRows: 4, maxBytes: 1 << 20)
            #expect(byRows.rows.map(\.seq) == [1, 2, 3, 4])
            #expect(byRows.to == 4 && byRows.lastSeq == 11)

            let byBytes = try await store.feed(after: 0, maxRows: 100, maxBytes: 250)
            #expect(byBytes.rows.map(\.seq) == [1, 2], "two rows of 102 bytes fit in 250, a third does not")
            #expect(byBytes.to == 2)

            let oneBigRow = try await store.feed(after: 0, maxRows: 100, maxBytes: 10)
            #expect(oneBigRow.rows.count == 1, "a page always holds at least one row")

            let tail = try await store.feed(after: 8, maxRows: 100, maxBytes: 1 << 20)
            #expect(tail.rows.map(\.seq) == [9, 11])
            #expect(tail.to == 11, "the end of the feed covers the gap at 10")

            let empty = try await store.feed(after: 11, maxRows: 100, maxBytes: 1 << 20)
            #expect(empty.rows.isEmpty && empty.to == 11)
            #expect(empty.epoch == (try await store.state().epoch))
        }
    }

    @Test("applyFeed moves the mark with the rows, never back, and refuses a gap without applying")
    func applyFeedMarks() async throws {
        try await withPeeredStore { store in
            let first = try await store.applyFeed(
                from: nodeB, records: [remote("a", "1", lamport: 5)], batchFrom: 0, batchTo: 7)
            #expect(first == PeerApplyResult(mark: 7, applied: 1))
            #expect(try await store.peer(nodeB)?.pulledSeq == 7)

            // An overlapping, older batch is harmless and does not move the mark back.
            let overlap = try await store.applyFeed(
                from: nodeB, records: [remote("a", "1", lamport: 5)], batchFrom: 3, batchTo: 5)
            #expect(overlap == PeerApplyResult(mark: 7, applied: 0))

            await #expect(throws: StoreError.feedGap(peer: "B", mark: 7)) {
                try await store.applyFeed(from: nodeB, records: [remote("b", "2", lamport: 6)], batchFrom: 8, batchTo: 9)
            }
            #expect(try await store.get(key: "b") == nil, "nothing of a refused batch is applied")

            await #expect(throws: StoreError.unknownPeer("C")) {
                try await store.applyFeed(from: nodeC, records: [], batchFrom: 0, batchTo: 1)
            }
            // An invalid row refuses the whole batch, mark included.
            await #expect(throws: StoreError.self) {
                try await store.applyFeed(
                    from: nodeB, records: [remote("c", "3", lamport: 9), remote("", "x", lamport: 9)], batchFrom: 7, batchTo: 20)
            }
            #expect(try await store.peer(nodeB)?.pulledSeq == 7)
            #expect(try await store.get(key: "c") == nil)
        }
    }

    @Test("a changed peer epoch resets both marks; the first epoch and a repeated one do not")
    func peerEpochs() async throws {
        try await withPeeredStore { store in
            #expect(try await store.notePeerEpoch(nodeB, epoch: "e1") == nil)
            _ = try await store.applyFeed(from: nodeB, records: [], batchFrom: 0, batchTo: 40)
            try await store.setPushedSeq(nodeB, 30)
            #expect(try await store.notePeerEpoch(nodeB, epoch: "e1") == nil)
            #expect(try await store.peer(nodeB)?.pulledSeq == 40)

            #expect(try await store.notePeerEpoch(nodeB, epoch: "e2") == "e1")
            let peer = try #require(try await store.peer(nodeB))
            #expect(peer.epoch == "e2" && peer.pulledSeq == 0 && peer.pushedSeq == 0)
        }
    }

    @Test("renewEpoch gives the file a new epoch that survives re-opening")
    func renewEpoch() async throws {
        try await withTemporaryDirectoryPath { directory in
            let path = directory + "/node.db"
            let store = try await openStore(path)
            let before = try await store.feedPosition().epoch
            let renewed = try await store.renewEpoch()
            #expect(renewed != before && renewed.count == 32)
            await store.close()
            let again = try await openStore(path)
            #expect(try await again.feedPosition().epoch == renewed)
            await again.close()
        }
    }
}
