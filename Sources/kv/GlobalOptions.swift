import ArgumentParser
import KVClient

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Options every command takes. Declared on the root and on each subcommand, so `--node` may
/// stand before the subcommand (`kv --node URL get x`) or after it (`kv get x --node URL`).
struct GlobalOptions: ParsableArguments {
    static let defaultNode = "http://127.0.0.1:8000"

    /// Every `--node` given, in order. Commands that talk to one node use the last;
    /// `kv cluster status` and `verify` use them all. One array for the root and every
    /// subcommand, since the root's parse consumes every `--node` wherever it stands.
    @Option(
        name: .customLong("node"),
        help: ArgumentHelp(
            "The node to talk to, as http://HOST:PORT (default: $KV_NODE, else \(defaultNode)). cluster status and verify take it repeated.",
            valueName: "url"))
    var nodes: [String] = []

    @Option(help: ArgumentHelp("Seconds to wait for the node's reply.", valueName: "seconds"))
    var timeout: Double = 10

    /// `--node`, else `$KV_NODE`, else the default.
    var nodeURL: String {
        if let node = nodes.last { return node }
        if let fromEnvironment = getenv("KV_NODE"), fromEnvironment.pointee != 0 {
            return String(cString: fromEnvironment)
        }
        return Self.defaultNode
    }

    func validate() throws {
        guard (0.001...86_400).contains(timeout) else {
            throw ValidationError("--timeout must be from 0.001 to 86400 seconds")
        }
        for node in nodes.isEmpty ? [nodeURL] : nodes {
            do {
                _ = try KVClient(node: node)
            } catch {
                throw ValidationError(error.description)
            }
        }
    }

    /// Runs `body` with a client of the node, closed on every path.
    var requestTimeout: Duration { .milliseconds(Int64(timeout * 1000)) }

    func withClient<T>(_ body: (KVClient) async throws -> T) async throws -> T {
        let client = try KVClient(node: nodeURL, timeout: .milliseconds(Int64(timeout * 1000)))
        do {
            let result = try await body(client)
            await client.close()
            return result
        } catch {
            await client.close()
            throw error
        }
    }
}
