import Foundation
import KVCore
import KVStore
import Logging
import Replication
import Synchronization

/// A deterministic simulation of a whole cluster: N nodes, each a real `KVStore` on a real
/// temporary SQLite file and the real `ReplicationCore`, `ReplicationEffects` and
/// `PeerEndpoint`, wired through an in-memory network. One seeded scheduler orders every timer,
/// message and fault, and everything runs one event at a time, so the same options give the
/// same run, bit for bit (`SimulationReport.traceHash`), on any machine.
///
/// The network delays, drops, duplicates and reorders messages and partitions nodes; nodes
/// crash (what they had not committed is lost: their in-memory state and requests in flight),
/// restart on the same file, and have their clocks leap ahead. With `FaultPlan.membership`,
/// the members change too: spare nodes join through a member, members are removed (down for
/// good, or alive and then refused), and a crashed node's file is replaced by an empty one that
/// joins again. Each node follows the member rows as `Replicator.syncMembers` does. Invariants
/// are checked at every step (`InvariantChecker`); after the load, every fault heals and the
/// run goes on until the active members meet, then checks the end state.
public final class Simulation {
    public let options: SimulationOptions
    private var random: SplitMix64
    private var queue = EventQueue<Event>()
    private var now: Duration = .zero
    private var nodes: [SimulatedNode] = []
    private var cutLinks: Set<Link> = []
    private var checker: InvariantChecker
    private var statistics = SimulationStatistics()
    private var trace = TraceHash()
    private var traceLines: [String] = []
    private var healedAt: Duration?
    private var writeCounter = 0
    /// The removed rows written, by key and version.
    private var removals: [(key: String, version: Version)] = []
    /// Why the last look found the active members not met yet.
    private var notMetBecause = "not looked yet"
    private let directory: String
    private let logger = Logger(label: "simulation", factory: { _ in SwiftLogNoOpLogHandler() })

    enum Event {
        case write
        case tick(node: Int, incarnation: Int)
        case deliver(from: Int, incarnation: Int, to: Int, action: PeerAction, duplicate: Bool, sentAt: Duration)
        case reply(node: Int, incarnation: Int, peer: Int, action: PeerAction, result: PeerResult)
        case nodeResult(node: Int, incarnation: Int, result: NodeResult)
        case crash(node: Int)
        case restart(node: Int)
        /// The node reads its member rows again (some changed) and follows them.
        case syncMembers(node: Int, incarnation: Int)
        /// A spare node joins through an up member.
        case join
        /// An up member writes a removed row for another member.
        case remove
        /// A member crashes; after `lasting` its file is deleted and it joins again, empty.
        case replace(lasting: Duration)
        case replaceFile(node: Int)
        /// A start whose join found no member to answer tries again.
        case startAgain(node: Int)
        case cut([Link])
        case mend([Link])
        case clockJump(node: Int, by: Duration)
        case healAll
        case checkConvergence
    }

    struct Link: Hashable {
        let low: Int
        let high: Int

        init(_ a: Int, _ b: Int) {
            low = min(a, b)
            high = max(a, b)
        }
    }

    public init(_ options: SimulationOptions) throws {
        precondition(options.nodes >= 1, "a simulation needs a node")
        self.options = options
        random = SplitMix64(seed: options.seed)
        checker = InvariantChecker(nodes: options.nodes + (options.faults.membership ? options.spareNodes : 0))
        let base = FileManager.default.isWritableFile(atPath: "/dev/shm") ? "/dev/shm" : NSTemporaryDirectory()
        directory = base + "/converge-sim-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    deinit {
        try? FileManager.default.removeItem(atPath: directory)
    }

    // MARK: Running

    /// Runs the simulation to its end and returns what happened; `violations` in the report
    /// are empty when every invariant held.
    public func run() async throws -> SimulationReport {
        let spares = options.faults.membership ? options.spareNodes : 0
        let names = try (0..<(options.nodes + spares)).map { try NodeID("n\($0)") }
        let slots = Dictionary(uniqueKeysWithValues: names.enumerated().map { ($1, $0) })
        for index in names.indices {
            let initial = index < options.nodes
            let seeds = initial ? names.prefix(options.nodes).filter { $0 != names[index] }.map { PeerConfig(id: $0, url: SimulatedNode.url(of: $0)) } : []
            nodes.append(
                SimulatedNode(
                    index: index, id: names[index], path: "\(directory)/\(names[index]).db", seeds: seeds, slots: slots,
                    isMember: initial))
        }
        for node in nodes where node.isMember { try await start(node) }
        scheduleLoadAndFaults()
        let deadline = options.workloadSpan + options.convergenceDeadline
        var converged = false
        var metAt: Duration?
        while let (time, event) = queue.pop() {
            now = time
            statistics.events += 1
            if time > deadline { break }
            if case .checkConvergence = event {
                if metAt == nil, try await hasConverged() { metAt = now }
                if metAt != nil, try await purgedEveryTombstone() {
                    converged = true
                    break
                }
                queue.schedule(.checkConvergence, at: now + .milliseconds(500))
                continue
            }
            try await handle(event)
            if checker.violations.count > 0, !options.keepTrace { break }
        }
        if !converged, checker.violations.isEmpty {
            checker.fail("the nodes did not meet within \(options.convergenceDeadline) of healing (\(notMetBecause))")
        }
        if converged { try await finalCheck() }
        for node in nodes { await node.store?.close() }
        return SimulationReport(
            seed: options.seed, nodes: options.nodes, violations: checker.violations, statistics: statistics,
            convergedAfterHealing: converged ? metAt.flatMap { met in healedAt.map { met - $0 } } : nil, traceHash: trace.value,
            traceTail: traceLines)
    }

