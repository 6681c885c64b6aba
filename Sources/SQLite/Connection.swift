import CSQLite

/// One connection to an SQLite database file.
///
/// A connection has exactly one owner at a time, who alone calls it: the class is opened with
/// `SQLITE_OPEN_NOMUTEX`, so SQLite itself does not serialize calls. It is
/// `@unchecked Sendable` only so that an owner can hand it to another owner (a writer thread
/// at start-up, a pool lending a reader to one task at a time); using it from two threads at
/// once is a data race. Statements it prepares never leave its owner.
///
/// `close()` finalizes the cached statements and closes the file; `deinit` does the same if
/// the owner forgot.
public final class Connection: @unchecked Sendable {
    /// How to open the file.
    public enum Mode: Sendable {
        /// Read and write; create the file if it does not exist.
        case readWriteCreate
        /// Read and write an existing file.
        case readWrite
        /// Read only; the connection can never write to the file.
        case readOnly

        var flags: Int32 {
            switch self {
            case .readWriteCreate: return SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE
            case .readWrite: return SQLITE_OPEN_READWRITE
            case .readOnly: return SQLITE_OPEN_READONLY
            }
        }
    }

    /// Once per process, before the first open initializes SQLite: no memory statistics (each
    /// allocation would take a process-wide mutex to count itself; a catch-up spent 4.6 % of
    /// its CPU in mutex calls, docs/performance.md).
    private static let processSetUp: Void = {
        _ = csqlite_disable_memory_statistics()
    }()

    /// The bytes SQLite says it has allocated: 0 while memory statistics are off, as
    /// `processSetUp` leaves them.
    public static var countedMemoryBytes: Int64 { sqlite3_memory_used() }

    /// The path the connection was opened with.
    public let path: String
    private var handle: OpaquePointer?
    private var cache: [String: Statement] = [:]
    /// Kept alive for SQLite's update hook, which holds only an unretained pointer to it.
    private var rowChangeCounter: RowChangeCounter?
    /// Kept alive for SQLite's WAL hook, likewise.
    private var walHook: WALHook?

    /// Opens `path`. Opening is lazy in SQLite: a file that is not a database is only detected
    /// by the first statement that reads it.
    public init(path: String, mode: Mode = .readWriteCreate) throws(SQLiteError) {
        _ = Self.processSetUp
        self.path = path
        var db: OpaquePointer?
        let result = sqlite3_open_v2(path, &db, mode.flags | SQLITE_OPEN_NOMUTEX, nil)
        guard result == SQLITE_OK, let db else {
            let error = SQLiteError(result: result, db: db, sql: nil)
            sqlite3_close_v2(db)
            throw error
        }
        sqlite3_extended_result_codes(db, 1)
        handle = db
    }

    deinit {
        close()
    }

    /// Finalizes every cached statement and closes the file. Idempotent. A statement
    /// prepared with `prepare(_:)` and still alive keeps SQLite's handle until it is released.
    public func close() {
        for statement in cache.values { statement.finalize() }
        cache.removeAll()
        if let handle { sqlite3_close_v2(handle) }
        handle = nil
    }

    /// Whether `close()` has not been called yet.
    public var isOpen: Bool { handle != nil }

    private var live: OpaquePointer {
        guard let handle else { preconditionFailure("SQLite connection to \(path) used after close()") }
        return handle
    }

    // MARK: Settings

    /// How long a statement waits for another connection's lock before failing with
    /// `SQLITE_BUSY`.
    public func setBusyTimeout(milliseconds: Int) {
        sqlite3_busy_timeout(live, Int32(clamping: milliseconds))
    }

    /// Switches the file to write-ahead logging, which lets readers run beside one writer, and
    /// returns the journal mode now in force (`"wal"`, or what SQLite kept, for example
    /// `"memory"` for an in-memory database).
    @discardableResult
    public func enableWAL() throws(SQLiteError) -> String {
        try textValue("PRAGMA journal_mode = WAL")?.lowercased() ?? ""
    }

    /// Counts, from now on, the rows that statements of this connection insert, update or
    /// delete in `table` (SQLite's update hook: rowid tables only, not the rows a trigger
    /// changes in other tables). The counter is read and reset by the connection's owner.
    public func countRowChanges(in table: String) -> RowChangeCounter {
        let counter = RowChangeCounter(table: table)
        rowChangeCounter = counter
        sqlite3_update_hook(
            live,
            { context, _, _, table, _ in
                guard let context, let table else { return }
                let counter = Unmanaged<RowChangeCounter>.fromOpaque(context).takeUnretainedValue()
                if counter.isCounted(table) { counter.rows += 1 }
            }, Unmanaged.passUnretained(counter).toOpaque())
        return counter
    }

