public import KVCore
public import KVStore
public import Logging
public import Foundation
import Synchronization

/// Runs a node's replication (DESIGN.md §3): the driver of `ReplicationCore`. It feeds the
/// core the node's commits and the passing of time, performs the actions the core returns
/// (`ReplicationEffects`, over one `PeerTransport` per peer), and hands the results back. It
/// holds no decision of its own.
///
/// `run()` returns when its task is cancelled (graceful shutdown); client writes never wait
/// for it: the sessions read the feed after the fact.
public final class Replicator: ReplicationGate, Sendable {
    public let configuration: ReplicationConfiguration
    let store: KVStore
    let logger: Logger
    private let effects: ReplicationEffects
    /// Whom to replicate with; `syncMembers` follows it while the node runs.
    public let membership: Membership
    private let makeTransport: @Sendable (PeerConfig) throws -> any PeerTransport
    /// The transport of each active peer, with the URL it was made for.
    private let links = Mutex<[NodeID: (url: String, transport: any PeerTransport)]>([:])
    /// Set by `leave`: the member list is no longer followed.
    private let leaving = Mutex(false)
    let core = Mutex<ReplicationCore?>(nil)
    private let origin = ContinuousClock.now
    private let originDate = Date()
    private let jobs = AsyncStream.makeStream(of: Job.self)
    private let waiters = Mutex<[ObjectIdentifier: AcknowledgementWaiter]>([:])
    private typealias Job = @Sendable () async -> Void

    /// How long the timer sleeps at most between two looks at what is due.
    static let timerResolution: Duration = .milliseconds(20)

    /// How often the member rows are read again, to link to members that joined and drop
    /// removed ones.
    static let membershipInterval: Duration = .milliseconds(500)

    /// A replicator that reaches its peers over HTTP.
    public convenience init(
        store: KVStore, configuration: ReplicationConfiguration, membership: Membership? = nil, logger: Logger
    ) {
        self.init(
            store: store, configuration: configuration,
            membership: membership ?? Membership(identity: configuration.identity, seeds: configuration.peers),
            logger: logger,
            makeTransport: { try HTTPPeerTransport(peer: $0, configuration: configuration) })
    }

    /// A replicator that reaches each peer through the transport `makeTransport` makes for it.
    public init(
        store: KVStore, configuration: ReplicationConfiguration, membership: Membership, logger: Logger,
        makeTransport: @escaping @Sendable (PeerConfig) throws -> any PeerTransport
    ) {
        self.store = store
        self.configuration = configuration
        self.membership = membership
        self.logger = logger
        self.makeTransport = makeTransport
        effects = ReplicationEffects(store: store, configuration: configuration)
    }

    /// The transports of the active peers, by id.
    var transports: [NodeID: any PeerTransport] {
        links.withLock { $0.mapValues(\.transport) }
    }

    private var now: Duration { ContinuousClock.now - origin }

    /// True until the start-up catch-up has tried every peer.
    public var catchingUp: Bool {
        core.withLock { $0?.catchingUp } ?? !membership.activePeers.isEmpty
    }

    /// Whether a push from `peer` is to be deferred (`ReplicationCore.defersPushes`).
    public func defersPushes(from peer: NodeID) -> Bool {
        core.withLock { $0?.defersPushes(from: peer) } ?? false
    }

    public func received(from peer: NodeID, rows: Int, refused: [Record], mark: Int64) {
        let now = self.now
        step { $0.received(from: peer, rows: rows, refused: refused, mark: mark, now: now) }
    }

    public func greeted(by peer: NodeID) {
        let now = self.now
        step { $0.greeted(by: peer, now: now) }
    }

