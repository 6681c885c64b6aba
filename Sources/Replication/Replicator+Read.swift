public import KVCore
import KVStore
import Logging
import Synchronization

/// The answer of a read at several nodes (`GET /kv/{key}?r=`, docs/consistency.md).
public struct SeveralNodeRead: Sendable {
    /// The newest version among the copies gathered, and the nodes that held an older one.
    public let resolution: ReadResolution
    /// The nodes whose copies the answer was decided from, this node first.
    public let answeredBy: [NodeID]
}

/// Why a read at several nodes could not answer: fewer nodes than asked for answered before
/// the deadline, or every peer answered or failed and there were still too few.
public struct ReadShortfall: Error, Sendable, CustomStringConvertible {
    public let needed: Int
    public let answeredBy: [NodeID]
    /// One line per peer that failed, with the cause.
    public let failures: [String]
    /// The deadline passed (rather than every peer having answered or failed).
    public let timedOut: Bool

    public var description: String {
        let cause = failures.isEmpty ? "" : "; " + failures.joined(separator: "; ")
        return "\(needed) nodes were asked for but only \(answeredBy.map(\.rawValue).joined(separator: ", ")) answered"
            + (timedOut ? " in time" : "") + cause
    }
}

extension Replicator {
    /// How long a read at several nodes waits for the peers it asked before asking the rest.
    static let hedgeDelay: Duration = .milliseconds(100)

    /// Reads `key` at `nodes` nodes, this one included: asks `nodes − 1` peers for their
    /// copies (reachable ones first, in random order to spread the load) and answers with the
    /// newest version among those and this node's own. A peer that fails is replaced by the next
    /// one not yet asked; if no answer has come after `hedgeDelay`, every peer not yet asked is
    /// asked too, so a silently partitioned peer costs a read that delay, not its timeout. Each
    /// node found holding an older copy, this one included, is sent the newest (read repair),
    /// also when its answer arrives after the reply; `repaired` is called once per copy
    /// repaired. Throws `ReadShortfall` when too few answer within `timeout`.
    public func read(
        key: String, atNodes nodes: Int, timeout: Duration, repaired: @escaping @Sendable (NodeID) -> Void
    ) async throws -> SeveralNodeRead {
        let local = ReadResolution.Copy(node: configuration.identity, record: try await store.get(key: key)?.record)
        guard nodes > 1 else {
            return SeveralNodeRead(resolution: ReadResolution([local], at: ExpiryClock.nowMilliseconds()), answeredBy: [local.node])
        }
        let reachable = Set(core.withLock { core in
            core?.sessions.map(\.peer).filter { core?.session($0)?.health.reachable ?? false } ?? []
        })
        let order = Array(transports).shuffled().sorted { reachable.contains($0.key) && !reachable.contains($1.key) }
        let (events, sink) = AsyncStream.makeStream(of: ReadEvent.self)
        let timers = Task {
            let hedge = min(Self.hedgeDelay, timeout)
            try? await Task.sleep(for: hedge)
            sink.yield(.hedge)
            try? await Task.sleep(for: timeout - hedge)
            sink.yield(.deadline)
        }
        return try await withCheckedThrowingContinuation { reply in
            Task {
                var unasked = order[...]
                var gathered = ReadGathering(local: local, needed: nodes)
                var replied = false
                var resolution: ReadResolution?
                func ask(_ count: Int) {
                    for (peer, transport) in unasked.prefix(count) {
                        gathered.asked += 1
                        Task {
                            do {
                                sink.yield(.answer(ReadResolution.Copy(node: peer, record: try await transport.copy(of: key))))
                            } catch {
                                sink.yield(.failed(peer, "\(error)"))
                            }
                        }
                    }
                    unasked = unasked.dropFirst(count)
                    gathered.everyPeerAsked = unasked.isEmpty
                }
                func answer(_ decided: Result<ReadResolution, ReadShortfall>) {
                    replied = true
                    switch decided {
                    case .success(let decision):
                        resolution = decision
                        reply.resume(returning: SeveralNodeRead(resolution: decision, answeredBy: gathered.answered.map(\.node)))
                        for copy in gathered.answered { repair(copy, after: decision) }
                    case .failure(let shortfall):
                        reply.resume(throwing: shortfall)
                    }
                }
                ask(nodes - 1)
                if gathered.heardFromEveryPeer { sink.finish() }
                for await event in events {
                    gathered.take(event)
                    switch event {
                    case .failed where !replied: ask(1)
                    case .hedge where !replied: ask(unasked.count)
                    default: break
                    }
                    if !replied, let decided = gathered.decision(at: ExpiryClock.nowMilliseconds()) {
                        answer(decided)
                    } else if let resolution, case .answer(let late) = event {
                        repair(late, after: resolution)
                    }
                    if gathered.heardFromEveryPeer || (replied && gathered.heardFromEveryAsked) { break }
                }
                if !replied, let decided = gathered.decision(at: ExpiryClock.nowMilliseconds(), final: true) {
                    answer(decided)
                }
                timers.cancel()
                sink.finish()
            }
        }

        /// Sends `copy`'s node the newest version when its copy is older (in the background).
        @Sendable func repair(_ copy: ReadResolution.Copy, after decision: ReadResolution) {
            guard decision.isStale(copy), let newest = decision.newest else { return }
            Task {
                do {
                    let applied: Int
                    if copy.node == configuration.identity {
                        applied = try await store.applyRepair([newest]).applied
                    } else if let transport = transports[copy.node] {
                        applied = try await transport.repair([newest]).applied
                    } else {
                        return
                    }
                    if applied > 0 { repaired(copy.node) }
                } catch {
                    logger.warning("read repair of '\(key.prefix(64))' on \(copy.node) failed: \(error)")
                }
            }
        }
    }
}

/// What the read's collector hears: a peer's copy, a peer's failure, the time to ask the
/// remaining peers, or the deadline.
enum ReadEvent: Sendable {
    case answer(ReadResolution.Copy)
    case failed(NodeID, String)
    case hedge
    case deadline
}

/// The copies a read at several nodes has gathered so far, and whether it can answer.
struct ReadGathering {
    private(set) var answered: [ReadResolution.Copy]
    private(set) var failures: [String] = []
    let needed: Int
    /// Peers asked so far.
    var asked = 0
    /// No peer is left to ask.
    var everyPeerAsked = false
    private var heard = 0
    private var pastDeadline = false

    init(local: ReadResolution.Copy, needed: Int) {
        answered = [local]
        self.needed = needed
    }

    var heardFromEveryAsked: Bool { heard >= asked }
    /// Nothing more can come: every peer was asked and has answered or failed.
    var heardFromEveryPeer: Bool { everyPeerAsked && heardFromEveryAsked }

    mutating func take(_ event: ReadEvent) {
        switch event {
        case .answer(let copy):
            heard += 1
            answered.append(copy)
        case .failed(let peer, let cause):
            heard += 1
            failures.append("\(peer): \(cause)")
        case .deadline:
            pastDeadline = true
        case .hedge:
            break
        }
    }

    /// The answer once enough copies are in, a shortfall once they cannot be (the deadline
    /// passed, every peer was heard from, or `final`: nothing more will come), else nil.
    func decision(at now: Int64, final: Bool = false) -> Result<ReadResolution, ReadShortfall>? {
        if answered.count >= needed { return .success(ReadResolution(answered, at: now)) }
        guard pastDeadline || heardFromEveryPeer || final else { return nil }
        return .failure(ReadShortfall(needed: needed, answeredBy: answered.map(\.node), failures: failures, timedOut: pastDeadline))
    }
}
