import Foundation
import KVClient
import KVCore
import NodeHTTP
import Testing
import TestSupport

/// A cluster whose nodes require a client token still replicates, and its anti-entropy still
/// reads each peer's `GET /digest` (a public route) with the peer's own credentials.
@Suite("client token in a cluster")
struct ClientTokenClusterTests {
    @Test func nodesWithAClientTokenReplicateAndReadEachOthersDigest() async throws {
        try await withTemporaryDirectory { secrets in
            let clusterToken = secrets.appendingPathComponent("cluster-token").path
            let clientToken = secrets.appendingPathComponent("client-token").path
            #expect(FileManager.default.createFile(atPath: clusterToken, contents: Data("cluster-secret\n".utf8), attributes: [.posixPermissions: 0o600]))
            #expect(FileManager.default.createFile(atPath: clientToken, contents: Data("client-secret\n".utf8), attributes: [.posixPermissions: 0o600]))
            let arguments = [
                "--cluster-token-file", clusterToken, "--client-token-file", clientToken, "--anti-entropy-interval", "0.2",
            ]
            try await withCluster(names: ["A", "B"], extraArguments: arguments) { cluster in
                let a = try KVClient(node: cluster.urls["A"]!, timeout: .seconds(5), token: "client-secret")
                let b = try KVClient(node: cluster.urls["B"]!, timeout: .seconds(5), token: "client-secret")
                defer { Task { await a.close(); await b.close() } }

                _ = try await a.put("x", value: Array("1".utf8))
                try await poll("x to reach B") {
                    try await b.get("x") == nil ? "not yet" : nil
                }
                // Only A's anti-entropy asks B for /digest; B counts the answers by status.
                try await poll("A's anti-entropy to read B's digest") {
                    let metrics = String(decoding: try await b.send("GET", "/metrics").body, as: UTF8.self)
                    let digestLines = metrics.split(separator: "\n").filter {
                        $0.hasPrefix("kv_http_requests_total") && $0.contains(#"route="/digest""#)
                    }
                    return digestLines.contains { $0.contains(#"status="200""#) } ? nil : "\(digestLines)"
                }
                let metrics = String(decoding: try await b.send("GET", "/metrics").body, as: UTF8.self)
                #expect(!metrics.split(separator: "\n").contains { $0.contains(#"route="/digest""#) && $0.contains(#"status="401""#) })
                // A may have greeted B before B listened; its link is up once B greets A.
                try await poll("A to see B reachable") {
                    let peer = try #require(try await a.status().peers.first)
                    #expect(!(peer.lastError ?? "").contains("401"), "\(peer.lastError ?? "")")
                    return peer.reachable ? nil : (peer.lastError ?? "unreachable")
                }
            }
        }
    }
}
