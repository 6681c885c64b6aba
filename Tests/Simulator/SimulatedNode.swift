import Foundation
import KVCore
import KVStore
import Replication
import Synchronization

/// One node of a `Simulation`: its store on a real SQLite file, its replication core, its
/// endpoint and its view of the members, or nothing while it is down. Used by the simulation's
/// one task only.
///
/// A slot holds one node id over the whole run. It may start absent (a spare that joins later)
/// and its file may be replaced by an empty one (`generation` counts the files); a removed
/// member never comes back.
final class SimulatedNode {
    let index: Int
    let id: NodeID
    /// How the others reach it (a join wants an http URL; nothing is ever dialled).
    let url: String
    let path: String
    /// The members it is started with, as `--peer` flags: the other initial nodes; none for a spare.
    let seeds: [PeerConfig]
    let epochs: EpochCounter
    let gate = SimulatedGate()
    /// Every node's slot, by id: where a message to a peer goes.
    private let slots: [NodeID: Int]

    private(set) var store: KVStore?
    private(set) var core: ReplicationCore?
    private(set) var effects: ReplicationEffects?
    private(set) var endpoint: PeerEndpoint?
    private(set) var membership: Membership?
    /// The peers the core has sessions for, as last handed to it: the active peers of
    /// `membership` when the node started or last followed the member rows.
    var peerIDs: [NodeID] = []
    /// Grows at every crash: events of an earlier life are dropped.
    private(set) var incarnation = 0
    /// Which file of this id the node runs on: grows when the file is replaced by an empty one.
    private(set) var generation = 0
    /// Added to the simulation's time to make this node's clock (clock jumps move it ahead).
    var clockOffset: Duration = .zero
    var tickAt: Duration?
    /// When a pending `.syncMembers` fires, if one is scheduled.
    var syncAt: Duration?
    /// The last seq whose rows the invariants have seen, and the last one told to the core.
    var checkedSeq: Int64 = 0
    var knownSeq: Int64 = 0

    /// The simulation's view of this id: whether it is a member of the cluster (an initial
    /// node, or a join succeeded), whether it was removed (for good), whether it starts by
    /// joining (as `kvnode --join` does at every start), and whether its last start found no
    /// member to join through (a retry is scheduled).
    var isMember: Bool
    var isRemoved = false
    var joinsOnStart = false
    var isJoining = false
    /// Crashed to have its file replaced, which has not happened yet.
    var awaitsNewFile = false

    init(index: Int, id: NodeID, path: String, seeds: [PeerConfig], slots: [NodeID: Int], isMember: Bool) {
        self.index = index
        self.id = id
        self.url = Self.url(of: id)
        self.path = path
        self.seeds = seeds
        self.slots = slots
        self.isMember = isMember
        epochs = EpochCounter(prefix: "\(id)-e")
    }

    static func url(of id: NodeID) -> String { "http://\(id).sim" }

    var isUp: Bool { store != nil }

    /// An active member in the simulation's view: its rows are to match the others' at the end.
    var isActiveMember: Bool { isMember && !isRemoved }

    func localTime(_ now: Duration) -> Duration { now + clockOffset }

    /// The slot of `peer` if the core has a session for it now; nil for any other node.
    func peerIndex(of peer: NodeID) -> Int? {
        guard peerIDs.contains(peer) else { return nil }
        return slots[peer]
    }

    func boot(
        store: KVStore, core: ReplicationCore, effects: ReplicationEffects, endpoint: PeerEndpoint,
        membership: Membership, peers: [NodeID], position: FeedPosition
    ) {
        self.store = store
        self.core = core
        self.effects = effects
        self.endpoint = endpoint
        self.membership = membership
        peerIDs = peers
        checkedSeq = max(checkedSeq, position.lastSeq)
        knownSeq = position.lastSeq
        tickAt = nil
        syncAt = nil
        updateGate()
    }

    /// Runs one step of the core.
    func step(_ body: (inout ReplicationCore) -> [ReplicationAction]) -> [ReplicationAction] {
        guard var machine = core else { return [] }
        core = nil
        let actions = body(&machine)
        core = machine
        return actions
    }

    /// Tells the endpoint which peers' pushes the core defers now.
    func updateGate() {
        gate.deferring = Set(peerIDs.filter { core?.defersPushes(from: $0) ?? false })
    }

    /// Stops the node as `kill -9` would: the store closes (what it committed stays), the core,
    /// the endpoint's memory and the member list it learned are gone, and replies to its
    /// requests are dropped.
    func crash() async {
        incarnation += 1
        let closing = store
        store = nil
        core = nil
        effects = nil
        endpoint = nil
        membership = nil
        tickAt = nil
        syncAt = nil
        _ = gate.drain()
        await closing?.close()
    }

    /// Deletes the file of a node that is down: it comes back empty, with a new epoch.
    func replaceFile() throws {
        precondition(!isUp, "a file is replaced only while its node is down")
        for suffix in ["", "-wal", "-shm"] where FileManager.default.fileExists(atPath: path + suffix) {
            try FileManager.default.removeItem(atPath: path + suffix)
        }
        generation += 1
        checkedSeq = 0
        knownSeq = 0
    }
}

/// The simulation's `ReplicationGate`: the endpoint asks it whether to defer a peer's push and
/// tells it what a push or hello brought; the simulation hands that to the core after the request.
final class SimulatedGate: ReplicationGate {
    /// What the endpoint heard from a peer.
    enum Note: Sendable {
        case received(peer: NodeID, rows: Int, refused: [Record], mark: Int64)
        case greeted(by: NodeID)
    }

    private let state = Mutex<(deferring: Set<NodeID>, notes: [Note])>(([], []))

    var deferring: Set<NodeID> {
        get { state.withLock { $0.deferring } }
        set { state.withLock { $0.deferring = newValue } }
    }

    func defersPushes(from peer: NodeID) -> Bool {
        state.withLock { $0.deferring.contains(peer) }
    }

    func received(from peer: NodeID, rows: Int, refused: [Record], mark: Int64) {
        state.withLock { $0.notes.append(.received(peer: peer, rows: rows, refused: refused, mark: mark)) }
    }

    func greeted(by peer: NodeID) {
        state.withLock { $0.notes.append(.greeted(by: peer)) }
    }

    func drain() -> [Note] {
        state.withLock { state in
            defer { state.notes = [] }
            return state.notes
        }
    }
}

/// Epochs `n0-e1`, `n0-e2`, …: a new file's, then each renewal's, the same in every replay.
final class EpochCounter: Sendable {
    private let prefix: String
    private let counter = Mutex(0)

    init(prefix: String) { self.prefix = prefix }

    func next() -> String {
        let value = counter.withLock { count -> Int in
            count += 1
            return count
        }
        return "\(prefix)\(value)"
    }
}
