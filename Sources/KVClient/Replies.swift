/// A whole HTTP reply: what `KVClient.send` returns.
public struct HTTPReply: Sendable {
    public let status: Int
    /// The headers in the order received.
    public let headers: [(String, String)]
    public let body: [UInt8]

    public init(status: Int, headers: [(String, String)], body: [UInt8]) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// The first header named `name`, compared case-insensitively.
    public func header(_ name: String) -> String? {
        let wanted = name.lowercased()
        return headers.first { $0.0.lowercased() == wanted }?.1
    }

    /// Whether the status is 2xx.
    public var isSuccess: Bool { (200..<300).contains(status) }
}

/// A value read with `GET /kv/{key}` and the version that wrote it.
public struct StoredValue: Sendable, Hashable {
    public let value: [UInt8]
    public let lamport: Int64
    public let origin: String
    /// When the key expires (`KV-Expires`), in milliseconds since the Unix epoch; nil: never.
    public let expiresAt: Int64?

    public init(value: [UInt8], lamport: Int64, origin: String, expiresAt: Int64? = nil) {
        self.value = value
        self.lamport = lamport
        self.origin = origin
        self.expiresAt = expiresAt
    }
}
