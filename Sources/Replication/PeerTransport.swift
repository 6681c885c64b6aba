public import KVCore
public import KVStore

/// How this node's requests reach one peer's `PeerEndpoint`: the peer protocol's calls,
/// typed. `HTTPPeerTransport` carries them over HTTP/1.1 (docs/protocol.md);
/// `InMemoryPeerTransport` hands them straight to another endpoint in the same process (tests
/// and the simulator).
///
/// A call that the peer refuses with "greet first" (409) comes back as
/// `PushAnswer.resynchronise` for a push and as a `PeerFailure` with `asksForHello` otherwise;
/// every other failure is a `PeerFailure` whose description is one line naming the peer.
public protocol PeerTransport: Sendable {
    func hello(_ request: HelloRequest) async throws(PeerFailure) -> HelloReply
    func push(_ request: PushRequest) async throws(PeerFailure) -> PushAnswer
    /// The peer's feed after `after`, at most `limit` rows, leaving out what `covered` names.
    func feed(after: Int64, limit: Int, covered: [FeedExclusion], epoch: String) async throws(PeerFailure) -> FetchedFeed
    func digest(epoch: String) async throws(PeerFailure) -> DigestReply
    func bucket(_ bucket: Int, epoch: String) async throws(PeerFailure) -> FeedBatch
    /// The peer's copy of `key`, tombstone included; nil when it holds none (a read at several
    /// nodes, `?r=`).
    func copy(of key: String) async throws(PeerFailure) -> Record?
    /// Sends the peer rows a read found it lacking (read repair).
    func repair(_ records: [Record]) async throws(PeerFailure) -> RepairReply
    /// Closes the connections; later calls may open new ones.
    func close() async
}

/// A transport wired straight to another node's `PeerEndpoint` in this process: every call
/// runs the endpoint's own code (authentication of the sender, decoding of the batch, the
/// store's transaction), without sockets. The batch still goes through `FeedCodec`, so the
/// framing is exercised as on the wire.
public struct InMemoryPeerTransport: PeerTransport {
    let endpoint: PeerEndpoint
    let sender: NodeID

    public init(to endpoint: PeerEndpoint, from sender: NodeID) {
        self.endpoint = endpoint
        self.sender = sender
    }

    public func hello(_ request: HelloRequest) async throws(PeerFailure) -> HelloReply {
        try await call { try await endpoint.hello(from: sender, request: request) }
    }

    public func push(_ request: PushRequest) async throws(PeerFailure) -> PushAnswer {
        do {
            let reply = try await endpoint.push(
                from: sender, epoch: request.epoch, lane: request.lane, clock: request.clock,
                covered: request.coverage, body: FeedCodec.encode(request.batch))
            return .accepted(reply)
        } catch let error as PeerRequestError {
            switch error {
            case .notGreeted, .gap: return .resynchronise(error.description)
            default: throw PeerFailure("peer \(endpoint.identity) refused: \(error.status) \(error)")
            }
        } catch {
            throw PeerFailure("peer \(endpoint.identity): \(error)")
        }
    }

    public func feed(after: Int64, limit: Int, covered: [FeedExclusion], epoch: String) async throws(PeerFailure) -> FetchedFeed {
        try await call {
            let page = try await endpoint.feedPage(for: sender, epoch: epoch, after: after, limit: limit, covered: covered)
            return FetchedFeed(
                batch: try FeedCodec.decode(page.body), epoch: page.epoch, lastSeq: page.lastSeq, clock: page.clock,
                coverage: page.coverage)
        }
    }

    public func digest(epoch: String) async throws(PeerFailure) -> DigestReply {
        try await call { try await Replicator.digestReply(of: endpoint.store) }
    }

    public func bucket(_ bucket: Int, epoch: String) async throws(PeerFailure) -> FeedBatch {
        try await call { try FeedCodec.decode(try await endpoint.bucket(for: sender, bucket: bucket)) }
    }

    public func copy(of key: String) async throws(PeerFailure) -> Record? {
        try await call { try await endpoint.copy(of: key) }
    }

    public func repair(_ records: [Record]) async throws(PeerFailure) -> RepairReply {
        let rows = records.enumerated().map { StoredRecord(record: $1, seq: Int64($0 + 1)) }
        let body = FeedCodec.encode(FeedBatch(from: 0, to: Int64(rows.count), rows: rows))
        return try await call { try await endpoint.repair(from: sender, body: body) }
    }

    public func close() async {}

    private func call<T>(_ body: () async throws -> T) async throws(PeerFailure) -> T {
        do {
            return try await body()
        } catch let error as PeerRequestError {
            throw PeerFailure("peer \(endpoint.identity) refused: \(error.status) \(error)", asksForHello: error.status == 409)
        } catch {
            throw PeerFailure("peer \(endpoint.identity): \(error)")
        }
    }
}
