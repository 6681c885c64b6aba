public import KVCore
public import KVStore
import Foundation
import Synchronization

/// The serving side of the peer protocol: what a node does when another node greets it, pushes
/// a batch to it, or pulls its feed. Transport-free: `KVServer` maps the HTTP requests under
/// `/internal/` to these calls and `PeerRequestError` to statuses.
///
/// Every call first authenticates the sender (the cluster token, then a known peer id), before
/// any byte of the body is parsed into the store.
public struct PeerEndpoint: Sendable {
    let store: KVStore
    public let identity: NodeID
    public let membership: Membership
    let clusterToken: String?
    let batchRows: Int
    let batchBytes: Int
    let gate: any ReplicationGate
    /// Per sender, the seq up to which its own lane has been applied here since it last
    /// greeted this process (docs/protocol.md, "Two lanes"). Not stored: after a restart, an
    /// own batch must start at or below the mark, or the sender greets again.
    let ownLanes = OwnLaneMarks()

    public init(
        store: KVStore, configuration: ReplicationConfiguration, gate: any ReplicationGate, membership: Membership? = nil
    ) {
        self.store = store
        self.gate = gate
        identity = configuration.identity
        self.membership = membership ?? Membership(identity: configuration.identity, seeds: configuration.peers)
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
        guard let id = try? NodeID(sender) else { throw .unknownSender(sender) }
        switch membership.admission(of: id) {
        case .member: return id
        case .removed: throw .removedMember(id.rawValue)
        case .stranger: throw .unknownSender(sender)
        }
    }

    // MARK: Join

    /// Checks the cluster token only: a joining node is not a member yet.
    public func authenticateJoin(authorization: String?) throws(PeerRequestError) {
        if let clusterToken {
            guard BearerToken.admits(authorization, token: clusterToken) else { throw .unauthorized }
        }
    }

    /// A join as JSON (`POST /internal/join`).
    public func join(body: [UInt8]) async throws -> MembersReply {
        let request: JoinRequest
        do {
            request = try JSONDecoder().decode(JoinRequest.self, from: Data(body))
        } catch {
            throw PeerRequestError.malformed("the join is not the expected JSON {id, url, epoch}: \(error)")
        }
        return try await join(request)
    }

