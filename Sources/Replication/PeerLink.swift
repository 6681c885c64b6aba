import Foundation
import KVCore
import KVStore
import Logging
import NodeHTTP

/// This node's side of its relationship with one peer: the hello, the pusher's state, the
/// puller, and what `/status` reports about the peer.
///
/// One actor per peer, so the pusher and the puller of a peer never race on its marks; they
/// use separate connections so a long pull does not hold up pushes.
actor PeerLink {
    let peer: PeerConfig
    private let configuration: ReplicationConfiguration
    private let store: KVStore
    private let logger: Logger
    private let pushClient: NodeHTTPClient
    private let pullClient: NodeHTTPClient
    private let epochGuard: EpochGuard

    /// What the receiver last said its mark of our feed is; valid once `greeted`.
    private var pushedSeq: Int64 = 0
    private var greeted = false
    /// The peer's last seq as its last hello answer gave it: how much it has to offer.
    private(set) var peerLastSeq: Int64 = 0
    /// What the peer said, in its last push reply, it holds of each node's writes.
    private var peerCoverage: [FeedExclusion] = []
    /// Whether the peer deferred the last push: the next attempt is an empty batch, so a peer
    /// busy catching up is not sent a full batch to ignore every 200 ms.
    private var lastPushDeferred = false
    private var lastPersistedPush = ContinuousClock.now
    private(set) var health = LinkHealth()

    init(
        peer: PeerConfig, configuration: ReplicationConfiguration, store: KVStore, logger: Logger,
        epochGuard: EpochGuard
    ) throws {
        self.peer = peer
        self.configuration = configuration
        self.store = store
        self.logger = logger
        self.epochGuard = epochGuard
        pushClient = try NodeHTTPClient(node: peer.url, timeout: configuration.requestTimeout, tls: configuration.peerTLS)
        pullClient = try NodeHTTPClient(node: peer.url, timeout: configuration.requestTimeout, tls: configuration.peerTLS)
    }

    func close() async {
        if greeted { try? await store.setPushedSeq(peer.id, pushedSeq) }
        await pushClient.close()
        await pullClient.close()
    }

    // MARK: Hello

    /// Exchanges identities and marks with the peer (DESIGN.md §3): learns whether the peer's
    /// file was replaced (its epoch changed: both marks reset) and whether ours was restored
    /// from an older copy (the peer has consumed our feed beyond our last seq: we take a new
    /// epoch and greet again).
    private func hello() async throws {
        for _ in 0..<2 {
            let state = try await store.feedPosition()
            let request = HelloRequest(id: configuration.identity.rawValue, epoch: state.epoch, seq: state.lastSeq)
            let reply: HelloReply = try await call(
                pushClient, "POST", PeerProtocol.helloPath, json: request)
            guard reply.id == peer.id.rawValue else {
                throw ReplicationError.wrongPeer(expected: peer.id.rawValue, url: peer.url, found: reply.id)
            }
            if let previous = try await store.notePeerEpoch(peer.id, epoch: reply.epoch) {
                logger.notice("peer \(peer.id) has a new database (epoch \(previous.prefix(8))… → \(reply.epoch.prefix(8))…); exchanging the full feeds again")
            }
            // Compared with the last seq read *after* the reply: writes committed while the hello
            // was in flight may already have reached the peer (by its pulls), and the last seq
            // only grows, so only a file that really ends below the peer's mark is taken for a
            // restored copy.
            let now = try await store.feedPosition()
            if now.epoch == state.epoch, reply.pulledSeq > now.lastSeq {
                // Renewed here or by another link already: either way, greet again with the new epoch.
                _ = try await epochGuard.renewIfStill(
                    state.epoch, store: store, logger: logger,
                    reason: "peer \(peer.id) has consumed this node's feed up to seq \(reply.pulledSeq) but this file ends at \(now.lastSeq): it was restored from an older copy")
                continue
            }
            guard now.epoch == state.epoch else { continue }  // another link renewed meanwhile: greet with the new one
            pushedSeq = reply.pulledSeq
            peerLastSeq = reply.seq
            try await store.setPushedSeq(peer.id, pushedSeq)
            greeted = true
            return
        }
        throw ReplicationError.protocolViolation(peer: peer.id.rawValue, detail: "the hello did not settle after an epoch change")
    }

    /// Greets the peer if this link has not since it last failed.
    func greet() async throws {
        if !greeted { try await hello() }
    }

    // MARK: Push

    /// What one push attempt did.
    enum PushOutcome: Equatable {
        /// The peer has everything: wait for the next commit.
        case upToDate
        /// A batch of this many rows was acknowledged (0 when every row in its range was one
        /// the peer has); more may follow at once.
        case pushed(rows: Int)
        /// The peer is catching up by pulling and did not look at the batch: try later.
        case deferred
        /// The peer asked for a new hello (409): greet again soon, without waiting for a commit,
        /// so its mark of our feed is known again (the tombstone purge waits on it).
        case resynchronise
    }

    /// Sends the next batch of our feed past the peer's mark, leaving out rows the peer has
    /// (docs/protocol.md, "Leaving out what the receiver has"): its own writes, once it has
    /// been sent everything up to `resend_all_through`, and the writes it said it holds.
    ///
    /// A batch made only of other nodes' writes is a forward: in a full mesh their writers
    /// push them to the peer too, at the same moment, and the peer's last reply predates
    /// that. So such a batch waits `forwardHold`, asks the peer (an empty push) what it holds
    /// now, and is read again without that: forwards shrink to what the peer lacks — a
    /// writer that cannot reach it, a file that lost rows. Three nodes with the load on one
    /// sent 3.1 rows per write before this and 2.2 after (docs/performance.md).
    func pushOnce() async throws -> PushOutcome {
        if !greeted { try await hello() }
        var page = try await nextPage()
        guard page.to > pushedSeq else {
            recordSuccess()
            return .upToDate
        }
        let probe = lastPushDeferred
        if !probe, !page.rows.isEmpty, page.rows.allSatisfy({ $0.record.version.origin != configuration.identity }) {
            if configuration.forwardHold > .zero { try await Task.sleep(for: configuration.forwardHold) }
            switch try await push(FeedBatch(from: pushedSeq, to: pushedSeq, rows: []), of: page, final: false) {
            case .pushed: break
            case let other: return other
            }
            page = try await nextPage()
            guard page.to > pushedSeq else {
                recordSuccess()
                return .upToDate
            }
        }
        let batch = probe ? FeedBatch(from: pushedSeq, to: pushedSeq, rows: []) : FeedBatch(from: pushedSeq, to: page.to, rows: page.rows)
        let outcome = try await push(batch, of: page, final: !probe && page.to == page.lastSeq)
        if case .pushed = outcome, !probe {
            health.rowsSent += page.rows.count
            return .pushed(rows: page.rows.count)
        }
        return outcome
    }

    private func nextPage() async throws -> FeedPage {
        try await store.feed(
            for: peer.id, after: pushedSeq, maxRows: configuration.batchRows, maxBytes: configuration.batchBytes,
            receiverHolds: peerCoverage)
    }

    /// Sends `batch`, read from `page`, and takes in the reply: the peer's mark of our feed and
    /// what it holds. `final`: the batch reaches the end of our feed, so it carries our clock
    /// and coverage. `.pushed(rows: 0)` when the peer took it.
    private func push(_ batch: FeedBatch, of page: FeedPage, final: Bool) async throws -> PushOutcome {
        var fields = headers(epoch: page.epoch) + [("Content-Type", PeerProtocol.batchContentType)]
        if final {
            fields.append((PeerProtocol.clockHeader, String(page.clock)))
            if !page.coverage.isEmpty { fields.append((PeerProtocol.coveredHeader, PeerProtocol.coverageText(page.coverage))) }
        }
        let reply = try await pushClient.send("POST", PeerProtocol.pushPath, body: FeedCodec.encode(batch), headers: fields)
        switch reply.status {
        case 200:
            let answer = try JSONDecoder().decode(PushReply.self, from: Data(reply.body))
            pushedSeq = answer.pulledSeq
            recordSuccess()
            lastPushDeferred = answer.deferred == true
            if lastPushDeferred { return .deferred }
            peerCoverage = (answer.covered ?? [:]).compactMap { id, lamport in
                (try? NodeID(id)).map { FeedExclusion(origin: $0, throughLamport: lamport) }
            }
            try await persistPushedSeqNowAndThen()
            return .pushed(rows: 0)
        case 409:
            // The peer's mark moved behind ours (its file changed) or it does not know our epoch:
            // greet again, which rewinds to its mark.
            greeted = false
            logger.info("peer \(peer.id) asked to resynchronise: \(Self.detail(of: reply))")
            return .resynchronise
        default:
            throw ReplicationError.refused(peer: peer.id.rawValue, status: reply.status, detail: Self.detail(of: reply))
        }
    }

    var knownPushedSeq: Int64? { greeted ? pushedSeq : nil }

    private func persistPushedSeqNowAndThen() async throws {
        let now = ContinuousClock.now
        if now - lastPersistedPush > .seconds(1) {
            lastPersistedPush = now
            try await store.setPushedSeq(peer.id, pushedSeq)
        }
    }

    // MARK: Pull

    /// Pulls the peer's feed past our mark until it is exhausted, each batch applied with the
    /// mark in one transaction; fetches the next batch while the current one is applied. Asks
    /// the peer to leave out what this node holds (`covered`); the batch that reaches the end
    /// of the peer's feed records what this node now holds of the peer's writes. Returns the
    /// rows received.
    func pullAll(progress: @Sendable (_ rowsDone: Int, _ seqsToGo: Int64) -> Void = { _, _ in }) async throws -> Int {
        if !greeted { try await hello() }
        var mark = try await store.peer(peer.id)?.pulledSeq ?? 0
        var total = 0
        var page = try await fetch(after: mark)
        while true {
            let nextAfter = page.batch.to
            let more = page.batch.to < page.lastSeq
            async let prefetched: FetchedPage? = more ? fetch(after: nextAfter) : nil
            let result: PeerApplyResult
            do {
                result = try await store.applyFeed(
                    from: peer.id, records: page.batch.rows.map(\.record), batchFrom: page.batch.from, batchTo: page.batch.to,
                    senderClock: more ? nil : page.clock, senderCoverage: page.coverage)
            } catch let error as StoreError where error.isFeedGap {
                _ = try? await prefetched
                greeted = false
                throw error
            }
            mark = result.mark
            noteRefused(result.refused)
            total += page.batch.rows.count
            health.rowsReceived += page.batch.rows.count
            progress(total, max(0, page.lastSeq - page.batch.to))
            guard let next = try await prefetched else { break }
            page = next
        }
        recordSuccess()
        return total
    }

    private struct FetchedPage: Sendable {
        let batch: FeedBatch
        let lastSeq: Int64
        /// The peer's clock when the batch was read; nil if the peer did not say.
        let clock: Int64?
        /// What the peer held of other nodes' writes when the batch was read.
        let coverage: [FeedExclusion]
    }

    private func fetch(after: Int64) async throws -> FetchedPage {
        let state = try await store.feedPosition()
        var path = "\(PeerProtocol.feedPath)?after=\(after)&limit=\(configuration.batchRows)"
        let covered = try await store.coverage().filter { $0.origin != peer.id }
        if !covered.isEmpty { path += "&covered=" + PeerProtocol.coverageText(covered) }
        let reply = try await pullClient.send("GET", path, headers: headers(epoch: state.epoch))
        guard reply.status == 200 else {
            if reply.status == 409 { greeted = false }
            throw ReplicationError.refused(peer: peer.id.rawValue, status: reply.status, detail: Self.detail(of: reply))
        }
        let known = try await store.peer(peer.id)?.epoch
        guard let epoch = reply.header(PeerProtocol.epochHeader), epoch == known else {
            greeted = false
            throw ReplicationError.protocolViolation(peer: peer.id.rawValue, detail: "the feed came from another epoch than the one greeted; greeting again")
        }
        guard let lastSeqText = reply.header(PeerProtocol.lastSeqHeader), let lastSeq = Int64(lastSeqText) else {
            throw ReplicationError.protocolViolation(peer: peer.id.rawValue, detail: "the feed reply has no \(PeerProtocol.lastSeqHeader) header")
        }
        let batch = try FeedCodec.decode(reply.body)
        guard batch.from == after else {
            throw ReplicationError.protocolViolation(peer: peer.id.rawValue, detail: "asked for the feed after \(after), got a batch from \(batch.from)")
        }
        let clock = reply.header(PeerProtocol.clockHeader).flatMap(Int64.init).flatMap { $0 >= 0 ? $0 : nil }
        let coverage: [FeedExclusion]
        do {
            coverage = try PeerProtocol.parseCoverage(reply.header(PeerProtocol.coveredHeader))
        } catch {
            throw ReplicationError.protocolViolation(peer: peer.id.rawValue, detail: "the feed reply's \(PeerProtocol.coveredHeader) header: \(error)")
        }
        return FetchedPage(batch: batch, lastSeq: lastSeq, clock: clock, coverage: coverage)
    }

    // MARK: Digest repair

    /// The peer's bucket hashes as seen at the previous repair round.
    private var previousPeerBuckets: [String]?

    /// Compares this node's digest with the peer's and pulls every row of each bucket that
    /// differs *and* held still on the peer since the previous round (a bucket that moves is
    /// most likely replication in flight, which the feed delivers anyway). Merge keeps only
    /// newer versions, so a repair never undoes anything. Returns the rows that won here.
    ///
    /// This is what finds what marks cannot see: rows removed from this node's file behind its
    /// back, or a file restored from a backup older than the peer's mark.
    func repairFromDigest(own: DigestReply) async throws -> Int {
        let reply = try await pullClient.send("GET", "/digest", headers: headers(epoch: try await store.feedPosition().epoch))
        guard reply.status == 200 else {
            throw ReplicationError.refused(peer: peer.id.rawValue, status: reply.status, detail: Self.detail(of: reply))
        }
        let theirs = try JSONDecoder().decode(DigestReply.self, from: Data(reply.body))
        let hashes = theirs.buckets.map(\.hash)
        defer { previousPeerBuckets = hashes }
        guard theirs.digest != own.digest, let previous = previousPeerBuckets, previous.count == hashes.count,
            own.buckets.count == hashes.count
        else { return 0 }
        var applied = 0
        for (index, bucket) in theirs.buckets.enumerated()
        where bucket.hash != own.buckets[index].hash && bucket.hash == previous[index] && bucket.count > 0 {
            let rows = try await pullClient.send(
                "GET", "\(PeerProtocol.bucketPath)?bucket=\(bucket.bucket)",
                headers: headers(epoch: try await store.feedPosition().epoch))
            guard rows.status == 200 else {
                throw ReplicationError.refused(peer: peer.id.rawValue, status: rows.status, detail: Self.detail(of: rows))
            }
            let batch = try FeedCodec.decode(rows.body)
            // A tombstone for a key this node does not hold at all changes nothing, and taking
            // it would bring back a tombstone this node already purged.
            var records: [Record] = []
            for row in batch.rows {
                if row.record.isTombstone, try await store.get(key: row.record.key) == nil { continue }
                records.append(row.record)
            }
            let result = try await store.apply(records)
            applied += result.applied
            noteRefused(result.refused)
            health.rowsReceived += batch.rows.count
        }
        if applied > 0 {
            logger.notice("digest repair: \(applied) rows from \(peer.id) were missing or older here")
        }
        return applied
    }

    // MARK: Health

    func noteReceived(_ rows: Int) {
        health.rowsReceived += rows
    }

    /// Logs and counts rows of this peer refused for an absurd lamport.
    func noteRefused(_ records: [Record]) {
        guard let first = records.first else { return }
        health.rowsRefused += records.count
        logger.error("refused \(records.count) row(s) from \(peer.id) stamped beyond the accepted clock range, e.g. key '\(first.key.prefix(64))' at lamport \(first.version.lamport); the rest of the batch was applied")
    }

    func recordFailure(_ error: any Error) -> Int {
        if health.reachable || health.since == nil {
            health.since = Date()
            logger.warning("peer \(peer.id) unreachable: \(error)")
        }
        health.reachable = false
        health.lastError = "\(error)"
        health.consecutiveFailures += 1
        greeted = false
        return health.consecutiveFailures
    }

    private func recordSuccess() {
        if !health.reachable {
            if health.since != nil { logger.info("peer \(peer.id) reachable again") }
            health.since = Date()
        }
        health.reachable = true
        health.consecutiveFailures = 0
    }

    private func headers(epoch: String) -> [(String, String)] {
        var result = [(PeerProtocol.nodeHeader, configuration.identity.rawValue), (PeerProtocol.epochHeader, epoch)]
        if let token = configuration.clusterToken { result.append(("Authorization", BearerToken.header(for: token))) }
        return result
    }

    private func call<Request: Encodable, Reply: Decodable>(
        _ client: NodeHTTPClient, _ method: String, _ path: String, json request: Request
    ) async throws -> Reply {
        let state = try await store.feedPosition()
        let body = try JSONEncoder().encode(request)
        let reply = try await client.send(
            method, path, body: Array(body),
            headers: headers(epoch: state.epoch) + [("Content-Type", "application/json")])
        guard reply.status == 200 else {
            throw ReplicationError.refused(peer: peer.id.rawValue, status: reply.status, detail: Self.detail(of: reply))
        }
        return try JSONDecoder().decode(Reply.self, from: Data(reply.body))
    }

    private static func detail(of reply: HTTPReply) -> String {
        if let body = try? JSONDecoder().decode(ErrorBody.self, from: Data(reply.body)) {
            return "\(body.error): \(body.detail)"
        }
        return String(decoding: reply.body.prefix(200), as: UTF8.self)
    }
}

