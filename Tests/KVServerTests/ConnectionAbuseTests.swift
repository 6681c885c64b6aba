import Foundation
import KVClient
import KVCore
import KVServer
import KVStore
import Testing
import TestSupport

@Suite("Misbehaving connections")
struct ConnectionAbuseTests {
    private func port(of node: ConvergeNode) throws -> Int {
        try #require(node.url.split(separator: ":").last.flatMap { Int($0) })
    }

    @Test func aBodyThatNeverFinishesIsCutOffAndStoresNothing() async throws {
        try await withNode(configure: { $0.idleTimeout = .seconds(1) }) { node, client in
            let connection = try RawConnection(port: try port(of: node))
            let head = "PUT /kv/stalled HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n0123456789"
            #expect(connection.send(Array(head.utf8)))
            let started = ContinuousClock.now
            let outcome = await Task.detached { connection.readUntilClosed(timeout: 10) }.value
            let waited = ContinuousClock.now - started
            #expect(outcome.closed, "the node closed the stalled connection")
            #expect(waited < .seconds(8), "within a few idle timeouts, took \(waited)")
            connection.close()
            #expect(try await client.get("stalled") == nil)
            #expect(try await client.health(), "the node still serves")
        }
    }

    @Test func manyIdleConnectionsAreBoundedAndTheNodeStaysUp() async throws {
        // The idle timeout is what frees the slots of connections that never send anything.
        // 400 against a limit of 100 in the suite, not thousands, to keep this process's
        // descriptors well below its limit while other tests run beside it.
        // `KV_FLOOD=N` (run alone) opens N against a limit of N / 4.
        let connections = Int(ProcessInfo.processInfo.environment["KV_FLOOD"] ?? "") ?? 400
        try await withNode(configure: { $0.maxConnections = connections / 4; $0.idleTimeout = .seconds(2) }) { node, client in
            let target = try port(of: node)
            var flood: [RawConnection] = []
            for _ in 0..<connections { flood.append(try RawConnection(port: target)) }
            print("figures: connection flood: \(connections) idle connections against --max-connections \(connections / 4)")
            // Past the limit the node stops accepting; the kernel's backlog holds the rest, so a
            // newcomer waits (here: times out) instead of the node taking on more than it can hold.
            let newcomer = try KVClient(node: node.url, timeout: .milliseconds(300))
            await #expect(throws: KVClientError.self) { _ = try await newcomer.put("during-flood", value: [1]) }
            await newcomer.close()
            #expect(try await node.store.state().lastSeq == 0)
            for connection in flood { connection.close() }
            flood.removeAll()
            try await poll("the node to serve again after the flood", timeout: .seconds(60)) {
                let fresh = try KVClient(node: node.url, timeout: .seconds(2))
                defer { Task { await fresh.close() } }
                return try await fresh.put("after-flood", value: [1]).key == "after-flood" ? nil : "no"
            }
            #expect(try await client.get("after-flood")?.value == [1])
        }
    }
}
