import KVCore
import NIOCore
import NIOPosix
import NIOSSL
import ServiceLifecycle
import Synchronization

/// A TCP listener on SwiftNIO that the node's front ends (HTTP, RESP) share: per connection,
/// TLS first when configured, then the read-idle timer, then the protocol's handlers that
/// `addProtocolHandlers` adds.
///
/// As a `Service` it binds when run (calling `onListening` with the bound port, or throwing
/// when it cannot bind) and, on graceful shutdown, stops accepting, lets the request in
/// flight on each connection finish, closes the connections and returns once all are closed.
/// At most `maxConnections` are open at once; past that the listener stops accepting and new
/// connections wait in the kernel's backlog.
final class ListeningServer: Service, Sendable {
    struct Configuration: Sendable {
        var host: String
        var port: Int
        /// The flag that chose `port`, for the message when it cannot be bound.
        var portFlag = "--port"
        var idleTimeout: Duration
        var maxConnections: Int
        /// Serve HTTPS only, with this certificate; nil serves plain HTTP.
        var tls: ServerTLS?
    }

    private let configuration: Configuration
    private let addProtocolHandlers: @Sendable (ChannelPipeline.SynchronousOperations) throws -> Void
    private let onListening: @Sendable (Int) -> Void
    private let connections = Mutex<(open: [ObjectIdentifier: any Channel], quiescing: Bool)>(([:], false))

    init(
        configuration: Configuration, onListening: @escaping @Sendable (Int) -> Void,
        addProtocolHandlers: @escaping @Sendable (ChannelPipeline.SynchronousOperations) throws -> Void
    ) {
        self.configuration = configuration
        self.addProtocolHandlers = addProtocolHandlers
        self.onListening = onListening
    }

    func run() async throws {
        let maxConnections = configuration.maxConnections
        let listener: any Channel
        do {
            listener = try await bind(maxConnections: maxConnections)
        } catch {
            throw NodeStartError.cannotServe(
                host: configuration.host, port: configuration.port, flag: configuration.portFlag, reason: "\(error)")
        }
        onListening(listener.localAddress?.port ?? configuration.port)

        // Runs until the service group shuts down, gracefully or by cancellation.
        try? await gracefulShutdown()
        try? await listener.close()
        let open = connections.withLock { state in
            state.quiescing = true
            return Array(state.open.values)
        }
        for channel in open { quiesce(channel) }
        // A connection that does not finish its request is closed when the service group gives
        // up on the graceful stop (ConvergeNode.maximumGracefulStop) and cancels: a node asked
        // to stop always stops.
        await withTaskCancellationHandler {
            for channel in open { try? await channel.closeFuture.get() }
        } onCancel: {
            for channel in open { channel.close(promise: nil) }
        }
    }

    private func bind(maxConnections: Int) async throws -> any Channel {
        try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ConnectionLimitHandler(maxConnections: maxConnections))
                }
            }
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { [self] channel in
                channel.eventLoop.makeCompletedFuture {
                    try configureConnection(channel)
                    track(channel)
                }
            }
            .bind(host: configuration.host, port: configuration.port)
            .get()
    }

    /// The pipeline of one connection. With TLS, `NIOSSLServerHandler` goes first, before the
    /// idle timer and the protocol's handlers, so that everything after it sees plain bytes.
    private func configureConnection(_ channel: any Channel) throws {
        let pipeline = channel.pipeline.syncOperations
        if let tls = configuration.tls {
            try pipeline.addHandler(NIOSSLServerHandler(context: tls.context))
        }
        try pipeline.addHandler(IdleStateHandler(readTimeout: TimeAmount(configuration.idleTimeout)))
        try addProtocolHandlers(pipeline)
    }

    /// Remembers `channel` until it closes, so a graceful shutdown can wait for it.
    private func track(_ channel: any Channel) {
        let id = ObjectIdentifier(channel)
        let quiescing = connections.withLock { state in
            state.open[id] = channel
            return state.quiescing
        }
        if quiescing { quiesce(channel) }
        channel.closeFuture.whenComplete { [self] _ in
            _ = connections.withLock { $0.open.removeValue(forKey: id) }
        }
    }

    /// Asks the connection to close once its request in flight is answered (at once if idle);
    /// the protocol's handler acts on the event.
    private func quiesce(_ channel: any Channel) {
        channel.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
    }
}

/// On the listening channel: stops asking for new connections while `maxConnections` are
/// open, and asks again when one closes.
private final class ConnectionLimitHandler: ChannelDuplexHandler {
    typealias InboundIn = any Channel
    typealias InboundOut = any Channel
    typealias OutboundIn = Never
    typealias OutboundOut = Never

    private let maxConnections: Int
    private var open = 0
    private var readWithheld = false

    init(maxConnections: Int) {
        self.maxConnections = maxConnections
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let child = unwrapInboundIn(data)
        open += 1
        let bound = NIOLoopBound((handler: self, context: context), eventLoop: context.eventLoop)
        child.closeFuture.hop(to: context.eventLoop).whenComplete { _ in
            let (handler, context) = bound.value
            handler.open -= 1
            if handler.readWithheld, handler.open < handler.maxConnections {
                handler.readWithheld = false
                context.read()
            }
        }
        context.fireChannelRead(data)
    }

    func read(context: ChannelHandlerContext) {
        guard open < maxConnections else {
            readWithheld = true
            return
        }
        context.read()
    }
}

extension TimeAmount {
    init(_ duration: Duration) {
        self = .nanoseconds(duration.inNanoseconds)
    }
}
