public import KVStore
public import Logging
import NIOCore
import ServiceLifecycle
import UnixSignals
import Synchronization
import Foundation
import KVCore
import Replication

/// One running Converge node: its store, its HTTP server, and the lifecycle that ties them.
///
/// `start` opens the database (migrations, node-id check), binds the server and returns once
/// it listens, so `url` is the address really bound (useful with port 0). `stop` or a
/// SIGTERM/SIGINT (when `handleSignals` is set) shuts down gracefully: the listener closes,
/// requests in flight finish, then the store finishes its queued writes and closes.
public final class ConvergeNode: Sendable {
    /// `http://HOST:PORT` as bound, `https://` when the node serves TLS.
    public let url: String
    /// The RESP port as bound; nil when the node serves no RESP (`respPort` unset).
    public let respPort: Int?
    public let store: KVStore
    public let configuration: NodeConfiguration
    private let serviceGroup: ServiceGroup
    private let runTask: Task<Void, any Error>
    private let logger: Logger

    private init(
        url: String, respPort: Int?, store: KVStore, configuration: NodeConfiguration, serviceGroup: ServiceGroup,
        runTask: Task<Void, any Error>, logger: Logger
    ) {
        self.url = url
        self.respPort = respPort
        self.store = store
        self.configuration = configuration
        self.serviceGroup = serviceGroup
        self.runTask = runTask
        self.logger = logger
    }

    /// Opens the store and starts serving; throws `StoreError` for an unusable database and
    /// `NodeStartError` when the server cannot bind.
    public static func start(
        _ configuration: NodeConfiguration, logger: Logger, handleSignals: Bool = false
    ) async throws -> ConvergeNode {
        let store = try await KVStore.open(configuration.storeConfiguration, logger: logger)
        do {
            try await store.configurePeers(configuration.peers)
        } catch {
            await store.close()
            throw error
        }
        let metrics = NodeMetrics()
        let nodeID = configuration.id
        let membership = Membership(identity: nodeID, seeds: configuration.peers)
        let replicator = Replicator(
            store: store, configuration: configuration.replicationConfiguration, membership: membership, logger: logger)
        let membersReady = BoundAddress()
        let shutdown = ShutdownSignal()
        var responder = KVResponder(
            store: store, nodeID: nodeID, maxValueBytes: configuration.maxValueBytes,
            clientToken: configuration.clientToken, metrics: metrics, logger: logger,
            statusReporter: { try await Self.status(of: store, replicator: replicator, metrics: metrics) },
            peers: PeerEndpoint(
                store: store, configuration: configuration.replicationConfiguration, gate: replicator, membership: membership),
            replicator: replicator,
            databasePath: configuration.databasePath, shutdown: shutdown)
        responder.peersNeedCertificates = configuration.tls?.caFile != nil

        let bound = BoundAddress()
        let scheme = configuration.tls == nil ? "http" : "https"
        let server = HTTPServer(
            configuration: .init(
                host: configuration.host, port: configuration.port, idleTimeout: configuration.idleTimeout,
                maxConnections: configuration.maxConnections, tls: configuration.tls),
            responder: responder,
            onListening: { port in bound.resolve(.success("\(scheme)://\(configuration.host):\(port)")) })
        var services: [any Service] = [
            ReplicationService(
                replicator: replicator, membersReady: membersReady,
                leaveWithin: configuration.leaveOnStop ? configuration.leaveTimeout : nil),
            server, ShutdownSignalService(signal: shutdown),
            ExpirySweeper(store: store, interval: configuration.expirySweepInterval, logger: logger),
        ]
        let respBound = BoundAddress()
        if let respPort = configuration.respPort {
            let responder = RESPResponder(
                store: store, nodeID: nodeID, maxValueBytes: configuration.maxValueBytes,
                clientToken: configuration.clientToken, metrics: metrics, replicator: replicator, logger: logger)
            services.append(
                RESPServer(
                    configuration: .init(
                        host: configuration.host, port: respPort, portFlag: "--resp-port",
                        idleTimeout: configuration.idleTimeout, maxConnections: configuration.maxConnections,
                        tls: configuration.tls),
                    responder: responder,
                    onListening: { port in respBound.resolve(.success(String(port))) }))
        } else {
            respBound.resolve(.success(""))
        }
        var groupConfiguration = ServiceGroupConfiguration(
            services: services,
            gracefulShutdownSignals: handleSignals ? [.sigterm, .sigint] : [],
            logger: Self.quietLogger(logger))
        groupConfiguration.maximumGracefulShutdownDuration =
            Self.maximumGracefulStop + (configuration.leaveOnStop ? configuration.leaveTimeout : .zero)
        let group = ServiceGroup(configuration: groupConfiguration)
        let task = Task {
            do {
                try await group.run()
                bound.resolve(.failure(NodeStartError.stoppedBeforeListening))
                respBound.resolve(.failure(NodeStartError.stoppedBeforeListening))
            } catch {
                // A listener that cannot bind says which port and flag; any other failure is blamed
                // on the HTTP port, as before RESP.
                let failure =
                    error as? NodeStartError
                    ?? NodeStartError.cannotServe(host: configuration.host, port: configuration.port, flag: "--port", reason: "\(error)")
                bound.resolve(.failure(failure))
                respBound.resolve(.failure(failure))
                throw error
            }
        }
        let url: String
        let respPort: Int?
        do {
            url = try await bound.value()
            respPort = Int(try await respBound.value())
        } catch {
            await store.close()
            throw error
        }
        do {
            try await Self.settleMembership(
                membership, store: store, url: configuration.advertiseURL ?? url, configuration: configuration, logger: logger)
            membersReady.resolve(.success(""))
            // Said once the node has joined (it serves meanwhile, but tools and tests that wait
            // for this line then write with the clock the join gave it).
            logger.info("node \(nodeID) listening on \(url) (database \(configuration.databasePath), sync \(configuration.sync.rawValue))")
        } catch {
            membersReady.resolve(.failure(error))
            await group.triggerGracefulShutdown()
            _ = try? await task.value
            await store.close()
            throw error
        }
        if let respPort {
            logger.info("node \(nodeID) serving RESP on \(configuration.host):\(respPort) (redis-cli -h \(configuration.host) -p \(respPort)\(configuration.tls == nil ? "" : " --tls"))")
        }
        return ConvergeNode(
            url: url, respPort: respPort, store: store, configuration: configuration, serviceGroup: group,
            runTask: task, logger: logger)
    }

