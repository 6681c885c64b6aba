import Foundation
import KVClient
import KVCore
import KVServer
import KVStore
import NodeHTTP
import Replication
import Testing

/// Which credentials open which routes on a node with both a client and a cluster token.
@Suite("Client token: which credentials open which routes")
struct ClientTokenRouteTests {
    private static let clientToken = "client-secret"
    private static let clusterToken = "cluster-secret"

    /// Node A with peer B (never running), both tokens set.
    private func withGuardedNode(_ body: (ConvergeNode, KVClient) async throws -> Void) async throws {
        try await withNode(configure: {
            $0.peers = [PeerConfig(id: try! NodeID("B"), url: "http://127.0.0.1:1")]  // literal, valid id
            $0.clusterToken = Self.clusterToken
            $0.clientToken = Self.clientToken
        }, body)
    }

    private func peer(_ sender: String = "B", token: String = clusterToken) -> [(String, String)] {
        [("KV-Node", sender), ("Authorization", "Bearer \(token)")]
    }

    @Test func aPeerReadsTheDigestWithItsOwnCredentialsAndNothingElsePublic() async throws {
        try await withGuardedNode { (_, client) async throws in
            #expect(try await client.send("GET", "/digest", headers: peer()).status == 200)
            #expect(try await client.send("GET", "/digest?bucket=0a", headers: peer()).status == 200)
            #expect(try await client.send("GET", "/digest", headers: peer(token: "wrong")).status == 401)
            #expect(try await client.send("GET", "/digest", headers: peer("M")).status == 401, "an unknown sender")
            #expect(try await client.send("GET", "/digest", headers: [("Authorization", "Bearer \(Self.clusterToken)")]).status == 401)
            for path in ["/status", "/kv", "/kv/x", "/metrics"] {
                #expect(try await client.send("GET", path, headers: peer()).status == 401, "peer credentials open only /digest, not \(path)")
            }
            #expect(try await client.send("PUT", "/kv/x", body: [1], headers: peer()).status == 401)
        }
    }

    @Test func theClientTokenOpensNoPeerRoute() async throws {
        try await withGuardedNode { _, client in
            let asClient = [("KV-Node", "B"), ("Authorization", "Bearer \(Self.clientToken)")]
            #expect(try await client.send("GET", "\(PeerProtocol.feedPath)?after=0", headers: asClient).status == 401)
            #expect(try await client.send("GET", "\(PeerProtocol.feedPath)?after=0", headers: peer()).status == 200)
            let hello = try JSONEncoder().encode(HelloRequest(id: "B", epoch: "e", seq: 0))
            #expect(try await client.send("POST", PeerProtocol.helloPath, body: Array(hello), headers: asClient).status == 401)
        }
    }

    @Test func aLargeBodyWithoutTheTokenIs401UnreadAndTheConnectionStillServes() async throws {
        try await withGuardedNode { node, client in
            let body = [UInt8](repeating: 7, count: 3 << 20)  // over the 1 MiB value limit too
            let refused = try await client.send("PUT", "/kv/big", body: body)
            #expect(refused.status == 401, "the token is checked before the body is read or measured")
            #expect(try await client.send("GET", "/health").status == 200)
            #expect(try await node.store.get(key: "big") == nil)
        }
    }

    @Test func withoutAClientTokenTheHeaderIsIgnored() async throws {
        try await withNode { _, client in
            let reply = try await client.send("PUT", "/kv/x", body: [1], headers: [("Authorization", "Bearer anything")])
            #expect(reply.status == 200)
        }
    }
}
