import Foundation
import KVCore
import SQLite
import Testing
import TestSupport

@testable import KVStore

@Suite("Migrations")
struct MigrationTests {
    private func recorded(_ path: String) throws -> [String] {
        let connection = try Connection(path: path, mode: .readOnly)
        defer { connection.close() }
        return try connection.rows("SELECT version, name, applied_at FROM schema_migrations ORDER BY version") {
            "\($0.int64(at: 0)) \($0.text(at: 1)) \($0.text(at: 2))"
        }
    }

    @Test("a fresh file gets every migration recorded, and the log says so")
    func freshFile() async throws {
        try await withTemporaryDirectoryPath { directory in
            let path = directory + "/node.db"
            let log = LogRecorder()
            let store = try await openStore(path, logger: log.logger)
            await store.close()
            let rows = try recorded(path)
            #expect(rows.count == Migrations.all.count)
            for (row, migration) in zip(rows, Migrations.all) {
                #expect(row.hasPrefix("\(migration.version) \(migration.name) 20"))
            }
            #expect(log.messages.contains("applied migration 1 (initial)"))
        }
    }

    @Test("re-opening applies nothing")
    func reopen() async throws {
        try await withTemporaryDirectoryPath { directory in
            let path = directory + "/node.db"
            try await openStore(path).close()
            let before = try recorded(path)
            let log = LogRecorder()
            try await openStore(path, logger: log.logger).close()
            #expect(try recorded(path) == before)
            #expect(!log.messages.contains { $0.hasPrefix("applied migration") })
        }
    }

    @Test("a file with a newer schema is refused and left byte for byte as it was")
    func schemaTooNew() async throws {
        try await withTemporaryDirectoryPath { directory in
            let path = directory + "/node.db"
            try await openStore(path).close()
            do {
                let connection = try Connection(path: path)
                defer { connection.close() }
                try connection.run("INSERT INTO schema_migrations VALUES (999, 'future', 'later')")
            }
            let before = try #require(fileBytes(path))
            await #expect(throws: StoreError.schemaTooNew(path: path, found: 999, supported: Migrations.latestVersion)) {
                try await openStore(path)
            }
            #expect(fileBytes(path) == before)
            let message = StoreError.schemaTooNew(path: path, found: 999, supported: 1).description
            #expect(message.contains("upgrade the binary"))
        }
    }

    @Test("a file of random bytes is refused as not a database and never written")
    func randomBytes() async throws {
        try await withTemporaryDirectoryPath { directory in
            let path = directory + "/junk.db"
            var generator = SeededRandom(seed: 42)
            let junk = (0..<8192).map { _ in UInt8.random(in: 0...255, using: &generator) }
            #expect(FileManager.default.createFile(atPath: path, contents: Data(junk)))
            await #expect(throws: StoreError.notADatabase(path: path)) {
                try await openStore(path)
            }
            #expect(fileBytes(path) == junk)
        }
    }

    @Test("a database whose pages were overwritten with garbage is refused as corrupt, not a crash")
    func garbagePages() async throws {
        try await withTemporaryDirectoryPath { directory in
            let path = directory + "/node.db"
            let store = try await openStore(path)
            for index in 0..<300 {
                _ = try await store.put(key: "key-\(index)", value: Array(repeating: UInt8(index % 256), count: 200))
            }
            await store.close()
            var damaged = try #require(fileBytes(path))
            let pageSize = 4096
            try #require(damaged.count > 4 * pageSize)
            #expect(!FileManager.default.fileExists(atPath: path + "-wal"), "the WAL was checkpointed at close")
            // Keep page 1 (header and schema); every other page becomes noise.
            var generator = SeededRandom(seed: 7)
            for offset in pageSize..<damaged.count {
                damaged[offset] = UInt8.random(in: 0...255, using: &generator)
            }
            #expect(FileManager.default.createFile(atPath: path, contents: Data(damaged)))
            await #expect {
                try await openStore(path)
            } throws: { error in
                guard case .corrupt(let errorPath, let detail) = error as? StoreError else { return false }
                return errorPath == path && !detail.isEmpty
            }
            #expect(fileBytes(path) == damaged)
        }
    }

    @Test("Migrations.all is exactly the .sql files of the repository's migrations/ folder")
    func embeddedMatchRepository() throws {
        let folder = URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent()  // KVStoreTests
            .deletingLastPathComponent()  // Tests
            .deletingLastPathComponent()  // the package
            .appendingPathComponent("migrations")
        let names = try FileManager.default.contentsOfDirectory(atPath: folder.path)
            .filter { $0.hasSuffix(".sql") }
            .sorted()
        #expect(!names.isEmpty)
        #expect(Migrations.all.map(\.fileName) == names)
        for (name, migration) in zip(names, Migrations.all) {
            let text = try String(contentsOf: folder.appendingPathComponent(name), encoding: .utf8)
            let parsed = try Migration(fileName: name, sql: text)
            #expect(migration == parsed)
            #expect(migration.sql == text)
        }
        #expect(Migrations.all.first?.version == 1)
        #expect(Migrations.all.first?.name == "initial")
    }

    @Test(
        "malformed migration file names are refused",
        arguments: [
            "1_initial.sql", "0001-initial.sql", "0001_Initial.sql", "0000_zero.sql", "0001_.sql",
            "0001_initial.txt", "initial.sql", "00a1_initial.sql", "0001_ini tial.sql",
        ])
    func malformedName(name: String) {
        #expect(throws: MigrationError.malformedFileName(name)) {
            try Migrations.parse([(name: name, sql: "")])
        }
    }

    @Test("migration versions must run 1, 2, 3 without gaps or repeats")
    func sequence() throws {
        #expect(throws: MigrationError.outOfSequence(expected: 2, found: 3, fileName: "0003_c.sql")) {
            try Migrations.parse([(name: "0003_c.sql", sql: ""), (name: "0001_a.sql", sql: "")])
        }
        #expect(throws: MigrationError.outOfSequence(expected: 2, found: 1, fileName: "0001_b.sql")) {
            try Migrations.parse([(name: "0001_a.sql", sql: ""), (name: "0001_b.sql", sql: "")])
        }
        let parsed = try Migrations.parse([(name: "0002_b.sql", sql: "B"), (name: "0001_a.sql", sql: "A")])
        #expect(parsed.map(\.version) == [1, 2])
        #expect(parsed.map(\.name) == ["a", "b"])
        #expect(parsed.map(\.sql) == ["A", "B"])
    }
}

