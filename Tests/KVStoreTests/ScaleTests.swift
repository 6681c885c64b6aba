import KVCore
import SQLite
import Testing
import TestSupport

@testable import KVStore

/// What lets a node hold a million keys: counts kept with the writes instead of counted at
/// start-up and on every `/status`, and feed pages that leave out what the receiver has.
@Suite("A million keys: key counts and feeds that leave rows out")
struct ScaleTests {
    /// `count(*)` over the file, by a connection of the test's own.
    private func counted(_ path: String) throws -> (live: Int64, tombstones: Int64) {
        let connection = try Connection(path: path, mode: .readOnly)
        defer { connection.close() }
        let row = try connection.firstRow("SELECT count(*) - coalesce(sum(deleted), 0), coalesce(sum(deleted), 0) FROM kv") {
            (live: $0.int64(at: 0), tombstones: $0.int64(at: 1))
        }
        return try #require(row)
    }

    private func expectCountsAgree(_ store: KVStore, _ path: String, _ comment: Comment) async throws {
        let state = try await store.state()
        let truth = try counted(path)
        #expect(state.liveKeys == truth.live && state.tombstones == truth.tombstones, "\(comment): kept \(state.liveKeys)/\(state.tombstones), counted \(truth.live)/\(truth.tombstones)")
    }

    @Test("the kept key counts equal count(*) after puts, overwrites, deletes, applies, purges and a reopen")
    func keyCountsFollowEveryChange() async throws {
        try await withTemporaryDirectoryPath { directory in
            let path = directory + "/node.db"
            let store = try await openStore(path)
            try await store.configurePeers([PeerConfig(id: nodeB, url: "http://127.0.0.1:1")])
            try await expectCountsAgree(store, path, "empty")
            for index in 0..<20 { _ = try await store.put(key: "k\(index)", value: bytes("v")) }
            _ = try await store.put(key: "k0", value: bytes("again"))
            try await expectCountsAgree(store, path, "puts and an overwrite")
            #expect(try await store.state().liveKeys == 20)

            for index in 0..<5 { _ = try await store.delete(key: "k\(index)") }
            _ = try await store.delete(key: "never-written")
            _ = try await store.delete(key: "k0")  // a tombstone over a tombstone
            try await expectCountsAgree(store, path, "deletes")
            #expect(try await store.state().tombstones == 6)

            // Applied rows: new keys, a revival of a deleted key, a remote delete, losers.
            _ = try await store.apply([
                remote("r1", "1", lamport: 100), remote("k1", "back", lamport: 100),
                remote("k10", nil, lamport: 100), remote("k11", "old", lamport: 1),
            ])
            _ = try await store.applyFeed(
                from: nodeB, records: [remote("r2", "2", lamport: 101), remote("r1", nil, lamport: 102)], batchFrom: 0, batchTo: 2)
            try await expectCountsAgree(store, path, "applies")

            let purged = try await store.purgeTombstones(ackedThrough: .max, olderThan: .zero)
            #expect(purged > 0)
            try await expectCountsAgree(store, path, "after purging \(purged) tombstones")

            await store.close()
            let reopened = try await openStore(path)
            try await expectCountsAgree(reopened, path, "reopened")
            await reopened.close()
        }
    }

    @Test("a file made before the counts were kept gets them counted once by the migration")
    func migrationCountsExistingRows() async throws {
        try await withTemporaryDirectoryPath { directory in
            let path = directory + "/node.db"
            let store = try await openStore(path)
            for index in 0..<7 { _ = try await store.put(key: "k\(index)", value: bytes("v")) }
            _ = try await store.delete(key: "k0")
            await store.close()
            // Back to the schema before migration 0003, as an older binary left it.
            let connection = try Connection(path: path)
            try connection.execute(
                """
                DROP TRIGGER kv_feed_after_insert; DROP TRIGGER kv_feed_after_update; DROP TABLE feed;
                DROP VIEW members; DROP TRIGGER kv_counts_after_insert; DROP TRIGGER kv_counts_after_delete;
                DROP TRIGGER kv_counts_after_update; DROP TABLE kv_counts;
                ALTER TABLE peers DROP COLUMN covered_lamport; ALTER TABLE peers DROP COLUMN resend_all_through;
                DROP INDEX kv_expiring; ALTER TABLE kv DROP COLUMN expires_at;
                DELETE FROM schema_migrations WHERE version >= 3;
                """)
            connection.close()
            let migrated = try await openStore(path)
            let state = try await migrated.state()
            #expect(state.liveKeys == 6 && state.tombstones == 1)
            await migrated.close()
        }
    }

