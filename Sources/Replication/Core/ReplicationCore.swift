public import KVCore
public import KVStore

/// A node's replication as one state machine with no I/O (DESIGN.md §3): a `PeerSession` per
/// peer, plus what spans them — greet every peer at start, then catch up from them one at a
/// time (the one with the most to offer first), then run rounds of anti-entropy (pull past
/// every mark, compare digests, purge the tombstones every peer acknowledged), and take a new
/// epoch at most once when a peer shows this file is an older copy.
///
/// Drivers (`Replicator` with HTTP, the simulator with an in-memory network) feed it events
/// with the time as they see it and perform the `ReplicationAction`s it returns, answering each
/// `.peer` action and each node action with exactly one result (`persistPushedSeq` only on
/// failure). It never reads a clock, and its only randomness is seeded.
public struct ReplicationCore: Sendable {
    public let identity: NodeID
    let settings: ReplicationSettings
    public private(set) var sessions: [PeerSession]
    /// This node's epoch as the core last learned it.
    public private(set) var epoch: String
    public private(set) var phase: Phase = .greeting

    private var triedAtStart: Set<NodeID> = []
    private var greetedAtStart: Set<NodeID> = []
    private var catchUpQueue: [NodeID] = []
    private var catchUpCurrent: NodeID?
    private var catchUpStarted: Duration = .zero
    private var catchUpRows: [NodeID: (done: Int, toGo: Int64)] = [:]
    private var round: Round?
    private var nextRoundAt: Duration = .zero
    private var renewing = false

    public enum Phase: Sendable, Equatable {
        /// Greeting every peer once, before anything is pulled.
        case greeting
        /// Pulling every greeted peer's feed, one at a time.
        case catchingUp
        case running
    }

    enum Round: Sendable, Equatable {
        case pulling(Set<NodeID>)
        case readingDigest
        case repairing(Set<NodeID>)
        case purging
    }