@Suite("Opening a file")
struct OpenTests {
    @Test("a missing directory is refused with the path and the fix")
    func missingDirectory() async throws {
        try await withTemporaryDirectoryPath { directory in
            let path = directory + "/absent/node.db"
            await #expect(throws: StoreError.directoryMissing(path: path)) {
                try await openStore(path)
            }
            #expect(StoreError.directoryMissing(path: path).description.contains("mkdir -p \(directory)/absent"))
            #expect(!FileManager.default.fileExists(atPath: directory + "/absent"))
        }
    }

    @Test("a directory in place of the file is refused")
    func directoryAsFile() async throws {
        try await withTemporaryDirectoryPath { directory in
            await #expect(throws: StoreError.notAFile(path: directory)) {
                try await openStore(directory)
            }
        }
    }

    @Test("an unwritable directory is refused", .disabled(if: geteuid() == 0, "root may write anywhere"))
    func unwritable() async throws {
        try await withTemporaryDirectoryPath { directory in
            let locked = directory + "/locked"
            try FileManager.default.createDirectory(atPath: locked, withIntermediateDirectories: false)
            try FileManager.default.setAttributes([.posixPermissions: 0o555], ofItemAtPath: locked)
            defer { try? FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: locked) }
            await #expect(throws: StoreError.notWritable(path: locked + "/node.db")) {
                try await openStore(locked + "/node.db")
            }
        }
    }

    @Test("an empty file counts as new")
    func emptyFile() async throws {
        try await withTemporaryDirectoryPath { directory in
            let path = directory + "/empty.db"
            #expect(FileManager.default.createFile(atPath: path, contents: Data()))
            let store = try await openStore(path)
            let state = try await store.state()
            await store.close()
            #expect(state.id == nodeA)
            #expect(state.lastSeq == 0)
        }
    }

    @Test("a file made by another node is refused and left untouched")
    func wrongNode() async throws {
        try await withTemporaryDirectoryPath { directory in
            let path = directory + "/A.db"
            let store = try await openStore(path, id: nodeA)
            _ = try await store.put(key: "k", value: bytes("v"))
            await store.close()
            let before = try #require(fileBytes(path))
            await #expect(throws: StoreError.wrongNode(path: path, fileNode: nodeA, requested: nodeB)) {
                try await openStore(path, id: nodeB)
            }
            #expect(fileBytes(path) == before)
            let message = StoreError.wrongNode(path: "data/A.db", fileNode: nodeA, requested: nodeB).description
            #expect(message.contains("data/A.db belongs to node A"))
            #expect(message.contains("start it with --id A or give --db another file"))
            // Its owner still opens it.
            let again = try await openStore(path, id: nodeA)
            let record = try await again.get(key: "k")
            await again.close()
            #expect(record?.record.value == bytes("v"))
        }
    }

    @Test("an SQLite file of another program is refused and left untouched")
    func foreignDatabase() async throws {
        try await withTemporaryDirectoryPath { directory in
            let path = directory + "/other.db"
            do {
                let connection = try Connection(path: path)
                defer { connection.close() }
                try connection.execute("CREATE TABLE kv(x); INSERT INTO kv VALUES (1);")
            }
            let before = try #require(fileBytes(path))
            await #expect(throws: StoreError.notAConvergeDatabase(path: path)) {
                try await openStore(path)
            }
            #expect(fileBytes(path) == before)
        }
    }

    @Test("a new file gets a random 32-hex-digit epoch that survives re-opening")
    func epoch() async throws {
        try await withTemporaryDirectoryPath { directory in
            let first = try await openStore(directory + "/1.db")
            let epoch = try await first.state().epoch
            await first.close()
            let second = try await openStore(directory + "/2.db")
            let other = try await second.state().epoch
            await second.close()
            let reopened = try await openStore(directory + "/1.db")
            let same = try await reopened.state().epoch
            await reopened.close()
            #expect(epoch.count == 32)
            #expect(epoch.allSatisfy { $0.isHexDigit && !$0.isUppercase })
            #expect(epoch != other)
            #expect(same == epoch)
        }
    }
}
