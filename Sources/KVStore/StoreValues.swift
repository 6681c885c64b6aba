public import KVCore

/// What a local `put` or `delete` wrote: the version it stamped and the feed position it took.
public struct WriteReceipt: Sendable, Equatable {
    public let key: String
    public let version: Version
    /// This node's change sequence number of the write.
    public let seq: Int64

    public init(key: String, version: Version, seq: Int64) {
        self.key = key
        self.version = version
        self.seq = seq
    }
}

/// A stored row, tombstones included, with its position in this node's change feed.
public struct StoredRecord: Sendable, Equatable {
    public let record: Record
    public let seq: Int64

    public init(record: Record, seq: Int64) {
        self.record = record
        self.seq = seq
    }
}

/// One live key of a listing: its version and the size of its value in bytes.
public struct KeyEntry: Sendable, Equatable {
    public let key: String
    public let version: Version
    public let size: Int

    public init(key: String, version: Version, size: Int) {
        self.key = key
        self.version = version
        self.size = size
    }
}

/// This node as its file describes it, read in one snapshot.
public struct NodeState: Sendable, Equatable {
    public let id: NodeID
    /// The random id made with the file; a new file means a new epoch.
    public let epoch: String
    /// The Lamport clock.
    public let lamport: Int64
    /// The last `seq` assigned; 0 if none yet.
    public let lastSeq: Int64
    /// Keys whose latest row is not a tombstone.
    public let liveKeys: Int64
    /// Keys whose latest row is a tombstone not purged yet.
    public let tombstones: Int64

    public init(id: NodeID, epoch: String, lamport: Int64, lastSeq: Int64, liveKeys: Int64, tombstones: Int64 = 0) {
        self.id = id
        self.epoch = epoch
        self.lamport = lamport
        self.lastSeq = lastSeq
        self.liveKeys = liveKeys
        self.tombstones = tombstones
    }
}

/// What `apply` did with a batch of remote rows.
public struct ApplyResult: Sendable, Equatable {
    /// Rows that won the merge and were stored with a fresh local `seq`.
    public let applied: Int
    /// Rows whose version was not greater than the stored one.
    public let ignored: Int
    /// Rows refused because their lamport is beyond what this node accepts
    /// (`LamportClock.accepts`); the rest of the batch was applied without them.
    public let refused: [Record]

    public init(applied: Int, ignored: Int, refused: [Record] = []) {
        self.applied = applied
        self.ignored = ignored
        self.refused = refused
    }
}

/// Counters of the writer since the store was opened, for tests, logs and metrics.
public struct StoreStatistics: Sendable, Equatable {
    /// Write transactions committed (a group commit counts once).
    public var transactions: Int = 0
    /// Write requests completed, successfully or not.
    public var requests: Int = 0
    /// The most requests one transaction carried.
    public var largestGroup: Int = 0
    /// Time spent in write transactions, from BEGIN to the end of COMMIT (or ROLLBACK).
    public var transactionTime: Duration = .zero

    public init() {}
}