    /// Runs until cancelled.
    public func run() async {
        let position: FeedPosition
        let stored: [PeerState]
        do {
            position = try await store.feedPosition()
            stored = try await store.peers()
            try await membership.refresh(from: store)
        } catch {
            logger.error("replication cannot start: cannot read this node's marks: \(error)")
            return
        }
        let peers = membership.activePeers
        do {
            try await store.configurePeers(peers)
        } catch {
            logger.error("replication cannot start: cannot record the members as peers: \(error)")
            return
        }
        relink(to: peers)
        let seed = UInt64.random(in: 0...UInt64.max)
        core.withLock {
            $0 = ReplicationCore(
                identity: configuration.identity, peers: peers.map(\.id), stored: stored,
                position: position, settings: configuration.settings, seed: seed)
        }
        let start = now
        step { $0.start(now: start) }
        await withDiscardingTaskGroup { group in
            group.addTask { await self.followCommits() }
            group.addTask { await self.keepTime() }
            group.addTask { await self.followMembers() }
            for await job in jobs.stream {
                group.addTask { await job() }
            }
            group.cancelAll()
        }
        await close()
    }

    private func followCommits() async {
        for await lastSeq in store.commits() {
            let now = self.now
            step { $0.committed(lastSeq: lastSeq, now: now) }
        }
    }

    /// Wakes the core when something it waits for is due (a backoff, a deferred push, a
    /// forward, an anti-entropy round), looking at least every `timerResolution`.
    private func keepTime() async {
        while !Task.isCancelled {
            let now = self.now
            let (wake, alone) = core.withLock { ($0?.nextWake(after: now), $0?.sessions.isEmpty ?? true) }
            // A node without peers has nothing to time until a member joins, and
            // `syncMembers` steps the core itself then.
            let pause =
                alone
                ? Self.membershipInterval
                : min(Self.timerResolution, max(.milliseconds(1), (wake ?? now + Self.timerResolution) - now))
            do {
                try await Task.sleep(for: pause)
            } catch {
                jobs.continuation.finish()
                return
            }
            let later = self.now
            step { $0.tick(now: later) }
        }
        jobs.continuation.finish()
    }

    private func close() async {
        let marks = core.withLock { $0?.sessions.filter(\.greeted).map { ($0.peer, $0.marks.pushedSeq) } } ?? []
        for (peer, pushed) in marks { try? await store.setPushedSeq(peer, pushed) }
        for transport in links.withLock({ $0.values.map(\.transport) }) { await transport.close() }
    }

    // MARK: Members

    /// Reads the member rows every `membershipInterval` and follows them: links to members
    /// that joined, drops removed ones.
    private func followMembers() async {
        while !Task.isCancelled {
            do {
                try await Task.sleep(for: Self.membershipInterval)
            } catch {
                return
            }
            await syncMembers()
        }
    }

