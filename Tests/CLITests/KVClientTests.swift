import Foundation
import KVClient
import KVCore
import NodeHTTP
import Testing
import TestSupport

@Suite("KVClient")
struct KVClientTests {
    @Test(
        "node URLs other than http://HOST[:PORT] are refused",
        arguments: [
            "127.0.0.1:8000", "https://", "https://h:0", "ftp://x", "http://", "http://:8000",
            "http://h:0", "http://h:65536", "http://h:port", "http://h:80/kv", "http://h?x=1",
            "http://user@h:80", "http://[::1",
        ])
    func invalidURL(url: String) throws {
        #expect {
            _ = try KVClient(node: url)
        } throws: { error in
            (error as? KVClientError)?.kind == .invalidNodeURL
        }
    }

    @Test("valid node URLs are normalized")
    func validURL() throws {
        #expect(try KVClient(node: "http://127.0.0.1:8000").url == "http://127.0.0.1:8000")
        #expect(try KVClient(node: "http://localhost:8001/").url == "http://localhost:8001")
        #expect(try KVClient(node: "HTTP://example.org").url == "http://example.org:80")
        #expect(try KVClient(node: "http://[::1]:9000").url == "http://[::1]:9000")
        #expect(try KVClient(node: "https://127.0.0.1:8443").url == "https://127.0.0.1:8443")
        #expect(try KVClient(node: "HTTPS://example.org/").url == "https://example.org:443")
    }

    @Test("a closed port is .unreachable with the system's reason")
    func unreachable() async throws {
        let url = "http://127.0.0.1:\(try unusedLocalPort())"
        let client = try KVClient(node: url)
        await #expect(throws: KVClientError.unreachable(url: url, reason: "connection refused")) {
            _ = try await client.get("k")
        }
        await client.close()
    }

    // Only the lower bound is asserted: an upper one would time the machine, not the client
    // (it took 8 s once under a loaded 2-core box); the time limit catches a client that hangs.
    @Test("a node that never answers is .timedOut after the timeout, not before", .timeLimit(.minutes(1)))
    func timeout() async throws {
        let listener = try LocalListener()
        defer { listener.close() }
        let client = try KVClient(node: listener.url, timeout: .milliseconds(300))
        let started = ContinuousClock.now
        await #expect(throws: KVClientError.timedOut(url: listener.url)) {
            _ = try await client.put("k", value: [1])
        }
        let elapsed = ContinuousClock.now - started
        #expect(elapsed >= .milliseconds(300))
        await client.close()
    }

    @Test("typed calls against a node")
    func typedCalls() async throws {
        try await withNode { node in
            let client = try KVClient(node: node.url)
            #expect(try await client.health())
            let put = try await client.put("a/b c", value: Array("v1".utf8))
            #expect(put.key == "a/b c" && put.origin == "A")
            let got = try #require(try await client.get("a/b c"))
            #expect(got == StoredValue(value: Array("v1".utf8), lamport: put.lamport, origin: "A"))
            #expect(try await client.get("absent") == nil)
            let deleted = try await client.delete("a/b c")
            #expect(deleted.lamport > put.lamport)
            #expect(try await client.get("a/b c") == nil)
            let page = try await client.list(prefix: "a/", limit: 10)
            #expect(page == ListPage(keys: [], next: nil))
            let status = try await client.status()
            #expect(status.id == "A" && status.keys == 0)

            await #expect {
                _ = try await client.put("", value: [1])
            } throws: { error in
                (error as? KVClientError)?.status == 400
            }
            await client.close()
        }
    }

    @Test("send returns any status; the connection survives a 404 and a close by the node")
    func lowLevelAndReconnect() async throws {
        try await withNode { node in
            let client = try KVClient(node: node.url)
            let unknown = try await client.send("GET", "/no-such-route")
            #expect(unknown.status == 404)
            // The node closes after this reply; the next requests must reconnect unnoticed.
            let closing = try await client.send("GET", "/health", headers: [("Connection", "close")])
            #expect(closing.status == 200)
            _ = try await client.put("after-close", value: [42])
            #expect(try await client.get("after-close")?.value == [42])
            await client.close()
        }
    }

    @Test("concurrent requests on one client are serialized and all answered")
    func concurrentRequests() async throws {
        try await withNode { node in
            // 40 requests in a row on one connection, while the suite starts dozens of nodes on
            // two cores: a generous timeout, since what is tested is the order, not the speed.
            let client = try KVClient(node: node.url, timeout: .seconds(60))
            let versions = try await withThrowingTaskGroup(of: Int64.self) { group in
                for index in 0..<40 {
                    group.addTask { try await client.put("key-\(index)", value: Array("\(index)".utf8)).lamport }
                }
                return try await group.reduce(into: [Int64]()) { $0.append($1) }
            }
            #expect(Set(versions).count == 40)
            for index in [0, 17, 39] {
                #expect(try await client.get("key-\(index)")?.value == Array("\(index)".utf8))
            }
            await client.close()
        }
    }
}