    /// Learns this node's own address and epoch, joins through `--join` when given, and updates
    /// this node's member row when it finds itself there at another address.
    private static func settleMembership(
        _ membership: Membership, store: KVStore, url: String, configuration: NodeConfiguration, logger: Logger
    ) async throws {
        let epoch = try await store.feedPosition().epoch
        membership.setOwn(url: url, epoch: epoch)
        try await membership.refresh(from: store)
        // The members this file replicated with before (its peers table): a node that joined
        // once knows them after a restart without --join.
        membership.learn(try await store.peers().map { PeerConfig(id: $0.id, url: $0.url) })
        if !configuration.joinURLs.isEmpty {
            let request = JoinRequest(id: configuration.id.rawValue, url: url, epoch: epoch)
            let reply: MembersReply
            do {
                reply = try await MemberJoin.join(
                    request, urls: configuration.joinURLs, configuration: configuration.replicationConfiguration,
                    deadline: configuration.joinTimeout, log: { logger.warning("\($0)") })
            } catch let failure as MemberJoin.Failure {
                throw NodeStartError.cannotJoin(failure.description)
            }
            let peers = reply.members.compactMap { member -> PeerConfig? in
                guard member.state == "active", let id = try? NodeID(member.id), id != configuration.id else { return nil }
                return PeerConfig(id: id, url: member.url)
            }
            membership.learn(
                peers, removed: reply.members.filter { $0.state == "removed" }.compactMap { try? NodeID($0.id) })
            if let clock = reply.clock, !(try await store.observeClock(clock)) {
                logger.warning("the clock \(clock) of \(reply.node) is too far ahead to take; this node's first writes may lose to older ones")
            }
            logger.notice("joined the cluster through \(reply.node): members \(reply.members.map { "\($0.id) (\($0.state))" }.joined(separator: ", "))")
        } else if let own = membership.rows.first(where: { $0.id == configuration.id }), own.state == .active, own.url != url {
            try await store.write(Member(id: configuration.id, url: url, state: .active, epoch: epoch))
            logger.notice("this node's address changed from \(own.url) to \(url); its member row says so now")
        } else if let advertised = configuration.advertiseURL, !membership.rows.contains(where: { $0.id == configuration.id }) {
            // A member known only from flags that says how to reach it: the others learn it.
            try await store.write(Member(id: configuration.id, url: advertised, state: .active, epoch: epoch))
        }
        if membership.selfRemoved {
            logger.error("this node's file was removed from the cluster (kv members remove); it will not replicate. To join again, start it with a fresh --db and --join")
        }
    }

    /// How long a graceful stop may wait for open requests to finish before they are cancelled
    /// and their connections closed; the store is closed after either way.
    static let maximumGracefulStop: Duration = .seconds(10)

    /// Shuts the node down gracefully and waits until the database is closed.
    public func stop() async {
        await serviceGroup.triggerGracefulShutdown()
        await waitUntilStopped()
    }

    /// Waits until the node stops (after `stop()` or a signal) and closes the store.
    public func waitUntilStopped() async {
        do {
            try await runTask.value
        } catch {
            logger.error("server stopped with an error: \(error)")
        }
        await store.close()
        logger.info("node \(configuration.id) stopped; database closed")
    }

