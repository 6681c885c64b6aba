public import KVCore
public import Logging

/// A node's replicated key-value store: one SQLite file in WAL mode (DESIGN.md §1–§3).
///
/// Writes go to a single writer thread that commits them in groups (see `Writer`); reads run
/// on the calling task on pooled read-only connections and never wait for a write (see
/// `ReadPool`). Every error thrown is a `StoreError`. After `close()`, every call throws
/// `StoreError.closed`.
public final class KVStore: Sendable {
    public let configuration: StoreConfiguration
    let writer: Writer
    let readers: ReadPool
    let cache: ReadCache
    let checkpointer: Checkpointer
    private let broadcaster: CommitBroadcaster
    private let logger: Logger

    private init(
        configuration: StoreConfiguration, writer: Writer, readers: ReadPool, cache: ReadCache,
        checkpointer: Checkpointer, broadcaster: CommitBroadcaster, logger: Logger
    ) {
        self.checkpointer = checkpointer
        self.configuration = configuration
        self.writer = writer
        self.readers = readers
        self.cache = cache
        self.broadcaster = broadcaster
        self.logger = logger
    }

    deinit {
        // If `close()` was never called: the writer thread finishes what is queued and ends,
        // and subscribers see their streams end. No request can be in flight, since a caller
        // awaiting one holds the store.
        writer.requestStop()
        checkpointer.requestStop()
        broadcaster.finish()
    }

    /// Opens the file at `configuration.path`, making a new store if it is missing or empty.
    ///
    /// Refuses, leaving the file untouched, a file that is not an SQLite database, is corrupt,
    /// belongs to another program, has a newer schema than this binary, or was made by
    /// another node. Otherwise sets WAL and `synchronous`, applies the missing migrations in
    /// one transaction, and makes the node row (id, random epoch, clock 0, next seq 1) if the
    /// file is new; the clock and next seq of an existing file are resumed.
    public static func open(_ configuration: StoreConfiguration, logger: Logger) async throws -> KVStore {
        let path = configuration.path
        try StoreFile.preflight(path: path)
        let broadcaster = CommitBroadcaster()
        let cache = ReadCache(capacityBytes: configuration.readConnections == 0 ? 0 : configuration.readCacheBytes)
        let checkpointer = Checkpointer(
            path: path, busyTimeoutMilliseconds: configuration.busyTimeoutMilliseconds, logger: logger)
        let (writer, node) = try await Writer.start(
            configuration: configuration, broadcaster: broadcaster, cache: cache, checkpointer: checkpointer,
            logger: logger)
        checkpointer.start()
        let readers: ReadPool
        do {
            readers = try ReadPool(
                path: path, capacity: configuration.readConnections,
                busyTimeout: configuration.busyTimeoutMilliseconds, pragmas: configuration.extraPragmas)
        } catch {
            await writer.stop()
            await checkpointer.stop()
            throw StoreError(error, path: path)
        }
        if cache.isEnabled { buildKeyFilter(cache.keys, readers: readers, path: path, logger: logger) }
        logger.info(
            "opened store",
            metadata: [
                "path": "\(path)", "node": "\(node.id)", "epoch": "\(node.epoch)",
                "lamport": "\(node.lamport)", "last_seq": "\(node.nextSeq - 1)",
            ])
        return KVStore(
            configuration: configuration, writer: writer, readers: readers, cache: cache, checkpointer: checkpointer,
            broadcaster: broadcaster, logger: logger)
    }

    // MARK: Writes

    /// Stores `value` under `key` with a new version of this node and the next `seq`; every
    /// put makes a new version, even of the same value. Throws `.invalidKey` for a key that
    /// breaks `KeyRules`.
    /// With `expiresAt` (milliseconds since the epoch) the value reads as absent from then on.
    public func put(key: String, value: [UInt8], expiresAt: Int64? = nil) async throws -> WriteReceipt {
        try await writer.submit(oneStatement: true) { try $0.writeLocal(key: key, value: value, expiresAt: expiresAt) }
    }

    /// Writes a tombstone for `key`, whether or not this node has seen the key: a delete must
    /// win over a put this node has not received yet.
    public func delete(key: String) async throws -> WriteReceipt {
        try await writer.submit(oneStatement: true) { try $0.writeLocal(key: key, value: nil) }
    }

    /// `put(key:value:)` for callers that are not tasks: `completion` runs on the writer
    /// thread once the write committed, so it must hand its result on and return quickly.
    public func put(
        key: String, value: [UInt8], expiresAt: Int64? = nil,
        completion: @escaping @Sendable (Result<WriteReceipt, StoreError>) -> Void
    ) {
        writer.submit(
            oneStatement: true, { try $0.writeLocal(key: key, value: value, expiresAt: expiresAt) }, completion: completion)
    }

    /// `delete(key:)` for callers that are not tasks; `completion` runs as for `put`.
    public func delete(key: String, completion: @escaping @Sendable (Result<WriteReceipt, StoreError>) -> Void) {
        writer.submit(oneStatement: true, { try $0.writeLocal(key: key, value: nil) }, completion: completion)
    }