    private func scheduleLoadAndFaults() {
        for _ in 0..<options.writes {
            queue.schedule(.write, at: randomTime(below: options.workloadSpan))
        }
        let faults = options.faults
        let initial = options.nodes
        if faults.oneNodeDown, initial > 1 {
            queue.schedule(.crash(node: initial - 1), at: .milliseconds(1))
        }
        if faults.splitDuringLoad, initial > 1 {
            var links: [Link] = []
            for a in 0..<initial {
                for b in 0..<initial where a < b && (a < initial / 2) != (b < initial / 2) { links.append(Link(a, b)) }
            }
            queue.schedule(.cut(links), at: .zero)
        }
        var kinds: [Int] = []
        if faults.partitions { kinds.append(0) }
        if faults.crashes { kinds.append(1) }
        if faults.clockJumps { kinds.append(2) }
        if faults.membership { kinds.append(3) }
        if !kinds.isEmpty, nodes.count > 1 {
            var time = Duration.zero
            while true {
                time += randomDuration(faults.faultInterval / 2, faults.faultInterval * 3 / 2)
                guard time < options.workloadSpan else { break }
                let lasting = randomDuration(.milliseconds(300), .seconds(4))
                switch kinds[Int(random.next() % UInt64(kinds.count))] {
                case 0:
                    let links = randomPartition()
                    queue.schedule(.cut(links), at: time)
                    queue.schedule(.mend(links), at: time + lasting)
                case 1:
                    let victim = Int(random.next() % UInt64(nodes.count))
                    queue.schedule(.crash(node: victim), at: time)
                    queue.schedule(.restart(node: victim), at: time + lasting)
                case 2:
                    let node = Int(random.next() % UInt64(nodes.count))
                    queue.schedule(.clockJump(node: node, by: randomDuration(.seconds(1), .seconds(8))), at: time)
                default:
                    switch random.next() % 3 {
                    case 0: queue.schedule(.join, at: time)
                    case 1: queue.schedule(.remove, at: time)
                    default: queue.schedule(.replace(lasting: lasting), at: time)
                    }
                }
            }
        }
        queue.schedule(.healAll, at: options.workloadSpan)
    }

    /// Either a split of the nodes into two sides, or one cut link.
    private func randomPartition() -> [Link] {
        if random.next() % 2 == 0 {
            let a = Int(random.next() % UInt64(nodes.count))
            var b = Int(random.next() % UInt64(nodes.count - 1))
            if b >= a { b += 1 }
            return [Link(a, b)]
        }
        let side = nodes.indices.map { _ in random.next() % 2 == 0 }
        var links: [Link] = []
        for a in nodes.indices {
            for b in nodes.indices where a < b && side[a] != side[b] { links.append(Link(a, b)) }
        }
        return links
    }

    // MARK: Events

    private func handle(_ event: Event) async throws {
        switch event {
        case .write:
            try await clientWrite()
        case .tick(let index, let incarnation):
            let node = nodes[index]
            guard node.isUp, node.incarnation == incarnation else { return }
            node.tickAt = nil
            let local = node.localTime(now)
            let actions = node.step { $0.tick(now: local) }
            if options.keepTrace { record("tick \(node.id): \(actions.count) actions, next \(node.core?.nextWake(after: local).map { "\($0.inNanoseconds)" } ?? "none")") }
            try await perform(actions, on: node)
        case .deliver(let from, let incarnation, let to, let action, let duplicate, let sentAt):
            try await deliver(action, from: from, incarnation: incarnation, to: to, duplicate: duplicate, sentAt: sentAt)
        case .reply(let index, let incarnation, let peer, let action, let result):
            let node = nodes[index]
            guard node.isUp, node.incarnation == incarnation else { return }
            record("reply \(node.id)←\(nodes[peer].id) \(ActionName(action)) \(ResultName(result))")
            let local = node.localTime(now)
            try await perform(node.step { $0.handle(result, of: action, for: nodes[peer].id, now: local) }, on: node)
        case .nodeResult(let index, let incarnation, let result):
            let node = nodes[index]
            guard node.isUp, node.incarnation == incarnation else { return }
            let local = node.localTime(now)
            try await perform(node.step { $0.handle(result, now: local) }, on: node)
        case .crash(let index):
            let node = nodes[index]
            guard node.isUp else { return }
            record("crash \(node.id)")
            statistics.crashes += 1
            await node.crash()
        case .restart(let index):
            let node = nodes[index]
            // A removed member stays down for good; a join under way retries on its own.
            guard !node.isUp, node.isActiveMember, !node.isJoining else { return }
            record("restart \(node.id)")
            try await start(node)
        case .syncMembers(let index, let incarnation):
            let node = nodes[index]
            guard node.isUp, node.incarnation == incarnation else { return }
            node.syncAt = nil
            try await syncMembers(node)
        case .join:
            try await joinSpare()
        case .remove:
            try await removeMember()
        case .replace(let lasting):
            try await crashForReplacement(lasting: lasting)
        case .replaceFile(let index):
            try await replaceFile(of: nodes[index])
        case .startAgain(let index):
            let node = nodes[index]
            guard !node.isUp, node.isJoining, !node.isRemoved else { return }
            try await start(node)
        case .cut(let links):
            record("cut \(links.map { "\(nodes[$0.low].id)-\(nodes[$0.high].id)" })")
            statistics.partitions += 1
            cutLinks.formUnion(links)
        case .mend(let links):
            cutLinks.subtract(links)
        case .clockJump(let index, let amount):
            let node = nodes[index]
            node.clockOffset += amount
            record("clock of \(node.id) +\(amount)")
            guard node.isUp else { return }
            let local = node.localTime(now)
            try await perform(node.step { $0.tick(now: local) }, on: node)
        case .healAll:
            record("heal")
            healedAt = now
            cutLinks.removeAll()
            for node in nodes where !node.isUp && node.isActiveMember && !node.isJoining { try await start(node) }
            queue.schedule(.checkConvergence, at: now + .milliseconds(100))
        case .checkConvergence:
            break
        }
    }