    /// Calls `body` after every commit of this connection with the number of frames in the
    /// write-ahead log (SQLite's WAL hook). Replaces `PRAGMA wal_autocheckpoint`: SQLite no
    /// longer checkpoints by itself after commits of this connection; `body` decides.
    public func onWALCommit(_ body: @escaping (_ frames: Int) -> Void) {
        let hook = WALHook(body)
        walHook = hook
        sqlite3_wal_hook(
            live,
            { context, _, _, frames in
                if let context { Unmanaged<WALHook>.fromOpaque(context).takeUnretainedValue().body(Int(frames)) }
                return SQLITE_OK
            }, Unmanaged.passUnretained(hook).toOpaque())
    }

    /// Copies the write-ahead log's frames that no reader still needs into the database file
    /// (`SQLITE_CHECKPOINT_PASSIVE`: never waits for a lock, never blocks the writer); returns
    /// the frames in the log and how many of them are now in the file. Throws `SQLITE_BUSY`
    /// when another checkpoint runs.
    @discardableResult
    public func checkpointPassively() throws(SQLiteError) -> (frames: Int, checkpointed: Int) {
        var frames: Int32 = 0
        var checkpointed: Int32 = 0
        let result = sqlite3_wal_checkpoint_v2(live, nil, SQLITE_CHECKPOINT_PASSIVE, &frames, &checkpointed)
        guard result == SQLITE_OK else { throw SQLiteError(result: result, db: live, sql: "wal_checkpoint(PASSIVE)") }
        return (Int(frames), Int(checkpointed))
    }

    /// Whether a transaction is open (SQLite is not in autocommit mode).
    public var isInTransaction: Bool { sqlite3_get_autocommit(live) == 0 }

    /// The number of rows the last `INSERT`, `UPDATE` or `DELETE` changed.
    public var changes: Int { Int(sqlite3_changes64(live)) }

    /// The rowid of the last inserted row.
    public var lastInsertRowID: Int64 { sqlite3_last_insert_rowid(live) }

    // MARK: Statements

    /// Runs a script of one or more statements separated by `;`, without bindings. An error
    /// names the statement of the script that failed.
    public func execute(_ sql: String) throws(SQLiteError) {
        let db = live
        var failure: SQLiteError?
        sql.withCString { base in
            var next: UnsafePointer<CChar>? = base
            while let current = next, current.pointee != 0 {
                var statement: OpaquePointer?
                var tail: UnsafePointer<CChar>?
                let prepared = sqlite3_prepare_v2(db, current, -1, &statement, &tail)
                guard prepared == SQLITE_OK else {
                    // SQLite does not say where the failing statement ends: name the rest of
                    // the script, which starts with it.
                    failure = SQLiteError(result: prepared, db: db, sql: Self.trimmed(String(cString: current)))
                    return
                }
                next = tail
                // Only whitespace or a comment was left.
                guard let statement else { continue }
                defer { sqlite3_finalize(statement) }
                var result = sqlite3_step(statement)
                while result == SQLITE_ROW { result = sqlite3_step(statement) }
                guard result == SQLITE_DONE else {
                    failure = SQLiteError(result: result, db: db, sql: String(cString: sqlite3_sql(statement)))
                    return
                }
            }
        }
        if let failure { throw failure }
    }

