/// How a transaction takes its locks.
public enum TransactionKind: String, Sendable {
    /// Takes no lock until the first read or write (`BEGIN DEFERRED`); right for reads.
    case deferred = "DEFERRED"
    /// Takes the write lock at once (`BEGIN IMMEDIATE`), so a writer never fails half-way
    /// for want of it.
    case immediate = "IMMEDIATE"
    /// Like immediate; in WAL mode the same as immediate.
    case exclusive = "EXCLUSIVE"
}

extension Connection {
    /// Runs `body` in a transaction: commits when it returns, rolls back when it throws, and
    /// rethrows. If `COMMIT` fails the transaction is rolled back and that error is thrown.
    ///
    /// Transactions do not nest: calling this inside a transaction is a programmer error and
    /// traps; use `savepoint(_:_:)` for a scope inside a transaction.
    @discardableResult
    public func transaction<T>(_ kind: TransactionKind = .deferred, _ body: () throws -> T) throws -> T {
        precondition(!isInTransaction, "transactions do not nest; use savepoint(_:_:) inside one")
        try run("BEGIN \(kind.rawValue) TRANSACTION")
        let result: T
        do {
            result = try body()
        } catch {
            rollbackIfOpen()
            throw error
        }
        do {
            try run("COMMIT TRANSACTION")
        } catch {
            rollbackIfOpen()
            throw error
        }
        return result
    }

    /// Runs `body` inside `SAVEPOINT name`: releases it when `body` returns, rolls back to it
    /// (and releases it) when `body` throws, and rethrows. Inside a transaction, this undoes
    /// only the work of `body`; outside one, it behaves as a transaction.
    ///
    /// `name` must be an SQL identifier of letters, digits and `_`; anything else traps.
    @discardableResult
    public func savepoint<T>(_ name: String, _ body: () throws -> T) throws -> T {
        precondition(
            !name.isEmpty && name.utf8.allSatisfy { $0 == UInt8(ascii: "_") || $0.isASCIILetterOrDigit },
            "savepoint names are identifiers of letters, digits and '_': \(name)")
        try run("SAVEPOINT \(name)")
        let result: T
        do {
            result = try body()
        } catch {
            // A failed statement may already have rolled back the whole transaction (for
            // example on SQLITE_FULL); then there is no savepoint left to roll back to.
            if isInTransaction {
                _ = try? run("ROLLBACK TRANSACTION TO SAVEPOINT \(name)")
                _ = try? run("RELEASE SAVEPOINT \(name)")
            }
            throw error
        }
        try run("RELEASE SAVEPOINT \(name)")
        return result
    }

    /// Rolls back the open transaction, if there is one: for an owner recovering a connection
    /// that a failed `ROLLBACK` left inside a transaction.
    public func rollback() throws(SQLiteError) {
        // SQLite rolls back by itself on some errors; a second ROLLBACK would only fail.
        if isInTransaction { try run("ROLLBACK TRANSACTION") }
    }

    private func rollbackIfOpen() {
        // The error that caused the rollback is the one to report.
        _ = try? rollback()
    }
}

extension UInt8 {
    fileprivate var isASCIILetterOrDigit: Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(self)
            || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(self)
            || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(self)
    }
}