    private func clientWrite() async throws {
        let up = nodes.filter(\.isUp)
        guard !up.isEmpty else {
            statistics.writesRefused += 1
            return
        }
        let node = up[Int(random.next() % UInt64(up.count))]
        let key = "k\(random.next() % UInt64(max(1, options.keys)))"
        let isDelete = Double(random.next() % 1_000) / 1_000 < options.deleteShare
        writeCounter += 1
        let value = Array("\(node.id)-\(writeCounter)".utf8)
        guard let store = node.store else { return }
        let receipt = isDelete ? try await store.delete(key: key) : try await store.put(key: key, value: value)
        checker.acknowledged(Record(key: key, value: isDelete ? nil : value, version: receipt.version), in: file(of: node))
        statistics.writes += 1
        record("write \(node.id) \(key)@\(receipt.version)\(isDelete ? " delete" : "")")
        try await observe(node)
        // Two reads on the same node, chosen without drawing from `random` so that every seed
        // replays the schedule it had before reads were checked: the key just written (kept by
        // the read cache) and one that other nodes' writes reach (read from SQLite, then cached).
        for readKey in [key, "k\(UInt64(writeCounter) % UInt64(max(1, options.keys)))"] {
            checker.read(try await store.get(key: readKey)?.record, key: readKey, on: node.index, name: node.id)
        }
    }

    // MARK: Nodes

    /// Opens the node's file and starts its replication with the active peers its member list
    /// shows. A node that joined once (a spare, a replaced file) joins again through an up
    /// member at every start, as `kvnode --join` does, and learns the members from the reply;
    /// when no member answers, the file is closed again and the start retried a moment later.
    private func start(_ node: SimulatedNode) async throws {
        guard !node.isUp else { return }
        var storeConfiguration = StoreConfiguration(path: node.path, nodeID: node.id, readConnections: 1)
        let epochs = node.epochs
        storeConfiguration.epochSource = { epochs.next() }
        let store = try await KVStore.open(storeConfiguration, logger: logger)
        let position = try await store.feedPosition()
        var seeds = node.seeds
        if options.faults.avoidKnownBugs {
            // As an operator who drops a removed member from the --peer flags would.
            seeds.removeAll { seed in nodes.contains { $0.id == seed.id && $0.isRemoved } }
        }
        let membership = Membership(identity: node.id, seeds: seeds, ownURL: node.url)
        membership.setOwn(url: node.url, epoch: position.epoch)
        try await membership.refresh(from: store)
        if node.joinsOnStart {
            guard let reply = try await join(node, epoch: position.epoch) else {
                await store.close()
                node.isJoining = true
                queue.schedule(.startAgain(node: node.index), at: now + randomDuration(.milliseconds(100), .milliseconds(500)))
                return
            }
            membership.learn(
                reply.members.compactMap { member in
                    guard member.state == Member.State.active.rawValue, let id = try? NodeID(member.id), id != node.id else { return nil }
                    return PeerConfig(id: id, url: member.url)
                },
                removed: reply.members.filter { $0.state == Member.State.removed.rawValue }.compactMap { try? NodeID($0.id) })
            // As `ConvergeNode` does: the first writes of a file made new under a used id must
            // be newer than the old file's, which the member that added it may have seen.
            if let clock = reply.clock, !(try await store.observeClock(clock)) {
                checker.fail("\(node.id) could not take the clock \(clock) of \(reply.node)")
            }
            node.isJoining = false
            if !node.isMember {
                node.isMember = true
                statistics.joins += 1
            }
        }
        let peers = membership.activePeers
        try await store.configurePeers(peers)
        var configuration = ReplicationConfiguration(identity: node.id, peers: peers)
        configuration.batchRows = options.settings.batchRows
        configuration.tombstoneGrace = options.purgeTombstones ? .zero : .seconds(86_400)
        let stored = try await store.peers()
        let core = ReplicationCore(
            identity: node.id, peers: peers.map(\.id), stored: stored, position: position, settings: options.settings,
            seed: random.next())
        node.boot(
            store: store, core: core, effects: ReplicationEffects(store: store, configuration: configuration),
            endpoint: PeerEndpoint(store: store, configuration: configuration, gate: node.gate, membership: membership),
            membership: membership, peers: peers.map(\.id), position: position)
        record("start \(node.id) at seq \(position.lastSeq)\(options.faults.membership ? " with \(node.peerIDs.map(\.rawValue))" : "")")
        let local = node.localTime(now)
        try await perform(node.step { $0.start(now: local) }, on: node)
    }