    private static func trimmed(_ text: String) -> String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\n" || $0 == "\t" || $0 == "\r" }
        return String(text.drop(while: isSpace).reversed().drop(while: isSpace).reversed())
    }

    /// Prepares a statement that is not cached; it is finalized when released.
    public func prepare(_ sql: String) throws(SQLiteError) -> Statement {
        var statement: OpaquePointer?
        let result = sqlite3_prepare_v3(live, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &statement, nil)
        guard result == SQLITE_OK else { throw SQLiteError(result: result, db: live, sql: sql) }
        guard let statement else {
            throw SQLiteError(code: .misuse, message: "the SQL holds no statement", sql: sql)
        }
        return Statement(handle: statement, sql: sql)
    }

    /// The statement for `sql` from this connection's cache, prepared on first use, reset and
    /// with its bindings cleared. The cache lives until `close()`.
    public func cachedStatement(_ sql: String) throws(SQLiteError) -> Statement {
        if let statement = cache[sql] {
            statement.reset()
            statement.clearBindings()
            return statement
        }
        let statement = try prepare(sql)
        cache[sql] = statement
        return statement
    }

    /// The number of statements in the cache.
    public var cachedStatementCount: Int { cache.count }

    /// Lends the cached statement for `sql`, bound to `values`, to `body`; afterwards it is
    /// reset and its bindings cleared, on both paths. A nested use of the same SQL inside `body`
    /// gets its own statement.
    public func withStatement<T>(
        _ sql: String, _ values: [SQLiteValue] = [], _ body: (Statement) throws -> T
    ) throws -> T {
        let statement = try borrow(sql, values)
        defer { giveBack(statement) }
        return try body(statement)
    }

    /// Runs one statement that returns no rows to read (rows it does return are skipped) and
    /// returns the number of rows it changed.
    @discardableResult
    public func run(_ sql: String, _ values: [SQLiteValue] = []) throws(SQLiteError) -> Int {
        let statement = try borrow(sql, values)
        defer { giveBack(statement) }
        while try statement.step() {}
        return changes
    }

    /// Runs `statement`, one of this connection's that the caller keeps (from `cachedStatement`)
    /// so a hot path skips the cache's look-up by SQL text, bound to `values`; returns the
    /// number of rows it changed. The statement is reset and its bindings cleared afterwards.
    @discardableResult
    public func run(_ statement: Statement, _ values: [SQLiteValue]) throws(SQLiteError) -> Int {
        precondition(!statement.inUse, "a kept statement is run while a helper of the connection lends it out")
        defer {
            statement.reset()
            statement.clearBindings()
        }
        try statement.bind(values)
        while try statement.step() {}
        return changes
    }

    /// Runs a query and maps every row with `row`, which reads the current row's columns.
    public func rows<T>(
        _ sql: String, _ values: [SQLiteValue] = [], _ row: (Statement) throws -> T
    ) throws -> [T] {
        let statement = try borrow(sql, values)
        defer { giveBack(statement) }
        var result: [T] = []
        while try statement.step() { result.append(try row(statement)) }
        return result
    }

    /// Runs a query and maps its first row with `row`; nil when it returns no row.
    public func firstRow<T>(
        _ sql: String, _ values: [SQLiteValue] = [], _ row: (Statement) throws -> T
    ) throws -> T? {
        let statement = try borrow(sql, values)
        defer { giveBack(statement) }
        return try statement.step() ? try row(statement) : nil
    }

    /// The first column of the first row as text, for pragmas; nil when there is no row.
    public func textValue(_ sql: String) throws(SQLiteError) -> String? {
        let statement = try borrow(sql, [])
        defer { giveBack(statement) }
        return try statement.step() ? statement.text(at: 0) : nil
    }

    /// The cached statement for `sql` (or a fresh one if the cached one is lent out), marked as
    /// in use and bound to `values`. Pair with `giveBack`.
    private func borrow(_ sql: String, _ values: [SQLiteValue]) throws(SQLiteError) -> Statement {
        let statement: Statement
        if let cached = cache[sql], cached.inUse {
            statement = try prepare(sql)
        } else {
            statement = try cachedStatement(sql)
        }
        statement.inUse = true
        do {
            try statement.bind(values)
        } catch {
            giveBack(statement)
            throw error
        }
        return statement
    }

    private func giveBack(_ statement: Statement) {
        statement.reset()
        statement.clearBindings()
        statement.inUse = false
    }
}

/// The rows changed in one table of one connection since the owner last reset `rows`
/// (`Connection.countRowChanges(in:)`). Owned, like its connection, by one thread at a time.
public final class RowChangeCounter: @unchecked Sendable {
    let table: [CChar]
    /// Rows inserted, updated or deleted in the table.
    public var rows = 0

    init(table: String) {
        self.table = Array(table.utf8CString)
    }

    /// Whether SQLite's table name `name` is the counted table.
    func isCounted(_ name: UnsafePointer<CChar>) -> Bool {
        var index = 0
        while index < table.count {
            guard name[index] == table[index] else { return false }
            if table[index] == 0 { return true }
            index += 1
        }
        return false
    }
}

/// The closure `Connection.onWALCommit` keeps for SQLite's WAL hook.
private final class WALHook {
    let body: (Int) -> Void

    init(_ body: @escaping (Int) -> Void) {
        self.body = body
    }
}
