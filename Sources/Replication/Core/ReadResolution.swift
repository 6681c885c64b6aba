public import KVCore

/// What a read from several nodes decides from the copies it gathered (docs/consistency.md):
/// the newest version of the key, and which of the nodes that answered hold an older one and
/// are to be sent it (read repair). Pure: the same copies give the same answer in any order.
public struct ReadResolution: Sendable, Equatable {
    /// One node's answer: its copy of the key (tombstones included), nil when it holds none.
    public struct Copy: Sendable, Equatable {
        public let node: NodeID
        public let record: Record?

        public init(node: NodeID, record: Record?) {
            self.node = node
            self.record = record
        }
    }

    /// The greatest version among the copies by `Merge`'s rule; nil when no node held the key.
    public let newest: Record?
    /// The nodes that answered with an older version than `newest`, or with none at all when
    /// `newest` is a live value. A node without the key is sent neither a tombstone nor an
    /// expired value: holding nothing already reads as absent, and it may have purged that very
    /// row (no repair brings an expired key back, unlike Riak #1649).
    public let stale: [NodeID]
    let now: Int64

    /// `copies` must all be of one key (the reader checks what peers send); `now` is the
    /// time in milliseconds since the Unix epoch that expiry is judged at.
    public init(_ copies: [Copy], at now: Int64) {
        var newest: Record?
        for copy in copies {
            guard let record = copy.record else { continue }
            newest = newest.map { Merge.winner($0, record) } ?? record
        }
        self.newest = newest
        self.now = now
        stale = copies.filter { Self.isStale($0, newest: newest, at: now) }.map(\.node)
    }

    /// Whether `copy` is to be repaired: older than `newest`, or empty where `newest` is a
    /// value. Also asked of answers that arrive after the reply was sent.
    public func isStale(_ copy: Copy) -> Bool { Self.isStale(copy, newest: newest, at: now) }

    /// The value the read answers with: nil when no node held the key, or the newest version is
    /// a tombstone or has expired.
    public var value: [UInt8]? { newest?.value(at: now) }

    private static func isStale(_ copy: Copy, newest: Record?, at now: Int64) -> Bool {
        guard let newest else { return false }
        guard let record = copy.record else { return newest.value(at: now) != nil }
        return record.version < newest.version
    }
}