    // MARK: Members

    /// `node` asks a random up member to add it (`PeerEndpoint.join`, a call across the
    /// simulated network: a cut link or a lost message is a failed attempt). Nil when no member
    /// answered.
    private func join(_ node: SimulatedNode, epoch: String) async throws -> MembersReply? {
        var members: [SimulatedNode] = []
        for member in nodes where member.index != node.index && member.isUp && member.isActiveMember {
            if try await holdsRowsOfRemovedMembers(member) { members.append(member) }
        }
        guard !members.isEmpty else {
            record("join \(node.id): no member is up")
            statistics.joinAttemptsFailed += 1
            return nil
        }
        let target = members[Int(random.next() % UInt64(members.count))]
        guard let endpoint = target.endpoint, !cutLinks.contains(Link(node.index, target.index)), !chance(options.faults.drop) else {
            record("join \(node.id) through \(target.id): timed out")
            statistics.joinAttemptsFailed += 1
            return nil
        }
        let reply: MembersReply
        do {
            reply = try await endpoint.join(JoinRequest(id: node.id.rawValue, url: node.url, epoch: epoch))
        } catch {
            checker.fail("\(target.id) refused the join of \(node.id) with epoch \(epoch): \(error)")
            return nil
        }
        record("join \(node.id) (epoch \(epoch)) through \(target.id): \(reply.members.map { "\($0.id) \($0.state)" })")
        try await observe(target)
        return reply
    }

    /// A spare node that never joined starts with an empty file and joins.
    private func joinSpare() async throws {
        let spares = nodes.filter { !$0.isMember && !$0.isJoining && !$0.isRemoved && !$0.isUp }
        guard !spares.isEmpty else {
            record("join: no spare left")
            return
        }
        let node = spares[Int(random.next() % UInt64(spares.count))]
        record("spare \(node.id) joins")
        node.joinsOnStart = true
        try await start(node)
    }

    /// An up member removes another member, up or down, as `Replicator.removeMember` does: it
    /// writes the member's row as removed, with the epoch it knows of the member's file, and
    /// follows its member rows at once. At least two active members always remain.
    private func removeMember() async throws {
        let members = nodes.filter(\.isActiveMember)
        guard members.count > 2 else {
            record("remove: only \(members.count) members")
            return
        }
        let removers = members.filter { $0.isUp && $0.membership?.selfRemoved == false }
        guard !removers.isEmpty else {
            record("remove: no member is up")
            return
        }
        let remover = removers[Int(random.next() % UInt64(removers.count))]
        let victims = members.filter { $0.index != remover.index && !holdsTheOnlyCopyOfARemoval($0) }
        guard !victims.isEmpty else {
            record("remove: every other member holds the only copy of a removal")
            return
        }
        let victim = victims[Int(random.next() % UInt64(victims.count))]
        guard let store = remover.store, let membership = remover.membership else { return }
        if options.faults.avoidKnownBugs, let newest = checker.newestVersion(of: MemberRow.key(of: victim.id)),
            try await store.get(key: MemberRow.key(of: victim.id)).map({ $0.record.version < newest }) ?? true
        {
            record("remove \(victim.id): \(remover.id) has not seen its newest member row (\(newest))")
            return
        }
        try await membership.refresh(from: store)
        guard let member = membership.all.first(where: { $0.id == victim.id }) else {
            // `kv members remove` answers 404 there: the member's row has not arrived yet.
            record("remove \(victim.id): \(remover.id) does not know it yet")
            return
        }
        var epoch = member.epoch
        if epoch.isEmpty || epoch == "-" { epoch = try await store.peer(victim.id)?.epoch ?? "" }
        let receipt = try await store.write(Member(id: victim.id, url: member.url, state: .removed, epoch: epoch.isEmpty ? "-" : epoch))
        removals.append((MemberRow.key(of: victim.id), receipt.version))
        victim.isRemoved = true
        victim.isJoining = false  // a replaced file that had not joined yet never will
        checker.forgive(file: file(of: victim))
        statistics.removals += 1
        if victim.isUp { statistics.removalsOfLiveNodes += 1 }
        record("remove \(victim.id) (epoch \(epoch.isEmpty ? "-" : epoch)) at \(remover.id)\(victim.isUp ? ", alive" : ", down for good")")
        try await observe(remover)
        try await syncMembers(remover)
    }

    /// An up member crashes; its file is replaced after `lasting`. Some other member keeps its
    /// file, to join through and to hold the cluster's data.
    private func crashForReplacement(lasting: Duration) async throws {
        guard nodes.filter({ $0.isActiveMember && !$0.awaitsNewFile && !$0.isJoining }).count > 1 else {
            record("replace: no other member keeps its file")
            return
        }
        let members = nodes.filter { $0.isActiveMember && $0.isUp && !$0.awaitsNewFile }
        guard !members.isEmpty else { return }
        let victim = members[Int(random.next() % UInt64(members.count))]
        record("crash \(victim.id), to replace its file")
        statistics.crashes += 1
        victim.awaitsNewFile = true
        await victim.crash()
        queue.schedule(.replaceFile(node: victim.index), at: now + lasting)
    }

