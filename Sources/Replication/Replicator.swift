public import KVCore
public import KVStore
public import Logging
public import Foundation
import Synchronization

/// Runs a node's replication: catch-up at start, one pusher per peer woken by every commit,
/// and a periodic anti-entropy pull (DESIGN.md §3).
///
/// `run()` returns when its task is cancelled (graceful shutdown); client writes never wait
/// for it: pushers read the feed after the fact.
public final class Replicator: Sendable {
    public let configuration: ReplicationConfiguration
    let store: KVStore
    private let logger: Logger
    private let links: [PeerLink]
    private let catchingUpFlag = Atomic<Bool>(true)
    /// The peers greeted at start-up: the catch-up will pull their feeds.
    private let greetedAtStart = Mutex<Set<NodeID>>([])
    private let catchUpState = Mutex(CatchUpState())

    private struct CatchUpState {
        var started = ContinuousClock.now
        var perPeer: [NodeID: (done: Int, toGo: Int64)] = [:]
    }

    public init(store: KVStore, configuration: ReplicationConfiguration, logger: Logger) throws {
        self.store = store
        self.configuration = configuration
        self.logger = logger
        let epochGuard = EpochGuard()
        links = try configuration.peers.map {
            try PeerLink(peer: $0, configuration: configuration, store: store, logger: logger, epochGuard: epochGuard)
        }
        if links.isEmpty { catchingUpFlag.store(false, ordering: .relaxed) }
    }

    /// True until the first pull from every peer has finished or failed.
    public var catchingUp: Bool { catchingUpFlag.load(ordering: .relaxed) }

    /// Whether a push from `peer` is to be deferred (`PeerEndpoint.push`): while the start-up
    /// catch-up runs, for a peer it greeted, since it pulls that peer's feed anyway and the
    /// peers after the first leave out what this node then holds. A peer it could not greet
    /// is not pulled, so its pushes are taken.
    public func defersPushes(from peer: NodeID) -> Bool {
        catchingUpFlag.load(ordering: .relaxed) && greetedAtStart.withLock { $0.contains(peer) }
    }

