public import KVCore
public import KVStore

/// A push: a batch of this node's feed and the claims that go with it (docs/protocol.md).
///
/// `lane` says what the batch is. `.feed`: every row of `(from, to]` that the receiver lacks;
/// the receiver moves its mark of this node's feed to `to`. `.own`: only this node's own writes
/// in `(from, to]`; the receiver applies them without moving its mark, and checks that `from`
/// continues the own rows it was sent since it last greeted this node.
public struct PushRequest: Sendable, Equatable {
    public enum Lane: String, Sendable, Equatable {
        case own, feed
    }

    public var lane: Lane
    /// This node's epoch when the batch was read (the receiver refuses another).
    public var epoch: String
    public var batch: FeedBatch
    /// This node's Lamport clock in the snapshot of the batch, sent when the batch reaches
    /// the end of the feed: the receiver then holds every write of this node up to it.
    public var clock: Int64?
    /// What this node held of other nodes' writes in that snapshot (`.feed` lane only).
    public var coverage: [FeedExclusion]

    public init(lane: Lane, epoch: String, batch: FeedBatch, clock: Int64? = nil, coverage: [FeedExclusion] = []) {
        self.lane = lane
        self.epoch = epoch
        self.batch = batch
        self.clock = clock
        self.coverage = coverage
    }

    /// An empty batch at `mark`: asks the receiver what it now holds, changes nothing.
    public static func probe(epoch: String, at mark: Int64) -> PushRequest {
        PushRequest(lane: .feed, epoch: epoch, batch: FeedBatch(from: mark, to: mark, rows: []))
    }
}

/// How a peer answered a push.
public enum PushAnswer: Sendable, Equatable {
    /// Taken (or deferred: see `PushReply.deferred`).
    case accepted(PushReply)
    /// 409: the peer's marks and ours disagree (its file changed, it does not know our epoch,
    /// or the batch starts past its mark): greet again.
    case resynchronise(String)
}

/// One page of a peer's feed as a pull received it, with what the peer said beside it.
public struct FetchedFeed: Sendable, Equatable {
    public let batch: FeedBatch
    /// The peer's epoch when the page was read.
    public let epoch: String
    /// The peer's last seq: more follows when `batch.to` is below it.
    public let lastSeq: Int64
    /// The peer's clock in the page's snapshot; nil if it did not say.
    public let clock: Int64?
    /// What the peer held of other nodes' writes in that snapshot.
    public let coverage: [FeedExclusion]

    public init(batch: FeedBatch, epoch: String, lastSeq: Int64, clock: Int64?, coverage: [FeedExclusion]) {
        self.batch = batch
        self.epoch = epoch
        self.lastSeq = lastSeq
        self.clock = clock
        self.coverage = coverage
    }

    /// Whether this page reaches the end of the peer's feed.
    public var isLast: Bool { batch.to >= lastSeq }
}

/// Which rows of this node's feed a page for a peer holds: those after `after`, leaving out
/// what the peer has (`KVStore.feed(for:after:maxRows:maxBytes:receiverHolds:)`).
public struct PageRequest: Sendable, Equatable {
    public let after: Int64
    /// What the peer said it holds: those rows are left out.
    public let receiverHolds: [FeedExclusion]

    public init(after: Int64, receiverHolds: [FeedExclusion]) {
        self.after = after
        self.receiverHolds = receiverHolds
    }
}

/// Something a peer session asks its driver to do. Network actions go to the peer through a
/// `PeerTransport` (`hello`, `push` on the push connection; `fetchFeed`, `fetchDigest`,
/// `fetchBucket` on the pull connection); the others are reads and writes of this node's store.
/// Each one is answered by exactly one `PeerResult`, except `persistPushedSeq`, which is
/// answered only when it fails.
public enum PeerAction: Sendable, Equatable {
    case hello(HelloRequest)
    case push(PushRequest)
    /// The peer's feed after `after`, leaving out what this node holds.
    case fetchFeed(after: Int64, limit: Int)
    case fetchDigest
    case fetchBucket(Int)
    /// Record the epoch the peer announced (`KVStore.notePeerEpoch`).
    case notePeerEpoch(String)
    /// Read this node's feed position.
    case readPosition
    /// Read a page of this node's feed for the peer.
    case readPage(PageRequest)
    /// Apply a pulled page with its mark; `claim`: it reached the end of the feed, so the
    /// peer's clock and coverage are recorded as held here.
    case applyPulled(FetchedFeed, claim: Bool)
    /// Merge the rows of a digest bucket, except tombstones of keys this node does not hold.
    case applyRepair(FeedBatch)
    /// Store the peer's acknowledged mark of this node's feed.
    case persistPushedSeq(Int64)

    /// Whether the action talks to the peer (else it is local to this node).
    public var isNetwork: Bool {
        switch self {
        case .hello, .push, .fetchFeed, .fetchDigest, .fetchBucket: return true
        case .notePeerEpoch, .readPosition, .readPage, .applyPulled, .applyRepair, .persistPushedSeq: return false
        }
    }
}

/// What came of a `PeerAction`.
public enum PeerResult: Sendable, Equatable {
    case failed(PeerFailure)
    case helloReplied(HelloReply)
    case pushAnswered(PushAnswer)
    case feedFetched(FetchedFeed)
    case digestFetched(DigestReply)
    case bucketFetched(FeedBatch)
    case peerEpochNoted(previous: String?)
    case positionRead(FeedPosition)
    case pageRead(FeedPage)
    case pulledApplied(PeerApplyResult)
    /// A pulled page started past this node's mark (a feed gap): greet and pull again.
    case pulledGap
    case repaired(applied: Int, received: Int, refused: [Record])
    /// The mark was stored (`persistPushedSeq`).
    case persisted
}

/// Why an action failed, as one line for logs and `/status`.
public struct PeerFailure: Error, Sendable, Equatable, CustomStringConvertible {
    public let description: String
    /// The peer refused with 409 (greet again), as opposed to being unreachable or failing.
    public let asksForHello: Bool

    public init(_ description: String, asksForHello: Bool = false) {
        self.description = description
        self.asksForHello = asksForHello
    }
}
