import CSQLite

/// A prepared statement of one `Connection`.
///
/// A statement belongs to its connection's owner: it is not `Sendable`, and it must not be used
/// after the connection is closed (that is a programmer error and traps). Bind with
/// `bind(_:)`, step with `step()`, read the current row with the typed column readers, then
/// `reset()`. Most callers never see a `Statement` and use `Connection.run`, `rows` and
/// `firstRow`, which reset and clear bindings for them.
public final class Statement {
    /// The SQL text the statement was prepared from.
    public let sql: String
    private var handle: OpaquePointer?
    /// Set while a scoped helper of the connection is using this cached statement, so a nested
    /// use of the same SQL gets a fresh statement instead of corrupting the outer one.
    var inUse = false

    init(handle: OpaquePointer, sql: String) {
        self.handle = handle
        self.sql = sql
    }

    deinit {
        if let handle { sqlite3_finalize(handle) }
    }

    /// Releases SQLite's resources; later use traps. Called by the connection when it closes.
    func finalize() {
        if let handle { sqlite3_finalize(handle) }
        handle = nil
    }

    private var live: OpaquePointer {
        guard let handle else { preconditionFailure("statement used after its connection was closed: \(sql)") }
        return handle
    }

    private func error(_ result: Int32) -> SQLiteError {
        SQLiteError(result: result, db: sqlite3_db_handle(live), sql: sql)
    }

    // MARK: Binding

    /// The number of `?` parameters.
    public var parameterCount: Int { Int(sqlite3_bind_parameter_count(live)) }

    /// Binds `values` to parameters 1, 2, …; their count must equal `parameterCount`.
    public func bind(_ values: [SQLiteValue]) throws(SQLiteError) {
        guard values.count == parameterCount else {
            throw SQLiteError(
                code: .error,
                message: "\(values.count) values given for \(parameterCount) parameters", sql: sql)
        }
        for (offset, value) in values.enumerated() {
            try bind(value, at: offset + 1)
        }
    }

    /// Binds one value to the parameter at `index` (1-based). Text and blobs are copied.
    public func bind(_ value: SQLiteValue, at index: Int) throws(SQLiteError) {
        let position = Int32(index)
        let result: Int32
        switch value {
        case .integer(let number):
            result = sqlite3_bind_int64(live, position, number)
        case .double(let number):
            result = sqlite3_bind_double(live, position, number)
        case .text(let text):
            var text = text
            result = text.withUTF8 { buffer in
                // A nil base address would bind NULL; an empty string must stay text.
                guard let base = buffer.baseAddress, !buffer.isEmpty else {
                    return sqlite3_bind_text(live, position, "", 0, csqlite_transient())
                }
                return base.withMemoryRebound(to: CChar.self, capacity: buffer.count) { chars in
                    sqlite3_bind_text64(
                        live, position, chars, sqlite3_uint64(buffer.count), csqlite_transient(),
                        UInt8(SQLITE_UTF8))
                }
            }
        case .blob(let bytes):
            result = bytes.withUnsafeBytes { buffer in
                // A nil pointer would bind NULL; an empty blob must stay a blob.
                guard let base = buffer.baseAddress, !buffer.isEmpty else {
                    return sqlite3_bind_zeroblob(live, position, 0)
                }
                return sqlite3_bind_blob64(
                    live, position, base, sqlite3_uint64(buffer.count), csqlite_transient())
            }
        case .null:
            result = sqlite3_bind_null(live, position)
        }
        guard result == SQLITE_OK else { throw error(result) }
    }

    /// Sets every parameter back to NULL.
    public func clearBindings() {
        sqlite3_clear_bindings(live)
    }

    // MARK: Running

    /// Runs the statement to its next row: `true` when a row is ready to read, `false` when done.
    public func step() throws(SQLiteError) -> Bool {
        let result = sqlite3_step(live)
        switch result {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        default: throw error(result)
        }
    }

    /// Rewinds the statement so it can run again; bindings are kept. An error of the last step
    /// was already thrown by `step()`, so the one `sqlite3_reset` repeats is ignored.
    public func reset() {
        sqlite3_reset(live)
    }

    // MARK: Reading the current row

    /// The number of columns of a result row.
    public var columnCount: Int { Int(sqlite3_column_count(live)) }

    /// The name SQLite gives column `index` (0-based).
    public func columnName(at index: Int) -> String {
        sqlite3_column_name(live, Int32(index)).map { String(cString: $0) } ?? ""
    }

    /// Whether column `index` (0-based) of the current row is NULL.
    public func isNull(at index: Int) -> Bool {
        sqlite3_column_type(live, Int32(index)) == SQLITE_NULL
    }

    /// Column `index` as an integer, converted by SQLite's rules (NULL is 0).
    public func int64(at index: Int) -> Int64 {
        sqlite3_column_int64(live, Int32(index))
    }

    /// Column `index` as a double, converted by SQLite's rules (NULL is 0).
    public func double(at index: Int) -> Double {
        sqlite3_column_double(live, Int32(index))
    }

    /// Column `index` as text (NULL is ""). Bytes that are not valid UTF-8 are replaced by
    /// U+FFFD; compare `blob(at:)` when the exact bytes matter.
    public func text(at index: Int) -> String {
        let position = Int32(index)
        guard let chars = sqlite3_column_text(live, position) else { return "" }
        let count = Int(sqlite3_column_bytes(live, position))
        return String(decoding: UnsafeBufferPointer(start: chars, count: count), as: UTF8.self)
    }

    /// Column `index` as bytes (NULL and an empty blob are both []; see `isNull(at:)`).
    public func blob(at index: Int) -> [UInt8] {
        let position = Int32(index)
        guard let bytes = sqlite3_column_blob(live, position) else { return [] }
        let count = Int(sqlite3_column_bytes(live, position))
        return Array(UnsafeRawBufferPointer(start: bytes, count: count))
    }

    /// Column `index` in its own storage class.
    public func value(at index: Int) -> SQLiteValue {
        switch sqlite3_column_type(live, Int32(index)) {
        case SQLITE_INTEGER: return .integer(int64(at: index))
        case SQLITE_FLOAT: return .double(double(at: index))
        case SQLITE_TEXT: return .text(text(at: index))
        case SQLITE_BLOB: return .blob(blob(at: index))
        default: return .null
        }
    }
}