    /// Deletes the file of a crashed member; the node comes back with the same id, an empty
    /// file (a new epoch), and joins again. A node restarted in the meantime is killed first,
    /// unless the faults have healed already.
    private func replaceFile(of node: SimulatedNode) async throws {
        node.awaitsNewFile = false
        guard node.isActiveMember else { return }
        if holdsTheOnlyCopyOfARemoval(node) {
            record("\(node.id) keeps its file: it holds the only copy of a removal")
            try await start(node)
            return
        }
        if node.isUp {
            guard healedAt == nil else { return }
            await node.crash()
        }
        checker.forgive(file: file(of: node))
        try node.replaceFile()
        checker.newFile(on: node.index)
        node.joinsOnStart = true
        statistics.replacements += 1
        record("replace the file of \(node.id)")
        try await start(node)
    }

    /// Reads `node`'s member rows again and, when its active peers changed, records the new
    /// ones as peers and hands the list to the core, as `Replicator.syncMembers` does.
    private func syncMembers(_ node: SimulatedNode) async throws {
        guard node.isUp, let store = node.store, let membership = node.membership else { return }
        let wasRemoved = membership.selfRemoved
        try await membership.refresh(from: store)
        if membership.selfRemoved, !wasRemoved {
            record("\(node.id) sees it was removed")
            statistics.removedNodesThatStopped += 1
        }
        let peers = membership.activePeers
        let ids = peers.map(\.id)
        guard Set(ids) != Set(node.peerIDs) else { return }
        try await store.configurePeers(peers.filter { !node.peerIDs.contains($0.id) })
        let stored = try await store.peers()
        let lastSeq = try await store.feedPosition().lastSeq
        record("members of \(node.id): \(node.peerIDs.map(\.rawValue)) → \(ids.map(\.rawValue))")
        node.peerIDs = ids
        let seed = random.next()
        let local = node.localTime(now)
        try await perform(
            node.step { $0.membersChanged(to: ids, stored: stored, lastSeq: lastSeq, seed: seed, now: local) }, on: node)
    }

    /// Whether `node`'s file is the only one in the cluster holding one of the removed rows
    /// written. Such a file is not lost (replaced, or its node removed): the removal would be
    /// lost with it, a lost operator command the simulator does not model (the member it
    /// removed would be active again, and a live one that saw its row would wait forever).
    private func holdsTheOnlyCopyOfARemoval(_ node: SimulatedNode) -> Bool {
        removals.contains { !checker.isHeld($0.key, $0.version, beyond: file(of: node)) }
    }

    /// Whether a join through `node` leaves the removed members removed (`FaultPlan.avoidKnownBugs`):
    /// `PeerEndpoint.join` writes a new active row for every member the target knows without a
    /// row (from its seeds or a join reply), and that row wins over the removal.
    private func holdsRowsOfRemovedMembers(_ node: SimulatedNode) async throws -> Bool {
        let removed = nodes.filter(\.isRemoved).map(\.id)
        guard options.faults.avoidKnownBugs, !removed.isEmpty, let store = node.store else { return true }
        let rows = Set(try await store.members().map(\.id))
        return removed.allSatisfy(rows.contains)
    }

    /// Lets `node` follow its member rows a moment from now (the replicator reads them every 500 ms).
    private func scheduleSync(_ node: SimulatedNode) {
        guard node.syncAt == nil else { return }
        let at = now + randomDuration(.milliseconds(1), .milliseconds(500))
        node.syncAt = at
        queue.schedule(.syncMembers(node: node.index, incarnation: node.incarnation), at: at)
    }

    private func file(of node: SimulatedNode) -> InvariantChecker.FileID {
        InvariantChecker.FileID(node: node.index, generation: node.generation)
    }

    // MARK: Replication

    /// Performs the core's actions for `node`: local ones at once (their results come back a
    /// moment later), network ones through the simulated network.
    private func perform(_ actions: [ReplicationAction], on node: SimulatedNode) async throws {
        for action in actions {
            guard node.isUp, let effects = node.effects else { return }
            switch action {
            case .log(let line):
                if line.level == .error { record("log \(node.id): \(line.message)") }
            case .peer(let peerID, let peerAction):
                guard let peer = node.peerIndex(of: peerID) else {
                    checker.fail("\(node.id)'s core asked for \(ActionName(peerAction)) with \(peerID), not among its peers \(node.peerIDs)")
                    continue
                }
                if peerAction.isNetwork {
                    send(peerAction, from: node, to: peer)
                } else {
                    let result = await effects.perform(peerAction, for: peerID, over: UnreachableTransport())
                    if case .persisted = result {
                        try await observe(node)
                        continue
                    }
                    queue.schedule(
                        .reply(node: node.index, incarnation: node.incarnation, peer: peer, action: peerAction, result: result),
                        at: now + localDelay())
                    switch peerAction {
                    case .readPage, .readPosition: break  // reads change nothing
                    default: try await observe(node)
                    }
                }
            case .readOwnDigest, .purgeTombstones, .renewEpoch:
                if case .renewEpoch = action {
                    checker.fail("\(node.id) took a new epoch, though no file was restored from a copy")
                }
                guard let result = await effects.perform(action) else { continue }
                queue.schedule(.nodeResult(node: node.index, incarnation: node.incarnation, result: result), at: now + localDelay())
                try await observe(node)
            }
        }
        scheduleTick(node)
    }

