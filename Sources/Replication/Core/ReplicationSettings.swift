/// The timing rules of replication, as the pure core (`ReplicationCore`, `PeerSession`) reads
/// them. Every default is the production one; the simulator and the tests shorten them.
public struct ReplicationSettings: Sendable, Equatable {
    /// Retry pacing for a peer that fails. Default 100 ms doubling to 5 s, with jitter.
    public var backoff = Backoff()
    /// How long a session waits before asking again when the peer deferred its push (the peer
    /// is pulling this node's feed in its start-up catch-up). Default 200 ms.
    public var deferredPushPause: Duration = .milliseconds(200)
    /// How long after a commit the feed lane forwards what the peer still lacks (docs/protocol.md,
    /// "Two lanes"): by then the writers' own pushes have reached the peer and its coverage
    /// says so, so only what they could not deliver is forwarded. Default 1 s.
    public var forwardDelay: Duration = .seconds(1)
    /// Whether a node pushes its own writes at once on the own lane (docs/protocol.md, "Two
    /// lanes"). Default true. False runs the single lane of before: every commit sends the feed
    /// past the mark after `forwardDelay` (2 ms then), asking first only when the batch holds no
    /// own write, and anti-entropy pulls every round. Kept only so that `kvsim --before` can
    /// measure what the two lanes bought.
    public var ownLane = true
    /// How often a round of anti-entropy (pull past the marks, digest repair, tombstone purge)
    /// runs. Default 10 s.
    public var antiEntropyInterval: Duration = .seconds(10)
    /// How often the peer's acknowledged mark of this node's feed is written to the `peers`
    /// table while pushes advance it. Default 1 s (a lost update only costs a resend).
    public var persistInterval: Duration = .seconds(1)
    /// Rows a pull asks for per page. Default 5 000.
    public var batchRows: Int = PeerProtocol.defaultBatchRows
    /// How often a long pull logs its progress. Default 2 s.
    public var progressInterval: Duration = .seconds(2)

    public init() {}
}
