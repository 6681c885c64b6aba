import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdCore
import NIOCore
import KVCore
import KVStore
import Logging
import Replication

/// Answers the public HTTP API of DESIGN.md §4 from the node's store.
///
/// Routing is a switch over the path rather than a router trie: a key is the whole rest of
/// the path after `/kv/`, percent-decoded by us (so `%2F` and `/` both give a `/`), and every
/// path the API knows answers a wrong method with 405 and an `Allow` header. Every outcome,
/// error or not, is counted by route pattern in `/metrics`.
struct KVResponder: HTTPResponder {
    typealias Context = BasicRequestContext

    let store: KVStore
    let nodeID: NodeID
    let maxValueBytes: Int
    let metrics: NodeMetrics
    let logger: Logger
    let statusReporter: @Sendable () async throws -> NodeStatus
    let peers: PeerEndpoint
    let replicator: Replicator
    let databasePath: String
    let shutdown: ShutdownSignal

    func respond(to request: Request, context: Context) async throws -> Response {
        let started = ContinuousClock.now
        let path = request.uri.path
        let route = Route(path: path)
        let response: Response
        do {
            response = try await handle(route, request: request)
        } catch {
            if let apiError = APIError.from(error) {
                if apiError.status.code >= 500 {
                    logger.error("request failed: \(request.method) \(route.pattern): \(error)")
                }
                response = apiError.response()
            } else if error is NIOTooManyBytesError {
                response = APIError.valueTooLarge(limit: maxValueBytes).response()
            } else {
                logger.error("unexpected error serving \(request.method) \(path): \(error)")
                response = APIError(
                    status: .internalServerError, code: "internal",
                    detail: "the node failed to serve the request; its log has the cause"
                ).response()
            }
        }
        metrics.countRequest(
            route: route.pattern, method: request.method.rawValue, status: response.status.code,
            took: ContinuousClock.now - started)
        return response
    }

    private func handle(_ route: Route, request: Request) async throws -> Response {
        var request = request
        switch (route, request.method) {
        case (.key(let encoded), .get):
            return try await get(key: decodeKey(encoded))
        case (.key(let encoded), .put):
            let key = try decodeKey(encoded)
            return try await put(key: key, request: &request)
        case (.key(let encoded), .delete):
            let receipt = try await store.delete(key: decodeKey(encoded))
            metrics.countClientWrite()
            return writeReply(receipt)
        case (.list, .get):
            return try await list(request.uri)
        case (.status, .get):
            return try json(await statusReporter())
        case (.health, .get):
            return json(raw: #"{"status":"ok"}"#)
        case (.metrics, .get):
            let text = metrics.render(
                state: try await store.state(), statistics: store.statistics(),
                peers: try await replicator.peerReports(), catchUp: replicator.catchUpProgress,
                databasePath: databasePath)
            return Response(
                status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                body: .init(byteBuffer: ByteBuffer(bytes: text)))
        case (.digest, .get):
            return try await digest(request.uri)
        case (.watch, .get):
            return try await watch(request.uri)
        case (.hello, .post), (.push, .post), (.feed, .get), (.bucket, .get):
            return try await servePeer(route, request: &request)
        case (.unknown, _):
            throw APIError.noSuchRoute(request.uri.path)
        default:
            throw APIError.methodNotAllowed(request.method, path: route.pattern, allowed: route.allowedMethods)
        }
    }

    /// The peer protocol: authenticate first, then parse (DESIGN.md §3).
    private func servePeer(_ route: Route, request: inout Request) async throws -> Response {
        let sender = try peers.authenticate(
            sender: request.headers[.kvNode], authorization: request.headers[.authorization])
        switch route {
        case .hello:
            let body = try await request.collectBody(upTo: 64 * 1024)
            return try json(await peers.hello(from: sender, body: Array(buffer: body)))
        case .push:
            let body = try await request.collectBody(upTo: Self.maxBatchBytes)
            return try json(
                await peers.push(
                    from: sender, epoch: request.headers[.kvEpoch], clock: request.headers[.kvClock],
                    covered: request.headers[.kvCovered], body: Array(buffer: body)))
        case .bucket:
            let query = try QueryParameters(request.uri.query)
            let body = try await peers.bucket(for: sender, bucket: query["bucket"])
            return Response(
                status: .ok, headers: [.contentType: PeerProtocol.batchContentType],
                body: .init(byteBuffer: ByteBuffer(bytes: body)))
        default:
            let query = try QueryParameters(request.uri.query)
            let feed = try await peers.feed(for: sender, after: query["after"], limit: query["limit"], covered: query["covered"])
            return Response(
                status: .ok,
                headers: [
                    .contentType: PeerProtocol.batchContentType, .kvEpoch: feed.epoch,
                    .kvLastSeq: String(feed.lastSeq), .kvClock: String(feed.clock), .kvCovered: feed.coverage,
                ],
                body: .init(byteBuffer: ByteBuffer(bytes: feed.body)))
        }
    }

    /// Largest push body accepted: a full batch of keys and values plus the framing.
    static let maxBatchBytes = PeerProtocol.defaultBatchBytes + (64 << 20)

    private func decodeKey(_ encoded: Substring) throws -> String {
        try KeyRules.validate(utf8: KeyPath.decode(encoded))
    }

    private func get(key: String) async throws -> Response {
        guard let stored = try await store.get(key: key), let value = stored.record.value else {
            throw APIError.notFound(key: key, node: nodeID)
        }
        let version = stored.record.version
        return Response(
            status: .ok,
            headers: [
                .contentType: "application/octet-stream",
                .kvLamport: String(version.lamport),
                .kvOrigin: version.origin.rawValue,
            ],
            body: .init(byteBuffer: ByteBuffer(bytes: value)))
    }

    private func put(key: String, request: inout Request) async throws -> Response {
        if let declared = request.headers[.contentLength].flatMap(Int.init), declared > maxValueBytes {
            throw APIError.valueTooLarge(limit: maxValueBytes)
        }
        let body = try await request.collectBody(upTo: maxValueBytes)
        let receipt = try await store.put(key: key, value: Array(buffer: body))
        metrics.countClientWrite()
        return writeReply(receipt)
    }

    private func list(_ uri: URI) async throws -> Response {
        let query = try QueryParameters(uri.query)
        let prefix = query["prefix"] ?? ""
        let after = query["after"]
        var limit = 100
        if let text = query["limit"] {
            guard let value = Int(text), (1...1000).contains(value) else {
                throw APIError.invalidParameter("limit must be a whole number from 1 to 1000, got '\(text)'")
            }
            limit = value
        }
        if !prefix.isEmpty { try validateBound(prefix, name: "prefix") }
        if let after { try validateBound(after, name: "after") }
        let entries = try await store.list(prefix: prefix, after: after, limit: limit + 1)
        let page = entries.prefix(limit)
        let next = entries.count > limit ? page.last?.key : nil
        let keys = page.map {
            ListedKey(key: $0.key, lamport: $0.version.lamport, origin: $0.version.origin.rawValue, size: $0.size)
        }
        return try json(ListPage(keys: keys, next: next))
    }

    private func validateBound(_ text: String, name: String) throws {
        do {
            try KeyRules.validate(text)
        } catch {
            throw APIError.invalidParameter("\(name) is not a valid key: \(error.description)")
        }
    }

    private func writeReply(_ receipt: WriteReceipt) -> Response {
        Response(
            status: .ok, headers: [.contentType: "application/json"],
            body: .init(byteBuffer: FastJSON.writeReply(WriteReply(receipt))))
    }

    func json(_ value: some Encodable) throws -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = try encoder.encode(value)
        return Response(
            status: .ok, headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    private func json(raw: String) -> Response {
        Response(
            status: .ok, headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(string: raw)))
    }
}

/// The query string of a request, percent-decoded strictly: a `%` not followed by two hex
/// digits, or a value that is not UTF-8, is a 400 rather than a value taken literally. The first
/// occurrence of a name wins.
struct QueryParameters {
    private var values: [String: String] = [:]

