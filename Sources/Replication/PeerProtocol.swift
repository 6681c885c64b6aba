import KVCore
public import KVStore

/// The messages and header names of the node-to-node protocol under `/internal/`
/// (docs/protocol.md describes the exchange).
public enum PeerProtocol {
    /// Every internal request names its sender.
    public static let nodeHeader = "KV-Node"
    /// Push and feed requests carry the sender's epoch, so a batch from a former life of a
    /// replaced file is never mixed into the marks of the new one.
    public static let epochHeader = "KV-Epoch"
    /// On a feed reply: the sender's last assigned seq, so the puller knows whether more follows.
    public static let lastSeqHeader = "KV-Last-Seq"
    /// On a push whose batch reaches the end of the sender's feed, and on every feed reply: the
    /// sender's Lamport clock in the snapshot the batch was read from (docs/protocol.md).
    public static let clockHeader = "KV-Clock"
    /// Beside `KV-Clock`: what the sender held of other nodes' writes, as `A:120,B:7` (it held
    /// A's writes up to Lamport time 120 and B's up to 7). Also the `covered` parameter of a
    /// feed request, where it names what the requester holds.
    public static let coveredHeader = "KV-Covered"
    /// On a push: `own` for a batch of the sender's own writes (the own lane), absent or `feed`
    /// for a batch of its feed (docs/protocol.md, "Two lanes").
    public static let laneHeader = "KV-Lane"
    /// The content type of a binary feed batch (`FeedCodec`).
    public static let batchContentType = "application/x-converge-feed"

    public static let helloPath = "/internal/hello"
    public static let joinPath = "/internal/join"
    public static let pushPath = "/internal/push"
    public static let feedPath = "/internal/feed"
    /// `GET /internal/bucket?bucket=XX`: every row of one digest bucket, values included, as a
    /// feed batch (seqs numbered 1…n within the reply), for digest repair.
    public static let bucketPath = "/internal/bucket"

    /// `GET /internal/key?key=K`: this node's copy of one key, tombstone included, as a feed
    /// batch of zero or one row, for a read at several nodes (`?r=`).
    public static let keyPath = "/internal/key"
    /// `POST /internal/repair`: rows a read at several nodes found the receiver lacking, as a
    /// feed batch, applied by the merge rule (read repair). Answers `RepairReply`.
    public static let repairPath = "/internal/repair"

    /// Rows per batch, at most. Default 5 000.
    public static let defaultBatchRows = 5_000
    /// Bytes of keys and values per batch, at most (a batch holds at least one row). Default 4 MiB.
    public static let defaultBatchBytes = 4 << 20
}

extension PeerProtocol {
    /// Coverage as `KV-Covered` and `covered=` carry it: `A:120,B:7`; empty for none.
    public static func coverageText(_ coverage: [FeedExclusion]) -> String {
        coverage.map { "\($0.origin.rawValue):\($0.throughLamport)" }.joined(separator: ",")
    }

    /// Parses `coverageText`; nil or empty is none.
    public static func parseCoverage(_ text: String?) throws(PeerRequestError) -> [FeedExclusion] {
        guard let text, !text.isEmpty else { return [] }
        var coverage: [FeedExclusion] = []
        for item in text.split(separator: ",", omittingEmptySubsequences: false) {
            let parts = item.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count == 2, let origin = try? NodeID(String(parts[0])), let lamport = Int64(parts[1]), lamport >= 0
            else {
                throw .malformed("covered must list NODE:LAMPORT pairs separated by commas, as A:120,B:7")
            }
            coverage.append(FeedExclusion(origin: origin, throughLamport: lamport))
        }
        return coverage
    }
}

/// `POST /internal/hello`: the caller introduces itself.
public struct HelloRequest: Codable, Sendable, Equatable {
    public let id: String
    public let epoch: String
    /// The caller's last assigned seq.
    public let seq: Int64

    public init(id: String, epoch: String, seq: Int64) {
        self.id = id
        self.epoch = epoch
        self.seq = seq
    }
}

/// The answer to a hello: who the receiver is, and how far it has consumed the caller's feed.
public struct HelloReply: Codable, Sendable, Equatable {
    public let id: String
    public let epoch: String
    public let seq: Int64
    /// The receiver's mark of the caller's feed (`pulled_seq` on the receiver), after any reset
    /// the hello caused. The caller stores it as its `pushed_seq` for the receiver.
    public let pulledSeq: Int64

    public init(id: String, epoch: String, seq: Int64, pulledSeq: Int64) {
        self.id = id
        self.epoch = epoch
        self.seq = seq
        self.pulledSeq = pulledSeq
    }

    enum CodingKeys: String, CodingKey {
        case id, epoch, seq
        case pulledSeq = "pulled_seq"
    }
}

/// The answer to a push: the receiver's mark of the sender's feed after the batch.
public struct PushReply: Codable, Sendable, Equatable {
    public let pulledSeq: Int64
    /// Rows of the batch that won (changed the receiver's data).
    public let applied: Int
    /// True when the receiver did not look at the batch because it is catching up by pulling;
    /// the sender tries again later. Absent means false.
    public let deferred: Bool?
    /// What the receiver holds of each node's writes: node id → Lamport time (see
    /// `FeedExclusion`). The sender may leave those rows out of its next batches.
    public let covered: [String: Int64]?

    public init(pulledSeq: Int64, applied: Int, deferred: Bool? = nil, covered: [String: Int64]? = nil) {
        self.pulledSeq = pulledSeq
        self.applied = applied
        self.deferred = deferred
        self.covered = covered
    }

    enum CodingKeys: String, CodingKey {
        case pulledSeq = "pulled_seq"
        case applied, deferred, covered
    }
}

/// The answer to `POST /internal/repair`.
public struct RepairReply: Codable, Sendable, Equatable {
    /// Rows that were newer than the receiver's and were stored.
    public let applied: Int
    /// Rows refused for a Lamport time beyond what the receiver accepts.
    public let refused: Int

    public init(applied: Int, refused: Int) {
        self.applied = applied
        self.refused = refused
    }
}