    /// The `/status` document: the store's view of the node and its peers.
    static func status(of store: KVStore, replicator: Replicator, metrics: NodeMetrics) async throws -> NodeStatus {
        let state = try await store.state()
        let peers = try await replicator.peerReports().map { peer in
            PeerStatus(
                id: peer.id.rawValue, url: peer.url, reachable: peer.reachable,
                since: peer.since.map { $0.formatted(.iso8601) },
                pulledSeq: peer.pulledSeq, pushedSeq: peer.pushedSeq, toPush: peer.toPush,
                lastError: peer.lastError, rowsSent: Int64(peer.rowsSent), rowsReceived: Int64(peer.rowsReceived),
                rowsRefused: Int64(peer.rowsRefused))
        }
        let writes = metrics.clientWrites
        let sent = peers.reduce(0) { $0 + $1.rowsSent }
        return NodeStatus(
            id: state.id.rawValue, epoch: state.epoch, lamport: state.lamport, seq: state.lastSeq,
            keys: state.liveKeys, catchingUp: replicator.catchingUp, clientWrites: writes,
            rowsSentPerWrite: writes > 0 ? Double(sent) / Double(writes) : nil,
            catchUp: replicator.catchUpProgress.map {
                CatchUpProgress(rowsDone: $0.rowsDone, rowsToGo: $0.rowsToGo, rowsPerSecond: $0.rowsPerSecond)
            },
            peers: peers, members: try await replicator.membersReply().members)
    }

    /// ServiceLifecycle logs each lifecycle step at info; the node
    /// logs its own events in plain words, so theirs are kept to warnings unless debugging.
    private static func quietLogger(_ logger: Logger) -> Logger {
        var quiet = logger
        if quiet.logLevel > .debug { quiet.logLevel = max(quiet.logLevel, .warning) }
        return quiet
    }
}

/// Why a node could not start serving.
public enum NodeStartError: Error, CustomStringConvertible {
    case cannotServe(host: String, port: Int, flag: String, reason: String)
    case stoppedBeforeListening
    case cannotJoin(String)

    public var description: String {
        switch self {
        case .cannotJoin(let reason):
            return "cannot join the cluster: \(reason)"
        case .cannotServe(let host, let port, let flag, let reason):
            return "cannot listen on \(host):\(port): \(reason); is another process using the port? (choose another with \(flag))"
        case .stoppedBeforeListening:
            return "the server stopped before it started listening"
        }
    }
}

/// A one-shot rendezvous between the server's start callback and `start`'s caller.
private final class BoundAddress: Sendable {
    private let state = Mutex<(result: Result<String, any Error>?, waiter: CheckedContinuation<String, any Error>?)>((nil, nil))

    func resolve(_ result: Result<String, any Error>) {
        let waiter = state.withLock { state -> CheckedContinuation<String, any Error>? in
            guard state.result == nil else { return nil }
            state.result = result
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume(with: result)
    }

    func value() async throws -> String {
        try await withCheckedThrowingContinuation { continuation in
            let ready = state.withLock { state -> Result<String, any Error>? in
                if let result = state.result { return result }
                state.waiter = continuation
                return nil
            }
            if let ready { continuation.resume(with: ready) }
        }
    }
}

/// Runs replication inside the node's service group; stops it on graceful shutdown.
struct ReplicationService: Service {
    let replicator: Replicator
    /// Resolved once the node knows its members (after `--join`); replication waits for it.
    fileprivate let membersReady: BoundAddress
    /// With `--leave`: on a graceful stop, hand off and leave the cluster first (`Replicator.leave`).
    var leaveWithin: Duration?

    func run() async throws {
        if let leaveWithin {
            // Replication is the first service started, so the last one stopped: the listeners
            // have closed (no client write arrives any more) when the hand-off begins.
            try await withThrowingDiscardingTaskGroup { group in
                // Not stopped by the graceful shutdown itself: the hand-off needs it running.
                group.addTask { await runOnceMembersKnown() }
                do {
                    try await gracefulShutdown()
                    await replicator.leave(within: leaveWithin)
                } catch {
                    // Cancelled (a failed start): nothing was joined to leave.
                }
                group.cancelAll()
            }
            return
        }
        try await runUntilCancelled()
    }

    private func runUntilCancelled() async throws {
        await cancelWhenGracefulShutdown { await runOnceMembersKnown() }
    }

    private func runOnceMembersKnown() async {
        // A start that fails (a port taken) or a stop before the join ends cancels this wait.
        let ready = try? await withTaskCancellationHandler {
            try await membersReady.value()
        } onCancel: {
            membersReady.resolve(.failure(CancellationError()))
        }
        guard ready != nil else { return }
        await replicator.run()
    }
}
