import Foundation
import KVClient
import KVCore
import Testing
import TestSupport

/// Real intruder nodes against a cluster that runs with a token: nothing gets in, nothing out.
@Suite("Intruders", .serialized)
struct IntruderTests {
    @Test func aNodeWithoutTheTokenOrWithAnUnknownIdGetsNothingInAndNothingOut() async throws {
        try await withTemporaryDirectory { directory in
            let token = directory.appendingPathComponent("token")
            #expect(FileManager.default.createFile(
                atPath: token.path, contents: Data("the-cluster-secret\n".utf8), attributes: [.posixPermissions: 0o600]))
            let wrongToken = directory.appendingPathComponent("wrong-token")
            #expect(FileManager.default.createFile(
                atPath: wrongToken.path, contents: Data("a-guess\n".utf8), attributes: [.posixPermissions: 0o600]))
            try await withCluster(extraArguments: ["--cluster-token-file", token.path, "--anti-entropy-interval", "0.3"]) { cluster in
                _ = try await cluster.client("A").put("secret", value: Array("cluster data".utf8))
                try await cluster.waitForConvergence()

                // Mallory claims to be B without the token; Eve has the token but an id no node knows.
                let intruders = [
                    ("mallory", ["--id", "B", "--cluster-token-file", wrongToken.path]),
                    ("eve", ["--id", "M", "--cluster-token-file", token.path]),
                ]
                var started: [NodeProcess] = []
                for (name, identity) in intruders {
                    let arguments = identity + [
                        "--port", "0", "--db", directory.appendingPathComponent("\(name).db").path,
                        "--anti-entropy-interval", "0.3",
                        "--peer", "A=\(cluster.urls["A"]!)", "--peer", "C=\(cluster.urls["C"]!)",
                    ]
                    let node = try await NodeProcess.start(arguments, logFile: directory.appendingPathComponent("\(name).log"))
                    started.append(node)
                    let client = try KVClient(node: node.url)
                    _ = try await client.put("evil-\(name)", value: [6, 6, 6])
                    await client.close()
                }
                defer { for node in started { node.kill() } }

                // The intruders try for a while (pushes, pulls, hellos, several anti-entropy rounds)…
                try await poll("both intruders to have been refused by A") {
                    let refusals = started.map { $0.log() }.filter { $0.contains("401") || $0.contains("403") }
                    return refusals.count == started.count ? nil : "\(refusals.count) of \(started.count) refused so far"
                }
                // …and got nothing in: no node holds their keys…
                for node in cluster.names {
                    let keys = try await cluster.rows(node).map(\.key)
                    #expect(!keys.contains { $0.hasPrefix("evil-") }, "\(node) holds \(keys)")
                }
                // …and nothing out: they never received the cluster's data.
                for node in started {
                    let client = try KVClient(node: node.url)
                    #expect(try await client.get("secret") == nil)
                    await client.close()
                }
                #expect(started[0].log().contains("401"), "the wrong token is refused with 401")
                #expect(started[1].log().contains("403"), "the unknown id is refused with 403")
            }
        }
    }
}
