public import KVCore
public import KVStore
import Foundation

/// The serving side of the peer protocol: what a node does when another node greets it, pushes
/// a batch to it, or pulls its feed. Transport-free: `KVServer` maps the HTTP requests under
/// `/internal/` to these calls and `PeerRequestError` to statuses.
///
/// Every call first authenticates the sender (the cluster token, then a known peer id), before
/// any byte of the body is parsed into the store.
public struct PeerEndpoint: Sendable {
    let store: KVStore
    let identity: NodeID
    let knownPeers: Set<NodeID>
    let clusterToken: String?
    let batchRows: Int
    let batchBytes: Int
    let replicator: Replicator

    public init(store: KVStore, replicator: Replicator) {
        let configuration = replicator.configuration
        self.store = store
        self.replicator = replicator
        identity = configuration.identity
        knownPeers = Set(configuration.peers.map(\.id))
        clusterToken = configuration.clusterToken
        batchRows = configuration.batchRows
        batchBytes = configuration.batchBytes
    }

    /// Checks the token and the sender id; returns the sender.
    public func authenticate(sender: String?, authorization: String?) throws(PeerRequestError) -> NodeID {
        if let clusterToken {
            guard BearerToken.admits(authorization, token: clusterToken) else { throw .unauthorized }
        }
        guard let sender else { throw .unknownSender("(no \(PeerProtocol.nodeHeader) header)") }
        guard let id = try? NodeID(sender), knownPeers.contains(id) else { throw .unknownSender(sender) }
        return id
    }

    public func hello(from sender: NodeID, body: [UInt8]) async throws -> HelloReply {
        let request: HelloRequest
        do {
            request = try JSONDecoder().decode(HelloRequest.self, from: Data(body))
        } catch {
            throw PeerRequestError.malformed("the hello is not the expected JSON: \(error)")
        }
        guard request.id == sender.rawValue else {
            throw PeerRequestError.malformed("the hello says it is from \(request.id) but \(PeerProtocol.nodeHeader) says \(sender)")
        }
        _ = try await store.notePeerEpoch(sender, epoch: request.epoch)
        let state = try await store.feedPosition()
        let mark = try await store.peer(sender)?.pulledSeq ?? 0
        return HelloReply(id: identity.rawValue, epoch: state.epoch, seq: state.lastSeq, pulledSeq: mark)
    }

    /// Applies a pushed batch with the sender's mark. `clock` and `covered` are the `KV-Clock`
    /// and `KV-Covered` headers: set by a sender whose batch reached the end of its feed, they
    /// record what this node now holds of the sender's writes and of what the sender held.
    /// While this node's start-up catch-up runs and will pull the sender's feed
    /// (`Replicator.defersPushes`), a push is answered `deferred` without being applied, so no
    /// row arrives twice, pulled and pushed; the sender tries again a little later.
    public func push(
        from sender: NodeID, epoch: String?, clock: String? = nil, covered: String? = nil, body: [UInt8]
    ) async throws -> PushReply {
        try await requireGreeted(sender, epoch: epoch)
        if replicator.defersPushes(from: sender) {
            let mark = try await store.peer(sender)?.pulledSeq ?? 0
            return PushReply(pulledSeq: mark, applied: 0, deferred: true)
        }
        let batch: FeedBatch
        do {
            batch = try FeedCodec.decode(body)
        } catch {
            throw PeerRequestError.malformed(error.description)
        }
        var senderClock: Int64?
        if let clock {
            guard let value = Int64(clock), value >= 0 else {
                throw PeerRequestError.malformed("\(PeerProtocol.clockHeader) must be a Lamport time (a whole number ≥ 0)")
            }
            senderClock = value
        }
        let senderCoverage = try PeerProtocol.parseCoverage(covered)
        do {
            let result = try await store.applyFeed(
                from: sender, records: batch.rows.map(\.record), batchFrom: batch.from, batchTo: batch.to,
                senderClock: senderClock, senderCoverage: senderCoverage)
            await replicator.noteReceived(from: sender, rows: batch.rows.count, refused: result.refused)
            return PushReply(
                pulledSeq: result.mark, applied: result.applied, covered: Self.wire(try await store.coverage()))
        } catch let error as StoreError {
            if let mark = error.feedGapMark { throw PeerRequestError.gap(mark: mark) }
            throw error
        }
    }

