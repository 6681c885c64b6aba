import KVCore
import SQLite
import Testing
import TestSupport

@testable import KVStore

@Suite("Listing and the change feed")
struct ReadTests {
    /// Byte order of UTF-8, the order the store promises (not Swift's `<` on strings).
    private func byteOrdered(_ keys: [String]) -> [String] {
        keys.sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
    }

    @Test("list pages through live keys by prefix in byte order, non-ASCII included")
    func paging() async throws {
        try await withStore { store, _ in
            let keys = [
                "b", "a/2", "z", "é", "a", "a/1", "日本", "ab", "a/3", "e", "\u{10FFFF}", "a/é", "Z", "a0",
            ]
            for key in keys { _ = try await store.put(key: key, value: Array(key.utf8)) }
            _ = try await store.delete(key: "a/gone")

            let all = try await store.list(prefix: "", after: nil, limit: 100)
            #expect(all.map(\.key) == byteOrdered(keys))
            #expect(all.map(\.size) == byteOrdered(keys).map(\.utf8.count))
            #expect(all.allSatisfy { $0.version.origin == nodeA })

            // Pages of two under "a/", passing the last key as `after`.
            var pages: [[String]] = []
            var after: String?
            while true {
                let page = try await store.list(prefix: "a/", after: after, limit: 2).map(\.key)
                if page.isEmpty { break }
                pages.append(page)
                after = page.last
            }
            #expect(pages == [["a/1", "a/2"], ["a/3", "a/é"]])

            #expect(try await store.list(prefix: "a", after: nil, limit: 100).map(\.key) == ["a", "a/1", "a/2", "a/3", "a/é", "a0", "ab"])
            #expect(try await store.list(prefix: "é", after: nil, limit: 100).map(\.key) == ["é"])
            #expect(try await store.list(prefix: "\u{10FFFF}", after: nil, limit: 100).map(\.key) == ["\u{10FFFF}"])
            // `after` below the prefix starts at the prefix; above every match gives nothing.
            #expect(try await store.list(prefix: "a/", after: "0", limit: 1).map(\.key) == ["a/1"])
            #expect(try await store.list(prefix: "a/", after: "b", limit: 10).isEmpty)
            // Byte order puts "Z" before "a" and "é" after "z".
            #expect(try await store.list(prefix: "", after: "Z", limit: 1).map(\.key) == ["a"])
            #expect(try await store.list(prefix: "", after: "z", limit: 1).map(\.key) == ["é"])
            #expect(try await store.list(prefix: "", after: nil, limit: 0).isEmpty)
            #expect(try await store.list(prefix: "", after: nil, limit: -1).isEmpty)
        }
    }

    @Test("the successor of a prefix bounds exactly the keys that start with it")
    func successor() {
        #expect(Connection.successor(ofPrefix: "a") == "b")
        #expect(Connection.successor(ofPrefix: "a/") == "a0")
        #expect(Connection.successor(ofPrefix: "a\u{10FFFF}") == "b")
        #expect(Connection.successor(ofPrefix: "\u{D7FF}") == "\u{E000}")
        #expect(Connection.successor(ofPrefix: "\u{10FFFF}") == nil)
        #expect(Connection.successor(ofPrefix: "") == nil)
    }

    @Test("changes returns the feed in seq order, tombstones included, a rewrite moving to the end")
    func feed() async throws {
        try await withStore { store, _ in
            _ = try await store.put(key: "a", value: bytes("1"))  // seq 1
            _ = try await store.put(key: "b", value: bytes("2"))  // seq 2
            _ = try await store.apply([remote("c", "3", lamport: 10)])  // seq 3
            _ = try await store.put(key: "a", value: bytes("4"))  // seq 4, replaces seq 1
            _ = try await store.delete(key: "b")  // seq 5, replaces seq 2

            let feed = try await store.changes(after: 0, limit: 100)
            #expect(feed.map(\.seq) == [3, 4, 5])
            #expect(feed.map(\.record.key) == ["c", "a", "b"])
            #expect(feed[0].record == remote("c", "3", lamport: 10))
            #expect(feed[2].record.isTombstone)

            #expect(try await store.changes(after: 3, limit: 1).map(\.seq) == [4])
            #expect(try await store.changes(after: 4, limit: 10).map(\.seq) == [5])
            #expect(try await store.changes(after: 5, limit: 10).isEmpty)
            #expect(try await store.changes(after: 0, limit: 0).isEmpty)
        }
    }

    @Test("commits() gives every subscriber the last seq after a commit, and ends at close")
    func commits() async throws {
        try await withTemporaryDirectoryPath { directory in
            let store = try await openStore(directory + "/node.db")
            let first = store.commits()
            let second = store.commits()
            var firstIterator = first.makeAsyncIterator()
            var secondIterator = second.makeAsyncIterator()
            _ = try await store.put(key: "a", value: [])
            #expect(await firstIterator.next() == 1)
            #expect(await secondIterator.next() == 1)
            _ = try await store.apply([remote("b", "x", lamport: 5), remote("c", "y", lamport: 6)])
            #expect(await firstIterator.next() == 3)
            await store.close()
            // The buffered value was taken; the stream then ends.
            #expect(await secondIterator.next() == 3)
            #expect(await secondIterator.next() == nil)
            #expect(await firstIterator.next() == nil)
            var late = store.commits().makeAsyncIterator()
            #expect(await late.next() == nil)
        }
    }
}
