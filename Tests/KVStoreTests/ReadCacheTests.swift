import Foundation
import KVCore
import Synchronization
import Testing
import TestSupport

@testable import KVStore

private func row(_ key: String, _ value: String?, lamport: Int64 = 1, seq: Int64 = 1) -> StoredRecord {
    StoredRecord(
        record: Record(key: key, value: value.map { Array($0.utf8) }, version: Version(lamport: lamport, origin: nodeA)),
        seq: seq)
}

@Suite("The read cache and the key filter, alone")
struct ReadCacheUnitTests {
    @Test("a fill whose stripe saw a change after its ticket is refused; one without is kept")
    func ticketsRefuseRacedFills() {
        let cache = ReadCache(capacityBytes: 1 << 20)
        let raced = cache.ticket(for: "k")
        cache.apply([ReadCache.Change(key: "k", row: row("k", "new", lamport: 2))])
        cache.apply([ReadCache.Change(key: "k", row: nil)])
        cache.fill(row("k", "old"), ticket: raced)
        #expect(cache.row("k") == nil, "a read that began before the change must not put its row back")

        let fresh = cache.ticket(for: "k")
        cache.fill(row("k", "new", lamport: 2), ticket: fresh)
        #expect(cache.row("k") == row("k", "new", lamport: 2))
    }

    @Test("apply keeps written rows, forgets the others, the last change of a key winning")
    func applyInOrder() {
        let cache = ReadCache(capacityBytes: 1 << 20)
        cache.apply([
            ReadCache.Change(key: "a", row: row("a", "1")),
            ReadCache.Change(key: "b", row: row("b", "1")),
            ReadCache.Change(key: "a", row: row("a", "2", lamport: 2, seq: 3)),
            ReadCache.Change(key: "b", row: nil),
            ReadCache.Change(key: "t", row: row("t", nil, lamport: 4, seq: 4)),
        ])
        #expect(cache.row("a") == row("a", "2", lamport: 2, seq: 3))
        #expect(cache.row("b") == nil)
        #expect(cache.row("t") == row("t", nil, lamport: 4, seq: 4), "a tombstone is a row too")
        cache.invalidateAll()
        #expect(cache.count == 0)
    }

    @Test("the cache stays within its budget, does not keep big values, and keeps nothing when off")
    func bounded() {
        let budget = 512 * 1024
        let cache = ReadCache(capacityBytes: budget)
        for index in 0..<5_000 {
            cache.apply([ReadCache.Change(key: "key\(index)", row: row("key\(index)", "v\(index)"))])
        }
        let perEntry = ReadCache.entryOverhead
        #expect(cache.count > 0 && cache.count * perEntry <= budget, "\(cache.count) entries kept of a \(budget)-byte budget")
        let big = String(repeating: "x", count: budget / ReadCache.stripeCount)
        cache.apply([ReadCache.Change(key: "big", row: row("big", big))])
        #expect(cache.row("big") == nil)

        let off = ReadCache(capacityBytes: 0)
        off.apply([ReadCache.Change(key: "a", row: row("a", "1"))])
        off.fill(row("b", "1"), ticket: off.ticket(for: "b"))
        #expect(off.row("a") == nil && off.row("b") == nil && !off.isEnabled)
    }

    @Test("the key filter: every key until built, then no false negative and few false positives")
    func keyFilter() {
        let filter = KeyFilter()
        filter.add("added-before-build")
        #expect(filter.mayContain("anything"), "before the scan every key may be there")
        let built = filter.build(expectedKeys: 20_000) { add in
            for index in 0..<20_000 { add("stored-\(index)") }
        }
        #expect(built && filter.isBuilt)
        filter.add("added-after-build")
        let stored = (0..<20_000).map { "stored-\($0)" } + ["added-before-build", "added-after-build"]
        #expect(stored.allSatisfy(filter.mayContain), "a key with a row is never filtered out")
        let absent = (0..<20_000).filter { filter.mayContain("absent-\($0)") }.count
        #expect(absent < 400, "\(absent) of 20 000 absent keys passed (the filter is sized for 1 %)")
    }

    @Test("a key filter whose scan failed says every key may be there")
    func failedScan() {
        struct ScanFailed: Error {}
        let filter = KeyFilter()
        #expect(!filter.build(expectedKeys: 10) { _ in throw ScanFailed() })
        #expect(!filter.isBuilt && filter.mayContain("x"))
    }
}

/// The lamport of the last acknowledged write of each key.
private final class AcknowledgedVersions: Sendable {
    let state = Mutex<[String: Int64]>([:])
    let finished = Atomic(false)
}

