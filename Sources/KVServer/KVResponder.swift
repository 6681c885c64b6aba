import Foundation
import KVCore
import KVStore
import Logging
import NIOCore
import NIOHTTP1
import Replication

/// Answers the public HTTP API of DESIGN.md §4, and the peer routes, from the node's store.
///
/// Routing is a switch over the path rather than a router trie: a key is the whole rest of
/// the path after `/kv/`, percent-decoded by us (so `%2F` and `/` both give a `/`), and every
/// path the API knows answers a wrong method with 405 and an `Allow` header. Every outcome,
/// error or not, is counted by route pattern in `/metrics`.
///
/// The three routes of `/kv/{key}` are the hot path and never enter a task: a GET reads on
/// the calling event loop, a PUT or DELETE hands its write to the store's writer thread, whose
/// commit answers. Every other route runs as a task.
struct KVResponder: Sendable {
    let store: KVStore
    let nodeID: NodeID
    let maxValueBytes: Int
    /// When set, the token `authorizeClient` demands.
    let clientToken: String?
    let metrics: NodeMetrics
    let logger: Logger
    let statusReporter: @Sendable () async throws -> NodeStatus
    let peers: PeerEndpoint
    let replicator: Replicator
    let databasePath: String
    let shutdown: ShutdownSignal
    /// Peer routes refuse a sender that showed no certificate (the node serves TLS with a CA file).
    var peersNeedCertificates = false

    /// Largest body of a route that does not read its body (it is read and dropped).
    static let maxOtherBodyBytes = 64 * 1024

    /// What may be decided from a request's head alone: how large its body may grow, or a
    /// refusal to send at once (no client token, a value declared too large, a peer request
    /// without the cluster token, or without a client certificate where one is needed). A refused
    /// request's body is never collected. `presentedCertificate`: the connection is TLS and the
    /// client showed a certificate, which the handshake verified against the CA file.
    func screen(_ head: HTTPRequestHead, presentedCertificate: Bool = false) -> (bodyLimit: Int, refusal: ServerResponse?) {
        let route = Route(path: ServerRequest.path(of: head.uri))
        let started = ContinuousClock.now
        func refuse(_ error: any Error) -> (Int, ServerResponse?) {
            (0, finish(failure(error, method: head.method, route: route), route: route, method: head.method, since: started))
        }
        if peersNeedCertificates, route.isPeerRoute, !presentedCertificate {
            return refuse(APIError.peerCertificateRequired)
        }
        do {
            try authorizeClient(route, headers: head.headers)
        } catch {
            return refuse(error)
        }
        switch (route, head.method) {
        case (.key, .PUT):
            if let declared = head.headers.first(name: "content-length").flatMap(Int.init), declared > maxValueBytes {
                return refuse(APIError.valueTooLarge(limit: maxValueBytes))
            }
            return (maxValueBytes, nil)
        case (.hello, .POST), (.push, .POST), (.repair, .POST):
            do {
                _ = try peers.authenticate(
                    sender: head.headers.first(name: PeerProtocol.nodeHeader),
                    authorization: head.headers.first(name: "authorization"))
            } catch {
                return refuse(error)
            }
            return (route == .hello ? 64 * 1024 : Self.maxBatchBytes, nil)
        case (.join, .POST):
            do {
                try peers.authenticateJoin(authorization: head.headers.first(name: "authorization"))
            } catch {
                return refuse(error)
            }
            return (64 * 1024, nil)
        default:
            return (Self.maxOtherBodyBytes, nil)
        }
    }

    /// The answer to a body that grew past the limit `screen` gave.
    func refuseOversizedBody(_ head: HTTPRequestHead) -> ServerResponse {
        let route = Route(path: ServerRequest.path(of: head.uri))
        let error: APIError =
            route.isKey
            ? .valueTooLarge(limit: maxValueBytes)
            : APIError(
                status: .payloadTooLarge, code: "body_too_large",
                detail: "the request body is larger than this route accepts")
        return finish(error.response(), route: route, method: head.method, since: .now)
    }

