import Foundation
import Testing
import TestSupport

/// Runs the built `kv` with `arguments`. `KV_NODE` and `KV_TOKEN` are cleared unless
/// `environment` sets them, so a developer's own settings cannot change what a test talks to.
func kv(
    _ arguments: String..., stdin: Data? = nil, environment: [String: String] = [:]
) async throws -> CommandResult {
    try await kv(arguments, stdin: stdin, environment: environment)
}

func kv(
    _ arguments: [String], stdin: Data? = nil, environment: [String: String] = [:], timeout: Duration? = nil
) async throws -> CommandResult {
    try await runCommand(
        Products.executable("kv"), arguments, stdin: stdin,
        environment: ["KV_NODE": "", "KV_TOKEN": ""].merging(environment) { $1 }, timeout: timeout)
}

/// Runs `body` with a fresh single `kvnode` (id `A`, port 0, its own temp dir), killed on every
/// path. A failing test sees the node's log in its failure message.
///
/// The node is killed (SIGKILL), not stopped: these tests check replies, not shutdown, and a
/// kill cannot hang the suite. (A child spawned from a test's worker thread inherits that
/// thread's signal mask; a stand-in node that did not reset it ignored SIGTERM, so `stop()`
/// waited forever. kvnode itself does stop on SIGTERM.)
func withNode<T>(_ body: (NodeProcess) async throws -> T) async throws -> T {
    try await withTemporaryDirectory { directory in
        let node = try await NodeProcess.start(
            ["--id", "A", "--port", "0", "--db", directory.appendingPathComponent("A.db").path],
            logFile: directory.appendingPathComponent("A.log"))
        defer { node.kill() }
        do {
            return try await body(node)
        } catch {
            Issue.record("kvnode log:\n\(node.log().suffix(2000))")
            throw error
        }
    }
}

extension CommandResult {
    /// The lines of stderr, without the final empty one.
    var stderrLines: [Substring] { stderr.split(separator: "\n", omittingEmptySubsequences: false).dropLast(stderr.hasSuffix("\n") ? 1 : 0).map { $0 } }
}
