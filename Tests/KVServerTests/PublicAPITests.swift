import Foundation
import KVClient
import KVCore
import KVServer
import KVStore
import NodeHTTP
import Testing

@Suite("Public HTTP API through a real server")
struct PublicAPITests {
    @Test func putThenGetReturnsTheBytesAndTheVersion() async throws {
        try await withNode { _, client in
            let written = try await client.put("x", value: Array("1".utf8))
            #expect(written == WriteReply(key: "x", lamport: 1, origin: "A"))
            let reply = try await client.send("GET", "/kv/x")
            #expect(reply.status == 200)
            #expect(reply.body == Array("1".utf8))
            #expect(reply.header("KV-Lamport") == "1")
            #expect(reply.header("KV-Origin") == "A")
        }
    }

    @Test func binaryValuesRoundTripByteExact() async throws {
        try await withNode { _, client in
            let value = (0...255).map(UInt8.init) + [0, 0, 255]
            _ = try await client.put("bin", value: value)
            let stored = try #require(try await client.get("bin"))
            #expect(stored.value == value)
            _ = try await client.put("empty", value: [])
            #expect(try await client.get("empty")?.value == [])
        }
    }

    @Test func everyPutMakesANewVersionEvenWithTheSameValue() async throws {
        try await withNode { _, client in
            let first = try await client.put("k", value: [1])
            let second = try await client.put("k", value: [1])
            #expect(second.lamport > first.lamport)
        }
    }

    @Test func theKeyIsTheWholeRestOfThePathPercentDecoded() async throws {
        try await withNode { _, client in
            let reply = try await client.send("PUT", "/kv/users/42", body: Array("v".utf8))
            #expect(reply.status == 200)
            #expect(try JSONDecoder().decode(WriteReply.self, from: Data(reply.body)).key == "users/42")
            // %2F decodes to the same key.
            #expect(try await client.send("GET", "/kv/users%2F42").body == Array("v".utf8))
            for key in ["user:1", "a b", "100%", "what?", "hash#tag", "é漢🙂", "a//b", "/lead"] {
                _ = try await client.put(key, value: Array(key.utf8))
                #expect(try await client.get(key)?.value == Array(key.utf8), "key \(key)")
            }
        }
    }

    @Test func missingAndDeletedKeysAre404WithAJSONError() async throws {
        try await withNode { _, client in
            let missing = try await client.send("GET", "/kv/nope")
            #expect(missing.status == 404)
            #expect(try missing.errorBody().error == "not_found")
            #expect(missing.header("Content-Type") == "application/json")

            _ = try await client.put("gone", value: [1])
            let deleted = try await client.delete("gone")
            #expect(deleted.key == "gone" && deleted.origin == "A" && deleted.lamport == 2)
            #expect(try await client.send("GET", "/kv/gone").status == 404)
            #expect(try await client.get("gone") == nil)
        }
    }

    @Test func deleteOfAnUnknownKeyStillWritesATombstone() async throws {
        try await withNode { node, client in
            let reply = try await client.delete("never")
            #expect(reply.lamport == 1)
            let stored = try #require(try await node.store.get(key: "never"))
            #expect(stored.record.isTombstone)
        }
    }

    @Test func invalidKeysAre400AndStoreNothing() async throws {
        try await withNode { node, client in
            let longKey = String(repeating: "k", count: 2000)
            let cases: [(String, String)] = [
                ("PUT", "/kv/\(longKey)"),
                ("PUT", "/kv/"),
                ("PUT", "/kv/a%01b"),
                ("PUT", "/kv/a%7F"),
                ("PUT", "/kv/%FF%FE"),
                ("PUT", "/kv/bad%G1"),
                ("GET", "/kv/\(longKey)"),
                ("DELETE", "/kv/"),
            ]
            for (method, path) in cases {
                let reply = try await client.send(method, path, body: [1, 2, 3])
                #expect(reply.status == 400, "\(method) \(path.prefix(40))")
                #expect(try reply.errorBody().error == "invalid_key", "\(method) \(path.prefix(40))")
            }
            #expect(try await node.store.state().lastSeq == 0, "nothing was stored")
            // The 1024-byte boundary is accepted.
            #expect(try await client.send("PUT", "/kv/\(String(repeating: "k", count: 1024))", body: [1]).status == 200)
        }
    }