    /// Adds the sender to the cluster (docs/protocol.md, "Join"): writes its member row and
    /// answers with every member this node knows, removed ones included. Joining again with
    /// the same id, URL and epoch writes nothing. A removed member is refused unless its file is
    /// a fresh one (another epoch).
    public func join(_ request: JoinRequest) async throws -> MembersReply {
        let id: NodeID
        do {
            id = try NodeID(request.id)
        } catch {
            throw PeerRequestError.malformed("the join's id: \(error)")
        }
        guard id != identity else { throw PeerRequestError.malformed("node \(id) cannot join itself") }
        guard request.url.hasPrefix("http://") || request.url.hasPrefix("https://"), !request.url.contains(" "),
            !request.epoch.isEmpty, !request.epoch.contains(" ")
        else {
            throw PeerRequestError.malformed("the join needs an http(s) URL without spaces and the file's epoch")
        }
        try await membership.refresh(from: store)
        let rows = Dictionary(membership.rows.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        if let row = rows[id], row.state == .removed, row.epoch == request.epoch {
            throw PeerRequestError.removedMember(id.rawValue)
        }
        // Only the joiner's row: a row written here for another member (one known only from
        // flags) could be newer than a removal of it written elsewhere and not arrived yet, and
        // would undo that removal (found by the simulator, seed 0x5EED_0000 + 177).
        let joiner = Member(id: id, url: request.url, state: .active, epoch: request.epoch)
        if rows[id] != joiner { try await store.write(joiner) }
        try await membership.refresh(from: store)
        return MembersReply(
            node: identity.rawValue,
            members: membership.all.map { MemberInfo(id: $0.id.rawValue, url: $0.url, state: $0.state.rawValue, reachable: nil, since: nil) },
            clock: try await store.feedPosition().clock)
    }

    // MARK: Hello

    /// A hello as JSON (`POST /internal/hello`).
    public func hello(from sender: NodeID, body: [UInt8]) async throws -> HelloReply {
        let request: HelloRequest
        do {
            request = try JSONDecoder().decode(HelloRequest.self, from: Data(body))
        } catch {
            throw PeerRequestError.malformed("the hello is not the expected JSON: \(error)")
        }
        return try await hello(from: sender, request: request)
    }

    /// Records the sender's epoch (resetting this node's marks of it when it changed) and
    /// answers with this node's id, epoch, last seq and mark of the sender's feed.
    public func hello(from sender: NodeID, request: HelloRequest) async throws -> HelloReply {
        guard request.id == sender.rawValue else {
            throw PeerRequestError.malformed("the hello says it is from \(request.id) but \(PeerProtocol.nodeHeader) says \(sender)")
        }
        if try await store.peer(sender) == nil, let member = membership.activePeers.first(where: { $0.id == sender }) {
            // A member that joined a moment ago: its row arrived before this node's replicator
            // recorded it as a peer.
            try await store.configurePeers([member])
        }
        _ = try await store.notePeerEpoch(sender, epoch: request.epoch)
        let state = try await store.feedPosition()
        let mark = try await store.peer(sender)?.pulledSeq ?? 0
        ownLanes.reset(sender, to: mark)
        gate.greeted(by: sender)
        return HelloReply(id: identity.rawValue, epoch: state.epoch, seq: state.lastSeq, pulledSeq: mark)
    }

    // MARK: Push

    /// A push as the HTTP route receives it: `lane`, `clock` and `covered` are the `KV-Lane`,
    /// `KV-Clock` and `KV-Covered` headers.
    public func push(
        from sender: NodeID, epoch: String?, lane: String? = nil, clock: String? = nil, covered: String? = nil,
        body: [UInt8]
    ) async throws -> PushReply {
        var senderClock: Int64?
        if let clock {
            guard let value = Int64(clock), value >= 0 else {
                throw PeerRequestError.malformed("\(PeerProtocol.clockHeader) must be a Lamport time (a whole number ≥ 0)")
            }
            senderClock = value
        }
        let parsedLane: PushRequest.Lane
        switch lane {
        case nil, "feed": parsedLane = .feed
        case "own": parsedLane = .own
        case let other?: throw PeerRequestError.malformed("\(PeerProtocol.laneHeader) must be feed or own, not \(other)")
        }
        return try await push(
            from: sender, epoch: epoch, lane: parsedLane, clock: senderClock, covered: try PeerProtocol.parseCoverage(covered),
            body: body)
    }

    /// Applies a pushed batch (DESIGN.md §3, docs/protocol.md).
    ///
    /// `.feed` lane: the rows with the sender's mark, in one transaction; `clock` (set by a
    /// sender whose batch reached the end of its feed) and `covered` record what this node now
    /// holds of the sender's writes and of what the sender held. `.own` lane: the sender's own
    /// writes, without moving the mark; accepted only when the batch continues what the sender
    /// sent since it greeted (else `.gap`), and then `clock` records that this node holds every
    /// write of the sender up to it. While this node's start-up catch-up runs and will pull the
    /// sender's feed (`ReplicationGate.defersPushes`), a push is answered `deferred` without
    /// being applied, so no row arrives twice, pulled and pushed; the sender tries again later.
    public func push(
        from sender: NodeID, epoch: String?, lane: PushRequest.Lane, clock: Int64?, covered: [FeedExclusion],
        body: [UInt8]
    ) async throws -> PushReply {
        try await requireGreeted(sender, epoch: epoch)
        if gate.defersPushes(from: sender) {
            let mark = try await store.peer(sender)?.pulledSeq ?? 0
            return PushReply(pulledSeq: mark, applied: 0, deferred: true)
        }
        let batch: FeedBatch
        do {
            batch = try FeedCodec.decode(body)
        } catch {
            throw PeerRequestError.malformed(error.description)
        }
        let records = batch.rows.map(\.record)
        let result: PeerApplyResult
        do {
            switch lane {
            case .feed:
                result = try await store.applyFeed(
                    from: sender, records: records, batchFrom: batch.from, batchTo: batch.to, senderClock: clock,
                    senderCoverage: covered)
            case .own:
                let mark = try await store.peer(sender)?.pulledSeq ?? 0
                guard batch.from <= max(mark, ownLanes.mark(of: sender) ?? mark) else {
                    throw PeerRequestError.gap(mark: mark)
                }
                result = try await store.applyOwnWrites(from: sender, records: records, senderClock: clock)
                ownLanes.advance(sender, to: batch.to)
            }
        } catch let error as StoreError {
            if let mark = error.feedGapMark { throw PeerRequestError.gap(mark: mark) }
            if case .invalidRecord = error { throw PeerRequestError.malformed(error.description) }
            throw error
        }
        gate.received(from: sender, rows: batch.rows.count, refused: result.refused, mark: result.mark)
        return PushReply(pulledSeq: result.mark, applied: result.applied, covered: Self.wire(try await store.coverage()))
    }

    // MARK: Feed

    /// One page of this node's feed for `sender`, encoded, with what goes in the reply's headers.
    public struct FeedReply: Sendable {
        public let body: [UInt8]
        public let epoch: String
        public let lastSeq: Int64
        public let clock: Int64
        public let coverage: [FeedExclusion]
    }

    /// The feed as the HTTP route receives its parameters (`after`, `limit`, `covered`).
    public func feed(for sender: NodeID, after: String?, limit: String?, covered: String? = nil) async throws -> FeedReply {
        guard let after = after.flatMap(Int64.init), after >= 0 else {
            throw PeerRequestError.malformed("after must be a seq (a whole number ≥ 0)")
        }
        var rows = batchRows
        if let limit {
            guard let value = Int(limit), value >= 1 else { throw PeerRequestError.malformed("limit must be ≥ 1") }
            rows = value
        }
        return try await feedPage(for: sender, epoch: nil, after: after, limit: rows, covered: try PeerProtocol.parseCoverage(covered))
    }

    /// The feed after `after`, at most `limit` rows (and the node's batch limits), with this
    /// node's epoch, last seq, clock and coverage, read in the page's snapshot. Leaves out the
    /// rows the sender has: its own writes (once it has been sent everything up to
    /// `resend_all_through`), and the writes of the nodes it names in `covered`.
    public func feedPage(for sender: NodeID, epoch: String?, after: Int64, limit: Int, covered: [FeedExclusion]) async throws -> FeedReply {
        let page = try await store.feed(
            for: sender, after: after, maxRows: min(max(1, limit), batchRows), maxBytes: batchBytes, receiverHolds: covered)
        let body = FeedCodec.encode(FeedBatch(from: after, to: max(after, page.to), rows: page.rows))
        return FeedReply(body: body, epoch: page.epoch, lastSeq: page.lastSeq, clock: page.clock, coverage: page.coverage)
    }

    /// Coverage as the push reply carries it; nil when there is none.
    static func wire(_ exclusions: [FeedExclusion]) -> [String: Int64]? {
        guard !exclusions.isEmpty else { return nil }
        return Dictionary(exclusions.map { ($0.origin.rawValue, $0.throughLamport) }, uniquingKeysWith: { max($0, $1) })
    }

    // MARK: Digest repair

    /// Every row of digest bucket `bucket` (two hex digits), encoded as a feed batch.
    public func bucket(for sender: NodeID, bucket text: String?) async throws -> [UInt8] {
        guard let text, text.utf8.count == 2, text.allSatisfy(\.isHexDigit), let bucket = Int(text, radix: 16) else {
            throw PeerRequestError.malformed("bucket must be two hex digits, 00 to ff")
        }
        return try await self.bucket(for: sender, bucket: bucket)
    }

    /// Every row of digest bucket `bucket` (0–255), encoded as a feed batch with seqs 1…n.
    public func bucket(for sender: NodeID, bucket: Int) async throws -> [UInt8] {
        let records = try await store.records(inBucket: bucket)
        let rows = records.enumerated().map { StoredRecord(record: $1, seq: Int64($0 + 1)) }
        return FeedCodec.encode(FeedBatch(from: 0, to: Int64(rows.count), rows: rows))
    }

    // MARK: Reads at several nodes

    /// This node's copy of `key` (`GET /internal/key?key=K`), tombstone included, as a feed
    /// batch of zero or one row.
    public func copy(for sender: NodeID, key text: String?) async throws -> [UInt8] {
        guard let text else { throw PeerRequestError.malformed("key is required") }
        let key = text
        do {
            try KeyRules.validate(key)
        } catch {
            throw PeerRequestError.malformed("key is not a valid key: \(error)")
        }
        let rows = try await copy(of: key).map { [StoredRecord(record: $0, seq: 1)] } ?? []
        return FeedCodec.encode(FeedBatch(from: 0, to: Int64(rows.count), rows: rows))
    }

    /// This node's copy of `key`, tombstone included; nil when it holds none.
    public func copy(of key: String) async throws -> Record? {
        try await store.get(key: key)?.record
    }

    /// Rows a read at several nodes found this node lacking (`POST /internal/repair`, a feed
    /// batch), applied by the merge rule.
    public func repair(from sender: NodeID, body: [UInt8]) async throws -> RepairReply {
        let batch: FeedBatch
        do {
            batch = try FeedCodec.decode(body)
        } catch {
            throw PeerRequestError.malformed("the repair is not a valid batch: \(error)")
        }
        let result = try await store.applyRepair(batch.rows.map(\.record))
        return RepairReply(applied: result.applied, refused: result.refused.count)
    }

    private func requireGreeted(_ sender: NodeID, epoch: String?) async throws {
        let known = try await store.peer(sender)?.epoch
        guard let epoch, let known, epoch == known else {
            throw PeerRequestError.notGreeted(sender.rawValue)
        }
    }
}

/// What the serving side of the peer protocol needs from this node's replication: whether to
/// defer a peer's pushes (while catching up), and word of what a peer pushed.
public protocol ReplicationGate: Sendable {
    func defersPushes(from peer: NodeID) -> Bool
    /// `peer` pushed `rows` rows that this node took (`refused`: refused for an absurd lamport);
    /// this node's mark of its feed is now `mark`.
    func received(from peer: NodeID, rows: Int, refused: [Record], mark: Int64)
    /// `peer` greeted this node, so it is up: a link to it waiting out a backoff may try now.
    func greeted(by peer: NodeID)
}

/// The own-lane marks of `PeerEndpoint`: per sender, how far its own lane has been applied
/// since it greeted this process.
final class OwnLaneMarks: Sendable {
    private let marks = Mutex<[NodeID: Int64]>([:])