    private func send(_ action: PeerAction, from node: SimulatedNode, to peer: Int) {
        record("send \(node.id)→\(nodes[peer].id) \(ActionName(action))")
        statistics.messages += 1
        let faults = options.faults
        if !nodes[peer].isUp {
            queue.schedule(
                .reply(node: node.index, incarnation: node.incarnation, peer: peer, action: action, result: .failed(PeerFailure("connection refused"))),
                at: now + .milliseconds(2))
            return
        }
        if cutLinks.contains(Link(node.index, peer)) || chance(faults.drop) {
            timeOut(action, from: node, peer: peer, sentAt: now)
            return
        }
        queue.schedule(
            .deliver(from: node.index, incarnation: node.incarnation, to: peer, action: action, duplicate: false, sentAt: now),
            at: now + networkDelay())
        if chance(faults.duplicate) {
            queue.schedule(
                .deliver(from: node.index, incarnation: node.incarnation, to: peer, action: action, duplicate: true, sentAt: now),
                at: now + networkDelay())
        }
    }

    private func timeOut(_ action: PeerAction, from node: SimulatedNode, peer: Int, sentAt: Duration) {
        queue.schedule(
            .reply(node: node.index, incarnation: node.incarnation, peer: peer, action: action, result: .failed(PeerFailure("timed out"))),
            at: max(now, sentAt + options.requestTimeout))
    }

    /// A request reaches its peer: the sender's effects run it against the peer's endpoint.
    private func deliver(_ action: PeerAction, from: Int, incarnation: Int, to: Int, duplicate: Bool, sentAt: Duration) async throws {
        let sender = nodes[from]
        let target = nodes[to]
        // A sender that crashed since takes its request with it (its effects read its store).
        guard sender.isUp, sender.incarnation == incarnation, let effects = sender.effects else { return }
        guard target.isUp, let endpoint = target.endpoint, !cutLinks.contains(Link(from, to)) else {
            if !duplicate { timeOut(action, from: sender, peer: to, sentAt: sentAt) }
            return
        }
        record("deliver \(sender.id)→\(target.id) \(ActionName(action))\(duplicate ? " (duplicate)" : "")")
        let result = await effects.perform(action, for: target.id, over: AdmittingTransport(to: endpoint, from: sender.id))
        count(action, result, sender: sender.id)
        // Only a hello or a push changes the target's store; the other requests read it.
        if case .hello = action {
            try await observe(target)
        } else if case .push = action {
            try await observe(target)
            try await drainGate(of: target)
        }
        guard !duplicate else { return }
        if chance(options.faults.drop) {
            timeOut(action, from: sender, peer: to, sentAt: sentAt)
        } else {
            queue.schedule(.reply(node: from, incarnation: incarnation, peer: to, action: action, result: result), at: now + networkDelay())
        }
    }

    /// Hands the core of `node` what its endpoint heard (pushes it took, hellos).
    private func drainGate(of node: SimulatedNode) async throws {
        for note in node.gate.drain() {
            let local = node.localTime(now)
            switch note {
            case .received(let peer, let rows, let refused, let mark):
                try await perform(node.step { $0.received(from: peer, rows: rows, refused: refused, mark: mark, now: local) }, on: node)
            case .greeted(let peer):
                try await perform(node.step { $0.greeted(by: peer, now: local) }, on: node)
            }
        }
    }

    /// Reads what changed in `node`'s store since last look: checks every changed row and the
    /// marks, and tells the core of new commits.
    private func observe(_ node: SimulatedNode) async throws {
        guard node.isUp, let store = node.store else { return }
        let position = try await store.feedPosition()
        if position.lastSeq > node.checkedSeq {
            var membersChanged = false
            for row in try await store.changes(after: node.checkedSeq, limit: Int.max) {
                checker.changed(row.record, on: node.index, generation: node.generation, name: node.id)
                if MemberRow.id(ofKey: row.record.key) != nil { membersChanged = true }
            }
            node.checkedSeq = position.lastSeq
            if membersChanged { scheduleSync(node) }
        }
        checker.marks(try await store.peers(), on: node.index, name: node.id, ownEpoch: position.epoch)
        if position.lastSeq > node.knownSeq {
            node.knownSeq = position.lastSeq
            let local = node.localTime(now)
            try await perform(node.step { $0.committed(lastSeq: position.lastSeq, now: local) }, on: node)
        }
    }

    private func scheduleTick(_ node: SimulatedNode) {
        node.updateGate()
        let local = node.localTime(now)
        guard let wake = node.core?.nextWake(after: local) else { return }
        let at = max(now + .milliseconds(1), wake - node.clockOffset)
        if let pending = node.tickAt, pending > now, pending <= at { return }
        node.tickAt = at
        queue.schedule(.tick(node: node.index, incarnation: node.incarnation), at: at)
    }

    // MARK: The end

    /// Whether the active members have met: all up, no join under way, equal digests, every
    /// acknowledged write that must survive held, and each one's core replicating with exactly
    /// the other active members. Otherwise `notMetBecause` says what is missing.
    private func hasConverged() async throws -> Bool {
        if let joining = nodes.first(where: \.isJoining) {
            notMetBecause = "\(joining.id) is still joining"
            return false
        }
        let active = nodes.filter(\.isActiveMember)
        if let down = active.first(where: { !$0.isUp }) {
            notMetBecause = "\(down.id) is down"
            return false
        }
        var first: String?
        for node in active {
            guard let store = node.store else { return false }
            let digest = try await store.digest()
            let text = RowDigest.hex(digest.whole)
            if let first, first != text {
                notMetBecause = "the digests differ"
                return false
            }
            first = text
        }
        guard checker.holdsEveryAcknowledgedWrite(try await allRows(of: active)) else {
            notMetBecause = "an acknowledged write is missing somewhere"
            return false
        }
        for node in active {
            let expected = Set(active.map(\.id)).subtracting([node.id])
            let sessions = Set(node.core?.sessions.map(\.peer) ?? [])
            guard Set(node.peerIDs) == expected, sessions == expected else {
                notMetBecause = "\(node.id) replicates with \(sessions.map(\.rawValue).sorted()), the other active members are \(expected.map(\.rawValue).sorted())"
                return false
            }
        }
        return true
    }

