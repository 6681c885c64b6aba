public import KVCore

/// A peer as configured: its id and where to reach it.
public struct PeerConfig: Sendable, Equatable {
    public let id: NodeID
    public let url: String

    public init(id: NodeID, url: String) {
        self.id = id
        self.url = url
    }
}

/// A peer as this node's file remembers it (DESIGN.md §3).
public struct PeerState: Sendable, Equatable {
    public let id: NodeID
    public let url: String
    /// The peer's epoch as last seen; nil before the first contact.
    public let epoch: String?
    /// The peer's `seq` up to which this node has applied its feed.
    public let pulledSeq: Int64
    /// This node's `seq` up to which the peer has acknowledged.
    public let pushedSeq: Int64
    /// Wall clock of the last successful exchange; nil before the first.
    public let lastContact: String?
    /// This node holds, for every key, the peer's own writes up to this Lamport time or
    /// something newer; 0 when nothing is known (`peers.covered_lamport`).
    public let coveredLamport: Int64
    /// This node's seq up to which the peer is sent its own rows too (`peers.resend_all_through`).
    public let resendAllThrough: Int64

    public init(
        id: NodeID, url: String, epoch: String?, pulledSeq: Int64, pushedSeq: Int64, lastContact: String?,
        coveredLamport: Int64 = 0, resendAllThrough: Int64 = 0
    ) {
        self.id = id
        self.url = url
        self.epoch = epoch
        self.pulledSeq = pulledSeq
        self.pushedSeq = pushedSeq
        self.lastContact = lastContact
        self.coveredLamport = coveredLamport
        self.resendAllThrough = resendAllThrough
    }
}