    func mark(of sender: NodeID) -> Int64? { marks.withLock { $0[sender] } }
    func reset(_ sender: NodeID, to mark: Int64) { marks.withLock { $0[sender] = mark } }
    func advance(_ sender: NodeID, to seq: Int64) { marks.withLock { $0[sender] = max($0[sender] ?? 0, seq) } }
}

/// Why a peer request was refused; `KVServer` gives each its status.
public enum PeerRequestError: Error, Equatable, CustomStringConvertible {
    /// 401: the cluster token is missing or wrong.
    case unauthorized
    /// 403: the sender is not one of this node's peers.
    case unknownSender(String)
    /// 403: the sender was removed from the cluster (`kv members remove`).
    case removedMember(String)
    /// 400: the body or a parameter cannot be parsed.
    case malformed(String)
    /// 409: the sender must greet (hello) first, e.g. after its epoch changed.
    case notGreeted(String)
    /// 409: the batch starts beyond this node's mark; the sender must rewind to `mark`.
    case gap(mark: Int64)

    /// The HTTP status the error is answered with.
    public var status: Int {
        switch self {
        case .unauthorized: return 401
        case .unknownSender, .removedMember: return 403
        case .malformed: return 400
        case .notGreeted, .gap: return 409
        }
    }

    public var description: String {
        switch self {
        case .unauthorized:
            return "missing or wrong cluster token (Authorization: Bearer …); check --cluster-token-file on both nodes"
        case .unknownSender(let sender):
            return "node \(sender) is not a member of this cluster; start it with --join URL (any member) or add it with --peer"
        case .removedMember(let sender):
            return "node \(sender) was removed from this cluster (kv members remove); to join again, start it with a fresh --db and --join"
        case .malformed(let detail):
            return detail
        case .notGreeted(let sender):
            return "node \(sender) must say hello first (its epoch is not the one this node knows)"
        case .gap(let mark):
            return "the batch starts after this node's mark \(mark); resend from \(mark)"
        }
    }
}
