/// One member of the cluster as the cluster's data records it (docs/operations.md, "Members").
///
/// A member is an ordinary replicated row under a reserved key, `MemberRow.key(of: id)`, whose
/// value is the text `STATE URL EPOCH`: it is merged last-writer-wins on `(lamport, origin)`
/// like any key, carried by the same feed, caught up and repaired by anti-entropy, and readable
/// with `sqlite3` (the `members` view). Clients cannot write such keys: a key's first byte is
/// never a control character (`KeyRules`).
public struct Member: Sendable, Equatable {
    public enum State: String, Sendable, Codable {
        /// Replicates with the others; counts toward quorums.
        case active
        /// Taken out of the cluster: refused on the peer routes, not waited for by purges or
        /// quorums. Only a fresh file (a new epoch) under the same id can join again.
        case removed
    }

    public let id: NodeID
    /// How the other members reach it (`--advertise-url`).
    public let url: String
    public let state: State
    /// The epoch of the member's file when the row was written; a removed member's file keeps
    /// it, a fresh file has another.
    public let epoch: String

    public init(id: NodeID, url: String, state: State, epoch: String) {
        self.id = id
        self.url = url
        self.state = state
        self.epoch = epoch
    }
}

/// The reserved keys that hold members, and their values' text form.
public enum MemberRow {
    /// Every member key starts with this: U+0001, which no client key may hold.
    public static let prefix = "\u{1}member/"

    public static func key(of id: NodeID) -> String { prefix + id.rawValue }

    /// The member id a key names, if it is a member key.
    public static func id(ofKey key: String) -> NodeID? {
        guard key.hasPrefix(prefix) else { return nil }
        return try? NodeID(String(key.dropFirst(prefix.count)))
    }

    public static func value(of member: Member) -> [UInt8] {
        Array("\(member.state.rawValue) \(member.url) \(member.epoch)".utf8)
    }

    /// The member a stored row describes; nil for any other key or a value not of that form
    /// (a row edited by hand is ignored rather than trusted).
    public static func member(key: String, value: [UInt8]?) -> Member? {
        guard let id = id(ofKey: key), let value else { return nil }
        let parts = String(decoding: value, as: UTF8.self).split(separator: " ", omittingEmptySubsequences: false)
        guard parts.count == 3, let state = Member.State(rawValue: String(parts[0])), !parts[1].isEmpty else { return nil }
        return Member(id: id, url: String(parts[1]), state: state, epoch: String(parts[2]))
    }
}

/// `POST /internal/join`: a node asks a member to add it (docs/protocol.md, "Join").
public struct JoinRequest: Codable, Sendable, Equatable {
    public let id: String
    /// How the others reach the joining node.
    public let url: String
    /// The epoch of its file: a removed member may come back only with another one.
    public let epoch: String

    public init(id: String, url: String, epoch: String) {
        self.id = id
        self.url = url
        self.epoch = epoch
    }
}

/// One member as `GET /members`, `/status` and a join reply show it.
public struct MemberInfo: Codable, Sendable, Hashable {
    public let id: String
    public let url: String
    /// `active`, `suspect` (active, but this node cannot reach it now) or `removed`.
    public let state: String
    /// Whether this node reaches it now; nil for this node itself and for removed members.
    public let reachable: Bool?
    /// Since when it has been reachable or not (ISO 8601), as far as this node saw.
    public let since: String?

    public init(id: String, url: String, state: String, reachable: Bool?, since: String?) {
        self.id = id
        self.url = url
        self.state = state
        self.reachable = reachable
        self.since = since
    }
}

/// The body of `GET /members` and of a join's reply.
public struct MembersReply: Codable, Sendable, Hashable {
    /// The node that answered.
    public let node: String
    public let members: [MemberInfo]
    /// In a join's reply only: the answering node's Lamport clock, which the joining node
    /// observes before its first write.
    public let clock: Int64?

    public init(node: String, members: [MemberInfo], clock: Int64? = nil) {
        self.node = node
        self.members = members
        self.clock = clock
    }
}