    /// Whether, once the active members have met, each has purged every tombstone (with
    /// `purgeTombstones`, a grace of zero): anti-entropy rounds go on, and a purge waits for the
    /// active peers only, not for removed members or for a peer that left a round unfinished.
    private func purgedEveryTombstone() async throws -> Bool {
        guard options.purgeTombstones else { return true }
        for node in nodes where node.isActiveMember {
            guard let store = node.store else { return false }
            let tombstones = try await store.changes(after: 0, limit: Int.max).filter(\.record.isTombstone).count
            if tombstones > 0 {
                notMetBecause = "the active members met, but \(node.id) still holds \(tombstones) tombstones: no purge took them"
                return false
            }
        }
        return true
    }

    private func allRows(of nodes: [SimulatedNode]) async throws -> [[StoredRecord]] {
        var rows: [[StoredRecord]] = []
        for node in nodes {
            guard let store = node.store else { continue }
            rows.append(try await store.changes(after: 0, limit: Int.max))
        }
        return rows
    }

    /// The end state of the active members (the removed ones receive nothing any more): their
    /// rows (`InvariantChecker.final`), and their member lists: the same member rows on each, and
    /// as active peers exactly the other active members, so no removed member among them.
    private func finalCheck() async throws {
        let active = nodes.filter(\.isActiveMember)
        checker.final(rows: try await allRows(of: active), names: active.map(\.id))
        let removed = Set(nodes.filter(\.isRemoved).map(\.id))
        var firstRows: (NodeID, [Member])?
        for node in active {
            guard let store = node.store, let membership = node.membership else { continue }
            try await membership.refresh(from: store)
            let rows = membership.rows
            if let (name, listed) = firstRows, listed != rows {
                checker.fail("\(node.id) and \(name) list different members: \(rows.map(describe)) vs \(listed.map(describe))")
            }
            if firstRows == nil { firstRows = (node.id, rows) }
            let peers = Set(membership.activePeers.map(\.id))
            if !peers.isDisjoint(with: removed) {
                checker.fail("\(node.id) counts the removed \(peers.intersection(removed).map(\.rawValue).sorted()) among its active peers")
            }
            let expected = Set(active.map(\.id)).subtracting([node.id])
            if peers != expected {
                checker.fail("\(node.id)'s active peers are \(peers.map(\.rawValue).sorted()), the other active members \(expected.map(\.rawValue).sorted())")
            }
        }
    }

    private func describe(_ member: Member) -> String {
        "\(member.id) \(member.state.rawValue) \(member.epoch)"
    }

    // MARK: Counting and randomness

    private func count(_ action: PeerAction, _ result: PeerResult, sender: NodeID) {
        var batch: FeedBatch?
        switch (action, result) {
        case (.push(let request), .pushAnswered(.accepted(let reply))) where reply.deferred != true:
            batch = request.batch
            for row in request.batch.rows {
                if row.record.version.origin == sender { statistics.rowsPushedOwn += 1 } else { statistics.rowsForwarded += 1 }
            }
        case (_, .feedFetched(let feed)):
            batch = feed.batch
            statistics.rowsPulled += feed.batch.rows.count
        case (_, .bucketFetched(let bucket)):
            batch = bucket
            statistics.rowsRepaired += bucket.rows.count
        default:
            break
        }
        guard let batch else { return }
        statistics.rowsSent += batch.rows.count
        if options.countBytes { statistics.bytesSent += FeedCodec.encode(batch).count }
    }

    private func record(_ line: String) {
        let text = "\(now.inNanoseconds) \(line)"
        trace.add(text)
        if options.keepTrace { traceLines.append(text) }
    }

    private func chance(_ probability: Double) -> Bool {
        probability > 0 && Double(random.next() % 1_000_000) / 1_000_000 < probability
    }

    private func networkDelay() -> Duration {
        let range = options.faults.delayMilliseconds
        return .milliseconds(range.lowerBound + Int(random.next() % UInt64(range.count)))
    }

    private func localDelay() -> Duration {
        .microseconds(Int(random.next() % 1_000))
    }

    private func randomDuration(_ low: Duration, _ high: Duration) -> Duration {
        let span = UInt64(max(1, (high - low).inNanoseconds))
        return low + .nanoseconds(Int64(random.next() % span))
    }

    private func randomTime(below limit: Duration) -> Duration {
        .nanoseconds(Int64(random.next() % UInt64(max(1, limit.inNanoseconds))))
    }
}

/// What a simulated run did and found.
public struct SimulationReport: Sendable {
    public let seed: UInt64
    public let nodes: Int
    /// Every invariant that failed, in words; empty when the run is correct.
    public let violations: [String]
    public let statistics: SimulationStatistics
    /// How long after every fault healed the active members held the same rows (the tombstones
    /// may be purged later); nil if they never did.
    public let convergedAfterHealing: Duration?
    /// A hash of every event in order: equal for equal runs.
    public let traceHash: UInt64
    /// Every event, when the options kept a trace.
    public let traceTail: [String]
}

