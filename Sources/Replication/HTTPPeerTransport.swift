public import KVCore
public import KVStore
import NodeHTTP
import Foundation
import Synchronization

/// The peer protocol over HTTP/1.1 (docs/protocol.md): one keep-alive connection for pushes
/// and hellos, another for pulls and digest repair, so a long pull never holds up a push, and
/// a few for reads at several nodes (`?r=`), so those neither wait behind a pull nor queue on
/// one connection.
/// Every request carries `KV-Node`, `KV-Epoch` and, in a cluster with a token, the token.
public final class HTTPPeerTransport: PeerTransport {
    public let peer: PeerConfig
    private let identity: NodeID
    private let clusterToken: String?
    private let pushConnection: NodeHTTPClient
    private let pullConnection: NodeHTTPClient
    private let readConnections: [NodeHTTPClient]
    private let nextRead = Atomic<Int>(0)

    /// Connections for reads at several nodes, per peer.
    static let readConnectionCount = 8

    public init(peer: PeerConfig, configuration: ReplicationConfiguration) throws {
        self.peer = peer
        identity = configuration.identity
        clusterToken = configuration.clusterToken
        pushConnection = try NodeHTTPClient(node: peer.url, timeout: configuration.requestTimeout, tls: configuration.peerTLS)
        pullConnection = try NodeHTTPClient(node: peer.url, timeout: configuration.requestTimeout, tls: configuration.peerTLS)
        readConnections = try (0..<Self.readConnectionCount).map { _ in
            try NodeHTTPClient(node: peer.url, timeout: configuration.requestTimeout, tls: configuration.peerTLS)
        }
    }

    public func hello(_ request: HelloRequest) async throws(PeerFailure) -> HelloReply {
        let body: [UInt8]
        do {
            body = Array(try JSONEncoder().encode(request))
        } catch {
            throw PeerFailure("cannot encode the hello: \(error)")
        }
        let reply = try await send(
            pushConnection, "POST", PeerProtocol.helloPath, body: body, epoch: request.epoch,
            extra: [("Content-Type", "application/json")])
        guard reply.status == 200 else { throw refusal(reply) }
        return try decode(HelloReply.self, reply)
    }

    public func push(_ request: PushRequest) async throws(PeerFailure) -> PushAnswer {
        var extra = [("Content-Type", PeerProtocol.batchContentType)]
        if request.lane == .own { extra.append((PeerProtocol.laneHeader, "own")) }
        if let clock = request.clock {
            extra.append((PeerProtocol.clockHeader, String(clock)))
            if !request.coverage.isEmpty { extra.append((PeerProtocol.coveredHeader, PeerProtocol.coverageText(request.coverage))) }
        }
        let reply = try await send(
            pushConnection, "POST", PeerProtocol.pushPath, body: FeedCodec.encode(request.batch), epoch: request.epoch,
            extra: extra)
        switch reply.status {
        case 200: return .accepted(try decode(PushReply.self, reply))
        case 409: return .resynchronise(Self.detail(of: reply))
        default: throw refusal(reply)
        }
    }

    public func feed(after: Int64, limit: Int, covered: [FeedExclusion], epoch: String) async throws(PeerFailure) -> FetchedFeed {
        var path = "\(PeerProtocol.feedPath)?after=\(after)&limit=\(limit)"
        if !covered.isEmpty { path += "&covered=" + PeerProtocol.coverageText(covered) }
        let reply = try await send(pullConnection, "GET", path, epoch: epoch)
        guard reply.status == 200 else { throw refusal(reply) }
        guard let peerEpoch = reply.header(PeerProtocol.epochHeader) else {
            throw violation("the feed reply has no \(PeerProtocol.epochHeader) header")
        }
        guard let lastSeqText = reply.header(PeerProtocol.lastSeqHeader), let lastSeq = Int64(lastSeqText) else {
            throw violation("the feed reply has no \(PeerProtocol.lastSeqHeader) header")
        }
        let batch: FeedBatch
        do {
            batch = try FeedCodec.decode(reply.body)
        } catch {
            throw violation("the feed reply is not a valid batch: \(error)")
        }
        let clock = reply.header(PeerProtocol.clockHeader).flatMap(Int64.init).flatMap { $0 >= 0 ? $0 : nil }
        let coverage: [FeedExclusion]
        do {
            coverage = try PeerProtocol.parseCoverage(reply.header(PeerProtocol.coveredHeader))
        } catch {
            throw violation("the feed reply's \(PeerProtocol.coveredHeader) header: \(error)")
        }
        return FetchedFeed(batch: batch, epoch: peerEpoch, lastSeq: lastSeq, clock: clock, coverage: coverage)
    }

