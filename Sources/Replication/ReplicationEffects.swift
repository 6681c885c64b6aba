public import KVCore
public import KVStore

/// Performs what `ReplicationCore` asks, against this node's store and a peer's transport:
/// the I/O half of replication, with no decision of its own. Both drivers use it — `Replicator`
/// in a node, the simulator in tests — so the same code reads pages, applies batches and talks
/// to peers in both.
public struct ReplicationEffects: Sendable {
    public let store: KVStore
    let identity: NodeID
    let batchRows: Int
    let batchBytes: Int
    let tombstoneGrace: Duration

    public init(store: KVStore, configuration: ReplicationConfiguration) {
        self.store = store
        identity = configuration.identity
        batchRows = configuration.batchRows
        batchBytes = configuration.batchBytes
        tombstoneGrace = configuration.tombstoneGrace
    }

    /// Performs a peer action: through `transport` when it talks to the peer, else on the store.
    public func perform(_ action: PeerAction, for peer: NodeID, over transport: any PeerTransport) async -> PeerResult {
        do {
            return try await run(action, for: peer, over: transport)
        } catch let failure as PeerFailure {
            return .failed(failure)
        } catch let error as StoreError where error.isFeedGap {
            return .pulledGap
        } catch {
            return .failed(PeerFailure("\(error)"))
        }
    }

    private func run(_ action: PeerAction, for peer: NodeID, over transport: any PeerTransport) async throws -> PeerResult {
        switch action {
        case .hello(let request):
            return .helloReplied(try await transport.hello(request))
        case .push(let request):
            return .pushAnswered(try await transport.push(request))
        case .fetchFeed(let after, let limit):
            let position = try await store.feedPosition()
            let covered = try await store.coverage().filter { $0.origin != peer }
            return .feedFetched(try await transport.feed(after: after, limit: limit, covered: covered, epoch: position.epoch))
        case .fetchDigest:
            return .digestFetched(try await transport.digest(epoch: try await store.feedPosition().epoch))
        case .fetchBucket(let bucket):
            return .bucketFetched(try await transport.bucket(bucket, epoch: try await store.feedPosition().epoch))
        case .notePeerEpoch(let epoch):
            return .peerEpochNoted(previous: try await store.notePeerEpoch(peer, epoch: epoch))
        case .readPosition:
            return .positionRead(try await store.feedPosition())
        case .readPage(let request):
            return .pageRead(
                try await store.feed(
                    for: peer, after: request.after, maxRows: batchRows, maxBytes: batchBytes,
                    receiverHolds: request.receiverHolds))
        case .applyPulled(let feed, let claim):
            return .pulledApplied(
                try await store.applyFeed(
                    from: peer, records: feed.batch.rows.map(\.record), batchFrom: feed.batch.from, batchTo: feed.batch.to,
                    senderClock: claim ? feed.clock : nil, senderCoverage: feed.coverage))
        case .applyRepair(let batch):
            let result = try await store.applyRepair(batch.rows.map(\.record))
            return .repaired(applied: result.applied, received: batch.rows.count, refused: result.refused)
        case .persistPushedSeq(let seq):
            try await store.setPushedSeq(peer, seq)
            return .persisted
        }
    }

    /// Performs a node action (`readOwnDigest`, `purgeTombstones`, `renewEpoch`).
    public func perform(_ action: ReplicationAction) async -> NodeResult? {
        do {
            switch action {
            case .readOwnDigest:
                return .ownDigest(try await Replicator.digestReply(of: store))
            case .purgeTombstones(let ackedThrough):
                return .purged(try await store.purgeTombstones(ackedThrough: ackedThrough, olderThan: tombstoneGrace))
            case .renewEpoch(let observed):
                let current = try await store.feedPosition().epoch
                guard current == observed else { return .epochRenewed(current: current, renewed: false) }
                return .epochRenewed(current: try await store.renewEpoch(), renewed: true)
            case .peer, .log:
                return nil
            }
        } catch {
            return .failed(action, reason: "\(error)")
        }
    }
}

extension KVStore {
    /// Applies rows that repair found this node lacking (digest repair, read repair), by the
    /// merge rule. A tombstone for a key this node does not hold at all changes nothing, and
    /// taking it would bring back a tombstone this node already purged: it is left out.
    func applyRepair(_ incoming: [Record]) async throws -> ApplyResult {
        var records: [Record] = []
        for record in incoming {
            if record.isTombstone, try await get(key: record.key) == nil { continue }
            records.append(record)
        }
        return try await apply(records)
    }
}
