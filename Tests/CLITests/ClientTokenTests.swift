import Foundation
import KVClient
import KVCore
import NodeHTTP
import Testing
import TestSupport

/// `kvnode --client-token-file` and `kv --token-file` / `KV_TOKEN`, with real processes.
@Suite("client token")
struct ClientTokenTests {
    static let secret = "client-secret-42"

    /// Writes `contents` to `name` in `directory` with `mode`; returns its path.
    private func tokenFile(_ directory: URL, _ name: String = "client-token", contents: String = secret + "\n", mode: Int = 0o600) throws -> String {
        let path = directory.appendingPathComponent(name).path
        try #require(FileManager.default.createFile(atPath: path, contents: Data(contents.utf8), attributes: [.posixPermissions: mode]))
        return path
    }

    /// A kvnode that requires the client token, and the path of its token file; killed on
    /// every path.
    private func withTokenNode(_ body: (NodeProcess, String) async throws -> Void) async throws {
        try await withTemporaryDirectory { directory in
            let token = try tokenFile(directory)
            let node = try await NodeProcess.start(
                ["--id", "A", "--port", "0", "--db", directory.appendingPathComponent("A.db").path, "--client-token-file", token],
                logFile: directory.appendingPathComponent("A.log"))
            defer { node.kill() }
            do {
                try await body(node, token)
            } catch {
                Issue.record("kvnode log:\n\(node.log().suffix(2000))")
                throw error
            }
        }
    }

    @Test func aTokenFileOthersCanReadOrAnEmptyOneStopsTheStart() async throws {
        try await withTemporaryDirectory { directory in
            let arguments = ["--id", "A", "--port", "0", "--db", directory.appendingPathComponent("A.db").path, "--client-token-file"]
            let readable = try tokenFile(directory, "readable", mode: 0o640)
            let refused = try await runCommand(Products.executable("kvnode"), arguments + [readable])
            #expect(refused.status == 1)
            #expect(refused.stderr == "kvnode: cannot start: --client-token-file \(readable) can be read by others (mode 640); run chmod 600 \(readable)\n")

            let empty = try tokenFile(directory, "empty", contents: "\n")
            let emptyRefused = try await runCommand(Products.executable("kvnode"), arguments + [empty])
            #expect(emptyRefused.status == 1)
            #expect(emptyRefused.stderr.contains("--client-token-file \(empty) is empty"), "\(emptyRefused.stderr)")
            #expect(!FileManager.default.fileExists(atPath: directory.appendingPathComponent("A.db").path), "refused before the database is made")
        }
    }

