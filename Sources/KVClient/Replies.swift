/// A value read with `GET /kv/{key}` and the version that wrote it.
public struct StoredValue: Sendable, Hashable {
    public let value: [UInt8]
    public let lamport: Int64
    public let origin: String
    /// When the key expires (`KV-Expires`), in milliseconds since the Unix epoch; nil: never.
    public let expiresAt: Int64?
    /// For a read at several nodes: the nodes whose copies the answer came from
    /// (`KV-Answered-By`); nil for a read of one node.
    public let answeredBy: [String]?

    public init(value: [UInt8], lamport: Int64, origin: String, expiresAt: Int64? = nil, answeredBy: [String]? = nil) {
        self.value = value
        self.lamport = lamport
        self.origin = origin
        self.expiresAt = expiresAt
        self.answeredBy = answeredBy
    }
}
