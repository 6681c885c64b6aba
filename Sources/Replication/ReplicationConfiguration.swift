public import KVCore
public import KVStore
public import NodeHTTP

/// How a node replicates: with whom, how often it checks, how big its batches are.
public struct ReplicationConfiguration: Sendable {
    /// This node.
    public var identity: NodeID
    /// The other nodes.
    public var peers: [PeerConfig]
    /// The shared secret every internal request carries as `Authorization: Bearer …`; `nil`
    /// (default) runs an open cluster, fit only for loopback and trusted networks.
    public var clusterToken: String?
    /// How often every peer's feed is pulled past the mark, to repair what a push missed.
    /// Default 10 s.
    public var antiEntropyInterval: Duration = .seconds(10)
    /// Rows per batch, at most. Default 5 000.
    public var batchRows: Int = PeerProtocol.defaultBatchRows
    /// Key and value bytes per batch, at most (a batch always holds at least one row).
    /// Default 4 MiB.
    public var batchBytes: Int = PeerProtocol.defaultBatchBytes
    /// How long a tombstone stays after every peer has acknowledged it, before it is purged
    /// (DESIGN.md §2). Default 24 h. Restoring a backup older than this can bring back a key
    /// deleted since (docs/operations.md).
    public var tombstoneGrace: Duration = .seconds(86_400)
    /// Retry pacing for a peer that fails. Default 100 ms doubling to 5 s, with jitter.
    public var backoff = Backoff()
    /// How long a session waits before trying again when the peer deferred its push (the peer
    /// is pulling our feed in its start-up catch-up). Default 200 ms.
    public var deferredPushPause: Duration = .milliseconds(200)
    /// How long after a commit the feed lane forwards what a peer still lacks
    /// (`ReplicationSettings.forwardDelay`). Default 1 s.
    public var forwardDelay: Duration = .seconds(1)
    /// How long one request to a peer may take. Default 10 s.
    public var requestTimeout: Duration = .seconds(10)
    /// How peers with `https://` URLs are verified and what certificate this node shows them;
    /// nil (default) trusts the system's store and shows none.
    public var peerTLS: ClientTLS?

    /// The timing rules the pure core reads.
    public var settings: ReplicationSettings {
        var settings = ReplicationSettings()
        settings.backoff = backoff
        settings.deferredPushPause = deferredPushPause
        settings.forwardDelay = forwardDelay
        settings.antiEntropyInterval = antiEntropyInterval
        settings.batchRows = batchRows
        return settings
    }

    public init(identity: NodeID, peers: [PeerConfig]) {
        self.identity = identity
        self.peers = peers
    }
}
