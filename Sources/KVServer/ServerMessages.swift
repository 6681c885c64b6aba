import NIOCore
import NIOHTTP1

/// One HTTP request as the node's routes see it: the head, split into the raw (still
/// percent-encoded) path and query, and the whole body, collected by `HTTPConnectionHandler`
/// up to the route's limit.
struct ServerRequest: Sendable {
    let method: HTTPMethod
    /// The path of the request target, before any `?`; not percent-decoded.
    let path: Substring
    /// What follows the first `?` of the request target, if anything.
    let query: Substring?
    let headers: HTTPHeaders
    var body: ByteBuffer

    init(head: HTTPRequestHead, body: ByteBuffer) {
        method = head.method
        headers = head.headers
        self.body = body
        (path, query) = Self.split(head.uri)
    }

    /// The path of a request target: up to the first `?` (or `#`).
    static func path(of target: String) -> Substring {
        split(target).path
    }

    /// Works on the UTF-8 view: walking `Character`s would run grapheme breaking on every
    /// request.
    private static func split(_ uri: String) -> (path: Substring, query: Substring?) {
        let bytes = uri.utf8
        let end = bytes.firstIndex(of: UInt8(ascii: "#")) ?? bytes.endIndex
        guard let mark = bytes[..<end].firstIndex(of: UInt8(ascii: "?")) else { return (uri[..<end], nil) }
        return (uri[..<mark], uri[bytes.index(after: mark)..<end])
    }
}

/// One HTTP response: a status, headers, and a body that is either bytes known up front (sent
/// with `Content-Length`) or a stream (sent chunked) written by a task until it returns.
struct ServerResponse: Sendable {
    enum Body: Sendable {
        case bytes(ByteBuffer)
        case stream(@Sendable (ResponseStreamWriter) async throws -> Void)
    }

    var status: HTTPResponseStatus
    var headers: HTTPHeaders
    var body: Body

    init(status: HTTPResponseStatus = .ok, headers: HTTPHeaders = [:], body: Body) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// A complete reply with a `Content-Type`.
    init(status: HTTPResponseStatus = .ok, contentType: String, bytes: ByteBuffer) {
        self.status = status
        self.headers = ["content-type": contentType]
        self.body = .bytes(bytes)
    }
}

/// Writes the chunks of a streamed response body to its connection; each write returns once
/// the chunk is flushed to the socket, or throws when the connection is gone.
struct ResponseStreamWriter: Sendable {
    let channel: any Channel

    func write(_ chunk: ByteBuffer) async throws {
        try await channel.writeAndFlush(HTTPServerResponsePart.body(.byteBuffer(chunk))).get()
    }
}