    @Test func withoutTheRightTokenEveryRouteButHealthIs401AndNothingIsStored() async throws {
        try await withTokenNode { node, _ in
            let anonymous = try KVClient(node: node.url)
            let wrong = try KVClient(node: node.url, token: "client-secret-4")
            let right = try KVClient(node: node.url, token: Self.secret)
            defer { Task { for client in [anonymous, wrong, right] { await client.close() } } }

            for client in [anonymous, wrong] {
                let put = try await client.send("PUT", "/kv/x", body: Array("stolen".utf8))
                #expect(put.status == 401)
                #expect(put.headers.contains { $0.0.lowercased() == "www-authenticate" && $0.1 == "Bearer" })
                #expect(try JSONDecoder().decode(ErrorBody.self, from: Data(put.body)).error == "unauthorized")
                #expect(try await client.send("DELETE", "/kv/y").status == 401)
                for path in ["/kv/x", "/kv", "/status", "/metrics", "/digest", "/digest?bucket=00", "/no-such-route"] {
                    #expect(try await client.send("GET", path).status == 401, "GET \(path)")
                }
                #expect(try await client.send("POST", "/kv").status == 401, "the token comes before the method check")
                await #expect(throws: KVClientError.self) {
                    for try await _ in client.watch(after: 0) {}
                }
                #expect(try await client.send("GET", "/health").status == 200, "health stays open for load balancers")
            }
            let basic = try await anonymous.send("GET", "/status", headers: [("Authorization", "Basic " + Data("a:\(Self.secret)".utf8).base64EncodedString())])
            #expect(basic.status == 401)
            let bare = try await anonymous.send("GET", "/status", headers: [("Authorization", Self.secret)])
            #expect(bare.status == 401, "the scheme is part of the header")

            // Nothing the refused requests sent was stored.
            #expect(try await right.get("x") == nil)
            let status = try await right.status()
            #expect(status.seq == 0 && status.keys == 0 && status.clientWrites == 0)
            #expect(try await right.digest().rows == 0)

            // The right token works everywhere.
            _ = try await right.put("x", value: Array("mine".utf8))
            #expect(try await right.get("x")?.value == Array("mine".utf8))
            #expect(try await right.list().keys.map(\.key) == ["x"])
            for try await change in right.watch(after: 0) {
                #expect(change.event.key == "x")
                break
            }
            #expect(try await right.send("GET", "/metrics").status == 200)
        }
    }

    @Test func kvSendsTheTokenFromTokenFileOrKVToken() async throws {
        try await withTokenNode { node, token in
            let url = node.url
            let refused = try await kv("--node", url, "put", "k", "v")
            #expect(refused.status == 2)
            #expect(refused.stderr == "kv: node refused the request: 401 unauthorized: missing or wrong client token; pass --token-file PATH or set KV_TOKEN\n")
            let wrongEnvironment = try await kv("--node", url, "get", "k", environment: ["KV_TOKEN": "guess"])
            #expect(wrongEnvironment.status == 2)
            #expect(wrongEnvironment.stderrLines.count == 1)

            // --token-file before or after the subcommand, or KV_TOKEN.
            #expect(try await kv("--node", url, "--token-file", token, "put", "k", "v").status == 0)
            let got = try await kv("get", "k", "--node", url, "--token-file", token)
            #expect(got.status == 0 && got.stdoutText == "v", "\(got.stderr)")
            let tokenEnvironment = ["KV_TOKEN": Self.secret]
            let viaEnvironment = try await kv("--node", url, "get", "k", environment: tokenEnvironment)
            #expect(viaEnvironment.status == 0 && viaEnvironment.stdoutText == "v", "\(viaEnvironment.stderr)")
            let listed = try await kv(["--node", url, "list"], environment: tokenEnvironment)
            #expect(listed.status == 0 && listed.stdoutText.split(separator: "\n").contains { $0.hasPrefix("k ") }, "\(listed.stdoutText)")
            #expect(try await kv(["--node", url, "status", "--json"], environment: tokenEnvironment).status == 0)
            let watched = try await kv(["--node", url, "watch", "--after", "0", "--count", "1"], environment: tokenEnvironment, timeout: .seconds(30))
            #expect(watched.status == 0 && watched.stdoutText.contains("k  put"), "\(watched.stderr)")
            let survey = try await kv(["cluster", "status", "--node", url], environment: tokenEnvironment)
            #expect(survey.status == 0, "\(survey.stdoutText) \(survey.stderr)")
            #expect(try await kv(["cluster", "verify", "--node", url], environment: tokenEnvironment).status == 0)
            #expect(try await kv(["cluster", "status", "--node", url]).status == 2, "without the token the survey is refused")
            let bench = try await kv(
                ["bench", "put", "--node", url, "--clients", "1", "--duration", "0.2", "--keys", "3"],
                environment: tokenEnvironment, timeout: .seconds(60))
            #expect(bench.status == 0, "\(bench.stderr)")
            #expect(try await kv(["--node", url, "delete", "k", "--token-file", token]).status == 0)

            let missing = try await kv("--node", url, "--token-file", token + ".missing", "status")
            #expect(missing.status == 64)
            #expect(missing.stderrLines.count == 1 && missing.stderr.contains("cannot read --token-file"), "\(missing.stderr)")
        }
    }
}
