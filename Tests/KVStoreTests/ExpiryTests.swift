import KVCore
import Testing
import TestSupport

@testable import KVStore

/// Expiry in the store: a row whose time has passed reads as absent everywhere a reader looks,
/// is swept into a tombstone of the same version (so an older write cannot come back), and
/// that tombstone is purged like any other.
@Suite("Expiry in the store")
struct ExpiryTests {
    private let past: Int64 = 1_000  // 1970, long expired
    private let future = ExpiryClock.nowMilliseconds() + 3_600_000

    @Test func anExpiredRowIsAbsentFromReadsListsScansAndDigests() async throws {
        try await withStore { store, _ in
            _ = try await store.put(key: "gone", value: bytes("v"), expiresAt: past)
            _ = try await store.put(key: "later", value: bytes("v"), expiresAt: future)
            _ = try await store.put(key: "plain", value: bytes("v"))
            let gone = try #require(try await store.get(key: "gone"))
            #expect(gone.record.value(at: ExpiryClock.nowMilliseconds()) == nil)
            #expect(gone.record.value == bytes("v"), "the row keeps its value until swept")
            #expect(try await store.get(key: "later")?.record.expiresAt == future)
            #expect(try await store.list(prefix: "", after: nil, limit: 10).map(\.key) == ["later", "plain"])
            #expect(try await store.scan(after: 0, count: 10).keys.sorted() == ["later", "plain"])
            #expect(try await store.digest().liveKeys == 2)
            #expect(try await store.liveKeyCount() == 2)
            let counts = try await store.expiryCounts()
            #expect(counts.expiring == 1 && counts.expired == 1)
        }
    }

    @Test func theSweepMakesASameVersionTombstoneThatOlderWritesCannotBeat() async throws {
        try await withStore { store, _ in
            let old = try await store.apply([remote("k", "old", lamport: 5)])
            #expect(old.applied == 1)
            // A newer write with an expiry already past, as a peer sends it.
            let expiring = Record(key: "k", value: bytes("new"), version: Version(lamport: 6, origin: nodeB), expiresAt: past)
            #expect(try await store.apply([expiring]).applied == 1)
            let before = try await store.state().lastSeq
            #expect(try await store.tombstoneExpired() == 1)
            let swept = try #require(try await store.get(key: "k"))
            #expect(swept.record.isTombstone)
            #expect(swept.record.version == expiring.version)
            #expect(swept.seq > before, "the sweep is a change in the feed, for watchers and peers")
            #expect(try await store.tombstoneExpired() == 0)
            // Anti-entropy resending the old value, or the expired write itself, changes nothing.
            #expect(try await store.apply([remote("k", "old", lamport: 5), expiring]).applied == 0)
            #expect(try await store.get(key: "k")?.record.isTombstone == true)
            #expect(try await store.purgeTombstones(ackedThrough: .max, olderThan: .zero) == 1)
            #expect(try await store.get(key: "k") == nil)
        }
    }

    @Test func aNewVersionWithoutExpiryPersistsTheKey() async throws {
        try await withStore { store, _ in
            _ = try await store.put(key: "k", value: bytes("v"), expiresAt: future)
            try await store.transact { transaction in
                let row = try #require(try transaction.record(forKey: "k")?.record)
                try transaction.put(key: "k", value: row.value ?? [], expiresAt: nil)
            }
            let row = try #require(try await store.get(key: "k"))
            #expect(row.record.expiresAt == nil)
            #expect(row.record.version.lamport == 2)
            #expect(try await store.expiryCounts().expiring == 0)
        }
    }
}
