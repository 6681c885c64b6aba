import KVCore
import KVStore
import Replication

/// The in-memory transport behind the admission the HTTP routes do first: every peer route
/// asks the target's endpoint to admit the sender (`PeerEndpoint.authenticate`: a removed
/// member gets 403 `removedMember`, a stranger 403 `unknownSender`) before it runs, as
/// `KVResponder.servePeer` does; `GET /digest` is a public route and admits anyone.
struct AdmittingTransport: PeerTransport {
    let endpoint: PeerEndpoint
    let sender: NodeID
    private let inner: InMemoryPeerTransport

    init(to endpoint: PeerEndpoint, from sender: NodeID) {
        self.endpoint = endpoint
        self.sender = sender
        inner = InMemoryPeerTransport(to: endpoint, from: sender)
    }

    func hello(_ request: HelloRequest) async throws(PeerFailure) -> HelloReply {
        try admit()
        return try await inner.hello(request)
    }

    func push(_ request: PushRequest) async throws(PeerFailure) -> PushAnswer {
        try admit()
        return try await inner.push(request)
    }

    func feed(after: Int64, limit: Int, covered: [FeedExclusion], epoch: String) async throws(PeerFailure) -> FetchedFeed {
        try admit()
        return try await inner.feed(after: after, limit: limit, covered: covered, epoch: epoch)
    }

    func digest(epoch: String) async throws(PeerFailure) -> DigestReply {
        try await inner.digest(epoch: epoch)
    }

    func bucket(_ bucket: Int, epoch: String) async throws(PeerFailure) -> FeedBatch {
        try admit()
        return try await inner.bucket(bucket, epoch: epoch)
    }

    func copy(of key: String) async throws(PeerFailure) -> Record? {
        try admit()
        return try await inner.copy(of: key)
    }

    func repair(_ records: [Record]) async throws(PeerFailure) -> RepairReply {
        try admit()
        return try await inner.repair(records)
    }

    func close() async {}

    /// Refuses as `HTTPPeerTransport` reports a 403.
    private func admit() throws(PeerFailure) {
        do {
            _ = try endpoint.authenticate(sender: sender.rawValue, authorization: nil)
        } catch {
            throw PeerFailure("peer \(endpoint.identity) refused: \(error.status) \(error)")
        }
    }
}
