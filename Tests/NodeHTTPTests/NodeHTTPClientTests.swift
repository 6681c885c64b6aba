import NodeHTTP
import Testing
import TestSupport

/// `NodeHTTPClient` on its own, without a node: the failures every module above it reports.
@Suite("NodeHTTPClient")
struct NodeHTTPClientTests {
    @Test(
        "node URLs other than http(s)://HOST[:PORT] are refused with the reason",
        arguments: [
            ("127.0.0.1:8000", "expected http://HOST:PORT or https://HOST:PORT"),
            ("ftp://x", "the scheme must be http or https, not ftp"),
            ("http://h:80/kv", "a node URL has no path, query or fragment"),
            ("http://user@h:80", "a node URL has no user name or password"),
            ("http://[::1", "unterminated IPv6 address"),
            ("http://:8000", "the host is missing"),
            ("http://h:0", "the port must be a number from 1 to 65535"),
        ])
    func invalidURL(url: String, reason: String) {
        #expect(throws: NodeHTTPError.invalidNodeURL(url, reason: reason)) {
            _ = try NodeHTTPClient(node: url)
        }
    }

    @Test("the URL is normalized to scheme://HOST:PORT")
    func normalized() throws {
        #expect(try NodeHTTPClient(node: "HTTP://example.org/").url == "http://example.org:80")
        #expect(try NodeHTTPClient(node: "https://[::1]").url == "https://[::1]:443")
    }

    @Test("a closed port is .unreachable with the system's reason, in the words kv prints")
    func unreachable() async throws {
        let url = "http://127.0.0.1:\(try unusedLocalPort())"
        let client = try NodeHTTPClient(node: url)
        await #expect(throws: NodeHTTPError.unreachable(url: url, reason: "connection refused")) {
            _ = try await client.send("GET", "/health")
        }
        #expect(
            NodeHTTPError.unreachable(url: url, reason: "connection refused").description
                == "cannot reach node at \(url): connection refused")
        await client.close()
    }

    // Only the lower bound is asserted: an upper one would time the machine, not the client.
    @Test("a node that never answers is .timedOut after the timeout, not before", .timeLimit(.minutes(1)))
    func timeout() async throws {
        let listener = try LocalListener()
        defer { listener.close() }
        let client = try NodeHTTPClient(node: listener.url, timeout: .milliseconds(300))
        let started = ContinuousClock.now
        await #expect(throws: NodeHTTPError.timedOut(url: listener.url)) {
            _ = try await client.send("POST", "/internal/push", body: [1])
        }
        #expect(ContinuousClock.now - started >= .milliseconds(300))
        await client.close()
    }

    @Test("a closed client refuses further requests")
    func closed() async throws {
        let url = "http://127.0.0.1:\(try unusedLocalPort())"
        let client = try NodeHTTPClient(node: url)
        await client.close()
        await #expect(throws: NodeHTTPError.unreachable(url: url, reason: "the client was closed")) {
            _ = try await client.send("GET", "/health")
        }
    }
}
