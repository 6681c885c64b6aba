public import KVCore
public import KVStore
import Synchronization

/// The cluster's members as this node knows them (docs/operations.md, "Members"), shared by
/// the replicator (which peers to link to), the peer endpoint (whom to admit) and the server
/// (`GET /members`, quorum sizes).
///
/// Three sources, in this order of precedence for a member's state: the member rows of the
/// store (`MemberRow`: replicated data, refreshed by `refresh(from:)`), the members a join
/// reply listed, and the `--peer` flags (seeds). A `--peer ID=URL` given to this node wins over
/// the URL a member advertises, for this node's links only: an operator can route a peer
/// through a proxy or another interface. A removed member is never linked to or admitted.
public final class Membership: Sendable {
    public let identity: NodeID
    private let state: Mutex<State>

    private struct State {
        var seeds: [PeerConfig]
        var learned: [PeerConfig] = []
        /// Members a join reply listed as removed: out until their rows arrive.
        var learnedRemoved: Set<NodeID> = []
        var rows: [Member] = []
        var ownURL: String
        var ownEpoch: String = ""
    }

    /// Who may use the peer routes.
    public enum Admission: Sendable, Equatable {
        case member
        case removed
        case stranger
    }

    public init(identity: NodeID, seeds: [PeerConfig], ownURL: String = "") {
        self.identity = identity
        state = Mutex(State(seeds: seeds, ownURL: ownURL))
    }

    /// This node's address for the others (`--advertise-url`, else the one it bound).
    public var ownURL: String { state.withLock { $0.ownURL } }

    public func setOwn(url: String, epoch: String) {
        state.withLock {
            $0.ownURL = url
            $0.ownEpoch = epoch
        }
    }

    /// Members known from outside the rows: a join reply's active ones (`peers`), linked to
    /// until their rows arrive, and its removed ones (`removed`), which stay out even when a
    /// `--peer` flag names them, until a row says otherwise.
    public func learn(_ peers: [PeerConfig], removed: [NodeID] = []) {
        state.withLock { state in
            for peer in peers where peer.id != identity && !state.learned.contains(where: { $0.id == peer.id }) {
                state.learned.append(peer)
            }
            state.learnedRemoved.formUnion(removed)
        }
    }

    /// Reads the member rows of `store`; true when they changed.
    @discardableResult
    public func refresh(from store: KVStore) async throws -> Bool {
        adopt(rows: try await store.members())
    }

    /// Takes `rows` as the member rows (what `refresh` does after reading them); true when
    /// they changed.
    @discardableResult
    public func adopt(rows: [Member]) -> Bool {
        state.withLock { state in
            defer { state.rows = rows }
            return state.rows != rows
        }
    }

    /// The member rows as last read.
    public var rows: [Member] { state.withLock { $0.rows } }

    /// True when the rows say this very file was removed (same id and epoch).
    public var selfRemoved: Bool {
        state.withLock { state in
            state.rows.contains { $0.id == identity && $0.state == .removed && $0.epoch == state.ownEpoch }
        }
    }

    /// The peers to replicate with, ordered as the seeds and then by id: every member but this
    /// node and the removed ones; none when this node was itself removed.
    public var activePeers: [PeerConfig] {
        state.withLock { state in
            if state.rows.contains(where: { $0.id == identity && $0.state == .removed && $0.epoch == state.ownEpoch }) {
                return []
            }
            let rowsByID = Dictionary(state.rows.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
            var peers: [PeerConfig] = []
            var seen: Set<NodeID> = [identity]
            for peer in state.seeds + state.learned where seen.insert(peer.id).inserted {
                if let row = rowsByID[peer.id] {
                    if row.state == .removed { continue }
                } else if state.learnedRemoved.contains(peer.id) {
                    continue
                }
                peers.append(peer)
            }
            for row in state.rows where row.state == .active && seen.insert(row.id).inserted {
                peers.append(PeerConfig(id: row.id, url: row.url))
            }
            return peers
        }
    }

    /// Members that count toward `w` and `r`: this node and its active peers.
    public var activeCount: Int { activePeers.count + 1 }

    public func admission(of id: NodeID) -> Admission {
        if activePeers.contains(where: { $0.id == id }) { return .member }
        return state.withLock { state in
            state.rows.contains { $0.id == id && $0.state == .removed } || state.learnedRemoved.contains(id)
        } ? .removed : .stranger
    }

    /// Every member known, this node included, removed ones too, ordered by id. A member known
    /// only from a flag or a join reply is listed active, with an empty epoch.
    public var all: [Member] {
        let peers = activePeers
        return state.withLock { state in
            var byID: [NodeID: Member] = [:]
            for peer in state.seeds + state.learned { byID[peer.id] = Member(id: peer.id, url: peer.url, state: .active, epoch: "") }
            byID[identity] = Member(id: identity, url: state.ownURL, state: .active, epoch: state.ownEpoch)
            for id in state.learnedRemoved where byID[id] != nil {
                if let member = byID[id] { byID[id] = Member(id: id, url: member.url, state: .removed, epoch: member.epoch) }
            }
            for row in state.rows { byID[row.id] = row }
            // The URL this node links with, where a --peer flag overrides the advertised one.
            for peer in peers { if let member = byID[peer.id] { byID[peer.id] = Member(id: member.id, url: peer.url, state: member.state, epoch: member.epoch) } }
            return byID.values.sorted { $0.id < $1.id }
        }
    }
}
