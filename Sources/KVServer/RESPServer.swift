import NIOCore
import RESP
import ServiceLifecycle

/// The node's Redis-protocol port (`kvnode --resp-port`): a `ListeningServer` like the HTTP
/// one — same host, TLS, idle timeout, connection limit and graceful shutdown — whose
/// connections end in a `RESPConnectionHandler` serving `RESPResponder`'s commands.
final class RESPServer: Service, Sendable {
    private let listener: ListeningServer

    init(
        configuration: ListeningServer.Configuration, responder: RESPResponder,
        onListening: @escaping @Sendable (Int) -> Void
    ) {
        var limits = RESPCommandParser.Limits()
        // A value at the node's limit, plus room for its key and slack.
        limits.maxBulkBytes = responder.maxValueBytes + 4096
        limits.maxCommandBytes = max(limits.maxCommandBytes, 2 * limits.maxBulkBytes)
        let chosen = limits
        listener = ListeningServer(configuration: configuration, onListening: onListening) { pipeline in
            try pipeline.addHandler(RESPConnectionHandler(responder: responder, limits: chosen))
        }
    }

    func run() async throws {
        try await listener.run()
    }
}
