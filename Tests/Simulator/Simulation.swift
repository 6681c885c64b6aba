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
/// restart on the same file, and have their clocks leap ahead. Invariants are checked at every
/// step (`InvariantChecker`); after the load, every fault heals and the run goes on until the
/// nodes meet, then checks the end state.
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
        checker = InvariantChecker(nodes: options.nodes)
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
        let names = try (0..<options.nodes).map { try NodeID("n\($0)") }
        for index in names.indices {
            let peers = names.indices.filter { $0 != index }
            nodes.append(
                SimulatedNode(
                    index: index, id: names[index], path: "\(directory)/\(names[index]).db", peers: peers,
                    peerIDs: peers.map { names[$0] }))
        }
        for node in nodes { try await start(node) }
        scheduleLoadAndFaults()
        let deadline = options.workloadSpan + options.convergenceDeadline
        var converged = false
        while let (time, event) = queue.pop() {
            now = time
            statistics.events += 1
            if time > deadline { break }
            if case .checkConvergence = event {
                if try await hasConverged() {
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
            checker.fail("the nodes did not meet within \(options.convergenceDeadline) of healing")
        }
        if converged { try await finalCheck() }
        for node in nodes { await node.store?.close() }
        return SimulationReport(
            seed: options.seed, nodes: options.nodes, violations: checker.violations, statistics: statistics,
            convergedAfterHealing: converged ? healedAt.map { now - $0 } : nil, traceHash: trace.value,
            traceTail: traceLines)
    }

    private func scheduleLoadAndFaults() {
        for _ in 0..<options.writes {
            queue.schedule(.write, at: randomTime(below: options.workloadSpan))
        }
        let faults = options.faults
        if faults.oneNodeDown, nodes.count > 1 {
            queue.schedule(.crash(node: nodes.count - 1), at: .milliseconds(1))
        }
        if faults.splitDuringLoad, nodes.count > 1 {
            var links: [Link] = []
            for a in nodes.indices {
                for b in nodes.indices where a < b && (a < nodes.count / 2) != (b < nodes.count / 2) { links.append(Link(a, b)) }
            }
            queue.schedule(.cut(links), at: .zero)
        }
        var kinds: [Int] = []
        if faults.partitions { kinds.append(0) }
        if faults.crashes { kinds.append(1) }
        if faults.clockJumps { kinds.append(2) }
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
                default:
                    let node = Int(random.next() % UInt64(nodes.count))
                    queue.schedule(.clockJump(node: node, by: randomDuration(.seconds(1), .seconds(8))), at: time)
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
            guard !node.isUp else { return }
            record("restart \(node.id)")
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
            for node in nodes where !node.isUp { try await start(node) }
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
        checker.acknowledged(Record(key: key, value: isDelete ? nil : value, version: receipt.version))
        statistics.writes += 1
        record("write \(node.id) \(key)@\(receipt.version)\(isDelete ? " delete" : "")")
        try await observe(node)
    }

    // MARK: Nodes

    private func start(_ node: SimulatedNode) async throws {
        var storeConfiguration = StoreConfiguration(path: node.path, nodeID: node.id, readConnections: 1)
        let epochs = node.epochs
        storeConfiguration.epochSource = { epochs.next() }
        let store = try await KVStore.open(storeConfiguration, logger: logger)
        try await store.configurePeers(node.peerIDs.map { PeerConfig(id: $0, url: "sim://\($0)") })
        var configuration = ReplicationConfiguration(identity: node.id, peers: node.peerIDs.map { PeerConfig(id: $0, url: "sim://\($0)") })
        configuration.batchRows = options.settings.batchRows
        configuration.tombstoneGrace = options.purgeTombstones ? .zero : .seconds(86_400)
        let position = try await store.feedPosition()
        let stored = try await store.peers()
        let core = ReplicationCore(
            identity: node.id, peers: node.peerIDs, stored: stored, position: position, settings: options.settings,
            seed: random.next())
        node.boot(
            store: store, core: core, effects: ReplicationEffects(store: store, configuration: configuration),
            endpoint: PeerEndpoint(store: store, configuration: configuration, gate: node.gate), position: position)
        record("start \(node.id) at seq \(position.lastSeq)")
        let local = node.localTime(now)
        try await perform(node.step { $0.start(now: local) }, on: node)
    }

    /// Performs the core's actions for `node`: local ones at once (their results come back a
    /// moment later), network ones through the simulated network.
    private func perform(_ actions: [ReplicationAction], on node: SimulatedNode) async throws {
        for action in actions {
            guard node.isUp, let effects = node.effects else { return }
            switch action {
            case .log(let line):
                if line.level == .error { record("log \(node.id): \(line.message)") }
            case .peer(let peerID, let peerAction):
                guard let peer = node.peerIndex(of: peerID) else { continue }
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
        let result = await effects.perform(action, for: target.id, over: InMemoryPeerTransport(to: endpoint, from: sender.id))
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
            for row in try await store.changes(after: node.checkedSeq, limit: Int.max) {
                checker.changed(row.record, on: node.index, name: node.id)
            }
            node.checkedSeq = position.lastSeq
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

    private func hasConverged() async throws -> Bool {
        guard nodes.allSatisfy(\.isUp) else { return false }
        var first: String?
        for node in nodes {
            guard let store = node.store else { return false }
            let digest = try await store.digest()
            let text = RowDigest.hex(digest.whole)
            if let first, first != text { return false }
            first = text
        }
        return checker.holdsEveryAcknowledgedWrite(try await allRows())
    }

    private func allRows() async throws -> [[StoredRecord]] {
        var rows: [[StoredRecord]] = []
        for node in nodes {
            guard let store = node.store else { continue }
            rows.append(try await store.changes(after: 0, limit: Int.max))
        }
        return rows
    }

    private func finalCheck() async throws {
        checker.final(rows: try await allRows(), names: nodes.map(\.id))
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
    /// How long after every fault healed the nodes held the same rows; nil if they never did.
    public let convergedAfterHealing: Duration?
    /// A hash of every event in order: equal for equal runs.
    public let traceHash: UInt64
    /// Every event, when the options kept a trace.
    public let traceTail: [String]
}

/// Counters of a simulated run.
public struct SimulationStatistics: Sendable {
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