    /// Merges rows from other nodes, all or nothing: if any record is invalid (a key breaking
    /// `KeyRules`, a lamport below 1) it throws `.invalidRecord` and nothing changes, not even
    /// the clock. Otherwise the clock observes every record, and each record whose version is
    /// greater than the stored one replaces it with a fresh local `seq`.
    ///
    /// To commit a batch together with a replication mark, run `WriteSession.apply` and the
    /// mark's update in one `writer.submit`: the request is one savepoint of one transaction.
    public func apply(_ records: [Record]) async throws -> ApplyResult {
        try await writer.submit { try $0.apply(records) }
    }

    /// Adds peers and updates the URL of known ones; the marks and epochs of known peers stay,
    /// and peers not listed are kept.
    public func configurePeers(_ peers: [PeerConfig]) async throws {
        try await writer.submit { try $0.upsertPeers(peers) }
    }

    // MARK: Reads

    /// `readConnections == 0`: client reads queue behind the writes, the baseline that shows
    /// what the pool buys.
    private var readsThroughWriter: Bool { configuration.readConnections == 0 }

    /// The stored row of `key`, tombstone included; nil if this node never saw the key. An
    /// expired row is there with its value (`Record.value(at:)` hides it): readers decide.
    public func get(key: String) async throws -> StoredRecord? {
        if readsThroughWriter { return try await writer.submit { try $0.connection.record(forKey: key) } }
        return try cachedRead(key)
    }

    /// A point read through the read cache: a hit answers without SQLite; a miss reads with a
    /// pooled connection and keeps the row unless a commit touched its stripe meanwhile.
    private func cachedRead(_ key: String) throws(StoreError) -> StoredRecord? {
        if let hit = cache.row(key) { return hit }
        guard cache.keys.mayContain(key) else { return nil }
        let ticket = cache.ticket(for: key)
        let row = try readers.read { try $0.record(forKey: key) }
        if let row { cache.fill(row, ticket: ticket) }
        return row
    }

    /// `get(key:)` for callers that are not tasks. With the read pool (the default) the read
    /// runs on the calling thread and `completion` is called before this returns: a point read
    /// takes microseconds, less than a hop to another thread. With `readConnections == 0` it
    /// queues behind the writes and `completion` runs on the writer thread.
    public func get(key: String, completion: @escaping @Sendable (Result<StoredRecord?, StoreError>) -> Void) {
        if readsThroughWriter {
            writer.submit({ try $0.connection.record(forKey: key) }, completion: completion)
            return
        }
        completion(Result { () throws(StoreError) in try cachedRead(key) })
    }

    /// Live keys (tombstones hidden) that start with `prefix` and are greater than `after`,
    /// in byte order, at most `limit` (none if `limit` < 1). Pass the last key as `after` for
    /// the next page.
    /// Expired keys are left out.
    public func list(prefix: String, after: String?, limit: Int) async throws -> [KeyEntry] {
        let now = ExpiryClock.nowMilliseconds()
        if readsThroughWriter {
            return try await writer.submit { try $0.connection.liveKeys(prefix: prefix, after: after, limit: limit, now: now) }
        }
        return try readers.read { try $0.liveKeys(prefix: prefix, after: after, limit: limit, now: now) }
    }

    /// This node's change feed: rows with `seq > after` in `seq` order, tombstones included,
    /// at most `limit`.
    public func changes(after seq: Int64, limit: Int) async throws -> [StoredRecord] {
        try readers.read { try $0.feed(after: seq, limit: limit) }
    }

    /// The node row and the counts of live keys and tombstones, from one snapshot. Reads
    /// counters kept with every write (migration 0003), never the rows: O(1) in the keys.
    public func state() async throws -> NodeState {
        let path = configuration.path
        return try readers.read { try $0.nodeState(path: path) }
    }

    /// Every known peer with its marks, ordered by id.
    public func peers() async throws -> [PeerState] {
        try readers.read { try $0.peerStates() }
    }

    // MARK: Notifications and lifecycle

    /// A stream of the last `seq` after each commit that changed rows, keeping only the
    /// newest value; each call makes an independent stream. Subscribe before reading the feed,
    /// so a commit between the read and the subscription is not missed. The stream ends when
    /// the store closes.
    public func commits() -> AsyncStream<Int64> {
        broadcaster.subscribe()
    }

    /// Turns up to `limit` rows that have expired by now into tombstones of the same version
    /// (see `LocalTransaction`'s expiry rules in docs/resp.md), in one transaction; returns how
    /// many. The node's expiry sweep calls it; the tombstones are purged like any other.
    public func tombstoneExpired(limit: Int = 1000) async throws -> Int {
        let now = ExpiryClock.nowMilliseconds()
        return try await writer.submit { try $0.tombstoneExpired(now: now, limit: limit) }
    }

    /// Counters of the writer since `open`.
    public func statistics() -> StoreStatistics {
        writer.statistics()
    }

    /// Refuses new calls, lets the queued writes finish, closes every connection and ends the
    /// `commits()` streams. Idempotent.
    public func close() async {
        readers.close()
        cache.close()
        await writer.stop()
        await checkpointer.stop()
        broadcaster.finish()
        logger.debug("closed store", metadata: ["path": "\(configuration.path)"])
    }
}