    /// The feed after `after`, encoded, with this node's epoch, last seq, clock and coverage
    /// (`KV-Covered`, empty for none) for the headers. Leaves out the rows the sender has: its own writes (once it has been sent
    /// everything up to `resend_all_through`), and the writes of the nodes it names in
    /// `covered` (`A:120,B:7`: it holds A's writes up to Lamport time 120 and B's up to 7).
    public func feed(
        for sender: NodeID, after: String?, limit: String?, covered: String? = nil
    ) async throws -> (body: [UInt8], epoch: String, lastSeq: Int64, clock: Int64, coverage: String) {
        guard let after = after.flatMap(Int64.init), after >= 0 else {
            throw PeerRequestError.malformed("after must be a seq (a whole number ≥ 0)")
        }
        var rows = batchRows
        if let limit {
            guard let value = Int(limit), value >= 1 else { throw PeerRequestError.malformed("limit must be ≥ 1") }
            rows = min(value, batchRows)
        }
        let page = try await store.feed(
            for: sender, after: after, maxRows: rows, maxBytes: batchBytes, receiverHolds: try PeerProtocol.parseCoverage(covered))
        let body = FeedCodec.encode(FeedBatch(from: after, to: max(after, page.to), rows: page.rows))
        return (body, page.epoch, page.lastSeq, page.clock, PeerProtocol.coverageText(page.coverage))
    }

    /// Coverage as the push reply carries it; nil when there is none.
    static func wire(_ exclusions: [FeedExclusion]) -> [String: Int64]? {
        guard !exclusions.isEmpty else { return nil }
        return Dictionary(exclusions.map { ($0.origin.rawValue, $0.throughLamport) }, uniquingKeysWith: { max($0, $1) })
    }

    /// Every row of digest bucket `bucket` (two hex digits), encoded as a feed batch.
    public func bucket(for sender: NodeID, bucket text: String?) async throws -> [UInt8] {
        guard let text, text.utf8.count == 2, text.allSatisfy(\.isHexDigit), let bucket = Int(text, radix: 16) else {
            throw PeerRequestError.malformed("bucket must be two hex digits, 00 to ff")
        }
        let records = try await store.records(inBucket: bucket)
        let rows = records.enumerated().map { StoredRecord(record: $1, seq: Int64($0 + 1)) }
        return FeedCodec.encode(FeedBatch(from: 0, to: Int64(rows.count), rows: rows))
    }

    private func requireGreeted(_ sender: NodeID, epoch: String?) async throws {
        let known = try await store.peer(sender)?.epoch
        guard let epoch, let known, epoch == known else {
            throw PeerRequestError.notGreeted(sender.rawValue)
        }
    }
}

/// Why a peer request was refused; `KVServer` gives each its status.
public enum PeerRequestError: Error, Equatable, CustomStringConvertible {
    /// 401: the cluster token is missing or wrong.
    case unauthorized
    /// 403: the sender is not one of this node's peers.
    case unknownSender(String)
    /// 400: the body or a parameter cannot be parsed.
    case malformed(String)
    /// 409: the sender must greet (hello) first, e.g. after its epoch changed.
    case notGreeted(String)
    /// 409: the batch starts beyond this node's mark; the sender must rewind to `mark`.
    case gap(mark: Int64)

    public var description: String {
        switch self {
        case .unauthorized:
            return "missing or wrong cluster token (Authorization: Bearer …); check --cluster-token-file on both nodes"
        case .unknownSender(let sender):
            return "node \(sender) is not a peer of this node; add it with --peer"
        case .malformed(let detail):
            return detail
        case .notGreeted(let sender):
            return "node \(sender) must say hello first (its epoch is not the one this node knows)"
        case .gap(let mark):
            return "the batch starts after this node's mark \(mark); resend from \(mark)"
        }
    }
}
