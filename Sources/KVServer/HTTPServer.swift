import NIOCore
import NIOHTTP1
import ServiceLifecycle

/// The node's HTTP/1.1 server, on SwiftNIO directly: a `ListeningServer` whose connections
/// end in an `HTTPConnectionHandler` that hands requests to `KVResponder`.
///
/// As a `Service` it binds when run (calling `onListening` with the bound port, or throwing
/// when it cannot bind) and, on graceful shutdown, stops accepting, lets the request in
/// flight on each connection finish, closes the connections and returns once all are closed.
/// At most `maxConnections` are open at once; past that the listener stops accepting and new
/// connections wait in the kernel's backlog.
final class HTTPServer: Service, Sendable {
    typealias Configuration = ListeningServer.Configuration

    private let listener: ListeningServer

    init(configuration: Configuration, responder: KVResponder, onListening: @escaping @Sendable (Int) -> Void) {
        listener = ListeningServer(configuration: configuration, onListening: onListening) { pipeline in
            // Pipelining is `HTTPConnectionHandler`'s (NIO's assistance costs two epoll_ctl per PUT).
            try pipeline.configureHTTPServerPipeline(withPipeliningAssistance: false, withErrorHandling: true)
            try pipeline.addHandler(HTTPConnectionHandler(responder: responder))
        }
    }

    func run() async throws {
        try await listener.run()
    }
}
