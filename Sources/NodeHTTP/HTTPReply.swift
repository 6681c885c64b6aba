/// A whole HTTP reply, whatever its status: what `NodeHTTPClient.send` returns.
///
/// Its body is complete (the exchange read the reply to its end) and its headers are in the
/// order received, repeated names kept.
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