    @Test("a feed page leaves out the excluded rows, and its range still covers them")
    func feedExclusions() async throws {
        try await withStore { store, _ in
            // seq 1…6: a local row of A, then rows of B at lamport 10, 11, of C at 12, of B at 13, of A.
            _ = try await store.put(key: "a1", value: bytes("x"))
            _ = try await store.apply([
                remote("b10", "x", lamport: 10, origin: nodeB), remote("b11", "x", lamport: 11, origin: nodeB),
                remote("c12", "x", lamport: 12, origin: nodeC), remote("b13", "x", lamport: 13, origin: nodeB),
            ])
            _ = try await store.put(key: "a2", value: bytes("x"))

            let page = try await store.feed(
                after: 0, maxRows: 100, maxBytes: 1 << 20,
                excluding: [.everything(writtenBy: nodeC), FeedExclusion(origin: nodeB, throughLamport: 11)])
            #expect(page.rows.map(\.record.key) == ["a1", "b13", "a2"])
            #expect(page.to == 6 && page.lastSeq == 6)
            #expect(page.clock == (try await store.state().lamport))

            let first = try await store.feed(after: 0, maxRows: 2, maxBytes: 1 << 20, excluding: [.everything(writtenBy: nodeB)])
            #expect(first.rows.map(\.seq) == [1, 4], "two rows that are not B's")
            #expect(first.to == 4, "more follow, so the page ends at its last row")

            let none = try await store.feed(after: 1, maxRows: 100, maxBytes: 1 << 20, excluding: [.everything(writtenBy: nodeB), .everything(writtenBy: nodeC), .everything(writtenBy: nodeA)])
            #expect(none.rows.isEmpty && none.to == 6, "an empty page still covers the range up to the end")
        }
    }

    @Test("a page that leaves out everything ends at its scan window, not at the end of the feed")
    func exclusionWindow() async throws {
        try await withStore { store, _ in
            let window = KVStore.exclusionScanWindow
            let page = try await store.feed(after: 0, maxRows: 10, maxBytes: 1 << 20, excluding: [.everything(writtenBy: nodeA)])
            #expect(page.rows.isEmpty && page.to == 0, "an empty feed")
            // A feed longer than the window: one bulk apply, then a local write beyond it.
            let rows = (0..<Int(window) + 10).map { remote("b\($0)", "x", lamport: Int64($0) + 1, origin: nodeB) }
            _ = try await store.apply(rows)
            _ = try await store.put(key: "mine", value: bytes("x"))
            let skipped = try await store.feed(after: 0, maxRows: 10, maxBytes: 1 << 20, excluding: [.everything(writtenBy: nodeB)])
            #expect(skipped.rows.isEmpty && skipped.to == window)
            let rest = try await store.feed(after: skipped.to, maxRows: 10, maxBytes: 1 << 20, excluding: [.everything(writtenBy: nodeB)])
            #expect(rest.rows.map(\.record.key) == ["mine"] && rest.to == rest.lastSeq)
        }
    }

    @Test("a batch that reaches the sender's end records what this node holds of its writes; epochs reset it")
    func coverage() async throws {
        try await withStore { store, _ in
            try await store.configurePeers([
                PeerConfig(id: nodeB, url: "http://127.0.0.1:1"), PeerConfig(id: nodeC, url: "http://127.0.0.1:2"),
            ])
            #expect(try await store.coverage().isEmpty)
            #expect(try await store.notePeerEpoch(nodeB, epoch: "b1") == nil)
            _ = try await store.applyFeed(from: nodeB, records: [remote("x", "1", lamport: 3)], batchFrom: 0, batchTo: 1)
            #expect(try await store.coverage().isEmpty, "a batch without the sender's clock claims nothing")
            _ = try await store.applyFeed(
                from: nodeB, records: [remote("y", "1", lamport: 4)], batchFrom: 1, batchTo: 2, senderClock: 9)
            #expect(try await store.coverage() == [FeedExclusion(origin: nodeB, throughLamport: 9)])
            _ = try await store.applyFeed(from: nodeB, records: [], batchFrom: 2, batchTo: 2, senderClock: 5)
            #expect(try await store.coverage() == [FeedExclusion(origin: nodeB, throughLamport: 9)], "never goes back")

            // A row refused for an absurd lamport: this node does not hold it, so no claim.
            _ = try await store.applyFeed(
                from: nodeC, records: [remote("evil", "1", lamport: .max - 5, origin: nodeC)], batchFrom: 0, batchTo: 1,
                senderClock: 20)
            #expect(try await store.peer(nodeC)?.coveredLamport == 0)

            // B's file replaced: its marks and what this node held of it are forgotten, and B is
            // sent its own rows again up to this node's last seq.
            #expect(try await store.notePeerEpoch(nodeB, epoch: "b2") == "b1")
            let peer = try #require(try await store.peer(nodeB))
            #expect(peer.coveredLamport == 0 && peer.pulledSeq == 0)
            #expect(peer.resendAllThrough == (try await store.state().lastSeq))

            _ = try await store.applyFeed(from: nodeB, records: [], batchFrom: 0, batchTo: 0, senderClock: 9)
            #expect(!(try await store.coverage().isEmpty))
            _ = try await store.renewEpoch()
            #expect(try await store.coverage().isEmpty, "a restored file claims nothing")
        }
    }
}
