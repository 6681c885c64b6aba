/// The JSON bodies of the public HTTP API (DESIGN.md §4), shared by the server that writes them
/// and the client that reads them. Field names are part of the contract; do not rename them.

/// The reply to `PUT /kv/{key}` and `DELETE /kv/{key}`: the version the write was given.
public struct WriteReply: Codable, Hashable, Sendable {
    public let key: String
    public let lamport: Int64
    public let origin: String
    /// With `?w=` above 1: the nodes that held the write durably when the node answered, this
    /// one first. Absent otherwise.
    public let ackedBy: [String]?

    public init(key: String, lamport: Int64, origin: String, ackedBy: [String]? = nil) {
        self.key = key
        self.lamport = lamport
        self.origin = origin
        self.ackedBy = ackedBy
    }

    enum CodingKeys: String, CodingKey {
        case key, lamport, origin
        case ackedBy = "acked_by"
    }
}

/// One live key in a `GET /kv` listing.
public struct ListedKey: Codable, Hashable, Sendable {
    public let key: String
    public let lamport: Int64
    public let origin: String
    /// The value's length in bytes.
    public let size: Int

    public init(key: String, lamport: Int64, origin: String, size: Int) {
        self.key = key
        self.lamport = lamport
        self.origin = origin
        self.size = size
    }
}

/// A page of `GET /kv`: keys in byte order, and `next` (the `after` of the following page, or
/// `null` on the last page — always present in the JSON).
public struct ListPage: Codable, Hashable, Sendable {
    public let keys: [ListedKey]
    public let next: String?

    public init(keys: [ListedKey], next: String?) {
        self.keys = keys
        self.next = next
    }

    enum CodingKeys: String, CodingKey { case keys, next }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(keys, forKey: .keys)
        try container.encode(next, forKey: .next)  // explicit null, not an omitted field
    }
}

/// What `GET /status` reports about one peer.
public struct PeerStatus: Codable, Hashable, Sendable {
    public let id: String
    public let url: String
    /// Whether the last exchange with the peer succeeded; `false` before any contact.
    public let reachable: Bool
    /// Wall-clock time (ISO 8601) since when `reachable` has had its current value; null before
    /// the first attempt.
    public let since: String?
    /// The peer's `seq` up to which this node has applied its feed.
    public let pulledSeq: Int64
    /// This node's `seq` up to which the peer has acknowledged.
    public let pushedSeq: Int64
    /// Rows of this node's feed the peer has not acknowledged yet.
    public let toPush: Int64
    /// The last failure talking to the peer, or null.
    public let lastError: String?
    /// Rows this node has pushed to the peer since it started.
    public let rowsSent: Int64
    /// Rows this node has received from the peer since it started, pushed by the peer or
    /// pulled from it.
    public let rowsReceived: Int64
    /// Rows from the peer refused since start because their lamport was beyond the accepted
    /// range (a peer with a broken or hostile clock); each refusal is also logged.
    public let rowsRefused: Int64

    public init(
        id: String, url: String, reachable: Bool, since: String?, pulledSeq: Int64,
        pushedSeq: Int64, toPush: Int64, lastError: String?, rowsSent: Int64 = 0, rowsReceived: Int64 = 0,
        rowsRefused: Int64 = 0
    ) {
        self.id = id
        self.url = url
        self.reachable = reachable
        self.since = since
        self.pulledSeq = pulledSeq
        self.pushedSeq = pushedSeq
        self.toPush = toPush
        self.lastError = lastError
        self.rowsSent = rowsSent
        self.rowsReceived = rowsReceived
        self.rowsRefused = rowsRefused
    }

    enum CodingKeys: String, CodingKey {
        case id, url, reachable, since
        case rowsSent = "rows_sent"
        case rowsReceived = "rows_received"
        case rowsRefused = "rows_refused"
        case pulledSeq = "pulled_seq"
        case pushedSeq = "pushed_seq"
        case toPush = "to_push"
        case lastError = "last_error"
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encode(url, forKey: .url)
        try container.encode(reachable, forKey: .reachable)
        try container.encode(since, forKey: .since)
        try container.encode(pulledSeq, forKey: .pulledSeq)
        try container.encode(pushedSeq, forKey: .pushedSeq)
        try container.encode(toPush, forKey: .toPush)
        try container.encode(lastError, forKey: .lastError)
        try container.encode(rowsSent, forKey: .rowsSent)
        try container.encode(rowsReceived, forKey: .rowsReceived)
        try container.encode(rowsRefused, forKey: .rowsRefused)
    }
}

