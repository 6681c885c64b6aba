/// The writer's transaction as `KVStore.transact` lends it: reads see the writes made before
/// them in the same transaction, and every write is a local write with a new version of this
/// node (so it is replicated like a `put` or `delete`).
///
/// Valid only inside the closure it is given to, on the writer thread: it must not be kept or
/// passed on. Every error it throws is a `StoreError`.
public final class LocalTransaction {
    private unowned let session: WriteSession

    init(session: WriteSession) {
        self.session = session
    }

    /// The stored row of `key`, tombstone included; nil if this node never saw the key.
    public func record(forKey key: String) throws -> StoredRecord? {
        try session.connection.record(forKey: key)
    }

    /// Stores `value` under `key` with a new version, as `KVStore.put` does; with `expiresAt`
    /// (milliseconds since the epoch) it reads as absent from then on. Changing only a key's
    /// expiry (EXPIRE, PERSIST) is this too: the value again, with a new version.
    @discardableResult
    public func put(key: String, value: [UInt8], expiresAt: Int64? = nil) throws -> WriteReceipt {
        try session.writeLocal(key: key, value: value, expiresAt: expiresAt)
    }

    /// Writes a tombstone for `key` with a new version, as `KVStore.delete` does.
    @discardableResult
    public func delete(key: String) throws -> WriteReceipt {
        try session.writeLocal(key: key, value: nil)
    }
}

extension KVStore {
    /// Runs `body` on the writer thread in one savepoint of a group-committed transaction:
    /// everything it writes commits together or not at all (a throw rolls back its writes
    /// alone), and `completion` gets its result on the writer thread once the transaction
    /// committed, so it must hand it on and return quickly. What the front ends build their
    /// read-modify-write commands from (Redis `SET … NX`, `GETSET`, `MSET`, `DEL k1 k2`), so
    /// the check and the write see the same row.
    ///
    /// `writesOnce`: the caller promises `body` writes at most once, as its last step, and
    /// throws only before it; such a body runs without a savepoint of its own (SQLite undoes a
    /// failing statement alone), as a plain put does: two statements fewer per write.
    public func transact<T: Sendable>(
        writesOnce: Bool = false,
        _ body: @escaping @Sendable (LocalTransaction) throws -> T,
        completion: @escaping @Sendable (Result<T, StoreError>) -> Void
    ) {
        writer.submit(oneStatement: writesOnce, { session in try body(LocalTransaction(session: session)) }, completion: completion)
    }

    /// `transact(_:completion:)` for tasks.
    public func transact<T: Sendable>(_ body: @escaping @Sendable (LocalTransaction) throws -> T) async throws -> T {
        try await writer.submit { session in try body(LocalTransaction(session: session)) }
    }
}