@Suite("The read cache in front of a real store")
struct ReadCacheStoreTests {
    /// Waits until the store's key filter has scanned the file.
    private func filterBuilt(_ store: KVStore) async throws {
        let deadline = ContinuousClock.now + .seconds(10)
        while !store.cache.keys.isBuilt {
            guard ContinuousClock.now < deadline else {
                Issue.record("the key filter was not built within 10 s")
                return
            }
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    @Test("every kind of write is seen by the next read: put, overwrite, delete, replicated rows, expiry, purge")
    func everyWriteIsSeen() async throws {
        try await withStore { store, _ in
            try await filterBuilt(store)
            #expect(try await store.get(key: "k") == nil, "absent, answered by the filter")
            let first = try await store.put(key: "k", value: [1])
            #expect(store.cache.row("k")?.record.version == first.version, "a client's write is kept")
            #expect(try await store.get(key: "k")?.record.value == [1])
            _ = try await store.put(key: "k", value: [2])
            #expect(try await store.get(key: "k")?.record.value == [2])

            _ = try await store.apply([remote("k", "from B", lamport: 100)])
            #expect(try await store.get(key: "k")?.record.value == Array("from B".utf8), "a replicated row replaces the cached one")
            _ = try await store.apply([remote("k", "older", lamport: 50)])
            #expect(try await store.get(key: "k")?.record.value == Array("from B".utf8))
            _ = try await store.apply([remote("fresh", "x", lamport: 7)])
            #expect(try await store.get(key: "fresh")?.record.value == Array("x".utf8), "a replicated new key passes the filter")

            _ = try await store.delete(key: "k")
            let tombstone = try await store.get(key: "k")
            #expect(tombstone != nil && tombstone?.record.isTombstone == true)
            let purged = try await store.purgeTombstones(ackedThrough: .max, olderThan: .zero)
            #expect(purged == 1)
            #expect(try await store.get(key: "k") == nil, "a purge drops the cached tombstone")

            _ = try await store.put(key: "e", value: [9], expiresAt: ExpiryClock.nowMilliseconds() - 1)
            #expect(try await store.get(key: "e")?.record.isTombstone == false)
            #expect(try await store.tombstoneExpired() == 1)
            #expect(try await store.get(key: "e")?.record.isTombstone == true, "expiry turned the cached row into a tombstone")
        }
    }

    @Test("a write that fails leaves the cache holding the stored row, not the refused one")
    func failedWriteIsNotCached() async throws {
        try await withStore(configure: { $0.maxDatabaseBytes = 256 * 1024 }) { store, _ in
            _ = try await store.put(key: "k", value: [1])
            await #expect(throws: StoreError.self) {
                _ = try await store.put(key: "k", value: Array(repeating: 7, count: 1 << 20))
            }
            #expect(try await store.get(key: "k")?.record.value == [1])
        }
    }

    @Test("a reopened file's keys are found, during the filter's scan and after it")
    func reopenedKeys() async throws {
        try await withTemporaryDirectoryPath { directory in
            let path = directory + "/node.db"
            let first = try await openStore(path)
            for index in 0..<2_000 { _ = try await first.put(key: "key\(index)", value: [UInt8(index % 256)]) }
            _ = try await first.delete(key: "key7")
            await first.close()

            let store = try await openStore(path)
            #expect(try await store.get(key: "key1999")?.record.value == [UInt8(1999 % 256)])
            try await filterBuilt(store)
            for index in stride(from: 0, to: 2_000, by: 13) {
                #expect(try await store.get(key: "key\(index)") != nil, "key\(index)")
            }
            #expect(try await store.get(key: "key7")?.record.isTombstone == true)
            #expect(try await store.get(key: "never") == nil)
            await store.close()
        }
    }

    @Test("readers racing a writer never see a version older than one already acknowledged")
    func noStaleReadAfterAcknowledgement() async throws {
        try await withStore { store, _ in
            let acknowledged = AcknowledgedVersions()
            let keys = (0..<8).map { "race\($0)" }
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    for round in 0..<300 {
                        let key = keys[round % keys.count]
                        let receipt = try await store.put(key: key, value: Array("\(round)".utf8))
                        acknowledged.state.withLock { $0[key] = receipt.version.lamport }
                    }
                    acknowledged.finished.store(true, ordering: .releasing)
                }
                for _ in 0..<3 {
                    group.addTask {
                        // Until the writer is done (bounded: 200 000 reads or 20 s).
                        let deadline = ContinuousClock.now + .seconds(20)
                        var read = 0
                        while !acknowledged.finished.load(ordering: .acquiring), read < 200_000, ContinuousClock.now < deadline {
                            let key = keys[read % keys.count]
                            read += 1
                            let floor = acknowledged.state.withLock { $0[key] } ?? 0
                            let seen = try await store.get(key: key)?.record.version.lamport ?? 0
                            #expect(seen >= floor, "\(key): read lamport \(seen) after \(floor) was acknowledged")
                            if seen < floor { return }
                            await Task.yield()
                        }
                    }
                }
                try await group.waitForAll()
            }
        }
    }
}

@Suite("Checkpoints off the writer thread")
struct CheckpointerTests {
    @Test("under a write load the checkpointer thread checkpoints, the log stays within eight times the threshold, and every row reaches the file")
    func logStaysBounded() async throws {
        let threshold = 50
        let pragma = try #require(SQLitePragma("wal_autocheckpoint=\(threshold)"))
        try await withTemporaryDirectoryPath { directory in
            let path = directory + "/node.db"
            let store = try await openStore(path) { $0.extraPragmas = [pragma] }
            var largestLog = 0
            for batch in 0..<40 {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for index in 0..<50 {
                        group.addTask { _ = try await store.put(key: "k\(batch)-\(index)", value: Array(repeating: 7, count: 200)) }
                    }
                    try await group.waitForAll()
                }
                largestLog = max(largestLog, fileSize(path + "-wal"))
            }
            // One transaction past the bound at most: 50 writes touch fewer than 200 pages.
            let bound = (8 * threshold + 200) * (4096 + 24)
            #expect(largestLog > 0 && largestLog <= bound, "the log reached \(largestLog) bytes; bound \(bound)")
            // The thread was asked many times; on a busy machine it may run after the load.
            let deadline = ContinuousClock.now + .seconds(10)
            while store.checkpointer.completed.load(ordering: .relaxed) == 0, ContinuousClock.now < deadline {
                try await Task.sleep(for: .milliseconds(5))
            }
            #expect(
                store.checkpointer.completed.load(ordering: .relaxed) > 0,
                "the checkpointer thread ran no checkpoint in 10 s: the writer did them all")
            await store.close()

            let reopened = try await openStore(path)
            #expect(try await reopened.state().liveKeys == 2_000)
            await reopened.close()
        }
    }
}

private func fileSize(_ path: String) -> Int {
    ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int) ?? 0
}
