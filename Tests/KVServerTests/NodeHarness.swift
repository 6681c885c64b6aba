import Foundation
import KVClient
import KVCore
import KVServer
import Logging
import NodeHTTP
import TestSupport

/// Starts an in-process node on an ephemeral loopback port with a fresh database, runs `body`
/// with it and a client, and stops the node on every path.
func withNode<T>(
    id: String = "A",
    configure: (inout NodeConfiguration) -> Void = { _ in },
    _ body: (ConvergeNode, KVClient) async throws -> T
) async throws -> T {
    try await withTemporaryDirectory { directory in
        var configuration = NodeConfiguration(
            id: try NodeID(id), databasePath: directory.appendingPathComponent("\(id).db").path)
        configuration.port = 0
        configure(&configuration)
        let node = try await ConvergeNode.start(configuration, logger: testLogger)
        let client = try KVClient(node: node.url)
        do {
            let result = try await body(node, client)
            await client.close()
            await node.stop()
            return result
        } catch {
            await client.close()
            await node.stop()
            throw error
        }
    }
}

let testLogger: Logger = {
    var logger = Logger(label: "test")
    logger.logLevel = .warning
    return logger
}()

extension HTTPReply {
    var text: String { String(decoding: body, as: UTF8.self) }

    func header(_ name: String) -> String? {
        headers.first { $0.0.lowercased() == name.lowercased() }?.1
    }

    func errorBody() throws -> ErrorBody {
        try JSONDecoder().decode(ErrorBody.self, from: Data(body))
    }
}