/// What `/status` shows about the link to one peer.
struct LinkHealth: Sendable {
    var reachable = false
    var since: Date?
    var lastError: String?
    var consecutiveFailures = 0
    var rowsSent = 0
    var rowsReceived = 0
    var rowsRefused = 0
}

/// Serialises epoch renewals, so links that detect the same restore at once renew it once.
actor EpochGuard {
    /// Takes a new epoch if the store's epoch is still `observed`; returns whether it did.
    func renewIfStill(_ observed: String, store: KVStore, logger: Logger, reason: String) async throws -> Bool {
        guard try await store.feedPosition().epoch == observed else { return false }
        let epoch = try await store.renewEpoch()
        logger.warning("\(reason); taking a new epoch \(epoch.prefix(8))… so peers re-read the whole feed")
        return true
    }
}

/// Why an exchange with a peer failed.
public enum ReplicationError: Error, CustomStringConvertible {
    case wrongPeer(expected: String, url: String, found: String)
    case refused(peer: String, status: Int, detail: String)
    case protocolViolation(peer: String, detail: String)

    public var description: String {
        switch self {
        case .wrongPeer(let expected, let url, let found):
            return "\(url) answers as node \(found), not \(expected); check --peer \(expected)=URL"
        case .refused(let peer, let status, let detail):
            return "peer \(peer) refused: \(status) \(detail)"
        case .protocolViolation(let peer, let detail):
            return "peer \(peer): \(detail)"
        }
    }
}