/// Counters of a simulated run.
public struct SimulationStatistics: Sendable {
    public init() {}

    public var events = 0
    public var messages = 0
    public var writes = 0
    public var writesRefused = 0
    /// Rows carried by pushes, pulls and digest repair.
    public var rowsSent = 0
    /// Of those: the pusher's own writes, other nodes' writes forwarded, pulls, digest repair.
    public var rowsPushedOwn = 0
    public var rowsForwarded = 0
    public var rowsPulled = 0
    public var rowsRepaired = 0
    /// Bytes of those batches, when counted.
    public var bytesSent = 0
    public var crashes = 0
    public var partitions = 0
    /// Membership changes: spares that joined, members removed (of them, alive ones), files
    /// replaced by empty ones; join attempts no member answered; removed nodes that saw their
    /// own removed row and stopped.
    public var joins = 0
    public var removals = 0
    public var removalsOfLiveNodes = 0
    public var replacements = 0
    public var joinAttemptsFailed = 0
    public var removedNodesThatStopped = 0

    /// Rows sent per acknowledged client write.
    public var rowsPerWrite: Double { writes > 0 ? Double(rowsSent) / Double(writes) : 0 }
}

/// FNV-1a over the trace lines.
struct TraceHash {
    private(set) var value: UInt64 = 0xcbf2_9ce4_8422_2325

    mutating func add(_ line: String) {
        for byte in line.utf8 {
            value ^= UInt64(byte)
            value = value &* 0x0000_0100_0000_01B3
        }
        value ^= 0x0A
        value = value &* 0x0000_0100_0000_01B3
    }
}

/// A short, stable name of an action for the trace.
struct ActionName: CustomStringConvertible {
    let action: PeerAction
    init(_ action: PeerAction) { self.action = action }

    var description: String {
        switch action {
        case .hello(let request): return "hello(\(request.epoch), \(request.seq))"
        case .push(let request): return "push(\(request.lane) \(request.batch.from)…\(request.batch.to) \(request.batch.rows.count) rows\(request.clock.map { " clock \($0)" } ?? ""))"
        case .fetchFeed(let after, _): return "feed(after \(after))"
        case .fetchDigest: return "digest"
        case .fetchBucket(let bucket): return "bucket(\(bucket))"
        case .notePeerEpoch(let epoch): return "note-epoch(\(epoch))"
        case .readPosition: return "read-position"
        case .readPage(let request): return "read-page(after \(request.after))"
        case .applyPulled(let feed, let claim): return "apply(\(feed.batch.from)…\(feed.batch.to)\(claim ? " claim" : ""))"
        case .applyRepair(let batch): return "repair(\(batch.rows.count) rows)"
        case .persistPushedSeq(let seq): return "persist(\(seq))"
        }
    }
}

/// A short, stable name of a result for the trace.
struct ResultName: CustomStringConvertible {
    let result: PeerResult
    init(_ result: PeerResult) { self.result = result }

    var description: String {
        switch result {
        case .failed(let failure): return "failed(\(failure))"
        case .helloReplied(let reply): return "hello(\(reply.epoch) seq \(reply.seq) mark \(reply.pulledSeq))"
        case .pushAnswered(.accepted(let reply)): return "pushed(mark \(reply.pulledSeq), applied \(reply.applied)\(reply.deferred == true ? ", deferred" : ""))"
        case .pushAnswered(.resynchronise(let detail)): return "resynchronise(\(detail))"
        case .feedFetched(let feed): return "feed(\(feed.batch.from)…\(feed.batch.to) \(feed.batch.rows.count) rows, last \(feed.lastSeq))"
        case .digestFetched(let digest): return "digest(\(digest.digest))"
        case .bucketFetched(let batch): return "bucket(\(batch.rows.count) rows)"
        case .peerEpochNoted(let previous): return "epoch-noted(\(previous ?? "same"))"
        case .positionRead(let position): return "position(\(position.epoch) \(position.lastSeq))"
        case .pageRead(let page): return "page(to \(page.to), \(page.rows.count) rows, last \(page.lastSeq))"
        case .pulledApplied(let applied): return "applied(mark \(applied.mark), \(applied.applied) rows)"
        case .pulledGap: return "gap"
        case .repaired(let applied, let received, _): return "repaired(\(applied) of \(received))"
        case .persisted: return "persisted"
        }
    }
}

/// Stands in for the transport of local actions, which never use it.
struct UnreachableTransport: PeerTransport {
    func hello(_ request: HelloRequest) async throws(PeerFailure) -> HelloReply { throw PeerFailure("no transport") }
    func push(_ request: PushRequest) async throws(PeerFailure) -> PushAnswer { throw PeerFailure("no transport") }
    func feed(after: Int64, limit: Int, covered: [FeedExclusion], epoch: String) async throws(PeerFailure) -> FetchedFeed {
        throw PeerFailure("no transport")
    }
    func digest(epoch: String) async throws(PeerFailure) -> DigestReply { throw PeerFailure("no transport") }
    func bucket(_ bucket: Int, epoch: String) async throws(PeerFailure) -> FeedBatch { throw PeerFailure("no transport") }
    func copy(of key: String) async throws(PeerFailure) -> Record? { throw PeerFailure("no transport") }
    func repair(_ records: [Record]) async throws(PeerFailure) -> RepairReply { throw PeerFailure("no transport") }
    func close() async {}
}
