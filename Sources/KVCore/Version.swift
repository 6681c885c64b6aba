/// The version of a row: the Lamport time of the write and the node that made it.
///
/// Versions are totally ordered: by `lamport`, then by `origin` compared byte-wise. Every node
/// applies the same order, so last-writer-wins picks the same winner everywhere, whatever order
/// the writes arrive in. Two distinct writes never share a version: a node stamps each of its
/// writes with a fresh Lamport time.
public struct Version: Hashable, Comparable, Sendable, CustomStringConvertible {
    /// The Lamport time of the write; at least 1 for any real write.
    public let lamport: Int64
    /// The node that accepted the write.
    public let origin: NodeID

    public init(lamport: Int64, origin: NodeID) {
        self.lamport = lamport
        self.origin = origin
    }

    public static func < (lhs: Version, rhs: Version) -> Bool {
        if lhs.lamport != rhs.lamport { return lhs.lamport < rhs.lamport }
        return lhs.origin < rhs.origin
    }

    public var description: String { "\(lamport)@\(origin)" }
}
