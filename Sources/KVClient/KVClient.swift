public import KVCore
import NIOHTTP1
public import NodeHTTP

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// A typed client of one node's public HTTP API (DESIGN.md §4).
///
/// Built on one `NodeHTTPClient`, and so with its promises: one keep-alive connection to the
/// node, requests sent on it one at a time in the order they were made (concurrent callers
/// queue), a new connection when the node closed the last one. A request is sent again only when
/// it provably had no effect: it was never written (the connection was found closed), or it is
/// a `GET` whose reused connection closed before any reply. A `PUT` that may have reached the
/// node is never resent, since each `PUT` makes a new version.
///
/// Every request, connecting included, has the whole `timeout` to complete, after which the
/// connection is closed and the request fails with `.timedOut`. Call `close()` when done; a client
/// dropped without it closes its connection in the background.
public final class KVClient: Sendable {
    /// The node's URL, normalized to `http://HOST:PORT` or `https://HOST:PORT`.
    public var url: String { connection.url }
    /// How long one request may take, connecting included.
    public var timeout: Duration { connection.timeout }
    let connection: NodeHTTPClient
    /// `Authorization: Bearer TOKEN` for every request, when a client token was given.
    let authorization: String?

    /// Prepares a client for the node at `node` (`http://HOST:PORT` or `https://HOST:PORT`);
    /// connects on first use. Throws `.invalidNodeURL` for anything else. With a `token` (the
    /// node's `--client-token-file` secret), every request carries it as `Authorization: Bearer …`
    /// unless the caller of `send` passes an `Authorization` header of its own.
    ///
    /// `tls` says how an `https` node is verified; nil trusts the system's store. It is not used
    /// for an `http` node.
    public init(
        node: String, timeout: Duration = .seconds(10), token: String? = nil, tls: ClientTLS? = nil
    ) throws(KVClientError) {
        do {
            self.connection = try NodeHTTPClient(node: node, timeout: timeout, tls: tls)
        } catch {
            throw KVClientError(error)
        }
        self.authorization = token.map { BearerToken.header(for: $0) }
    }

    /// Stores `value` under `key` as a new version; returns that version.
    /// With `ttlSeconds` the key expires that many seconds after the node stores it
    /// (`PUT /kv/{key}?ttl=SECONDS`).
    /// `acknowledgement`: how many nodes must hold the write before the node answers
    /// (`?w=`: a number, `quorum` or `all`), and how long it waits for them; a node that waited
    /// in vain answers 504 `write_timeout`, thrown as `.server`, whose detail names the nodes
    /// that hold the write.
    public func put(
        _ key: String, value: [UInt8], ttlSeconds: Int64? = nil, acknowledgement: WriteAcknowledgement? = nil
    ) async throws(KVClientError) -> WriteReply {
        var query: [String] = []
        if let ttlSeconds { query.append("ttl=\(ttlSeconds)") }
        if let acknowledgement { query += acknowledgement.queryItems }
        let path = Self.path(of: key) + (query.isEmpty ? "" : "?" + query.joined(separator: "&"))
        let reply = try await send("PUT", path, body: value)
        return try decode(WriteReply.self, from: successful(reply), request: "PUT /kv/{key}")
    }

    /// The value of `key` and its version, or nil when the node has no live value for it.
    /// `level`: read at that many nodes (`?r=`: a number, `quorum` or `all`) and answer with
    /// the newest copy, repairing older ones; a node that could not reach enough answers 504
    /// `read_timeout`, thrown as `.server`, whose detail names the nodes that answered.
    public func get(_ key: String, level: ReadLevel? = nil) async throws(KVClientError) -> StoredValue? {
        let query = level.map { "?" + $0.queryItems.joined(separator: "&") } ?? ""
        let reply = try await send("GET", Self.path(of: key) + query)
        if reply.status == 404 { return nil }
        let body = try successful(reply)
        guard let lamportText = reply.header(HeaderName.lamport), let lamport = Int64(lamportText)
        else {
            throw .badResponse("GET /kv/{key} replied without a numeric \(HeaderName.lamport) header")
        }
        guard let origin = reply.header(HeaderName.origin), !origin.isEmpty else {
            throw .badResponse("GET /kv/{key} replied without a \(HeaderName.origin) header")
        }
        let expiresAt = reply.header(HeaderName.expires).flatMap { Int64($0) }
        let answeredBy = reply.header(HeaderName.answeredBy).map { $0.split(separator: ",").map(String.init) }
        return StoredValue(value: body, lamport: lamport, origin: origin, expiresAt: expiresAt, answeredBy: answeredBy)
    }

