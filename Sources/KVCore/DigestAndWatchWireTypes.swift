/// STAND-IN until main's `digest and watch serve` lands: the bodies of `GET /digest`,
/// `GET /digest?bucket=XX`, `GET /watch` and `/status`'s `catch_up`, as the contract fixes them.
/// The server's own definitions (in `WireTypes.swift`) replace this file at the merge.

/// `GET /digest`: the node's data summarised as 256 bucket hashes.
public struct DigestReply: Codable, Hashable, Sendable {
    public struct Bucket: Codable, Hashable, Sendable {
        /// Two lowercase hex digits, "00" to "ff".
        public let bucket: String
        public let count: Int
        /// 16 lowercase hex digits.
        public let hash: String

        public init(bucket: String, count: Int, hash: String) {
            self.bucket = bucket
            self.count = count
            self.hash = hash
        }
    }

    public let buckets: [Bucket]
    /// One hash over all buckets: equal on two nodes exactly when their rows are equal.
    public let digest: String
    /// Live keys.
    public let keys: Int
    /// Rows, tombstones included.
    public let rows: Int

    public init(buckets: [Bucket], digest: String, keys: Int, rows: Int) {
        self.buckets = buckets
        self.digest = digest
        self.keys = keys
        self.rows = rows
    }
}

/// `GET /digest?bucket=XX`: the rows of one bucket, sorted by key.
public struct DigestBucketReply: Codable, Hashable, Sendable {
    public struct Row: Codable, Hashable, Sendable {
        public let key: String
        public let lamport: Int64
        public let origin: String
        public let deleted: Bool
        /// 16 lowercase hex digits.
        public let valueHash: String

        public init(key: String, lamport: Int64, origin: String, deleted: Bool, valueHash: String) {
            self.key = key
            self.lamport = lamport
            self.origin = origin
            self.deleted = deleted
            self.valueHash = valueHash
        }

        enum CodingKeys: String, CodingKey {
            case key, lamport, origin, deleted
            case valueHash = "value_hash"
        }
    }

    public let bucket: String
    public let rows: [Row]

    public init(bucket: String, rows: [Row]) {
        self.bucket = bucket
        self.rows = rows
    }
}

/// The `data:` of one `GET /watch` event: a change to a key, in the node's seq order.
public struct WatchEvent: Codable, Hashable, Sendable {
    public let key: String
    /// The value in base64, or null when the change is a delete.
    public let value: String?
    public let deleted: Bool
    public let lamport: Int64
    public let origin: String
    public let seq: Int64

    public init(key: String, value: String?, deleted: Bool, lamport: Int64, origin: String, seq: Int64) {
        self.key = key
        self.value = value
        self.deleted = deleted
        self.lamport = lamport
        self.origin = origin
        self.seq = seq
    }
}

/// The `data:` of the `overflow` event that ends a watch that fell too far behind.
public struct WatchOverflow: Codable, Hashable, Sendable {
    /// Pass as `after` to resume without missing a change.
    public let resumeAfter: Int64

    public init(resumeAfter: Int64) {
        self.resumeAfter = resumeAfter
    }

    enum CodingKeys: String, CodingKey {
        case resumeAfter = "resume_after"
    }
}

/// `/status` while a node catches up: how far it is.
public struct CatchUpProgress: Codable, Hashable, Sendable {
    public let rowsDone: Int64
    public let rowsToGo: Int64
    public let rowsPerSecond: Double

    public init(rowsDone: Int64, rowsToGo: Int64, rowsPerSecond: Double) {
        self.rowsDone = rowsDone
        self.rowsToGo = rowsToGo
        self.rowsPerSecond = rowsPerSecond
    }

    enum CodingKeys: String, CodingKey {
        case rowsDone = "rows_done"
        case rowsToGo = "rows_to_go"
        case rowsPerSecond = "rows_per_second"
    }
}