    /// Serves `request`; `complete` gets the response on whichever thread produced it.
    func serve(_ request: ServerRequest, complete: @escaping @Sendable (ServerResponse) -> Void) {
        let started = ContinuousClock.now
        let route = Route(path: request.path)
        let method = request.method
        let done: @Sendable (ServerResponse) -> Void = { response in
            complete(finish(response, route: route, method: method, since: started))
        }
        switch (route, method) {
        case (.key(let encoded), .GET):
            let key: String
            let level: ReadLevel
            do {
                key = try decodeKey(encoded)
                level = try ReadLevel(request.query, members: replicator.membership.activeCount)
            } catch {
                return done(failure(error, method: method, route: route))
            }
            guard level.nodes == 1 else {
                Task { done(await readAtSeveralNodes(key, level: level)) }
                return
            }
            store.get(key: key) { result in
                switch result {
                case .success(let stored): done(getReply(key: key, stored))
                case .failure(let error): done(failure(error, method: method, route: route))
                }
            }
        case (.key(let encoded), .PUT), (.key(let encoded), .DELETE):
            let key: String
            let expiresAt: Int64?
            let acknowledgement: WriteAcknowledgement
            do {
                key = try decodeKey(encoded)
                expiresAt = method == .PUT ? try Self.expiry(request.query) : nil
                acknowledgement = try WriteAcknowledgement(request.query, members: replicator.membership.activeCount)
            } catch {
                return done(failure(error, method: method, route: route))
            }
            let answer: @Sendable (Result<WriteReceipt, StoreError>) -> Void = { result in
                switch result {
                case .success(let receipt):
                    metrics.countClientWrite()
                    guard acknowledgement.nodes > 1 else { return done(writeReply(receipt)) }
                    // The write is committed here; wait, with no lock held, for the peers that
                    // must hold it too. It is never undone: a timeout says where it is.
                    Task {
                        let held = await replicator.waitUntilHeld(
                            through: receipt.seq, byPeers: acknowledgement.nodes - 1, timeout: acknowledgement.timeout)
                        done(acknowledgedReply(receipt, acknowledgement: acknowledgement, held: held))
                    }
                case .failure(let error):
                    done(failure(error, method: method, route: route))
                }
            }
            if method == .PUT {
                store.put(key: key, value: Array(buffer: request.body), expiresAt: expiresAt, completion: answer)
            } else {
                store.delete(key: key, completion: answer)
            }
        default:
            Task {
                do {
                    done(try await handle(route, request: request))
                } catch {
                    done(failure(error, method: method, route: route))
                }
            }
        }
    }

    private func finish(_ response: ServerResponse, route: Route, method: HTTPMethod, since started: ContinuousClock.Instant) -> ServerResponse {
        metrics.countRequest(
            route: route.pattern, method: method.rawValue, status: Int(response.status.code),
            took: ContinuousClock.now - started)
        return response
    }

    /// The JSON error reply for whatever went wrong; 5xx are logged.
    private func failure(_ error: any Error, method: HTTPMethod, route: Route) -> ServerResponse {
        if let apiError = APIError.from(error) {
            if apiError.status.code >= 500 {
                logger.error("request failed: \(method.rawValue) \(route.pattern): \(error)")
            }
            return apiError.response()
        }
        logger.error("unexpected error serving \(method.rawValue) \(route.pattern): \(error)")
        return APIError(
            status: .internalServerError, code: "internal",
            detail: "the node failed to serve the request; its log has the cause"
        ).response()
    }

