import Foundation
import Testing
import TestSupport

import SQLite

@Suite("Errors carry code, message and SQL")
struct ErrorTests {
    @Test("a syntax error names the failing statement of a script")
    func syntaxError() throws {
        try withConnection { connection in
            let error = try #require(throws: SQLiteError.self) {
                try connection.execute("CREATE TABLE ok(v); SELEC 1;")
            }
            #expect(error.code == .error)
            #expect(error.message.contains("syntax error"))
            #expect(error.sql?.contains("SELEC 1") == true)
            #expect(error.sql?.contains("CREATE TABLE") == false)
            #expect(error.description.contains("syntax error"))
            // The statement before the bad one ran.
            #expect(try connection.firstRow("SELECT count(*) FROM ok") { $0.int64(at: 0) } == 0)
        }
    }

    @Test("a constraint violation has its extended code and never shows bound values")
    func constraintViolation() throws {
        try withConnection { connection in
            try connection.execute("CREATE TABLE t(id INTEGER PRIMARY KEY, name TEXT UNIQUE)")
            let sql = "INSERT INTO t(id, name) VALUES (?, ?)"
            try connection.run(sql, [.integer(1), .text("secret-value")])
            let error = try #require(throws: SQLiteError.self) {
                try connection.run(sql, [.integer(2), .text("secret-value")])
            }
            #expect(error.code == .constraint)
            #expect(error.isConstraintViolation)
            #expect(error.extendedCode == ResultCode(rawValue: 2067))  // SQLITE_CONSTRAINT_UNIQUE
            #expect(error.message == "UNIQUE constraint failed: t.name")
            #expect(error.sql == sql)
            #expect(!error.description.contains("secret-value"))
            #expect(!error.isBusy && !error.isCorrupt && !error.isFull && !error.isNotADatabase)
        }
    }

    @Test("a file that is not a database fails on first use with NOTADB")
    func notADatabase() throws {
        try withTemporaryDirectoryPath { directory in
            let path = directory + "/junk.db"
            let junk = (0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
            #expect(FileManager.default.createFile(atPath: path, contents: Data(junk)))
            let connection = try Connection(path: path, mode: .readOnly)
            defer { connection.close() }
            let error = try #require(throws: SQLiteError.self) {
                try connection.run("SELECT count(*) FROM sqlite_master")
            }
            #expect(error.isNotADatabase)
        }
    }

    @Test("a read-only connection refuses writes")
    func readOnly() throws {
        try withTemporaryDirectoryPath { directory in
            let path = directory + "/ro.db"
            let writer = try Connection(path: path)
            defer { writer.close() }
            try writer.execute("CREATE TABLE t(v)")
            let reader = try Connection(path: path, mode: .readOnly)
            defer { reader.close() }
            let error = try #require(throws: SQLiteError.self) {
                try reader.run("INSERT INTO t VALUES (1)")
            }
            #expect(error.isReadOnly)
        }
    }
}
