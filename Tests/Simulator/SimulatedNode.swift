import KVCore
import KVStore
import Replication
import Synchronization

/// One node of a `Simulation`: its store on a real SQLite file, its replication core, and its
/// endpoint, or nothing while it is down. Used by the simulation's one task only.
final class SimulatedNode {
    let index: Int
    let id: NodeID
    let path: String
    /// The other nodes, by index and by id, in the same order.
    let peers: [Int]
    let peerIDs: [NodeID]
    let epochs: EpochCounter
    let gate = SimulatedGate()

    private(set) var store: KVStore?
    private(set) var core: ReplicationCore?
    private(set) var effects: ReplicationEffects?
    private(set) var endpoint: PeerEndpoint?
    /// Grows at every crash: events of an earlier life are dropped.
    private(set) var incarnation = 0
    /// Added to the simulation's time to make this node's clock (clock jumps move it ahead).
    var clockOffset: Duration = .zero
    var tickAt: Duration?
    /// The last seq whose rows the invariants have seen, and the last one told to the core.
    var checkedSeq: Int64 = 0
    var knownSeq: Int64 = 0

    init(index: Int, id: NodeID, path: String, peers: [Int], peerIDs: [NodeID]) {
        self.index = index
        self.id = id
        self.path = path
        self.peers = peers
        self.peerIDs = peerIDs
        epochs = EpochCounter(prefix: "\(id)-e")
    }

    var isUp: Bool { store != nil }

    func localTime(_ now: Duration) -> Duration { now + clockOffset }

    func peerIndex(of peer: NodeID) -> Int? {
        peerIDs.firstIndex(of: peer).map { peers[$0] }
    }

    func boot(store: KVStore, core: ReplicationCore, effects: ReplicationEffects, endpoint: PeerEndpoint, position: FeedPosition) {
        self.store = store
        self.core = core
        self.effects = effects
        self.endpoint = endpoint
        checkedSeq = max(checkedSeq, position.lastSeq)
        knownSeq = position.lastSeq
        tickAt = nil
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

    /// Stops the node as `kill -9` would: the store closes (what it committed stays), the core
    /// and the endpoint's memory are gone, and replies to its requests are dropped.
    func crash() async {
        incarnation += 1
        let closing = store
        store = nil
        core = nil
        effects = nil
        endpoint = nil
        tickAt = nil
        _ = gate.drain()
        await closing?.close()
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
