import Foundation
import KVClient
import Testing
import TestSupport

extension FaultInjection {
    /// The proxy the partition tests rely on does what it says, checked against one real node: a
    /// harness that silently passed traffic would make every partition test pass for nothing.
    @Suite("FaultProxy in front of a real node", .serialized)
    struct FaultProxyTests {
        @Test func passesTrafficAndCountsIt() async throws {
            try await withProxiedNode(timeout: .seconds(5)) { proxy, client, _ in
                _ = try await client.put("x", value: Array("1".utf8))
                #expect(try await client.get("x")?.value == Array("1".utf8))
                #expect(proxy.statistics.forwarded == 1, "one keep-alive connection")
                #expect(proxy.statistics.bytes > 0)
            }
        }

        @Test func downResetsOpenAndNewConnectionsUntilHealed() async throws {
            try await withProxiedNode(timeout: .seconds(5)) { proxy, client, _ in
                _ = try await client.put("x", value: [1])
                proxy.set(.down)
                await #expect(throws: KVClientError.self) { _ = try await client.get("x") }
                #expect(proxy.statistics.refused >= 1)
                #expect(proxy.statistics.reset >= 1, "the open keep-alive connection was reset")
                proxy.set(.none)
                #expect(try await client.get("x")?.value == [1])
            }
        }

        @Test func aSilentLinkTimesOutAndDeliversWhatItHeldWhenHealed() async throws {
            try await withProxiedNode(timeout: .milliseconds(500)) { proxy, client, direct in
                proxy.set(.silent)
                do {
                    _ = try await client.put("held", value: [7])
                    Issue.record("a put through a silent link was answered")
                } catch let error as KVClientError {
                    #expect(error.kind == .timedOut, "\(error)")
                }
                #expect(try await direct.get("held") == nil, "nothing passed while silent")
                proxy.set(.none)
                try await poll("the held put to arrive once healed") {
                    try await direct.get("held")?.value == [7] ? nil : "not yet"
                }
            }
        }

        @Test func blackholedRepliesLetRequestsThroughButNoAnswerBack() async throws {
            try await withProxiedNode(timeout: .milliseconds(500)) { proxy, client, direct in
                proxy.set(FaultProxy.Faults(blackholed: [.toClient]))
                do {
                    _ = try await client.put("oneway", value: [9])
                    Issue.record("the reply crossed a link blackholed for replies")
                } catch let error as KVClientError {
                    #expect(error.kind == .timedOut, "\(error)")
                }
                #expect(try await direct.get("oneway")?.value == [9], "the request was applied")
                proxy.resetConnections()
                proxy.set(.none)
                #expect(try await client.get("oneway")?.value == [9])
            }
        }

        @Test func delayAndLossBite() async throws {
            try await withProxiedNode(timeout: .seconds(5)) { proxy, client, _ in
                proxy.set(FaultProxy.Faults(delay: .milliseconds(150)))
                let started = ContinuousClock.now
                _ = try await client.get("x")
                #expect(ContinuousClock.now - started >= .milliseconds(300), "request and reply each waited")

                proxy.set(FaultProxy.Faults(lossRate: 1))
                await #expect(throws: KVClientError.self) { _ = try await client.get("x") }
                #expect(proxy.statistics.lostChunks >= 1)
                proxy.set(.none)
                _ = try await client.get("x")
            }
        }
    }
}

/// One real node with a proxy in front of it; `body` gets the proxy, a client that talks through
/// it with `timeout`, and one that talks to the node directly. All are closed on every path.
private func withProxiedNode(
    timeout: Duration, _ body: (FaultProxy, KVClient, KVClient) async throws -> Void
) async throws {
    try await withTemporaryDirectory { directory in
        let node = try await NodeProcess.start(
            ["--id", "A", "--port", "0", "--db", directory.appendingPathComponent("A.db").path],
            logFile: directory.appendingPathComponent("A.log"))
        defer { node.kill() }
        let proxy = try FaultProxy(targetPort: Int(node.url.split(separator: ":").last ?? "") ?? 0)
        defer { proxy.close() }
        let proxied = try KVClient(node: proxy.url, timeout: timeout)
        let direct = try KVClient(node: node.url, timeout: .seconds(5))
        do {
            try await body(proxy, proxied, direct)
        } catch {
            print("kvnode log:\n\(node.log().suffix(2000))")
            await proxied.close()
            await direct.close()
            throw error
        }
        await proxied.close()
        await direct.close()
    }
}
