
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
    /// The content type of a binary feed batch (`FeedCodec`).
    public static let batchContentType = "application/x-converge-feed"

    public static let helloPath = "/internal/hello"
    public static let pushPath = "/internal/push"
    public static let feedPath = "/internal/feed"
    /// `GET /internal/bucket?bucket=XX`: every row of one digest bucket, values included, as a
    /// feed batch (seqs numbered 1…n within the reply), for digest repair.
    public static let bucketPath = "/internal/bucket"

    /// Rows per batch, at most. Default 5 000.
    public static let defaultBatchRows = 5_000
    /// Bytes of keys and values per batch, at most (a batch holds at least one row). Default 4 MiB.
    public static let defaultBatchBytes = 4 << 20
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

    public init(pulledSeq: Int64, applied: Int) {
        self.pulledSeq = pulledSeq
        self.applied = applied
    }

    enum CodingKeys: String, CodingKey {
        case pulledSeq = "pulled_seq"
        case applied
    }
}