    /// A core for `identity` with the peers and marks its file holds (`peers` in configuration
    /// order, `stored` from the `peers` table), at feed position `position`.
    public init(
        identity: NodeID, peers: [NodeID], stored: [PeerState], position: FeedPosition, settings: ReplicationSettings,
        seed: UInt64
    ) {
        self.identity = identity
        self.settings = settings
        self.epoch = position.epoch
        let byID = Dictionary(stored.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        var seeds = SplitMix64(seed: seed)
        sessions = peers.map { peer in
            PeerSession(
                peer: peer, identity: identity, stored: byID[peer], lastSeq: position.lastSeq, settings: settings,
                seed: seeds.next())
        }
        if sessions.isEmpty { phase = .running }
    }

    // MARK: Queries

    /// True until the start-up catch-up has tried every peer.
    public var catchingUp: Bool { phase != .running }

    /// Whether a push from `peer` is to be deferred: while the start-up catch-up runs, for a peer
    /// greeted at start, since its feed is pulled anyway and the peers after the first leave out
    /// what this node then holds. A peer that could not be greeted is not pulled: its pushes are taken.
    public func defersPushes(from peer: NodeID) -> Bool {
        catchingUp && greetedAtStart.contains(peer)
    }

    /// Rows pulled so far and the seq distance left, while the start-up catch-up runs, and since when.
    public var catchUpProgress: (rowsDone: Int64, rowsToGo: Int64, started: Duration)? {
        guard catchingUp else { return nil }
        let done = catchUpRows.values.reduce(0) { $0 + $1.done }
        let toGo = catchUpRows.values.reduce(Int64(0)) { $0 + $1.toGo }
        return (Int64(done), toGo, catchUpStarted)
    }

    /// The session of `peer`.
    public func session(_ peer: NodeID) -> PeerSession? {
        sessions.first { $0.peer == peer }
    }

    /// When the driver must wake the core next, if nothing else happens first.
    public func nextWake(after now: Duration) -> Duration? {
        var wake = sessions.compactMap { $0.nextWake(after: now) }.min()
        if phase == .running, round == nil, !sessions.isEmpty {
            wake = min(wake ?? nextRoundAt, nextRoundAt)
        }
        return wake
    }

    // MARK: Events

    /// The driver started: greet every peer.
    public mutating func start(now: Duration) -> [ReplicationAction] {
        catchUpStarted = now
        nextRoundAt = now + settings.antiEntropyInterval
        return tick(now: now)
    }

    /// A commit on this node: its feed now ends at `lastSeq`.
    public mutating func committed(lastSeq: Int64, now: Duration) -> [ReplicationAction] {
        var actions: [ReplicationAction] = []
        for index in sessions.indices {
            var output = SessionOutput()
            sessions[index].committed(lastSeq: lastSeq, now: now, epoch: epoch, into: &output)
            take(output, from: index, now: now, into: &actions)
        }
        return actions
    }

    /// Time passed: start what is due.
    public mutating func tick(now: Duration) -> [ReplicationAction] {
        var actions: [ReplicationAction] = []
        for index in sessions.indices {
            var output = SessionOutput()
            sessions[index].tick(now: now, epoch: epoch, into: &output)
            take(output, from: index, now: now, into: &actions)
        }
        if phase == .running, round == nil, !sessions.isEmpty, now >= nextRoundAt {
            startRound(now: now, into: &actions)
        }
        return actions
    }

    /// `peer` pushed a batch that this node took; its mark of the peer is now `mark`.
    public mutating func received(from peer: NodeID, rows: Int, refused: [Record], mark: Int64, now: Duration) -> [ReplicationAction] {
        guard let index = sessions.firstIndex(where: { $0.peer == peer }) else { return [] }
        var output = SessionOutput()
        sessions[index].received(rows: rows, refused: refused, mark: mark, into: &output)
        var actions: [ReplicationAction] = []
        take(output, from: index, now: now, into: &actions)
        return actions
    }

    /// `peer` greeted this node: it is up, so a link to it in backoff greets it now.
    public mutating func greeted(by peer: NodeID, now: Duration) -> [ReplicationAction] {
        guard let index = sessions.firstIndex(where: { $0.peer == peer }) else { return [] }
        var output = SessionOutput()
        sessions[index].peerGreeted(now: now, epoch: epoch, into: &output)
        var actions: [ReplicationAction] = []
        take(output, from: index, now: now, into: &actions)
        return actions
    }

    /// The member list changed: `peers` are the active peers now. A new peer gets a session
    /// (with its stored marks, if this file knew it before) that greets it at once; a peer no
    /// longer listed loses its session, and whatever waited for it (the start-up greeting and
    /// catch-up, an anti-entropy round, the purge's acknowledgements) stops waiting.
    public mutating func membersChanged(
        to peers: [NodeID], stored: [PeerState], lastSeq: Int64, seed: UInt64, now: Duration
    ) -> [ReplicationAction] {
        var actions: [ReplicationAction] = []
        let wanted = Set(peers)
        let gone = sessions.map(\.peer).filter { !wanted.contains($0) }
        sessions.removeAll { !wanted.contains($0.peer) }
        for peer in gone {
            triedAtStart.remove(peer)
            greetedAtStart.remove(peer)
            catchUpQueue.removeAll { $0 == peer }
            catchUpRows[peer] = nil
            switch round {
            case .pulling(var pending):
                pending.remove(peer)
                round = .pulling(pending)
                if pending.isEmpty {
                    round = .readingDigest
                    actions.append(.readOwnDigest)
                }
            case .repairing(var pending):
                pending.remove(peer)
                round = .repairing(pending)
                if pending.isEmpty { purge(now: now, into: &actions) }
            case .readingDigest, .purging, nil:
                break
            }
        }
        let byID = Dictionary(stored.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        var seeds = SplitMix64(seed: seed)
        for peer in peers where session(peer) == nil {
            sessions.append(
                PeerSession(
                    peer: peer, identity: identity, stored: byID[peer], lastSeq: lastSeq, settings: settings,
                    seed: seeds.next()))
        }
        if let current = catchUpCurrent, !wanted.contains(current) {
            catchUpCurrent = nil
            continueCatchUp(now: now, into: &actions)
        }
        if phase == .greeting, triedAtStart.count >= sessions.count {
            if sessions.isEmpty {
                phase = .running
            } else {
                startCatchUp(now: now, into: &actions)
            }
        }
        return actions + tick(now: now)
    }

    /// The result of a `.peer(peer, action)` action.
    public mutating func handle(_ result: PeerResult, of action: PeerAction, for peer: NodeID, now: Duration) -> [ReplicationAction] {
        guard let index = sessions.firstIndex(where: { $0.peer == peer }) else { return [] }
        var output = SessionOutput()
        sessions[index].handle(result, of: action, now: now, epoch: epoch, into: &output)
        var actions: [ReplicationAction] = []
        take(output, from: index, now: now, into: &actions)
        return actions
    }

    /// The result of a node action (`readOwnDigest`, `purgeTombstones`, `renewEpoch`).
    public mutating func handle(_ result: NodeResult, now: Duration) -> [ReplicationAction] {
        var actions: [ReplicationAction] = []
        switch result {
        case .ownDigest(let digest):
            guard round == .readingDigest else { break }
            round = .repairing(Set(sessions.map(\.peer)))
            for index in sessions.indices {
                var output = SessionOutput()
                sessions[index].startRepair(own: digest, into: &output)
                take(output, from: index, now: now, into: &actions)
            }
        case .purged(let count):
            if count > 0 {
                actions.append(.log(LogLine(level: .info, message: "purged \(count) tombstones that every peer acknowledged and that are older than the grace")))
            }
            endRound(now: now)
        case .epochRenewed(let current, let renewed):
            renewing = false
            epoch = current
            for index in sessions.indices {
                var output = SessionOutput()
                if renewed {
                    sessions[index].epochRenewed(now: now, epoch: epoch, into: &output)
                } else {
                    sessions[index].renewalSettled(now: now, epoch: epoch, into: &output)
                }
                take(output, from: index, now: now, into: &actions)
            }
        case .failed(let action, let reason):
            actions.append(.log(LogLine(level: .warning, message: "\(action) failed: \(reason)")))
            switch action {
            case .renewEpoch:
                renewing = false
                for index in sessions.indices {
                    var output = SessionOutput()
                    sessions[index].renewalSettled(now: now, epoch: epoch, into: &output)
                    take(output, from: index, now: now, into: &actions)
                }
            case .readOwnDigest, .purgeTombstones:
                endRound(now: now)
            case .peer, .log:
                break
            }
        }
        return actions
    }

    // MARK: Notes from the sessions

    private mutating func take(_ output: SessionOutput, from index: Int, now: Duration, into actions: inout [ReplicationAction]) {
        let peer = sessions[index].peer
        actions += output.actions.map { .peer(peer, $0) }
        for note in output.notes {
            switch note {
            case .log(let line):
                actions.append(.log(line))
            case .greeted, .greetingFailed:
                guard phase == .greeting else { continue }
                triedAtStart.insert(peer)
                if note == .greeted { greetedAtStart.insert(peer) }
                if triedAtStart.count == sessions.count { startCatchUp(now: now, into: &actions) }
            case .renewEpoch(let observed, let reason):
                if renewing { continue }
                if observed != epoch {
                    var output = SessionOutput()
                    sessions[index].renewalSettled(now: now, epoch: epoch, into: &output)
                    take(output, from: index, now: now, into: &actions)
                    continue
                }
                renewing = true
                actions.append(.log(LogLine(level: .warning, message: "\(reason); taking a new epoch so peers re-read the whole feed")))
                actions.append(.renewEpoch(observed: observed))
            case .pullProgress(let purpose, let done, let toGo):
                if purpose == .catchUp { catchUpRows[peer] = (done, toGo) }
            case .pullFinished(let purpose, _, _):
                if purpose == .catchUp, phase == .catchingUp, catchUpCurrent == peer {
                    catchUpCurrent = nil
                    continueCatchUp(now: now, into: &actions)
                } else if purpose == .antiEntropy, case .pulling(var pending) = round {
                    pending.remove(peer)
                    round = .pulling(pending)
                    if pending.isEmpty {
                        round = .readingDigest
                        actions.append(.readOwnDigest)
                    }
                }
            case .repairFinished:
                if case .repairing(var pending) = round {
                    pending.remove(peer)
                    round = .repairing(pending)
                    if pending.isEmpty { purge(now: now, into: &actions) }
                }
            }
        }
    }

    // MARK: Catch-up

    private mutating func startCatchUp(now: Duration, into actions: inout [ReplicationAction]) {
        phase = .catchingUp
        catchUpStarted = now
        // The peer with the most to offer first: after its feed is applied this node says what
        // it holds, and the next peers leave that out.
        catchUpQueue = sessions.enumerated()
            .filter { greetedAtStart.contains($0.element.peer) }
            .sorted { ($0.element.marks.peerLastSeq, -$0.offset) > ($1.element.marks.peerLastSeq, -$1.offset) }
            .map(\.element.peer)
        continueCatchUp(now: now, into: &actions)
    }

    private mutating func continueCatchUp(now: Duration, into actions: inout [ReplicationAction]) {
        while catchUpCurrent == nil, !catchUpQueue.isEmpty {
            let peer = catchUpQueue.removeFirst()
            guard let index = sessions.firstIndex(where: { $0.peer == peer }) else { continue }
            catchUpCurrent = peer
            var output = SessionOutput()
            sessions[index].startPull(.catchUp, now: now, into: &output)
            take(output, from: index, now: now, into: &actions)
        }
        if catchUpCurrent == nil, phase == .catchingUp {
            phase = .running
            nextRoundAt = now + settings.antiEntropyInterval
            actions.append(.log(LogLine(level: .info, message: "catch-up finished")))
        }
    }

    // MARK: Anti-entropy

    private mutating func startRound(now: Duration, into actions: inout [ReplicationAction]) {
        round = .pulling(Set(sessions.map(\.peer)))
        for index in sessions.indices {
            var output = SessionOutput()
            sessions[index].startPull(.antiEntropy, now: now, into: &output)
            take(output, from: index, now: now, into: &actions)
        }
    }

    /// Purges the tombstones every peer has acknowledged: a peer never heard from (mark 0)
    /// holds every purge back, so no deleted key can come back from a node that has not seen
    /// its delete.
    private mutating func purge(now: Duration, into actions: inout [ReplicationAction]) {
        let safe = sessions.map(\.marks.pushedSeq).min() ?? 0
        guard safe > 0 else {
            endRound(now: now)
            return
        }
        round = .purging
        actions.append(.purgeTombstones(ackedThrough: safe))
    }

    private mutating func endRound(now: Duration) {
        round = nil
        nextRoundAt = now + settings.antiEntropyInterval
    }
}

/// What `ReplicationCore` asks its driver to do.
public enum ReplicationAction: Sendable, Equatable {
    /// Perform `action` for the session of the peer; answer with `handle(_:of:for:now:)`.
    case peer(NodeID, PeerAction)
    /// Compute this node's digest; answer `.ownDigest`.
    case readOwnDigest
    /// Purge the tombstones at or below `ackedThrough` older than the grace; answer `.purged`.
    case purgeTombstones(ackedThrough: Int64)
    /// Take a new epoch if the store's is still `observed`; answer `.epochRenewed`.
    case renewEpoch(observed: String)
    /// Write a line to the node's log; no answer.
    case log(LogLine)
}

/// What came of a node action.
public enum NodeResult: Sendable, Equatable {
    case ownDigest(DigestReply)
    case purged(Int)
    /// The store's epoch after the renewal, and whether this renewal took it.
    case epochRenewed(current: String, renewed: Bool)
    case failed(ReplicationAction, reason: String)
}
