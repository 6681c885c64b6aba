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
            "The node to talk to, as http://HOST:PORT or https://HOST:PORT (default: $KV_NODE, else \(defaultNode)). cluster status and verify take it repeated.",
            valueName: "url"))
    var nodes: [String] = []

    @Option(help: ArgumentHelp("Seconds to wait for the node's reply.", valueName: "seconds"))
    var timeout: Double = 10

    @Option(
        name: .customLong("tls-ca-file"),
        help: ArgumentHelp(
            "PEM bundle of the CA(s) that signed the nodes' certificates, for https:// node URLs (default: $KV_TLS_CA_FILE, else the system's trust store).",
            valueName: "path"))
    var tlsCAFile: String?

    /// `--node`, else `$KV_NODE`, else the default.
    var nodeURL: String {
        if let node = nodes.last { return node }
        if let fromEnvironment = getenv("KV_NODE"), fromEnvironment.pointee != 0 {
            return String(cString: fromEnvironment)
        }
        return Self.defaultNode
    }

    /// `--tls-ca-file`, else `$KV_TLS_CA_FILE`, else nil (the system's trust store).
    var caFile: String? {
        if let tlsCAFile { return tlsCAFile }
        if let fromEnvironment = getenv("KV_TLS_CA_FILE"), fromEnvironment.pointee != 0 {
            return String(cString: fromEnvironment)
        }
        return nil
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

    var requestTimeout: Duration { .milliseconds(Int64(timeout * 1000)) }

    /// How this command's clients are made: the timeout, and the CA file read once. A CA file
    /// that cannot be used is a one-line failure with exit status 2.
    func clientSettings() throws -> ClientSettings {
        guard let caFile else { return ClientSettings(timeout: requestTimeout, tls: nil) }
        do {
            return ClientSettings(timeout: requestTimeout, tls: try ClientTLS(caFile: caFile))
        } catch {
            throw Failure(message: error.description + (tlsCAFile == nil ? " (from $KV_TLS_CA_FILE)" : ""), status: ExitStatus.refused)
        }
    }

    /// Runs `body` with a client of the node, closed on every path.
    func withClient<T>(_ body: (KVClient) async throws -> T) async throws -> T {
        let client = try clientSettings().client(nodeURL)
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

/// What every client a command makes shares: the request timeout and how https nodes are verified.
struct ClientSettings: Sendable {
    var timeout: Duration
    /// nil: `https` nodes are checked against the system's trust store.
    var tls: ClientTLS?

    /// A client of `node`, with these settings unless `timeout` is given.
    func client(_ node: String, timeout: Duration? = nil) throws(KVClientError) -> KVClient {
        try KVClient(node: node, timeout: timeout ?? self.timeout, tls: tls)
    }
}