    @Test func valuesOverTheLimitAre413AndTheLimitIsInclusive() async throws {
        try await withNode(configure: { $0.maxValueBytes = 1000 }) { node, client in
            #expect(try await client.send("PUT", "/kv/fits", body: Array(repeating: 7, count: 1000)).status == 200)
            let tooBig = try await client.send("PUT", "/kv/big", body: Array(repeating: 7, count: 1001))
            #expect(tooBig.status == 413)
            #expect(try tooBig.errorBody().error == "value_too_large")
            #expect(try await client.get("big") == nil)
            #expect(try await node.store.state().lastSeq == 1)
        }
    }

    @Test func unknownRoutesAre404AndWrongMethodsAre405() async throws {
        try await withNode { _, client in
            let unknown = try await client.send("GET", "/nothing/here")
            #expect(unknown.status == 404)
            #expect(try unknown.errorBody().error == "no_such_route")

            for (method, path, allow) in [
                ("POST", "/kv/x", "GET, PUT, DELETE"), ("PATCH", "/kv/x", "GET, PUT, DELETE"),
                ("PUT", "/kv", "GET"), ("DELETE", "/status", "GET"), ("POST", "/health", "GET"),
                ("PUT", "/metrics", "GET"),
            ] {
                let reply = try await client.send(method, path)
                #expect(reply.status == 405, "\(method) \(path)")
                #expect(reply.header("Allow") == allow, "\(method) \(path)")
                #expect(try reply.errorBody().error == "method_not_allowed")
            }
        }
    }

    @Test func listingPagesThroughLiveKeysInByteOrder() async throws {
        try await withNode { _, client in
            for key in ["b/2", "a", "b/1", "b/3", "c", "b/é", "B"] { _ = try await client.put(key, value: [1, 2]) }
            _ = try await client.delete("b/3")

            let all = try await client.list()
            #expect(all.keys.map(\.key) == ["B", "a", "b/1", "b/2", "b/é", "c"])
            #expect(all.next == nil)
            #expect(all.keys.first?.size == 2 && all.keys.first?.origin == "A")

            let first = try await client.list(prefix: "b/", limit: 2)
            #expect(first.keys.map(\.key) == ["b/1", "b/2"])
            #expect(first.next == "b/2")
            let second = try await client.list(prefix: "b/", after: first.next, limit: 2)
            #expect(second.keys.map(\.key) == ["b/é"])
            #expect(second.next == nil)

            // `next` is present as null in the JSON, not omitted.
            let raw = try await client.send("GET", "/kv?prefix=zzz")
            #expect(raw.text.contains(#""next":null"#))
        }
    }

    @Test func badPagingParametersAre400() async throws {
        try await withNode { _, client in
            for query in ["limit=0", "limit=1001", "limit=abc", "limit=-1", "after=%01", "prefix=%7F", "prefix=%zz", "after=%FF", "limit=%"] {
                let reply = try await client.send("GET", "/kv?\(query)")
                #expect(reply.status == 400, "\(query)")
                #expect(try reply.errorBody().error == "invalid_parameter", "\(query)")
            }
            #expect(try await client.send("GET", "/kv?limit=1000").status == 200)
            #expect(try await client.send("GET", "/kv?limit=1").status == 200)
        }
    }