    public func digest(epoch: String) async throws(PeerFailure) -> DigestReply {
        let reply = try await send(pullConnection, "GET", "/digest", epoch: epoch)
        guard reply.status == 200 else { throw refusal(reply) }
        return try decode(DigestReply.self, reply)
    }

    public func bucket(_ bucket: Int, epoch: String) async throws(PeerFailure) -> FeedBatch {
        let digits = String(bucket, radix: 16)
        let reply = try await send(
            pullConnection, "GET", "\(PeerProtocol.bucketPath)?bucket=\(digits.count == 1 ? "0" + digits : digits)",
            epoch: epoch)
        guard reply.status == 200 else { throw refusal(reply) }
        do {
            return try FeedCodec.decode(reply.body)
        } catch {
            throw violation("the bucket reply is not a valid batch: \(error)")
        }
    }

    public func copy(of key: String) async throws(PeerFailure) -> Record? {
        let reply = try await send(readConnection(), "GET", "\(PeerProtocol.keyPath)?key=\(KeyPath.encode(key))", epoch: "")
        guard reply.status == 200 else { throw refusal(reply) }
        let batch: FeedBatch
        do {
            batch = try FeedCodec.decode(reply.body)
        } catch {
            throw violation("the key reply is not a valid batch: \(error)")
        }
        guard batch.rows.count <= 1, batch.rows.allSatisfy({ $0.record.key == key }) else {
            throw violation("the key reply holds rows other than key '\(key.prefix(64))'")
        }
        return batch.rows.first?.record
    }

    public func repair(_ records: [Record]) async throws(PeerFailure) -> RepairReply {
        let rows = records.enumerated().map { StoredRecord(record: $1, seq: Int64($0 + 1)) }
        let reply = try await send(
            readConnection(), "POST", PeerProtocol.repairPath, body: FeedCodec.encode(FeedBatch(from: 0, to: Int64(rows.count), rows: rows)),
            epoch: "", extra: [("Content-Type", PeerProtocol.batchContentType)])
        guard reply.status == 200 else { throw refusal(reply) }
        return try decode(RepairReply.self, reply)
    }

    public func close() async {
        await pushConnection.close()
        await pullConnection.close()
        for connection in readConnections { await connection.close() }
    }

    private func readConnection() -> NodeHTTPClient {
        let index = nextRead.wrappingAdd(1, ordering: .relaxed).oldValue
        return readConnections[Int(UInt(bitPattern: index) % UInt(readConnections.count))]
    }

    // MARK: Plumbing

    private func send(
        _ connection: NodeHTTPClient, _ method: String, _ path: String, body: [UInt8] = [], epoch: String,
        extra: [(String, String)] = []
    ) async throws(PeerFailure) -> HTTPReply {
        var headers = [(PeerProtocol.nodeHeader, identity.rawValue)]
        if !epoch.isEmpty { headers.append((PeerProtocol.epochHeader, epoch)) }
        if let clusterToken { headers.append(("Authorization", BearerToken.header(for: clusterToken))) }
        do {
            return try await connection.send(method, path, body: body, headers: headers + extra)
        } catch {
            throw PeerFailure("\(error)")
        }
    }

    private func decode<T: Decodable>(_ type: T.Type, _ reply: HTTPReply) throws(PeerFailure) -> T {
        do {
            return try JSONDecoder().decode(T.self, from: Data(reply.body))
        } catch {
            throw violation("the reply is not the expected JSON: \(error)")
        }
    }

    private func refusal(_ reply: HTTPReply) -> PeerFailure {
        PeerFailure("peer \(peer.id) refused: \(reply.status) \(Self.detail(of: reply))", asksForHello: reply.status == 409)
    }

    private func violation(_ detail: String) -> PeerFailure {
        PeerFailure("peer \(peer.id): \(detail)")
    }

    private static func detail(of reply: HTTPReply) -> String {
        if let body = try? JSONDecoder().decode(ErrorBody.self, from: Data(reply.body)) {
            return "\(body.error): \(body.detail)"
        }
        return String(decoding: reply.body.prefix(200), as: UTF8.self)
    }
}
