import SQLite
import Testing
import TestSupport

@testable import KVStore

@Suite("Extra SQLite settings for benchmarks")
struct PragmaTests {
    @Test("name=value lists parse; anything else is refused naming the entry")
    func parsing() throws {
        let parsed = try SQLitePragma.list("cache_size=-16000; mmap_size = 268435456;;wal_autocheckpoint=4000").get()
        #expect(parsed.map(\.description) == ["cache_size=-16000", "mmap_size=268435456", "wal_autocheckpoint=4000"])
        for bad in ["cache_size", "=1", "x=", "a=1; DROP TABLE kv", "a=1 OR 1", "a b=1", "a=(1)", "a=1'"] {
            guard case .failure(let error) = SQLitePragma.list(bad) else {
                Issue.record("accepted \(bad)")
                continue
            }
            #expect(error.description.contains("is not name=value"))
        }
    }

    @Test("each setting runs on the writer's connection and on every reader's")
    func applied() async throws {
        let pragma = try #require(SQLitePragma("cache_size=-4711"))
        try await withStore(configure: { $0.extraPragmas = [pragma] }) { store, _ in
            let writer = try await store.writer.submit { try $0.connection.textValue("PRAGMA cache_size") }
            let reader = try store.readers.read { try $0.textValue("PRAGMA cache_size") }
            #expect(writer == "-4711")
            #expect(reader == "-4711")
        }
        try await withStore { store, _ in
            let reader = try store.readers.read { try $0.textValue("PRAGMA cache_size") }
            #expect(reader != "-4711")
        }
    }
}