    @Test func healthStatusAndMetrics() async throws {
        try await withNode(configure: {
            $0.peers = [.init(id: try! NodeID("B"), url: "http://127.0.0.1:1")]  // a literal, valid id
        }) { _, client in
            #expect(try await client.health())
            _ = try await client.put("x", value: [1])
            _ = try await client.put("y", value: [1])
            _ = try await client.delete("y")
            let status = try await client.status()
            #expect(status.id == "A")
            #expect(status.epoch.count == 32)
            #expect(status.lamport == 3 && status.seq == 3 && status.keys == 1)
            #expect(status.catchingUp == false)
            #expect(status.peers.map(\.id) == ["B"])
            #expect(status.peers.first?.toPush == 3)

            _ = try await client.send("GET", "/kv/missing")
            let metrics = try await client.send("GET", "/metrics")
            #expect(metrics.status == 200)
            #expect(metrics.text.contains(#"kv_http_requests_total{route="/kv/{key}",method="PUT",status="200"} 2"#))
            #expect(metrics.text.contains(#"kv_http_requests_total{route="/kv/{key}",method="GET",status="404"} 1"#))
            #expect(metrics.text.contains("kv_keys 1"))
            for series in [
                #"kv_http_request_duration_seconds_bucket{route="/kv/{key}",method="PUT",le="#,
                "kv_store_transactions ", "kv_store_transaction_seconds ", "kv_database_bytes ",
                #"kv_peer_rows_to_push{peer="B"} 3"#, #"kv_peer_reachable{peer="B"} 0"#, "kv_catching_up ",
                "kv_client_writes_total 3",
            ] {
                #expect(metrics.text.contains(series), "metrics lack \(series)")
            }
        }
    }

    @Test func concurrentWritesAllSucceedWithDistinctVersions() async throws {
        try await withNode { node, _ in
            let url = node.url
            let lamports = try await withThrowingTaskGroup(of: [Int64].self) { group in
                for task in 0..<16 {
                    group.addTask {
                        let client = try KVClient(node: url)
                        defer { Task { await client.close() } }
                        var seen: [Int64] = []
                        for index in 0..<25 {
                            seen.append(try await client.put("k\(task)-\(index)", value: [UInt8(index)]).lamport)
                        }
                        return seen
                    }
                }
                return try await group.reduce(into: []) { $0 += $1 }
            }
            #expect(lamports.count == 400)
            #expect(Set(lamports).count == 400)
            #expect(try await node.store.state().liveKeys == 400)
        }
    }

    @Test func readsQueuedBehindTheWriterGiveTheSameAnswers() async throws {
        try await withNode(configure: { $0.readConnections = 0 }) { _, client in
            _ = try await client.put("a", value: [1])
            _ = try await client.put("b", value: [2])
            #expect(try await client.get("a")?.value == [1])
            #expect(try await client.get("missing") == nil)
            #expect(try await client.list().keys.map(\.key) == ["a", "b"])
        }
    }

    @Test func dataAndClockSurviveARestart() async throws {
        try await withTemporaryDirectoryForNode { configuration in
            let first = try await ConvergeNode.start(configuration, logger: testLogger)
            let client = try KVClient(node: first.url)
            _ = try await client.put("kept", value: Array("yes".utf8))
            await client.close()
            await first.stop()

            let second = try await ConvergeNode.start(configuration, logger: testLogger)
            let again = try KVClient(node: second.url)
            #expect(try await again.get("kept")?.value == Array("yes".utf8))
            #expect(try await again.put("next", value: [1]).lamport == 2)
            await again.close()
            await second.stop()
        }
    }

    @Test func aFileOfAnotherNodeIsRefused() async throws {
        try await withTemporaryDirectoryForNode { configuration in
            let node = try await ConvergeNode.start(configuration, logger: testLogger)
            await node.stop()
            var other = configuration
            other.id = try NodeID("B")
            do {
                _ = try await ConvergeNode.start(other, logger: testLogger)
                Issue.record("a node started on another node's file")
            } catch {
                #expect("\(error)".contains("belongs to node A"), "\(error)")
            }
        }
    }
}

import TestSupport

func withTemporaryDirectoryForNode(_ body: (NodeConfiguration) async throws -> Void) async throws {
    try await withTemporaryDirectory { directory in
        var configuration = NodeConfiguration(id: try NodeID("A"), databasePath: directory.appendingPathComponent("A.db").path)
        configuration.port = 0
        try await body(configuration)
    }
}
