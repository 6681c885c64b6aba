public import KVCore

/// How hard a commit pushes data to the disk (`PRAGMA synchronous`, in WAL mode).
public enum SyncMode: String, Sendable, CaseIterable {
    /// A commit reaches the operating system but is not flushed; a power loss can drop the
    /// last commits, never corrupt the file. The WAL is flushed at checkpoints.
    case normal
    /// Every commit is flushed (`fsync`) before it returns: durable across power loss, slower.
    case full

    var pragmaValue: String {
        switch self {
        case .normal: return "NORMAL"
        case .full: return "FULL"
        }
    }
}

/// Everything `KVStore.open` needs; every field but `path` and `nodeID` has a default.
public struct StoreConfiguration: Sendable {
    /// The SQLite file of this node. Its directory must exist and be writable (SQLite keeps
    /// `PATH-wal` and `PATH-shm` beside it). A missing or empty file becomes a new store.
    public var path: String
    /// The node this file belongs to; a file made by another node is refused.
    public var nodeID: NodeID
    /// Durability of commits. Default `.normal`: fast, and safe against process crashes.
    public var sync: SyncMode
    /// Read-only connections kept for reads beside the writer. Default 4; at least 1 is used.
    /// A read that finds all of them busy opens a temporary one rather than wait. 0 sends
    /// `get` and `list` through the writer's queue instead, behind the writes: only to measure
    /// what the pool buys.
    public var readConnections: Int
    /// Whether the writer commits every waiting request in one transaction. Default `true`;
    /// `false` gives one transaction per request (the baseline of the benchmark).
    public var groupCommit: Bool
    /// The most requests one group commit takes. Default 1024; at least 1 is used.
    public var maxGroupSize: Int
    /// The read cache in front of the read connections (`ReadCache`): at most this many bytes,
    /// counted as key and value bytes plus 192 per row. Default 16 MiB; 0 turns it off. Off
    /// when `readConnections` is 0.
    public var readCacheBytes: Int = 16 << 20
    /// How long a connection waits for a lock held by another process before failing.
    /// Default 5000 ms.
    public var busyTimeoutMilliseconds: Int
    /// A quota on the database file, in bytes (`PRAGMA max_page_count`); nil (default) for
    /// none. A write that would grow the file past it fails as `.diskFull`, exactly as a full
    /// disk does, and reads go on.
    public var maxDatabaseBytes: Int? = nil
    /// Fault injection, for crash tests only; nil (default) in every real run. When set and the
    /// file needs migrations, start-up stops inside the migration transaction, after the last
    /// migration's SQL has run and before the commit, creates a file at this path and waits there
    /// (at most 60 s, then goes on), so that a test can `kill -9` the process at exactly that
    /// point. `kvnode` takes it from `$KVNODE_FAULT_HOLD_IN_MIGRATION`.
    public var holdInMigrationMarker: String? = nil
    /// SQLite settings run on every connection after the store's own, to choose them by
    /// measurement (docs/performance.md, "SQLite settings"): each `name=value`, such as
    /// `cache_size=-16000`. Empty (default) in every real run; `kvnode` takes them from
    /// `$KVNODE_SQLITE_PRAGMAS`, separated by `;`. See `SQLitePragma` for what is accepted.
    public var extraPragmas: [SQLitePragma] = []
    /// Makes the epoch of a new file and of a renewal. Nil (default): a random 128-bit id. The
    /// simulator sets a counter so that a run replays bit for bit from its seed.
    public var epochSource: (@Sendable () -> String)? = nil

    public init(
        path: String,
        nodeID: NodeID,
        sync: SyncMode = .normal,
        readConnections: Int = 4,
        groupCommit: Bool = true,
        maxGroupSize: Int = 1024,
        busyTimeoutMilliseconds: Int = 5000
    ) {
        self.path = path
        self.nodeID = nodeID
        self.sync = sync
        self.readConnections = readConnections
        self.groupCommit = groupCommit
        self.maxGroupSize = maxGroupSize
        self.busyTimeoutMilliseconds = busyTimeoutMilliseconds
    }
}
