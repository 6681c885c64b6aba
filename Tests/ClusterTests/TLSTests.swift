import Foundation
import KVClient
import KVCore
import NodeHTTP
import Testing
import TestSupport

/// Real `kvnode` processes serving HTTPS with certificates the test makes with `openssl`: they
/// replicate, `kv` reads through them with the CA, and nothing without the CA, over plain HTTP
/// or with a certificate from another CA gets through.
@Suite("TLS", .serialized)
struct TLSTests {
    /// The files of one TLS test: a cluster CA and a node certificate for 127.0.0.1 and
    /// localhost, a foreign CA with a certificate of its own, and a cluster token.
    struct Files {
        let directory: URL
        let ca: TestCertificateAuthority
        let node: (certificate: String, key: String)
        let foreignCA: TestCertificateAuthority
        let foreignNode: (certificate: String, key: String)
        let token: String

        static func make(in directory: URL) async throws -> Files {
            let ca = try await TestCertificateAuthority.make("cluster", in: directory)
            let foreignCA = try await TestCertificateAuthority.make("foreign", in: directory)
            let token = directory.appendingPathComponent("token").path
            #expect(FileManager.default.createFile(
                atPath: token, contents: Data("tls-cluster-secret\n".utf8), attributes: [.posixPermissions: 0o600]))
            return Files(
                directory: directory, ca: ca, node: try await ca.issue("node"),
                foreignCA: foreignCA, foreignNode: try await foreignCA.issue("stranger"), token: token)
        }

        /// The flags of a node of the cluster: its certificate, key, the cluster's CA and token.
        var clusterFlags: [String] {
            ["--tls-cert", node.certificate, "--tls-key", node.key, "--tls-ca-file", ca.certificate, "--cluster-token-file", token]
        }

        func path(_ name: String) -> String { directory.appendingPathComponent(name).path }
    }

    /// Starts nodes `names` as peers of each other on https URLs, each with `flags(name)`.
    private func startNodes(
        _ names: [String], files: Files, peers extraPeers: [String: String] = [:], flags: (String) -> [String]
    ) async throws -> (nodes: [String: NodeProcess], urls: [String: String]) {
        // Below the ephemeral range, so the many outgoing connections of the tests running
        // beside this one cannot take a port between this choice and the node's bind.
        let base = try unusedLocalPortRange(count: names.count)
        var urls: [String: String] = [:]
        for (offset, name) in names.enumerated() { urls[name] = "https://127.0.0.1:\(base + offset)" }
        let peerURLs = urls.merging(extraPeers) { $1 }
        var nodes: [String: NodeProcess] = [:]
        do {
            for name in names {
                let port = String(urls[name]!.split(separator: ":").last!)  // made above
                var arguments = ["--id", name, "--port", port, "--db", files.path("\(name).db"), "--anti-entropy-interval", "0.3"]
                for (peer, url) in peerURLs.sorted(by: { $0.key < $1.key }) where peer != name {
                    arguments += ["--peer", "\(peer)=\(url)"]
                }
                nodes[name] = try await NodeProcess.start(arguments + flags(name), logFile: URL(fileURLWithPath: files.path("\(name).log")))
            }
        } catch {
            for node in nodes.values { node.kill() }
            throw error
        }
        return (nodes, urls)
    }

    private func kv(_ arguments: [String], environment: [String: String] = [:]) async throws -> CommandResult {
        try await runCommand(
            Products.executable("kv"), arguments,
            environment: ["KV_NODE": "", "KV_TLS_CA_FILE": ""].merging(environment) { $1 }, timeout: .seconds(60))
    }

    @Test func threeTLSNodesWithATokenReplicateAndKVReadsThroughTheCA() async throws {
        try await withTemporaryDirectory { directory in
            let files = try await Files.make(in: directory)
            let (nodes, urls) = try await startNodes(["A", "B", "C"], files: files) { _ in files.clusterFlags }
            defer { for node in nodes.values { node.kill() } }
            #expect(nodes.values.allSatisfy { $0.url.hasPrefix("https://127.0.0.1:") })

            let tls = try ClientTLS(caFile: files.ca.certificate)
            let a = try KVClient(node: urls["A"]!, timeout: .seconds(10), tls: tls)
            defer { Task { await a.close() } }
            let written = try await a.put("x", value: Array("over tls".utf8))

            // Replicated to C over HTTPS, with the token and the nodes' certificates.
            let c = try KVClient(node: urls["C"]!, timeout: .seconds(10), tls: tls)
            defer { Task { await c.close() } }
            try await poll("x to reach C") {
                let stored = try await c.get("x")
                return stored?.lamport == written.lamport ? nil : "C has \(String(describing: stored))"
            }
            // Every node reaches its peers: no link failed for TLS.
            try await poll("every node to reach its peers") {
                for name in ["A", "B", "C"] {
                    let client = try KVClient(node: urls[name]!, timeout: .seconds(10), tls: tls)
                    let status = try await client.status()
                    await client.close()
                    if !status.peers.allSatisfy(\.reachable) { return "\(name): \(status.peers.map { "\($0.id) \($0.lastError ?? "ok")" })" }
                }
                return nil
            }

            // kv reads it from B with --tls-ca-file, and with $KV_TLS_CA_FILE.
            let withFlag = try await kv(["--tls-ca-file", files.ca.certificate, "--node", urls["B"]!, "get", "x"])
            #expect(withFlag.status == 0, "stderr: \(withFlag.stderr)")
            #expect(withFlag.stdoutText == "over tls")
            let withEnvironment = try await kv(["--node", urls["B"]!, "get", "x"], environment: ["KV_TLS_CA_FILE": files.ca.certificate])
            #expect(withEnvironment.status == 0, "stderr: \(withEnvironment.stderr)")
            #expect(withEnvironment.stdoutText == "over tls")
            let verify = try await kv(
                ["--tls-ca-file", files.ca.certificate, "cluster", "verify"] + ["A", "B", "C"].flatMap { ["--node", urls[$0]!] })
            #expect(verify.status == 0, "stdout: \(verify.stdoutText) stderr: \(verify.stderr)")

            // A watch over TLS sees the next write.
            let watch = try await kv(
                ["--tls-ca-file", files.ca.certificate, "--node", urls["C"]!, "watch", "--after", "0", "--count", "1"])
            #expect(watch.status == 0, "stderr: \(watch.stderr)")
            #expect(watch.stdoutText.contains("x"), "stdout: \(watch.stdoutText)")
        }
    }

    @Test func badTLSFlagsStopStartUpWithOneLine() async throws {
        try await withTemporaryDirectory { directory in
            let files = try await Files.make(in: directory)
            let notPEM = files.path("not-pem")
            #expect(FileManager.default.createFile(atPath: notPEM, contents: Data("hello\n".utf8), attributes: [.posixPermissions: 0o600]))
            let openKey = files.path("open.key")
            try FileManager.default.copyItem(atPath: files.node.key, toPath: openKey)
            try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: openKey)
            let (cert, key) = files.node
            let cases: [(flags: [String], status: Int32, says: String)] = [
                (["--tls-cert", cert], 64, "--tls-cert needs --tls-key"),
                (["--tls-key", key], 64, "--tls-key needs --tls-cert"),
                (["--tls-cert", files.path("missing.pem"), "--tls-key", key], 1, "--tls-cert \(files.path("missing.pem")): no such file"),
                (["--tls-cert", notPEM, "--tls-key", key], 1, "holds no PEM certificate"),
                (["--tls-cert", cert, "--tls-key", notPEM], 1, "is not an unencrypted PEM private key"),
                (["--tls-cert", cert, "--tls-key", openKey], 1, "chmod 600"),
                (["--tls-cert", cert, "--tls-key", files.foreignNode.key], 1, "is not the key of the certificate"),
                (["--tls-cert", cert, "--tls-key", key, "--tls-ca-file", notPEM], 1, "--tls-ca-file \(notPEM) holds no PEM certificate"),
            ]
            for (flags, status, says) in cases {
                let database = files.path("refused.db")
                let result = try await runCommand(
                    Products.executable("kvnode"), ["--id", "A", "--port", "0", "--db", database] + flags, timeout: .seconds(30))
                #expect(result.status == status, "\(flags): stderr: \(result.stderr)")
                #expect(result.stderr.split(separator: "\n").count == 1, "\(flags): stderr: \(result.stderr)")
                #expect(result.stderr.contains(says), "\(flags): stderr: \(result.stderr)")
                #expect(!FileManager.default.fileExists(atPath: database), "\(flags) created the database")
            }
        }
    }

    @Test func plainHTTPToTheTLSPortGetsNothing() async throws {
        try await withTemporaryDirectory { directory in
            let files = try await Files.make(in: directory)
            let (nodes, urls) = try await startNodes(["A"], files: files) { _ in files.clusterFlags }
            defer { for node in nodes.values { node.kill() } }
            let plainURL = "http://" + urls["A"]!.dropFirst("https://".count)
            let plain = try KVClient(node: plainURL, timeout: .seconds(5))
            await #expect {
                _ = try await plain.put("sneaky", value: [1])
            } throws: { error in
                [.unreachable, .badResponse].contains((error as? KVClientError)?.kind)
            }
            await plain.close()
            let result = try await kv(["--node", plainURL, "get", "x"])
            #expect(result.status == 2, "stderr: \(result.stderr)")
            // Nothing was stored.
            let client = try KVClient(node: urls["A"]!, tls: try ClientTLS(caFile: files.ca.certificate))
            #expect(try await client.get("sneaky") == nil)
            await client.close()
        }
    }

    @Test func aClientWithoutTheCAOrWithAnotherCAIsRefusedWithOneLine() async throws {
        try await withTemporaryDirectory { directory in
            let files = try await Files.make(in: directory)
            let (nodes, urls) = try await startNodes(["A"], files: files) { _ in files.clusterFlags }
            defer { for node in nodes.values { node.kill() } }
            for caFlags in [[], ["--tls-ca-file", files.foreignCA.certificate]] {
                let result = try await kv(caFlags + ["--node", urls["A"]!, "put", "k", "v"])
                #expect(result.status == 2, "with \(caFlags): stderr: \(result.stderr)")
                #expect(result.stderr.split(separator: "\n").count == 1, "with \(caFlags): stderr: \(result.stderr)")
                #expect(result.stderr.contains("certificate is not signed by a CA"), "stderr: \(result.stderr)")
                #expect(result.stderr.contains("--tls-ca-file"), "stderr: \(result.stderr)")
                #expect(result.stdout.isEmpty)
            }
            // A certificate for another name: the host must be one the certificate lists.
            let elsewhere = try await files.ca.issue("elsewhere", names: ["DNS:elsewhere.example"])
            let (others, otherURLs) = try await startNodes(["B"], files: files) { _ in
                ["--tls-cert", elsewhere.certificate, "--tls-key", elsewhere.key]
            }
            defer { for node in others.values { node.kill() } }
            let wrongHost = try await kv(["--tls-ca-file", files.ca.certificate, "--node", otherURLs["B"]!, "get", "k"])
            #expect(wrongHost.status == 2, "stderr: \(wrongHost.stderr)")
            #expect(wrongHost.stderr.split(separator: "\n").count == 1, "stderr: \(wrongHost.stderr)")
            #expect(wrongHost.stderr.contains("subjectAltName"), "stderr: \(wrongHost.stderr)")
            // The node stored nothing from any of them.
            let client = try KVClient(node: urls["A"]!, tls: try ClientTLS(caFile: files.ca.certificate))
            #expect(try await client.get("k") == nil)
            await client.close()
        }
    }

    /// Joining a TLS cluster takes the token and a certificate from the cluster's CA: a node with
    /// the token and the cluster's CA to trust, but its own certificate from another CA, is not
    /// added; with a certificate of the cluster's CA it is.
    @Test func aNodeWithACertificateFromAnotherCACannotJoin() async throws {
        try await withTemporaryDirectory { directory in
            let files = try await Files.make(in: directory)
            let (nodes, urls) = try await startNodes(["A", "B"], files: files) { _ in files.clusterFlags }
            defer { for node in nodes.values { node.kill() } }
            let port = try unusedLocalPortRange(count: 1)
            let stranger = try await runCommand(
                Products.executable("kvnode"),
                [
                    "--id", "S", "--port", String(port), "--db", files.path("S.db"), "--join", urls["A"]!,
                    "--tls-cert", files.foreignNode.certificate, "--tls-key", files.foreignNode.key,
                    "--tls-ca-file", files.ca.certificate, "--cluster-token-file", files.token, "--join-timeout", "2",
                ],
                timeout: .seconds(60))
            #expect(stranger.status == 1)
            #expect(stranger.stderr.contains("cannot join the cluster"), "\(stranger.stderr)")
            print("the stranger's last line: \(stranger.stderr.split(separator: "\n").last ?? "")")
            let tls = try ClientTLS(caFile: files.ca.certificate)
            let a = try KVClient(node: urls["A"]!, timeout: .seconds(10), tls: tls)
            defer { Task { await a.close() } }
            #expect(try await a.members().members.map(\.id) == ["A", "B"], "the stranger was not added")

            let joined = try await NodeProcess.start(
                ["--id", "D", "--port", String(port), "--db", files.path("D.db"), "--join", urls["A"]!, "--anti-entropy-interval", "0.3"]
                    + files.clusterFlags,
                logFile: URL(fileURLWithPath: files.path("D.log")))
            defer { joined.kill() }
            _ = try await a.put("x", value: Array("to the new member".utf8))
            let d = try KVClient(node: joined.url, timeout: .seconds(10), tls: tls)
            defer { Task { await d.close() } }
            try await poll("x to reach D over TLS") { try await d.get("x") == nil ? "not yet" : nil }
            #expect(try await a.members().members.map(\.id) == ["A", "B", "D"])
        }
    }

    /// The intruder knows the token and claims C, an id the cluster expects, and even trusts the
    /// cluster's CA: only its certificate is wrong (a foreign CA's), or missing.
    @Test(arguments: ["foreign certificate", "no certificate"])
    func anIntruderWithoutACertificateOfTheClusterCAGetsNothingInOrOut(_ kind: String) async throws {
        try await withTemporaryDirectory { directory in
            let files = try await Files.make(in: directory)
            let intruderURL = "https://127.0.0.1:\(try unusedLocalPortRange(count: 1))"
            let (nodes, urls) = try await startNodes(["A", "B"], files: files, peers: ["C": intruderURL]) { _ in files.clusterFlags }
            defer { for node in nodes.values { node.kill() } }
            let tls = try ClientTLS(caFile: files.ca.certificate)
            let a = try KVClient(node: urls["A"]!, timeout: .seconds(10), tls: tls)
            defer { Task { await a.close() } }
            _ = try await a.put("secret", value: Array("cluster data".utf8))

            let identity = kind == "foreign certificate"
                ? ["--tls-cert", files.foreignNode.certificate, "--tls-key", files.foreignNode.key]
                : []
            let port = String(intruderURL.split(separator: ":").last!)  // made above
            var arguments = ["--id", "C", "--port", port, "--db", files.path("intruder.db"), "--anti-entropy-interval", "0.3"]
            arguments += ["--peer", "A=\(urls["A"]!)", "--peer", "B=\(urls["B"]!)"]
            arguments += identity + ["--tls-ca-file", files.ca.certificate, "--cluster-token-file", files.token]
            let intruder = try await NodeProcess.start(arguments, logFile: URL(fileURLWithPath: files.path("intruder.log")))
            defer { intruder.kill() }
            let intruderClient = try KVClient(
                node: intruder.url, timeout: .seconds(10), tls: kind == "foreign certificate" ? try ClientTLS(caFile: files.foreignCA.certificate) : nil)
            defer { Task { await intruderClient.close() } }
            _ = try await intruderClient.put("evil", value: [6, 6, 6])

            // The intruder tries (hello, push, pull, several anti-entropy rounds) and is refused…
            let refusal = kind == "foreign certificate" ? "refused the certificate" : "client certificate"
            try await poll("the intruder to be refused by both nodes") {
                let log = intruder.log()
                return log.contains(refusal) ? nil : "intruder log so far: \(log.suffix(600))"
            }
            // …gets nothing in…
            for name in ["A", "B"] {
                let client = try KVClient(node: urls[name]!, timeout: .seconds(10), tls: tls)
                #expect(try await client.get("evil") == nil, "\(name) holds the intruder's key")
                await client.close()
            }
            // …and nothing out. (A foreign certificate also fails A's and B's checks when they
            // push to C's URL; a node without one serves plain HTTP, which they refuse to speak.)
            #expect(try await intruderClient.get("secret") == nil)
        }
    }
}
