import Foundation
import KVClient
import KVCore
import KVServer
import KVStore
import Testing
import TestSupport

/// The node's own HTTP/1.1 server below the routes, driven with raw bytes: pipelining, early
/// answers, bodies past a limit, `Connection: close`.
@Suite("HTTP/1.1 server")
struct HTTPServerTests {
    private func port(of node: ConvergeNode) throws -> Int {
        try #require(node.url.split(separator: ":").last.flatMap { Int($0) })
    }

    /// Reads until the node closes the connection, on a thread of its own: a blocking read on
    /// the cooperative pool (two threads here) would starve the node's task-served routes in
    /// this very process while other tests run.
    private func readOffThePool(_ connection: RawConnection) async -> (bytes: [UInt8], closed: Bool) {
        await withCheckedContinuation { continuation in
            Thread { continuation.resume(returning: connection.readUntilClosed(timeout: 10)) }.start()
        }
    }

    /// The status codes of the responses in `bytes`, in order, and their text.
    private func statuses(_ bytes: [UInt8]) -> (codes: [Int], text: String) {
        let text = String(decoding: bytes, as: UTF8.self)
        let codes = text.components(separatedBy: "HTTP/1.1 ").dropFirst().compactMap { Int($0.prefix(3)) }
        return (codes, text)
    }

    @Test func pipelinedRequestsAreAnsweredInOrderOnOneConnection() async throws {
        try await withNode { node, _ in
            let connection = try RawConnection(port: try port(of: node))
            defer { connection.close() }
            let requests =
                "PUT /kv/p1 HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nfirst"
                + "GET /kv/p1 HTTP/1.1\r\nHost: x\r\n\r\n"
                + "GET /kv/missing HTTP/1.1\r\nHost: x\r\n\r\n"
                + "DELETE /kv/p1 HTTP/1.1\r\nHost: x\r\n\r\n"
                + "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            #expect(connection.send(Array(requests.utf8)))
            let outcome = await readOffThePool(connection)
            let (codes, text) = statuses(outcome.bytes)
            #expect(codes == [200, 200, 404, 200, 200], "\(text)")
            #expect(text.contains("\r\n\r\nfirst"), "the GET answered the value the PUT before it stored")
            #expect(outcome.closed, "Connection: close ends the connection after its response")
            #expect(try await node.store.state().lastSeq == 2)
        }
    }

    /// Far more than `HTTPConnectionHandler.maxQueuedParts` (64) pipelined at once (2 001
    /// parts): the connection stops reading while they wait, then reads on, and every answer
    /// comes back in order.
    @Test func aLongPipelineIsAnsweredInOrderWhileReadingPauses() async throws {
        try await withNode { node, _ in
            let connection = try RawConnection(port: try port(of: node))
            defer { connection.close() }
            let count = 400
            var requests = ""
            for index in 1...count {
                let value = "value-\(index)"
                requests += "PUT /kv/long\(index) HTTP/1.1\r\nHost: x\r\nContent-Length: \(value.utf8.count)\r\n\r\n\(value)"
                requests += "GET /kv/long\(index) HTTP/1.1\r\nHost: x\r\n\r\n"
            }
            requests += "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            #expect(connection.send(Array(requests.utf8)))
            let outcome = await readOffThePool(connection)
            let (codes, text) = statuses(outcome.bytes)
            #expect(codes.count == 2 * count + 1, "\(codes.count) answers")
            #expect(codes.allSatisfy { $0 == 200 })
            let values = text.components(separatedBy: "\r\n\r\n").compactMap { $0.hasPrefix("value-") ? String($0.prefix { $0 != "H" }) : nil }
            #expect(values == (1...count).map { "value-\($0)" }, "each GET answered the PUT just before it")
            #expect(outcome.closed)
            #expect(try await node.store.state().lastSeq == Int64(count))
        }
    }

    @Test func aChunkedBodyPastTheLimitIs413AndTheConnectionStaysUsable() async throws {
        try await withNode(configure: { $0.maxValueBytes = 1000 }) { node, client in
            let connection = try RawConnection(port: try port(of: node))
            defer { connection.close() }
            // No Content-Length: the limit can only be found while the body arrives.
            let chunk = String(repeating: "x", count: 600)
            let request =
                "PUT /kv/big HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
                + "258\r\n\(chunk)\r\n258\r\n\(chunk)\r\n0\r\n\r\n"
                + "GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
            #expect(connection.send(Array(request.utf8)))
            let outcome = await readOffThePool(connection)
            let (codes, text) = statuses(outcome.bytes)
            #expect(codes == [413, 200], "\(text)")
            #expect(text.contains("value_too_large"))
            #expect(try await client.get("big") == nil)
        }
    }

    @Test func aPeerRequestWithoutTheTokenIsRefusedBeforeItsBodyArrives() async throws {
        try await withNode(configure: {
            $0.clusterToken = "secret"
            $0.peers = [PeerConfig(id: try! NodeID("B"), url: "http://127.0.0.1:1")]  // literal, valid id
        }) { node, _ in
            let connection = try RawConnection(port: try port(of: node))
            defer { connection.close() }
            // Declares 50 MB and sends 10 bytes: the answer must not wait for the rest.
            let head =
                "POST /internal/push HTTP/1.1\r\nHost: x\r\nKV-Node: B\r\nAuthorization: Bearer wrong\r\n"
                + "Content-Length: 50000000\r\nConnection: close\r\n\r\n0123456789"
            #expect(connection.send(Array(head.utf8)))
            let outcome = await readOffThePool(connection)
            let (codes, text) = statuses(outcome.bytes)
            #expect(codes == [401], "\(text)")
            #expect(outcome.closed)
        }
    }
}
