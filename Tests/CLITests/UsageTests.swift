import Foundation
import Testing
import TestSupport

/// `kv` without a node: usage errors, an unreachable node, and where `--node` may stand.
@Suite("kv usage and unreachable nodes")
struct UsageTests {
    @Test(
        "usage errors exit 64 with one line on stderr",
        arguments: [
            ["get"],
            ["put", "k"],
            ["bogus"],
            ["get", "a", "b"],
            ["list", "--limit", "0"],
            ["list", "--limit", "1001"],
            ["list", "--limit", "many"],
            ["--nod", "http://127.0.0.1:1", "get", "a"],
            ["--node", "ftp://127.0.0.1:8000", "get", "a"],
            ["get", "a", "--node", "127.0.0.1:8000"],
            ["get", "a", "--node", "http://127.0.0.1:8000/kv"],
        ])
    func usageError(arguments: [String]) async throws {
        let result = try await kv(arguments)
        #expect(result.status == 64)
        #expect(result.stdout.isEmpty)
        #expect(result.stderrLines.count == 1, "stderr: \(result.stderr)")
        #expect(result.stderr.hasPrefix("kv: "))
        #expect(result.stderr.contains("--help"))
    }

    @Test("a CA file that cannot be used is one line naming it, exit status 2")
    func unusableCAFile() async throws {
        let result = try await kv("--node", "https://127.0.0.1:8000", "--tls-ca-file", "/nonexistent/ca.pem", "get", "a")
        #expect(result.status == 2)
        #expect(result.stderrLines == ["kv: --tls-ca-file /nonexistent/ca.pem: no such file"], "stderr: \(result.stderr)")
    }

    @Test("--help describes every subcommand and exits 0")
    func help() async throws {
        let result = try await kv("--help")
        #expect(result.status == 0)
        for subcommand in ["put", "get", "delete", "list", "status"] {
            #expect(result.stdoutText.contains(subcommand))
        }
        let get = try await kv("get", "--help")
        #expect(get.status == 0)
        #expect(get.stdoutText.contains("Examples:"))
    }

    @Test(
        "an unreachable node exits 2 with one exact line",
        arguments: [["get", "k"], ["put", "k", "v"], ["delete", "k"], ["list"], ["status"], ["status", "--json"]])
    func unreachable(arguments: [String]) async throws {
        let port = try unusedLocalPort()
        let url = "http://127.0.0.1:\(port)"
        let result = try await kv(["--node", url] + arguments)
        #expect(result.status == 2)
        #expect(result.stdout.isEmpty)
        #expect(result.stderr == "kv: cannot reach node at \(url): connection refused\n")
    }

    @Test("--node works before and after the subcommand; after wins when both are given")
    func nodePosition() async throws {
        let before = "http://127.0.0.1:\(try unusedLocalPort())"
        let after = "http://127.0.0.1:\(try unusedLocalPort())"
        let first = try await kv("--node", before, "get", "x")
        #expect(first.stderr == "kv: cannot reach node at \(before): connection refused\n")
        let second = try await kv("get", "x", "--node", after)
        #expect(second.stderr == "kv: cannot reach node at \(after): connection refused\n")
        let both = try await kv("--node", before, "get", "x", "--node", after)
        #expect(both.stderr == "kv: cannot reach node at \(after): connection refused\n")
        let equals = try await kv("list", "--node=\(before)")
        #expect(equals.stderr == "kv: cannot reach node at \(before): connection refused\n")
    }

    @Test("$KV_NODE is the default node, and --node overrides it")
    func environmentNode() async throws {
        let fromEnvironment = "http://127.0.0.1:\(try unusedLocalPort())"
        let fromFlag = "http://127.0.0.1:\(try unusedLocalPort())"
        let result = try await kv("get", "x", environment: ["KV_NODE": fromEnvironment])
        #expect(result.status == 2)
        #expect(result.stderr == "kv: cannot reach node at \(fromEnvironment): connection refused\n")
        let overridden = try await kv(
            "--node", fromFlag, "get", "x", environment: ["KV_NODE": fromEnvironment])
        #expect(overridden.stderr == "kv: cannot reach node at \(fromFlag): connection refused\n")
        let invalid = try await kv("get", "x", environment: ["KV_NODE": "ftp://nowhere"])
        #expect(invalid.status == 64)
        #expect(invalid.stderrLines.count == 1)
    }

    @Test("a node that accepts but never answers times out with exit 2")
    func hangingNode() async throws {
        let listener = try LocalListener()
        defer { listener.close() }
        let started = ContinuousClock.now
        let result = try await kv("--node", listener.url, "--timeout", "0.5", "get", "x")
        #expect(result.status == 2)
        #expect(result.stderr == "kv: node at \(listener.url) did not reply in time\n")
        // The message shows the timeout fired; the bound only catches a kv that waits forever
        // (starting a debug kv on a loaded 2-core box has taken 4 s).
        #expect(ContinuousClock.now - started < .seconds(60))
    }

    @Test("--timeout must be positive", arguments: ["0", "-1", "soon"])
    func badTimeout(value: String) async throws {
        let result = try await kv("get", "x", "--timeout=\(value)")
        #expect(result.status == 64)
        #expect(result.stderrLines.count == 1)
    }
}
