import ArgumentParser
import Foundation
import KVClient
import NodeHTTP

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
        help: ArgumentHelp(
            "A file whose first line is the node's client token (its --client-token-file), sent as 'Authorization: Bearer TOKEN'. Default: $KV_TOKEN, the token itself.",
            valueName: "path"))
    var tokenFile: String?

    @Option(
        name: .customLong("tls-ca-file"),
        help: ArgumentHelp(
            "PEM bundle of the CA(s) that signed the nodes' certificates, for https:// node URLs (default: $KV_TLS_CA_FILE, else the system's trust store).",
            valueName: "path"))
    var tlsCAFile: String?

    /// `--tls-ca-file`, else `$KV_TLS_CA_FILE`, else nil (the system's trust store).
    var caFile: String? {
        if let tlsCAFile { return tlsCAFile }
        if let fromEnvironment = getenv("KV_TLS_CA_FILE"), fromEnvironment.pointee != 0 {
            return String(cString: fromEnvironment)
        }
        return nil
    }

    /// How `https` nodes are verified: the CA file read now, or nil for the system's trust store.
    /// A CA file that cannot be used is a one-line failure with exit status 2.
    func clientTLS() throws -> ClientTLS? {
        guard let caFile else { return nil }
        do {
            return try ClientTLS(caFile: caFile)
        } catch {
            throw Failure(message: error.description + (tlsCAFile == nil ? " (from $KV_TLS_CA_FILE)" : ""), status: ExitStatus.refused)
        }
    }

    /// The client token: the first line of `--token-file`, else `$KV_TOKEN`, else none. Throws
    /// `ValidationError` for a token file that cannot be read or is empty.
    func clientToken() throws -> String? {
        if let tokenFile {
            guard let data = FileManager.default.contents(atPath: tokenFile) else {
                throw ValidationError("cannot read --token-file \(tokenFile); does it exist and can this user read it?")
            }
            let firstLine = String(decoding: data, as: UTF8.self).split(whereSeparator: \.isNewline).first ?? ""
            let token = firstLine.trimmingCharacters(in: .whitespaces)
            guard !token.isEmpty else { throw ValidationError("--token-file \(tokenFile) is empty; put the token on its first line") }
            return token
        }
        if let fromEnvironment = getenv("KV_TOKEN"), fromEnvironment.pointee != 0 {
            return String(cString: fromEnvironment)
        }
        return nil
    }

    /// A client of `node` (default: `nodeURL`) that sends the client token, if any, and checks
    /// an `https` node against the CA file.
    func client(of node: String? = nil, timeout: Duration? = nil) throws -> KVClient {
        try KVClient(node: node ?? nodeURL, timeout: timeout ?? requestTimeout, token: clientToken(), tls: clientTLS())
    }

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
        _ = try clientToken()
    }

    /// Runs `body` with a client of the node, closed on every path.
    var requestTimeout: Duration { .milliseconds(Int64(timeout * 1000)) }

    func withClient<T>(_ body: (KVClient) async throws -> T) async throws -> T {
        let client = try client()
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