    /// Writes a tombstone for `key` (whether or not the node has it); returns its version.
    public func delete(_ key: String, acknowledgement: WriteAcknowledgement? = nil) async throws(KVClientError) -> WriteReply {
        let query = acknowledgement.map { "?" + $0.queryItems.joined(separator: "&") } ?? ""
        let reply = try await send("DELETE", Self.path(of: key) + query)
        return try decode(WriteReply.self, from: successful(reply), request: "DELETE /kv/{key}")
    }

    /// One page of live keys in byte order; pass the page's `next` as `after` for the following
    /// one. `nil` parameters are left to the node's defaults.
    public func list(
        prefix: String? = nil, after: String? = nil, limit: Int? = nil
    ) async throws(KVClientError) -> ListPage {
        var query: [String] = []
        if let prefix { query.append("prefix=" + KeyPath.encode(prefix)) }
        if let after { query.append("after=" + KeyPath.encode(after)) }
        if let limit { query.append("limit=\(limit)") }
        let path = query.isEmpty ? "/kv" : "/kv?" + query.joined(separator: "&")
        let reply = try await send("GET", path)
        return try decode(ListPage.self, from: successful(reply), request: "GET /kv")
    }

    /// The node's state and its view of its peers.
    public func status() async throws(KVClientError) -> NodeStatus {
        try await decode(NodeStatus.self, from: statusJSON(), request: "GET /status")
    }

    /// `GET /members`: every member with its state as the node sees it.
    public func members() async throws(KVClientError) -> MembersReply {
        let body = try successful(await send("GET", "/members"))
        return try decode(MembersReply.self, from: body, request: "GET /members")
    }

    /// `DELETE /members/{id}`: marks the member removed everywhere; the members after.
    public func removeMember(_ id: String) async throws(KVClientError) -> MembersReply {
        let body = try successful(await send("DELETE", "/members/\(KeyPath.encode(id))"))
        return try decode(MembersReply.self, from: body, request: "DELETE /members/\(id)")
    }

    /// The body of `GET /status` exactly as the node sent it.
    public func statusJSON() async throws(KVClientError) -> [UInt8] {
        try successful(await send("GET", "/status"))
    }

    /// Whether the node says it can serve (`GET /health` is 2xx). Throws only when the node
    /// cannot be asked.
    public func health() async throws(KVClientError) -> Bool {
        try await send("GET", "/health").isSuccess
    }

    /// Sends one request as given, with the client token unless `headers` has an
    /// `Authorization` of its own, and returns whatever reply came, any status; for tests and
    /// tools. Throws only when no whole reply arrived.
    public func send(
        _ method: String, _ pathAndQuery: String, body: [UInt8] = [],
        headers: [(String, String)] = []
    ) async throws(KVClientError) -> HTTPReply {
        var headers = headers
        if let authorization, !headers.contains(where: { $0.0.lowercased() == "authorization" }) {
            headers.append(("Authorization", authorization))
        }
        do {
            return try await connection.send(method, pathAndQuery, body: body, headers: headers)
        } catch {
            throw KVClientError(error)
        }
    }

    /// Closes the connection; requests made afterwards fail with `.unreachable`.
    public func close() async {
        await connection.close()
    }

    /// `/kv/` and the percent-encoded key.
    static func path(of key: String) -> String {
        "/kv/" + KeyPath.encode(key)
    }