    init(_ query: String?) throws {
        guard let query, !query.isEmpty else { return }
        for pair in query.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = try Self.decode(parts[0], what: "a parameter name")
            let value = parts.count > 1 ? try Self.decode(parts[1], what: "parameter \(name)") : ""
            if values[name] == nil { values[name] = value }
        }
    }

    subscript(name: String) -> String? { values[name] }

    private static func decode(_ text: Substring, what: String) throws -> String {
        guard let bytes = try? KeyPath.decode(text), let string = String(validating: bytes, as: UTF8.self) else {
            throw APIError.invalidParameter("\(what) is not valid percent-encoded UTF-8: '\(text.prefix(64))'")
        }
        return string
    }
}

/// The routes of the public API, recognised from the raw (still percent-encoded) path.
enum Route: Equatable {
    case key(Substring)
    case list
    case status
    case health
    case metrics
    case digest
    case watch
    case hello
    case push
    case feed
    case bucket
    case unknown

    init(path: String) {
        switch path {
        case "/kv", "/kv/": self = path == "/kv" ? .list : .key("")
        case "/status": self = .status
        case "/health": self = .health
        case "/metrics": self = .metrics
        case "/digest": self = .digest
        case "/watch": self = .watch
        case PeerProtocol.helloPath: self = .hello
        case PeerProtocol.pushPath: self = .push
        case PeerProtocol.feedPath: self = .feed
        case PeerProtocol.bucketPath: self = .bucket
        default:
            if path.hasPrefix("/kv/") {
                self = .key(path.dropFirst(4))
            } else {
                self = .unknown
            }
        }
    }

    /// The label under which `/metrics` counts requests: the pattern, never a real key.
    var pattern: String {
        switch self {
        case .key: return "/kv/{key}"
        case .list: return "/kv"
        case .status: return "/status"
        case .health: return "/health"
        case .metrics: return "/metrics"
        case .digest: return "/digest"
        case .watch: return "/watch"
        case .hello: return PeerProtocol.helloPath
        case .push: return PeerProtocol.pushPath
        case .feed: return PeerProtocol.feedPath
        case .bucket: return PeerProtocol.bucketPath
        case .unknown: return "unknown"
        }
    }

    var allowedMethods: [HTTPRequest.Method] {
        switch self {
        case .key: return [.get, .put, .delete]
        case .list, .status, .health, .metrics, .feed, .digest, .watch, .bucket: return [.get]
        case .hello, .push: return [.post]
        case .unknown: return []
        }
    }
}

extension WriteReply {
    init(_ receipt: WriteReceipt) {
        self.init(key: receipt.key, lamport: receipt.version.lamport, origin: receipt.version.origin.rawValue)
    }
}

extension HTTPField.Name {
    // Both names are valid header tokens, so these initialisers cannot fail.
    static let kvLamport = HTTPField.Name(HeaderName.lamport)!
    static let kvOrigin = HTTPField.Name(HeaderName.origin)!
    static let kvNode = HTTPField.Name(PeerProtocol.nodeHeader)!
    static let kvEpoch = HTTPField.Name(PeerProtocol.epochHeader)!
    static let kvLastSeq = HTTPField.Name(PeerProtocol.lastSeqHeader)!
    static let kvClock = HTTPField.Name(PeerProtocol.clockHeader)!
    static let kvCovered = HTTPField.Name(PeerProtocol.coveredHeader)!
}