/// The body of `GET /status`.
public struct NodeStatus: Codable, Hashable, Sendable {
    public let id: String
    public let epoch: String
    /// The node's Lamport clock.
    public let lamport: Int64
    /// The last `seq` this node assigned (0 for an empty node).
    public let seq: Int64
    /// Live (not deleted) keys stored on this node.
    public let keys: Int64
    /// True while the node pulls what it missed from its peers after a start.
    public let catchingUp: Bool
    /// Client writes (puts and deletes) this node accepted since it started.
    public let clientWrites: Int64
    /// Rows pushed to all peers per client write accepted here, since start; null before the
    /// first write. Each node forwards what it learns, so up to N−1 per write and peer.
    public let rowsSentPerWrite: Double?
    /// Progress of the catch-up while `catching_up` is true; null otherwise.
    public let catchUp: CatchUpProgress?
    public let peers: [PeerStatus]
    /// Every member with its state as this node sees it (`GET /members`); null from a node
    /// older than membership.
    public let members: [MemberInfo]?

    public init(
        id: String, epoch: String, lamport: Int64, seq: Int64, keys: Int64, catchingUp: Bool,
        clientWrites: Int64 = 0, rowsSentPerWrite: Double? = nil, catchUp: CatchUpProgress? = nil,
        peers: [PeerStatus], members: [MemberInfo]? = nil
    ) {
        self.members = members
        self.id = id
        self.epoch = epoch
        self.lamport = lamport
        self.seq = seq
        self.keys = keys
        self.catchingUp = catchingUp
        self.clientWrites = clientWrites
        self.rowsSentPerWrite = rowsSentPerWrite
        self.catchUp = catchUp
        self.peers = peers
    }

    enum CodingKeys: String, CodingKey {
        case id, epoch, lamport, seq, keys, peers, members
        case catchingUp = "catching_up"
        case clientWrites = "client_writes"
        case rowsSentPerWrite = "rows_sent_per_write"
        case catchUp = "catch_up"
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encode(epoch, forKey: .epoch)
        try container.encode(lamport, forKey: .lamport)
        try container.encode(seq, forKey: .seq)
        try container.encode(keys, forKey: .keys)
        try container.encode(catchingUp, forKey: .catchingUp)
        try container.encode(clientWrites, forKey: .clientWrites)
        try container.encode(rowsSentPerWrite, forKey: .rowsSentPerWrite)
        try container.encode(catchUp, forKey: .catchUp)
        try container.encode(peers, forKey: .peers)
        try container.encode(members, forKey: .members)
    }
}

/// The body of every error reply: `{"error": "...", "detail": "..."}`. `error` is a short,
/// stable code (`invalid_key`, `value_too_large`, `not_found`, …); `detail` is one sentence for
/// a human, with the cause and, where there is one, the fix.
public struct ErrorBody: Codable, Hashable, Sendable {
    public let error: String
    public let detail: String
    /// On `write_timeout` (504): the nodes that held the write when the node answered.
    public let ackedBy: [String]?
    /// On `read_timeout` (504): the nodes that answered the read in time.
    public let answeredBy: [String]?

    public init(error: String, detail: String, ackedBy: [String]? = nil, answeredBy: [String]? = nil) {
        self.error = error
        self.detail = detail
        self.ackedBy = ackedBy
        self.answeredBy = answeredBy
    }

    enum CodingKeys: String, CodingKey {
        case error, detail
        case ackedBy = "acked_by"
        case answeredBy = "answered_by"
    }
}

/// HTTP header names of the public API.
public enum HeaderName {
    /// On `GET /kv/{key}?r=` with r above 1: the nodes whose copies the answer was decided
    /// from, comma-separated, this node first.
    public static let answeredBy = "KV-Answered-By"
    /// On `GET /kv/{key}`: the Lamport time of the value returned.
    public static let lamport = "KV-Lamport"
    /// On `GET /kv/{key}`: the node that wrote the value returned.
    public static let origin = "KV-Origin"
    /// On `GET /kv/{key}` of a key with an expiry: when it expires, in milliseconds since the
    /// Unix epoch (UTC). Absent for a key that never expires.
    public static let expires = "KV-Expires"
}

/// `GET /digest`: the node's data summarised as 256 bucket hashes (`RowDigest`). Buckets hash
/// the live rows only: a tombstone and no row at all mean the same data (a purged tombstone
/// leaves no trace), so they must not make two nodes look different.
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
        /// 16 lowercase hex digits; that of an empty hash for a tombstone.
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

/// The `data:` of one `GET /watch` event: a change to a key, in this node's seq order.
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

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(key, forKey: .key)
        try container.encode(value, forKey: .value)  // explicit null for a delete
        try container.encode(deleted, forKey: .deleted)
        try container.encode(lamport, forKey: .lamport)
        try container.encode(origin, forKey: .origin)
        try container.encode(seq, forKey: .seq)
    }

    enum CodingKeys: String, CodingKey { case key, value, deleted, lamport, origin, seq }
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
    /// An upper bound: the seq distance left to the peers' last seqs.
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