    private func handle(_ route: Route, request: ServerRequest) async throws -> ServerResponse {
        switch (route, request.method) {
        case (.list, .GET):
            return try await list(request.query)
        case (.status, .GET):
            return try json(await statusReporter())
        case (.health, .GET):
            return json(raw: #"{"status":"ok"}"#)
        case (.metrics, .GET):
            let text = metrics.render(
                state: try await store.state(), statistics: store.statistics(),
                peers: try await replicator.peerReports(), catchUp: replicator.catchUpProgress,
                databasePath: databasePath)
            return ServerResponse(contentType: "text/plain; version=0.0.4", bytes: ByteBuffer(bytes: text))
        case (.digest, .GET):
            return try await digest(request.query)
        case (.watch, .GET):
            return try await watch(request.query)
        case (.hello, .POST), (.push, .POST), (.feed, .GET), (.bucket, .GET), (.peerKey, .GET), (.repair, .POST):
            return try await servePeer(route, request: request)
        case (.join, .POST):
            try peers.authenticateJoin(authorization: request.headers.first(name: "authorization"))
            return try json(await peers.join(body: Array(buffer: request.body)))
        case (.members, .GET):
            return try json(await replicator.membersReply())
        case (.member(let encoded), .DELETE):
            return try json(await removeMember(encoded))
        case (.unknown, _):
            throw APIError.noSuchRoute(String(request.path))
        default:
            throw APIError.methodNotAllowed(request.method, path: route.pattern, allowed: route.allowedMethods)
        }
    }

    /// With a client token set, refuses (401) every request that does not carry it, before
    /// anything else is looked at, except `GET /health` (load balancers probe it without the
    /// secret) and the peer routes (they check the cluster token). `GET /digest` also admits a
    /// peer by its own credentials: anti-entropy reads a peer's digest there.
    private func authorizeClient(_ route: Route, headers: HTTPHeaders) throws(APIError) {
        guard let clientToken, route != .health, !route.isPeerRoute else { return }
        let authorization = headers.first(name: "authorization")
        if BearerToken.admits(authorization, token: clientToken) { return }
        if route == .digest,
            (try? peers.authenticate(sender: headers.first(name: PeerProtocol.nodeHeader), authorization: authorization)) != nil
        {
            return
        }
        throw APIError.unauthorized(tokenSent: authorization != nil)
    }

    /// The peer protocol: authenticate first, then parse (DESIGN.md §3).
    private func servePeer(_ route: Route, request: ServerRequest) async throws -> ServerResponse {
        let sender = try peers.authenticate(
            sender: request.headers.first(name: PeerProtocol.nodeHeader),
            authorization: request.headers.first(name: "authorization"))
        switch route {
        case .hello:
            return try json(await peers.hello(from: sender, body: Array(buffer: request.body)))
        case .push:
            return try json(
                await peers.push(
                    from: sender, epoch: request.headers.first(name: PeerProtocol.epochHeader),
                    lane: request.headers.first(name: PeerProtocol.laneHeader),
                    clock: request.headers.first(name: PeerProtocol.clockHeader),
                    covered: request.headers.first(name: PeerProtocol.coveredHeader),
                    body: Array(buffer: request.body)))
        case .bucket:
            let query = try QueryParameters(request.query)
            let body = try await peers.bucket(for: sender, bucket: query["bucket"])
            return ServerResponse(contentType: PeerProtocol.batchContentType, bytes: ByteBuffer(bytes: body))
        case .peerKey:
            let query = try QueryParameters(request.query)
            let body = try await peers.copy(for: sender, key: query["key"])
            return ServerResponse(contentType: PeerProtocol.batchContentType, bytes: ByteBuffer(bytes: body))
        case .repair:
            let reply = try await peers.repair(from: sender, body: Array(buffer: request.body))
            metrics.countRepairReceived(reply.applied)
            return try json(reply)
        default:
            let query = try QueryParameters(request.query)
            let feed = try await peers.feed(for: sender, after: query["after"], limit: query["limit"], covered: query["covered"])
            var response = ServerResponse(contentType: PeerProtocol.batchContentType, bytes: ByteBuffer(bytes: feed.body))
            response.headers.add(name: PeerProtocol.epochHeader, value: feed.epoch)
            response.headers.add(name: PeerProtocol.lastSeqHeader, value: String(feed.lastSeq))
            response.headers.add(name: PeerProtocol.clockHeader, value: String(feed.clock))
            response.headers.add(name: PeerProtocol.coveredHeader, value: PeerProtocol.coverageText(feed.coverage))
            return response
        }
    }

    /// `DELETE /members/{id}`: marks the member removed everywhere (docs/operations.md).
    private func removeMember(_ encoded: Substring) async throws -> MembersReply {
        let text = String(decoding: (try? KeyPath.decode(encoded)) ?? Array(encoded.utf8), as: UTF8.self)
        let id: NodeID
        do {
            id = try NodeID(text)
        } catch {
            throw APIError(status: .badRequest, code: "invalid_member", detail: "\(error)")
        }
        guard try await replicator.removeMember(id) else {
            throw APIError(
                status: .notFound, code: "no_such_member",
                detail: "\(id) is not a member known to node \(nodeID); kv members lists them")
        }
        return try await replicator.membersReply()
    }

    /// Largest push body accepted: a full batch of keys and values plus the framing.
    static let maxBatchBytes = PeerProtocol.defaultBatchBytes + (64 << 20)

    private func decodeKey(_ encoded: Substring) throws -> String {
        try KeyRules.validate(utf8: KeyPath.decode(encoded))
    }

    private func getReply(key: String, _ stored: StoredRecord?) -> ServerResponse {
        guard let stored, let value = stored.record.value(at: ExpiryClock.nowMilliseconds()) else {
            return APIError.notFound(key: key, node: nodeID).response()
        }
        let version = stored.record.version
        var headers: HTTPHeaders = [
            "content-type": "application/octet-stream",
            HeaderName.lamport: String(version.lamport),
            HeaderName.origin: version.origin.rawValue,
        ]
        if let expiresAt = stored.record.expiresAt { headers.add(name: HeaderName.expires, value: String(expiresAt)) }
        return ServerResponse(status: .ok, headers: headers, body: .bytes(ByteBuffer(bytes: value)))
    }

    /// `GET /kv/{key}?r=N`: the newest copy among this node's and N−1 peers', with read repair.
    private func readAtSeveralNodes(_ key: String, level: ReadLevel) async -> ServerResponse {
        let read: SeveralNodeRead
        do {
            read = try await replicator.read(key: key, atNodes: level.nodes, timeout: level.timeout) { [metrics] node in
                metrics.countReadRepair(of: node)
            }
        } catch let shortfall as ReadShortfall {
            let answered = shortfall.answeredBy.map(\.rawValue)
            let body = ErrorBody(
                error: "read_timeout",
                detail: "r=\(level.asked) needs \(level.nodes) nodes but only \(answered.joined(separator: ", ")) answered\(shortfall.timedOut ? " within \(level.timeout)" : "")\(shortfall.failures.isEmpty ? "" : " (" + shortfall.failures.joined(separator: "; ") + ")"); retry, or read with a lower r",
                answeredBy: answered)
            var response = (try? json(body)) ?? json(raw: #"{"error":"read_timeout"}"#)
            response.status = .gatewayTimeout
            return response
        } catch {
            return failure(error, method: .GET, route: .key(""))
        }
        guard let newest = read.resolution.newest else { return getReply(key: key, nil) }
        var response = getReply(key: key, StoredRecord(record: newest, seq: 0))
        response.headers.add(name: HeaderName.answeredBy, value: read.answeredBy.map(\.rawValue).joined(separator: ","))
        return response
    }

    /// Longest `ttl` a PUT may give: 100 years, far below where milliseconds overflow.
    static let maxTTLSeconds: Int64 = 100 * 365 * 86_400

    /// The expiry a PUT's `?ttl=SECONDS` asks for (milliseconds since the epoch), nil without one.
    static func expiry(_ query: Substring?) throws -> Int64? {
        guard let query, !query.isEmpty else { return nil }
        guard let text = try QueryParameters(query)["ttl"] else { return nil }
        guard let seconds = Int64(text), (1...maxTTLSeconds).contains(seconds) else {
            throw APIError.invalidParameter("ttl must be a whole number of seconds from 1 to \(maxTTLSeconds), got '\(text.prefix(64))'")
        }
        return ExpiryClock.nowMilliseconds() + seconds * 1000
    }

    private func list(_ queryText: Substring?) async throws -> ServerResponse {
        let query = try QueryParameters(queryText)
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

    /// The answer to a write that waited for `acknowledgement.nodes` nodes: 200 with `acked_by`
    /// when enough held it, else 504 `write_timeout` naming those that did.
    private func acknowledgedReply(_ receipt: WriteReceipt, acknowledgement: WriteAcknowledgement, held: [NodeID]) -> ServerResponse {
        let ackedBy = [nodeID.rawValue] + held.map(\.rawValue)
        if ackedBy.count >= acknowledgement.nodes {
            let reply = WriteReply(
                key: receipt.key, lamport: receipt.version.lamport, origin: receipt.version.origin.rawValue, ackedBy: ackedBy)
            return (try? json(reply)) ?? writeReply(receipt)
        }
        let body = ErrorBody(
            error: "write_timeout",
            detail: "the write \(receipt.key)@\(receipt.version) is stored on \(ackedBy.joined(separator: ", ")) but \(acknowledgement.nodes) nodes were asked for (w=\(acknowledgement.asked)) and no more held it within \(acknowledgement.timeout); it stays and will replicate, and a retry is harmless",
            ackedBy: ackedBy)
        var response = (try? json(body)) ?? json(raw: #"{"error":"write_timeout"}"#)
        response.status = .gatewayTimeout
        return response
    }

    private func writeReply(_ receipt: WriteReceipt) -> ServerResponse {
        ServerResponse(contentType: "application/json", bytes: FastJSON.writeReply(WriteReply(receipt)))
    }

    func json(_ value: some Encodable) throws -> ServerResponse {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = try encoder.encode(value)
        return ServerResponse(contentType: "application/json", bytes: ByteBuffer(bytes: data))
    }

    private func json(raw: String) -> ServerResponse {
        ServerResponse(contentType: "application/json", bytes: ByteBuffer(string: raw))
    }
}

/// The query string of a request, percent-decoded strictly: a `%` not followed by two hex
/// digits, or a value that is not UTF-8, is a 400 rather than a value taken literally. The first
/// occurrence of a name wins.
struct QueryParameters {
    private var values: [String: String] = [:]

    init(_ query: Substring?) throws {
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
    case peerKey
    case repair
    case join
    case members
    case member(Substring)
    case unknown

    init(path: Substring) {
        // On the UTF-8 view: it is the hot path, and `Character` walking is not free.
        if path.utf8.starts(with: "/kv/".utf8) {
            self = .key(path[path.utf8.index(path.startIndex, offsetBy: 4)...])
            return
        }
        if path.utf8.starts(with: "/members/".utf8) {
            self = .member(path[path.utf8.index(path.startIndex, offsetBy: 9)...])
            return
        }
        switch String(path) {
        case "/kv": self = .list
        case "/status": self = .status
        case "/health": self = .health
        case "/metrics": self = .metrics
        case "/digest": self = .digest
        case "/watch": self = .watch
        case PeerProtocol.helloPath: self = .hello
        case PeerProtocol.pushPath: self = .push
        case PeerProtocol.feedPath: self = .feed
        case PeerProtocol.bucketPath: self = .bucket
        case PeerProtocol.keyPath: self = .peerKey
        case PeerProtocol.repairPath: self = .repair
        case PeerProtocol.joinPath: self = .join
        case "/members": self = .members
        default: self = .unknown
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
        case .peerKey: return PeerProtocol.keyPath
        case .repair: return PeerProtocol.repairPath
        case .join: return PeerProtocol.joinPath
        case .members: return "/members"
        case .member: return "/members/{id}"
        case .unknown: return "unknown"
        }
    }

    var isKey: Bool {
        if case .key = self { return true }
        return false
    }

    /// The routes of the public API and the methods each serves: what `docs/openapi.yaml`
    /// must describe, no more and no less (`OpenAPIRouteTests` compares them). A new public
    /// route goes here and into that file.
    static let publicRoutes: [Route] = [.key(""), .list, .status, .health, .metrics, .digest, .watch, .members, .member("")]

    /// `publicRoutes` as path pattern → method names, the form `docs/openapi.yaml` has.
    static var publicOperations: [String: Set<String>] {
        Dictionary(uniqueKeysWithValues: publicRoutes.map { ($0.pattern, Set($0.allowedMethods.map(\.rawValue))) })
    }

    /// The routes of the peer protocol under `/internal/`, guarded by the cluster token.
    var isPeerRoute: Bool {
        switch self {
        case .hello, .push, .feed, .bucket, .peerKey, .repair, .join: return true
        case .key, .list, .status, .health, .metrics, .digest, .watch, .members, .member, .unknown: return false
        }
    }

    var allowedMethods: [HTTPMethod] {
        switch self {
        case .key: return [.GET, .PUT, .DELETE]
        case .list, .status, .health, .metrics, .feed, .digest, .watch, .bucket, .peerKey, .members: return [.GET]
        case .member: return [.DELETE]
        case .hello, .push, .repair, .join: return [.POST]
        case .unknown: return []
        }
    }
}

extension WriteReply {
    init(_ receipt: WriteReceipt) {
        self.init(key: receipt.key, lamport: receipt.version.lamport, origin: receipt.version.origin.rawValue)
    }
}

/// How many nodes must hold a write before a `PUT` or `DELETE` answers (`?w=N|quorum|all`,
/// default 1: this node), and how long to wait for them (`?timeout=SECONDS`, default 5).
struct WriteAcknowledgement: Sendable {
    /// Nodes, this one included.
    let nodes: Int
    let timeout: Duration
    /// The `w` as the request gave it.
    let asked: String

    static let defaultTimeout: Duration = .seconds(5)

    init(_ query: Substring?, members: Int) throws {
        let parameters = try QueryParameters(query)
        (nodes, asked) = try NodeCount.parse(parameters, name: "w", members: members)
        timeout = try NodeCount.timeout(parameters, default: Self.defaultTimeout)
    }
}

/// How many nodes a `GET /kv/{key}` reads at (`?r=N|quorum|all`, default 1: this node alone),
/// and how long it waits for them (`?timeout=SECONDS`, default 5).
struct ReadLevel: Sendable {
    /// Nodes, this one included.
    let nodes: Int
    let timeout: Duration
    /// The `r` as the request gave it.
    let asked: String

    init(_ query: Substring?, members: Int) throws {
        guard let query, !query.isEmpty else {
            (nodes, asked, timeout) = (1, "1", WriteAcknowledgement.defaultTimeout)
            return
        }
        let parameters = try QueryParameters(query)
        (nodes, asked) = try NodeCount.parse(parameters, name: "r", members: members)
        timeout = try NodeCount.timeout(parameters, default: WriteAcknowledgement.defaultTimeout)
    }
}

/// The `w`/`r` parameters' shared grammar: a number of nodes from 1, `quorum` (a majority of
/// the members) or `all`; and `timeout`, in seconds.
enum NodeCount {
    static func parse(_ parameters: QueryParameters, name: String, members: Int) throws -> (nodes: Int, asked: String) {
        let text = parameters[name] ?? "1"
        switch text {
        case "quorum": return (members / 2 + 1, text)
        case "all": return (members, text)
        default:
            guard let count = Int(text), count >= 1 else {
                throw APIError.invalidParameter("\(name) must be a number of nodes from 1, quorum or all, got '\(text.prefix(64))'")
            }
            guard count <= members else {
                throw APIError.invalidParameter("\(name)=\(count) but the cluster has \(members) member\(members == 1 ? "" : "s"); ask for at most \(members) (or all)")
            }
            return (count, text)
        }
    }

    static func timeout(_ parameters: QueryParameters, default fallback: Duration) throws -> Duration {
        guard let seconds = parameters["timeout"] else { return fallback }
        guard let value = Double(seconds), value > 0, value <= 300 else {
            throw APIError.invalidParameter("timeout must be a number of seconds above 0 and at most 300, got '\(seconds.prefix(64))'")
        }
        return .milliseconds(Int64(value * 1000))
    }
}