    /// Runs until cancelled.
    public func run() async {
        await greetEveryone()
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await self.catchUp() }
            for link in links {
                group.addTask { await self.pushLoop(link) }
            }
            group.addTask { await self.antiEntropyLoop() }
            await group.waitForAll()
        }
        for link in links { await link.close() }
    }

    // MARK: Catch-up and anti-entropy

    /// Greets every reachable peer before anything is pulled or pushed, so that a restore from
    /// an older copy of this file is detected while this node's seq is still the copy's: rows
    /// applied by the catch-up would advance it and could hide the restore.
    private func greetEveryone() async {
        await withTaskGroup(of: Void.self) { group in
            for link in links {
                group.addTask {
                    do {
                        try await link.greet()
                        self.greetedAtStart.withLock { _ = $0.insert(link.peer.id) }
                    } catch {
                        _ = await link.recordFailure(error)
                    }
                }
            }
        }
    }

    /// Pulls every peer's feed, one peer at a time, the one with the most to offer first (by
    /// the last seq its hello gave). One at a time, because the rows most peers hold are the
    /// same: after the first feed is applied this node holds that peer's writes, says so in
    /// its next requests (`covered`), and the next peers leave them out instead of sending
    /// them again.
    private func catchUp() async {
        catchUpState.withLock { $0 = CatchUpState() }
        var ordered: [(link: PeerLink, offer: Int64)] = []
        for link in links { ordered.append((link, await link.peerLastSeq)) }
        ordered.sort { $0.offer > $1.offer }
        for (link, _) in ordered where !Task.isCancelled {
            await pull(from: link, reason: "caught up", tracksCatchUp: true)
        }
        catchingUpFlag.store(false, ordering: .relaxed)
        if !links.isEmpty { logger.info("catch-up finished") }
    }

    private func antiEntropyLoop() async {
        while !Task.isCancelled {
            do {
                try await Task.sleep(for: configuration.antiEntropyInterval)
            } catch {
                return
            }
            // The start-up catch-up is pulling every feed already: a second pull beside it would
            // bring the same rows twice, and a digest of a half-filled file differs from every
            // peer's in every bucket, which would fetch whole buckets again.
            guard !catchingUp else { continue }
            for link in links where !Task.isCancelled {
                await pull(from: link, reason: "anti-entropy repaired")
            }
            await repairFromDigests()
            await purgeTombstones()
        }
    }

    /// Rows pulled so far, the seq distance left, and the rate, while the start-up catch-up runs.
    public var catchUpProgress: (rowsDone: Int64, rowsToGo: Int64, rowsPerSecond: Double)? {
        guard catchingUp else { return nil }
        return catchUpState.withLock { state in
            let done = state.perPeer.values.reduce(0) { $0 + $1.done }
            let toGo = state.perPeer.values.reduce(Int64(0)) { $0 + $1.toGo }
            let seconds = (ContinuousClock.now - state.started).inSeconds
            return (Int64(done), toGo, seconds > 0 ? Double(done) / seconds : 0)
        }
    }

    /// Purges the tombstones every configured peer has acknowledged and that are older than the
    /// grace. A peer never heard from (mark 0) holds every purge back, by construction: no
    /// deleted key can come back from a node that has not seen its delete.
    private func purgeTombstones() async {
        do {
            let reports = try await peerReports()
            let safe: Int64
            if let lowest = reports.map(\.pushedSeq).min() {
                safe = lowest
            } else {
                safe = try await store.feedPosition().lastSeq
            }
            guard safe > 0 else { return }
            let purged = try await store.purgeTombstones(ackedThrough: safe, olderThan: configuration.tombstoneGrace)
            if purged > 0 {
                logger.info("purged \(purged) tombstones that every peer acknowledged (through seq \(safe)) and that are older than the grace")
            }
        } catch {
            logger.warning("tombstone purge skipped: \(error)")
        }
    }

    /// The digest half of anti-entropy: one digest of this node per round, compared with each
    /// peer's (see `PeerLink.repairFromDigest`).
    private func repairFromDigests() async {
        guard !links.isEmpty, !Task.isCancelled else { return }
        do {
            let own = try await Self.digestReply(of: store)
            for link in links where !Task.isCancelled {
                do {
                    _ = try await link.repairFromDigest(own: own)
                } catch is CancellationError {
                    return
                } catch {
                    _ = await link.recordFailure(error)
                }
            }
        } catch {
            logger.warning("digest repair skipped: cannot read this node's digest: \(error)")
        }
    }

    /// This node's digest in its wire form, as `GET /digest` serves it.
    public static func digestReply(of store: KVStore) async throws -> DigestReply {
        let digest = try await store.digest()
        let buckets = digest.buckets.enumerated().map { index, bucket in
            let digits = String(index, radix: 16)
            return DigestReply.Bucket(
                bucket: digits.count == 1 ? "0" + digits : digits, count: bucket.count, hash: RowDigest.hex(bucket.hash))
        }
        return DigestReply(buckets: buckets, digest: RowDigest.hex(digest.whole), keys: digest.liveKeys, rows: digest.rows)
    }

    private func pull(from link: PeerLink, reason: String, tracksCatchUp: Bool = false) async {
        let started = ContinuousClock.now
        let peer = link.peer.id
        let lastReport = Mutex(started)
        do {
            let rows = try await link.pullAll { [logger] total, toGo in
                if tracksCatchUp { self.catchUpState.withLock { $0.perPeer[peer] = (total, toGo) } }
                let now = ContinuousClock.now
                let due = lastReport.withLock { last in
                    guard now - last > .seconds(2) else { return false }
                    last = now
                    return true
                }
                if due { logger.info("pulling from \(peer): \(total) rows so far, about \(toGo) to go") }
            }
            if rows > 0 {
                let seconds = (ContinuousClock.now - started).inSeconds
                logger.info("\(reason) \(rows) rows from \(peer) in \(String(format: "%.2f", seconds)) s")
            }
        } catch is CancellationError {
            return
        } catch {
            _ = await link.recordFailure(error)
        }
    }

    // MARK: Pushers

    private func pushLoop(_ link: PeerLink) async {
        let commits = store.commits()
        var wakeUps = commits.makeAsyncIterator()
        while !Task.isCancelled {
            do {
                switch try await link.pushOnce() {
                case .pushed:
                    continue
                case .upToDate:
                    // Everything acknowledged: sleep until the next commit. A commit that lands
                    // between the feed read and this wait is buffered in the stream.
                    guard await wakeUps.next() != nil else { return }
                case .deferred:
                    try await Task.sleep(for: configuration.deferredPushPause)
                case .resynchronise:
                    try await Task.sleep(for: configuration.backoff.base)
                }
            } catch is CancellationError {
                return
            } catch {
                let failures = await link.recordFailure(error)
                do {
                    try await Task.sleep(for: configuration.backoff.delay(afterFailures: failures))
                } catch {
                    return
                }
            }
        }
    }

    // MARK: Status

    /// Counts rows a peer pushed to this node (pulls count themselves), for `/status`.
    func noteReceived(from peer: NodeID, rows: Int, refused: [Record]) async {
        guard let link = links.first(where: { $0.peer.id == peer }) else { return }
        await link.noteReceived(rows)
        await link.noteRefused(refused)
    }

    /// What `/status` reports for every peer, in configuration order.
    public func peerReports() async throws -> [PeerReport] {
        let state = try await store.feedPosition()
        let stored = Dictionary(uniqueKeysWithValues: try await store.peers().map { ($0.id, $0) })
        var reports: [PeerReport] = []
        for link in links {
            let health = await link.health
            let marks = stored[link.peer.id]
            let pushed = await link.knownPushedSeq ?? marks?.pushedSeq ?? 0
            reports.append(
                PeerReport(
                    id: link.peer.id, url: link.peer.url, reachable: health.reachable, since: health.since,
                    pulledSeq: marks?.pulledSeq ?? 0, pushedSeq: pushed, toPush: max(0, state.lastSeq - pushed),
                    lastError: health.lastError, rowsSent: health.rowsSent, rowsReceived: health.rowsReceived,
                    rowsRefused: health.rowsRefused))
        }
        return reports
    }
}

/// One peer as `/status` shows it.
public struct PeerReport: Sendable {
    public let id: NodeID
    public let url: String
    public let reachable: Bool
    public let since: Date?
    public let pulledSeq: Int64
    public let pushedSeq: Int64
    public let toPush: Int64
    public let lastError: String?
    public let rowsSent: Int
    public let rowsReceived: Int
    public let rowsRefused: Int
}
