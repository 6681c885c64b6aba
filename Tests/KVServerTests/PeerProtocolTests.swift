import Foundation
import KVClient
import KVCore
import KVServer
import KVStore
import NodeHTTP
import Replication
import Testing

/// The peer protocol as an intruder or a broken peer meets it: every bad request is refused with
/// its status before anything reaches the store, and a batch is applied whole or not at all.
@Suite("Peer protocol: authentication, bad batches, clock abuse")
struct PeerProtocolTests {
    private static let token = "s3cret-token"

    /// A node A that knows one peer B (never running) and requires the token.
    private func withGuardedNode(_ body: (ConvergeNode, KVClient) async throws -> Void) async throws {
        try await withNode(configure: {
            $0.peers = [PeerConfig(id: try! NodeID("B"), url: "http://127.0.0.1:1")]  // literal, valid id
            $0.clusterToken = Self.token
        }, body)
    }

    private func headers(sender: String = "B", token: String? = token, epoch: String = "epoch-b-1") -> [(String, String)] {
        var headers = [("KV-Node", sender), ("KV-Epoch", epoch)]
        if let token { headers.append(("Authorization", "Bearer \(token)")) }
        return headers
    }

    private func hello(_ client: KVClient, epoch: String = "epoch-b-1", seq: Int64 = 0) async throws -> HTTPReply {
        let body = try JSONEncoder().encode(HelloRequest(id: "B", epoch: epoch, seq: seq))
        return try await client.send("POST", PeerProtocol.helloPath, body: Array(body), headers: headers(epoch: epoch))
    }

    private func push(_ client: KVClient, _ batch: FeedBatch, epoch: String = "epoch-b-1") async throws -> HTTPReply {
        try await client.send("POST", PeerProtocol.pushPath, body: FeedCodec.encode(batch), headers: headers(epoch: epoch))
    }

    private func row(_ key: String, lamport: Int64, seq: Int64, value: String = "v") throws -> StoredRecord {
        StoredRecord(record: Record(key: key, value: Array(value.utf8), version: Version(lamport: lamport, origin: try NodeID("B"))), seq: seq)
    }

    @Test func aMissingOrWrongTokenIs401AndAnUnknownSenderIs403() async throws {
        try await withGuardedNode { node, client in
            let body = Array("{}".utf8)
            let cases: [([(String, String)], Int)] = [
                (headers(token: nil), 401), (headers(token: "wrong"), 401),
                (headers(sender: "Mallory"), 403), (headers(sender: "A"), 403),
            ]
            for path in [PeerProtocol.helloPath, PeerProtocol.pushPath] {
                for (fields, status) in cases {
                    let reply = try await client.send("POST", path, body: body, headers: fields)
                    #expect(reply.status == status, "\(path) \(fields)")
                }
            }
            let noToken = headers(token: nil)
            let feed = try await client.send("GET", "\(PeerProtocol.feedPath)?after=0", headers: noToken)
            #expect(feed.status == 401)
            let bucket = try await client.send("GET", "\(PeerProtocol.bucketPath)?bucket=00", headers: noToken)
            #expect(bucket.status == 401)
            #expect(try await node.store.peer(try NodeID("B"))?.epoch == nil, "nothing was recorded")
        }
    }

    @Test func aPushBeforeHelloOrFromAnotherEpochIs409() async throws {
        try await withGuardedNode { node, client in
            let batch = FeedBatch(from: 0, to: 1, rows: [try row("x", lamport: 1, seq: 1)])
            #expect(try await push(client, batch).status == 409)
            #expect(try await hello(client).status == 200)
            #expect(try await push(client, batch, epoch: "some-other-epoch").status == 409)
            #expect(try await node.store.get(key: "x") == nil)
            #expect(try await push(client, batch).status == 200)
            #expect(try await node.store.get(key: "x") != nil)
        }
    }

    @Test func malformedAndTruncatedBatchesAre400AndChangeNothing() async throws {
        try await withGuardedNode { node, client in
            #expect(try await hello(client).status == 200)
            let good = FeedCodec.encode(FeedBatch(from: 0, to: 2, rows: [try row("a", lamport: 1, seq: 1), try row("b", lamport: 2, seq: 2)]))
            let fields = headers()
            for bad in [Array(good.dropLast()), Array(good.prefix(10)), Array("not a batch".utf8), [], good + [0]] {
                let reply = try await client.send("POST", PeerProtocol.pushPath, body: bad, headers: fields)
                #expect(reply.status == 400)
            }
            let notJSON = try await client.send("POST", PeerProtocol.helloPath, body: Array("{".utf8), headers: fields)
            #expect(notJSON.status == 400)
            #expect(try await node.store.state().lastSeq == 0)
            #expect(try await node.store.peer(try NodeID("B"))?.pulledSeq == 0)
        }
    }

    @Test func aGapIs409WithTheMarkAndAReplayedBatchIsHarmless() async throws {
        try await withGuardedNode { node, client in
            #expect(try await hello(client).status == 200)
            let first = FeedBatch(from: 0, to: 2, rows: [try row("a", lamport: 1, seq: 1), try row("b", lamport: 2, seq: 2)])
            #expect(try await push(client, first).status == 200)
            let gap = try await push(client, FeedBatch(from: 5, to: 6, rows: [try row("c", lamport: 3, seq: 6)]))
            #expect(gap.status == 409)
            #expect(try await node.store.get(key: "c") == nil)
            // The same batch again changes nothing and the mark stays.
            let replay = try await push(client, first)
            #expect(replay.status == 200)
            #expect(try JSONDecoder().decode(PushReply.self, from: Data(replay.body)) == PushReply(pulledSeq: 2, applied: 0))
            #expect(try await node.store.state().lastSeq == 2)
        }
    }

    @Test func aRowWithAnAbsurdLamportIsRefusedAloneAndTheClockStaysSane() async throws {
        try await withGuardedNode { node, client in
            #expect(try await hello(client).status == 200)
            let batch = FeedBatch(from: 0, to: 3, rows: [
                try row("fine", lamport: 5, seq: 1),
                try row("evil", lamport: Int64.max - 5, seq: 2),
                try row("also-fine", lamport: 6, seq: 3),
            ])
            let reply = try await push(client, batch)
            #expect(reply.status == 200)
            #expect(try JSONDecoder().decode(PushReply.self, from: Data(reply.body)) == PushReply(pulledSeq: 3, applied: 2))
            #expect(try await node.store.get(key: "evil") == nil)
            #expect(try await node.store.get(key: "also-fine") != nil)
            #expect(try await node.store.state().lamport == 6, "the clock did not jump")
            // The rest of B's feed still flows, and the refusal is counted.
            #expect(try await push(client, FeedBatch(from: 3, to: 4, rows: [try row("later", lamport: 7, seq: 4)])).status == 200)
            #expect(try await node.store.get(key: "later") != nil)
            let status = try await client.status()
            #expect(status.peers.first?.rowsRefused == 1)
            // Local writes still win over everything stored.
            #expect(try await client.put("later", value: [1]).lamport == 8)
        }
    }
}
