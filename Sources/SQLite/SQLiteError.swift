import CSQLite

/// A result code of SQLite, primary (`SQLITE_BUSY`) or extended (`SQLITE_CONSTRAINT_PRIMARYKEY`).
///
/// The named constants are the primary codes callers decide on; any other value can be built
/// from its raw value.
public struct ResultCode: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: Int32

    public init(rawValue: Int32) {
        self.rawValue = rawValue
    }

    /// The primary code of an extended code (its low byte); a primary code is its own primary.
    public var primary: ResultCode { ResultCode(rawValue: rawValue & 0xFF) }

    public static let error = ResultCode(rawValue: SQLITE_ERROR)
    public static let busy = ResultCode(rawValue: SQLITE_BUSY)
    public static let locked = ResultCode(rawValue: SQLITE_LOCKED)
    public static let readOnly = ResultCode(rawValue: SQLITE_READONLY)
    public static let ioError = ResultCode(rawValue: SQLITE_IOERR)
    public static let corrupt = ResultCode(rawValue: SQLITE_CORRUPT)
    public static let full = ResultCode(rawValue: SQLITE_FULL)
    public static let cantOpen = ResultCode(rawValue: SQLITE_CANTOPEN)
    public static let constraint = ResultCode(rawValue: SQLITE_CONSTRAINT)
    public static let misuse = ResultCode(rawValue: SQLITE_MISUSE)
    public static let notADatabase = ResultCode(rawValue: SQLITE_NOTADB)

    /// SQLite's English name for the code, such as "database is locked".
    public var description: String {
        String(cString: sqlite3_errstr(rawValue))
    }
}

/// An error reported by SQLite: its codes, its message and the SQL that failed.
///
/// Bound values are never part of the error, so logging it cannot leak user data.
public struct SQLiteError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The primary result code (`SQLITE_CONSTRAINT`).
    public let code: ResultCode
    /// The extended result code (`SQLITE_CONSTRAINT_UNIQUE`); equal to `code` when SQLite gave none.
    public let extendedCode: ResultCode
    /// SQLite's own message, such as `UNIQUE constraint failed: kv.seq`.
    public let message: String
    /// The SQL text being prepared or run, if any; never its bound values.
    public let sql: String?

    /// Builds an error from parts; SQLite itself is the usual source (see `Connection`).
    public init(code: ResultCode, extendedCode: ResultCode? = nil, message: String, sql: String? = nil) {
        self.code = code.primary
        self.extendedCode = extendedCode ?? code
        self.message = message
        self.sql = sql
    }

    /// Reads the codes and message SQLite keeps for `db` after a call that returned `result`.
    init(result: Int32, db: OpaquePointer?, sql: String?) {
        let extended = db.map { sqlite3_extended_errcode($0) } ?? result
        // The connection's last error may belong to an older call if `result` came from a
        // function that does not record it; trust the returned code and its generic text then.
        let matches = extended & 0xFF == result & 0xFF
        let message = matches ? db.flatMap { sqlite3_errmsg($0) }.map { String(cString: $0) } : nil
        self.init(
            code: ResultCode(rawValue: result),
            extendedCode: ResultCode(rawValue: matches ? extended : result),
            message: message ?? String(cString: sqlite3_errstr(result)),
            sql: sql)
    }

    /// Another connection held a lock for longer than the busy timeout.
    public var isBusy: Bool { code == .busy || code == .locked }
    /// The file is not an SQLite database (or is encrypted).
    public var isNotADatabase: Bool { code == .notADatabase }
    /// The database file is malformed.
    public var isCorrupt: Bool { code == .corrupt }
    /// The disk (or the quota) is full.
    public var isFull: Bool { code == .full }
    /// The connection or the file is read-only.
    public var isReadOnly: Bool { code == .readOnly }
    /// A `UNIQUE`, `CHECK`, `NOT NULL` or other constraint refused a row.
    public var isConstraintViolation: Bool { code == .constraint }

    public var description: String {
        var text = "SQLite error \(code.rawValue) (\(code))"
        if extendedCode != code { text += ", extended code \(extendedCode.rawValue)" }
        text += ": \(message)"
        if let sql { text += " — while running `\(sql)`" }
        return text
    }
}