    /// The body of a 2xx reply; any other status becomes `.server` with the node's error body.
    func successful(_ reply: HTTPReply) throws(KVClientError) -> [UInt8] {
        guard reply.isSuccess else { throw Self.serverError(reply) }
        return reply.body
    }

    /// `.server` from a non-2xx reply: its `{"error","detail"}` body when it has one, else the
    /// first line of its body or the status's reason phrase.
    static func serverError(_ reply: HTTPReply) -> KVClientError {
        if let body = try? JSONDecoder().decode(ErrorBody.self, from: Data(reply.body)) {
            return .server(status: reply.status, error: body.error, detail: body.detail)
        }
        let text = String(decoding: reply.body.prefix(300), as: UTF8.self)
        let firstLine = text.split(whereSeparator: \.isNewline).first.map(String.init) ?? ""
        let detail = String(firstLine.drop(while: \.isWhitespace).reversed().drop(while: \.isWhitespace).reversed())
        return .server(
            status: reply.status, error: "",
            detail: detail.isEmpty ? HTTPResponseStatus(statusCode: reply.status).reasonPhrase : detail)
    }

    func decode<T: Decodable>(
        _ type: T.Type, from body: [UInt8], request: String
    ) throws(KVClientError) -> T {
        do {
            return try JSONDecoder().decode(type, from: Data(body))
        } catch {
            throw .badResponse("the reply to \(request) is not the expected JSON: \(Self.explain(error))")
        }
    }

    /// A decoding error in a few words: which field, what was wrong.
    private static func explain(_ error: any Error) -> String {
        func path(_ codingPath: [any CodingKey]) -> String {
            codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
        }
        guard let error = error as? DecodingError else { return "\(error)" }
        switch error {
        case .keyNotFound(let key, let context):
            let parent = path(context.codingPath)
            return "field '\(parent.isEmpty ? "" : parent + ".")\(key.stringValue)' is missing"
        case .typeMismatch(_, let context), .valueNotFound(_, let context):
            return "field '\(path(context.codingPath))' has the wrong type"
        case .dataCorrupted(let context):
            return context.codingPath.isEmpty
                ? "not valid JSON" : "field '\(path(context.codingPath))' is malformed"
        @unknown default:
            return "\(error)"
        }
    }
}

/// How many nodes must hold a write before its node answers, and how long to wait for them
/// (`?w=` and `?timeout=` of `PUT` and `DELETE`; docs/consistency.md).
public struct WriteAcknowledgement: Sendable, Equatable {
    /// A number of nodes from 1, `quorum` or `all`.
    public let nodes: String
    /// Seconds; nil leaves the node's default (5 s).
    public let timeoutSeconds: Double?

    public init(nodes: String, timeoutSeconds: Double? = nil) {
        self.nodes = nodes
        self.timeoutSeconds = timeoutSeconds
    }

    var queryItems: [String] { nodeCountQuery("w", nodes: nodes, timeoutSeconds: timeoutSeconds) }
}

/// How many nodes a read asks, and how long to wait for them (`?r=` and `?timeout=` of
/// `GET /kv/{key}`; docs/consistency.md).
public struct ReadLevel: Sendable, Equatable {
    /// A number of nodes from 1, `quorum` or `all`.
    public let nodes: String
    /// Seconds; nil leaves the node's default (5 s).
    public let timeoutSeconds: Double?

    public init(nodes: String, timeoutSeconds: Double? = nil) {
        self.nodes = nodes
        self.timeoutSeconds = timeoutSeconds
    }

    var queryItems: [String] { nodeCountQuery("r", nodes: nodes, timeoutSeconds: timeoutSeconds) }
}

/// `w=…` or `r=…`, and `timeout=…` when given: the query both levels share.
private func nodeCountQuery(_ name: String, nodes: String, timeoutSeconds: Double?) -> [String] {
    ["\(name)=\(nodes)"] + (timeoutSeconds.map { ["timeout=\($0)"] } ?? [])
}