    /// Leaves the cluster (`kvnode --leave`, on a graceful stop): waits until every active peer
    /// holds this node's whole feed (what it holds that they may lack), then writes this node's
    /// member row as removed and waits until every peer holds that too, all within `limit`. The
    /// links stay up meanwhile. Says in the log how it went; returns true when every peer
    /// acknowledged both.
    @discardableResult
    public func leave(within limit: Duration) async -> Bool {
        let deadline = ContinuousClock.now + limit
        leaving.withLock { $0 = true }
        let peers = core.withLock { $0?.sessions.map(\.peer) } ?? []
        guard !peers.isEmpty else {
            logger.notice("leaving: no peer to hand off to")
            return true
        }
        do {
            let last = try await store.feedPosition().lastSeq
            logger.notice("leaving the cluster: handing off this node's \(last) feed rows to \(peers.map(\.rawValue).joined(separator: ", "))")
            let handedOff = await pollUntil(deadline) { core in
                core.sessions.allSatisfy { $0.marks.pushedSeq >= last || $0.heldThrough >= last }
            }
            var epoch = try await store.feedPosition().epoch
            if epoch.isEmpty { epoch = "-" }
            let receipt = try await store.write(
                Member(id: configuration.identity, url: membership.ownURL, state: .removed, epoch: epoch))
            // A peer holds the removal when it acknowledged it, or when it refuses this node as
            // removed: it may have pulled the row before this node's push arrived, and then it
            // no longer answers that push.
            let holdsRemoval = { (session: PeerSession) in
                session.heldThrough >= receipt.seq || (session.health.lastError?.contains("removed_member") ?? false)
            }
            _ = await pollUntil(deadline) { core in core.sessions.allSatisfy(holdsRemoval) }
            let held = core.withLock { $0?.sessions.filter(holdsRemoval).map(\.peer) } ?? []
            if handedOff, held.count == peers.count {
                logger.notice("left the cluster: every member holds what this node held, and its removal")
                return true
            }
            let missing = peers.filter { !held.contains($0) }
            logger.warning("left the cluster without every acknowledgement within \(limit): \(handedOff ? "" : "not every peer holds this node's rows; ")\(missing.isEmpty ? "" : "\(missing.map(\.rawValue).joined(separator: ", ")) did not acknowledge the removal; ")remove it with kv members remove \(configuration.identity) on another member if it still shows")
            return false
        } catch {
            logger.error("cannot leave the cluster: \(error); remove this node with kv members remove \(configuration.identity) on another member")
            return false
        }
    }

    /// Polls the core every 20 ms until `condition` holds or `deadline` passes.
    private func pollUntil(_ deadline: ContinuousClock.Instant, _ condition: (ReplicationCore) -> Bool) async -> Bool {
        while ContinuousClock.now < deadline {
            if core.withLock({ $0.map(condition) ?? false }) { return true }
            try? await Task.sleep(for: Self.timerResolution)
        }
        return core.withLock { $0.map(condition) ?? false }
    }

    /// Brings the links and the core's sessions in line with the member list now.
    public func syncMembers() async {
        // While leaving, the links stay as they are until the removal has reached every peer.
        if leaving.withLock({ $0 }) { return }
        let wasRemoved = membership.selfRemoved
        do {
            try await membership.refresh(from: store)
        } catch {
            logger.warning("cannot read the member rows: \(error)")
            return
        }
        if membership.selfRemoved, !wasRemoved {
            logger.error("this node was removed from the cluster (kv members remove \(configuration.identity)); it no longer replicates. To join again, start it with a fresh --db and --join")
        }
        let peers = membership.activePeers
        let (added, dropped) = relink(to: peers)
        guard !added.isEmpty || !dropped.isEmpty else { return }
        do {
            try await store.configurePeers(added)
        } catch {
            logger.warning("cannot record the new members as peers: \(error)")
        }
        for peer in added { logger.notice("replicating with member \(peer.id) at \(peer.url)") }
        for peer in dropped { logger.notice("stopped replicating with \(peer) (removed from the cluster)") }
        let stored = (try? await store.peers()) ?? []
        let lastSeq = (try? await store.feedPosition().lastSeq) ?? 0
        let now = self.now
        let seed = UInt64.random(in: 0...UInt64.max)
        step { $0.membersChanged(to: peers.map(\.id), stored: stored, lastSeq: lastSeq, seed: seed, now: now) }
    }

    /// Makes a transport for every peer without one (or whose URL changed) and closes those of
    /// peers no longer listed; returns the peers added and the ids dropped.
    @discardableResult
    private func relink(to peers: [PeerConfig]) -> (added: [PeerConfig], dropped: [NodeID]) {
        var made: [NodeID: any PeerTransport] = [:]
        let current = links.withLock { $0.mapValues(\.url) }
        for peer in peers where current[peer.id] != peer.url {
            do {
                made[peer.id] = try makeTransport(peer)
            } catch {
                logger.error("cannot reach member \(peer.id) at \(peer.url): \(error)")
            }
        }
        let wanted = Set(peers.map(\.id))
        let (closed, added, dropped) = links.withLock { links -> ([any PeerTransport], [PeerConfig], [NodeID]) in
            var closed: [any PeerTransport] = []
            var dropped: [NodeID] = []
            for (id, link) in links where !wanted.contains(id) {
                closed.append(link.transport)
                dropped.append(id)
                links[id] = nil
            }
            var added: [PeerConfig] = []
            for peer in peers {
                guard let transport = made[peer.id] else { continue }
                if let old = links[peer.id] { closed.append(old.transport) } else { added.append(peer) }
                links[peer.id] = (peer.url, transport)
            }
            return (closed, added, dropped.sorted())
        }
        if !closed.isEmpty {
            Task { for transport in closed { await transport.close() } }
        }
        return (added, dropped)
    }

    // MARK: Driving the core

    /// Runs one step of the core under its lock and performs the actions it returns.
    private func step(_ body: (inout ReplicationCore) -> [ReplicationAction]) {
        let actions = core.withLock { slot -> [ReplicationAction] in
            guard var machine = slot else { return [] }
            slot = nil
            let actions = body(&machine)
            slot = machine
            return actions
        }
        wakeWaiters()
        perform(actions)
    }

    // MARK: Waiting for acknowledgements

    /// The peers that hold this node's own writes up to `seq` durably, as they acknowledged
    /// (`PeerSession.heldThrough`), in configuration order.
    public func holders(through seq: Int64) -> [NodeID] {
        core.withLock { core in
            core?.sessions.filter { $0.heldThrough >= seq }.map(\.peer) ?? []
        }
    }

    /// Waits until `needed` peers hold this node's own writes up to `seq`, or `timeout` passes;
    /// returns the peers that hold them then. Holds no lock while waiting, and costs nothing to
    /// writes that do not wait: the waiters are looked at after each step of the core.
    public func waitUntilHeld(through seq: Int64, byPeers needed: Int, timeout: Duration) async -> [NodeID] {
        let now = holders(through: seq)
        if now.count >= needed || needed <= 0 { return now }
        let waiter = AcknowledgementWaiter(seq: seq, needed: needed)
        let finish: @Sendable () -> Void = { [self] in
            waiter.resume(with: holders(through: seq))
            _ = waiters.withLock { $0.removeValue(forKey: ObjectIdentifier(waiter)) }
        }
        return await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                waiter.arm(continuation, timer: Task {
                    try? await Task.sleep(for: timeout)
                    finish()
                })
                waiters.withLock { $0[ObjectIdentifier(waiter)] = waiter }
                wakeWaiters()
            }
        } onCancel: {
            finish()
        }
    }

    private func wakeWaiters() {
        let pending = waiters.withLock { Array($0.values) }
        guard !pending.isEmpty else { return }
        for waiter in pending {
            let held = holders(through: waiter.seq)
            if held.count >= waiter.needed {
                waiter.resume(with: held)
                _ = waiters.withLock { $0.removeValue(forKey: ObjectIdentifier(waiter)) }
            }
        }
    }

    private func perform(_ actions: [ReplicationAction]) {
        for action in actions {
            switch action {
            case .log(let line):
                log(line)
            case .peer(let peer, let peerAction):
                guard let transport = links.withLock({ $0[peer]?.transport }) else { continue }
                jobs.continuation.yield { [self] in
                    let result = await effects.perform(peerAction, for: peer, over: transport)
                    let now = self.now
                    step { $0.handle(result, of: peerAction, for: peer, now: now) }
                }
            case .readOwnDigest, .purgeTombstones, .renewEpoch:
                jobs.continuation.yield { [self] in
                    guard let result = await effects.perform(action) else { return }
                    let now = self.now
                    step { $0.handle(result, now: now) }
                }
            }
        }
    }

    private func log(_ line: LogLine) {
        switch line.level {
        case .debug: logger.debug("\(line.message)")
        case .info: logger.info("\(line.message)")
        case .notice: logger.notice("\(line.message)")
        case .warning: logger.warning("\(line.message)")
        case .error: logger.error("\(line.message)")
        }
    }

    // MARK: Status

    /// Rows pulled so far, the seq distance left, and the rate, while the start-up catch-up runs.
    public var catchUpProgress: (rowsDone: Int64, rowsToGo: Int64, rowsPerSecond: Double)? {
        let now = self.now
        guard let progress = core.withLock({ $0?.catchUpProgress }) else { return nil }
        let seconds = (now - progress.started).inSeconds
        return (progress.rowsDone, progress.rowsToGo, seconds > 0 ? Double(progress.rowsDone) / seconds : 0)
    }

    /// What `/status` reports for every peer, in configuration order.
    public func peerReports() async throws -> [PeerReport] {
        let state = try await store.feedPosition()
        let stored = Dictionary(uniqueKeysWithValues: try await store.peers().map { ($0.id, $0) })
        let sessions = core.withLock { $0?.sessions } ?? []
        return membership.activePeers.map { peer in
            let session = sessions.first { $0.peer == peer.id }
            let health = session?.health ?? LinkHealth()
            let marks = stored[peer.id]
            let pushed = session?.marks.pushedSeq ?? marks?.pushedSeq ?? 0
            return PeerReport(
                id: peer.id, url: peer.url, reachable: health.reachable,
                since: health.since.map { originDate.addingTimeInterval($0.inSeconds) },
                pulledSeq: marks?.pulledSeq ?? 0, pushedSeq: pushed, toPush: max(0, state.lastSeq - pushed),
                lastError: health.lastError, rowsSent: health.rowsSent, rowsReceived: health.rowsReceived,
                rowsRefused: health.rowsRefused)
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
}

/// One caller of `Replicator.waitUntilHeld`: resumed once, by the first of enough
/// acknowledgements and its timeout.
private final class AcknowledgementWaiter: Sendable {
    let seq: Int64
    let needed: Int
    private let state = Mutex<(continuation: CheckedContinuation<[NodeID], Never>?, timer: Task<Void, Never>?, done: Bool)>((nil, nil, false))

    init(seq: Int64, needed: Int) {
        self.seq = seq
        self.needed = needed
    }

    /// Arms the waiter; when it was resumed already (cancelled first), answers at once.
    func arm(_ continuation: CheckedContinuation<[NodeID], Never>, timer: Task<Void, Never>) {
        let early = state.withLock { state -> Bool in
            if state.done { return true }
            state.continuation = continuation
            state.timer = timer
            return false
        }
        if early {
            timer.cancel()
            continuation.resume(returning: [])
        }
    }

    func resume(with holders: [NodeID]) {
        let (continuation, timer) = state.withLock { state -> (CheckedContinuation<[NodeID], Never>?, Task<Void, Never>?) in
            defer {
                state.continuation = nil
                state.timer = nil
                state.done = true
            }
            return (state.continuation, state.timer)
        }
        timer?.cancel()
        continuation?.resume(returning: holders)
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

extension Replicator {
    /// Every member with its state as this node sees it: an active member it cannot reach now
    /// is `suspect`, never removed by that alone (docs/operations.md, "Members").
    public func membersReply() async throws -> MembersReply {
        try await membership.refresh(from: store)
        let health = core.withLock { core in
            Dictionary((core?.sessions ?? []).map { ($0.peer, $0.health) }, uniquingKeysWith: { first, _ in first })
        }
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let members = membership.all.map { member -> MemberInfo in
            guard member.state == .active, member.id != configuration.identity else {
                return MemberInfo(id: member.id.rawValue, url: member.url, state: member.state.rawValue, reachable: nil, since: nil)
            }
            let link = health[member.id]
            let reachable = link?.reachable ?? false
            let since = link?.since.map { formatter.string(from: originDate.addingTimeInterval($0.inSeconds)) }
            return MemberInfo(
                id: member.id.rawValue, url: member.url, state: reachable ? "active" : "suspect", reachable: reachable,
                since: since)
        }
        return MembersReply(node: configuration.identity.rawValue, members: members)
    }

    /// Writes `id`'s member row as removed, for replication to carry everywhere, and drops the
    /// link to it now; false when no member of that id is known here. A node cannot remove
    /// itself this way (`RemovalRefused`): it would drop its links before the row left it.
    public func removeMember(_ id: NodeID) async throws -> Bool {
        guard id != configuration.identity else { throw RemovalRefused(node: id) }
        try await membership.refresh(from: store)
        guard let member = membership.all.first(where: { $0.id == id }) else { return false }
        if member.state != .removed {
            var epoch = member.id == configuration.identity ? try await store.feedPosition().epoch : member.epoch
            if epoch.isEmpty || epoch == "-" { epoch = try await store.peer(id)?.epoch ?? "" }
            try await store.write(Member(id: id, url: member.url, state: .removed, epoch: epoch.isEmpty ? "-" : epoch))
        }
        await syncMembers()
        return true
    }
}

/// `DELETE /members/{id}` sent to the member it names.
public struct RemovalRefused: Error, CustomStringConvertible {
    public let node: NodeID
    public var description: String {
        "node \(node) cannot remove itself: it would stop replicating before its removal reached the others; send the removal to another member (kv --node URL members remove \(node))"
    }
}
