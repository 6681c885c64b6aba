import Testing

import SQLite

@Suite("Binding and reading values")
struct BindingTests {
    /// Stores `value` in an untyped column and reads it back in its own storage class.
    private func roundTrip(_ value: SQLiteValue, in connection: Connection) throws -> SQLiteValue {
        try connection.run("DELETE FROM t")
        try connection.run("INSERT INTO t(v) VALUES (?)", [value])
        let read = try connection.firstRow("SELECT v FROM t") { $0.value(at: 0) }
        return try #require(read)
    }

    @Test("every storage class round-trips unchanged")
    func everyType() throws {
        try withConnection { connection in
            try connection.execute("CREATE TABLE t(v)")
            let values: [SQLiteValue] = [
                .integer(0), .integer(-1), .integer(Int64.min), .integer(Int64.max),
                .double(0), .double(-0.5), .double(1.0e300), .double(-Double.greatestFiniteMagnitude),
                .double(Double.leastNonzeroMagnitude), .double(.infinity),
                .text(""), .text("plain"), .text("ünïcödé ✓ 日本語 🧪"), .text("a\u{0}b"),
                .blob([]), .blob([0]), .blob([0, 0, 0]), .blob(Array(0...255)),
                .null,
            ]
            for value in values {
                #expect(try roundTrip(value, in: connection) == value, "\(value)")
            }
        }
    }

    @Test("an empty blob is a blob, not NULL, and an empty text is text")
    func emptyIsNotNull() throws {
        try withConnection { connection in
            try connection.execute("CREATE TABLE t(v)")
            for value in [SQLiteValue.blob([]), .text("")] {
                try connection.run("DELETE FROM t")
                try connection.run("INSERT INTO t(v) VALUES (?)", [value])
                let type = try connection.firstRow("SELECT typeof(v), v IS NULL FROM t") {
                    ($0.text(at: 0), $0.int64(at: 1))
                }
                let (name, isNull) = try #require(type)
                #expect(name == (value == .blob([]) ? "blob" : "text"))
                #expect(isNull == 0)
            }
        }
    }

    @Test("typed readers return what was bound")
    func typedReaders() throws {
        try withConnection { connection in
            try connection.execute("CREATE TABLE t(i INTEGER, d REAL, s TEXT, b BLOB, n)")
            let allBytes = Array(UInt8(0)...UInt8(255))
            try connection.run(
                "INSERT INTO t VALUES (?, ?, ?, ?, ?)",
                [.integer(Int64.min), .double(3.25), .text("é\u{0}z"), .blob(allBytes), .null])
            let row = try connection.firstRow("SELECT i, d, s, b, n FROM t") { statement in
                (
                    statement.int64(at: 0), statement.double(at: 1), statement.text(at: 2),
                    statement.blob(at: 3), statement.isNull(at: 4), statement.isNull(at: 0)
                )
            }
            let (i, d, s, b, nIsNull, iIsNull) = try #require(row)
            #expect(i == Int64.min)
            #expect(d == 3.25)
            #expect(s == "é\u{0}z")
            #expect(b == allBytes)
            #expect(nIsNull)
            #expect(!iIsNull)
        }
    }

    @Test("a wrong number of values is refused with the SQL named")
    func wrongArity() throws {
        try withConnection { connection in
            try connection.execute("CREATE TABLE t(v)")
            let error = try #require(throws: SQLiteError.self) {
                try connection.run("INSERT INTO t(v) VALUES (?)", [.integer(1), .integer(2)])
            }
            #expect(error.sql == "INSERT INTO t(v) VALUES (?)")
        }
    }
}
