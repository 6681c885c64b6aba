import Testing
import TestSupport

import SQLite

private struct Boom: Error {}

@Suite("Transactions and savepoints are scopes")
struct TransactionTests {
    private func count(_ connection: Connection) throws -> Int64 {
        try connection.firstRow("SELECT count(*) FROM t") { $0.int64(at: 0) } ?? -1
    }

    @Test("a transaction commits when its body returns")
    func commit() throws {
        try withConnection { connection in
            try connection.execute("CREATE TABLE t(v)")
            let value = try connection.transaction(.immediate) {
                try connection.run("INSERT INTO t VALUES (1)")
                return 42
            }
            #expect(value == 42)
            #expect(!connection.isInTransaction)
            #expect(try count(connection) == 1)
        }
    }

    @Test("a transaction rolls back when its body throws, and rethrows")
    func rollback() throws {
        try withConnection { connection in
            try connection.execute("CREATE TABLE t(v)")
            #expect(throws: Boom.self) {
                try connection.transaction(.deferred) {
                    try connection.run("INSERT INTO t VALUES (1)")
                    #expect(connection.isInTransaction)
                    throw Boom()
                }
            }
            #expect(!connection.isInTransaction)
            #expect(try count(connection) == 0)
        }
    }

    @Test("a failing savepoint undoes only its own work inside a transaction")
    func savepointRollback() throws {
        try withConnection { connection in
            try connection.execute("CREATE TABLE t(v INTEGER UNIQUE)")
            try connection.transaction(.immediate) {
                try connection.run("INSERT INTO t VALUES (1)")
                #expect(throws: Boom.self) {
                    try connection.savepoint("first") {
                        try connection.run("INSERT INTO t VALUES (2)")
                        throw Boom()
                    }
                }
                // A statement error inside a savepoint is undone the same way.
                let error = try #require(throws: SQLiteError.self) {
                    try connection.savepoint("second") {
                        try connection.run("INSERT INTO t VALUES (3)")
                        try connection.run("INSERT INTO t VALUES (1)")
                    }
                }
                #expect(error.isConstraintViolation)
                #expect(connection.isInTransaction)
                try connection.savepoint("third") {
                    try connection.run("INSERT INTO t VALUES (4)")
                }
            }
            let values = try connection.rows("SELECT v FROM t ORDER BY v") { $0.int64(at: 0) }
            #expect(values == [1, 4])
        }
    }

    @Test("execute runs a whole script")
    func script() throws {
        try withConnection { connection in
            try connection.execute(
                """
                CREATE TABLE t(v); -- a comment
                INSERT INTO t VALUES (1);
                INSERT INTO t VALUES (2);
                /* trailing comment */
                """)
            #expect(try count(connection) == 2)
        }
    }

    @Test("WAL mode can be switched on")
    func wal() throws {
        try withConnection { connection in
            let mode = try connection.enableWAL()
            #expect(mode == "wal")
        }
    }
}

@Suite("Statement cache")
struct StatementCacheTests {
    @Test("the same SQL gets the same prepared statement, reset for reuse")
    func reuse() throws {
        try withConnection { connection in
            try connection.execute("CREATE TABLE t(v); INSERT INTO t VALUES (1), (2), (3);")
            let sql = "SELECT v FROM t WHERE v >= ? ORDER BY v"
            let first = try connection.cachedStatement(sql)
            try first.bind([.integer(2)])
            #expect(try first.step())
            #expect(first.int64(at: 0) == 2)
            // Left mid-iteration; a second checkout is the same object, reset and unbound.
            let second = try connection.cachedStatement(sql)
            #expect(first === second)
            #expect(connection.cachedStatementCount == 1)
            // Binding a statement that is still running would fail with SQLITE_MISUSE.
            try second.bind([.integer(1)])
            #expect(try second.step())
            #expect(second.int64(at: 0) == 1)
        }
    }

    @Test("the scoped helpers reuse one statement and allow nesting the same SQL")
    func scopedReuse() throws {
        try withConnection { connection in
            try connection.execute("CREATE TABLE t(v); INSERT INTO t VALUES (1), (2);")
            let sql = "SELECT v FROM t ORDER BY v"
            for _ in 0..<3 {
                #expect(try connection.rows(sql) { $0.int64(at: 0) } == [1, 2])
            }
            #expect(connection.cachedStatementCount == 1)
            let nested = try connection.rows(sql) { outer in
                try outer.int64(at: 0) * 10 + (connection.rows(sql) { $0.int64(at: 0) }.reduce(0, +))
            }
            #expect(nested == [13, 23])
            #expect(connection.cachedStatementCount == 1)
        }
    }

    @Test("close finalizes cached statements and is idempotent")
    func close() throws {
        try withTemporaryDirectoryPath { directory in
            let connection = try Connection(path: directory + "/c.db")
            try connection.execute("CREATE TABLE t(v)")
            _ = try connection.cachedStatement("SELECT v FROM t")
            connection.close()
            #expect(!connection.isOpen)
            #expect(connection.cachedStatementCount == 0)
            connection.close()
        }
    }
}
