import Foundation
import KVCore
import Testing
import TestSupport

/// `kv cluster …` and `kv watch` driven as a user would, against real `kvnode`s that
/// `kv cluster up` starts in a temporary directory on a free port range.
@Suite("kv cluster and kv watch", .serialized)
struct ClusterCommandTests {
    @Test("up, ps, kill, status, start, stop and down: output and exit codes")
    func lifecycle() async throws {
        try await withKVCluster { cluster in
            // up printed one line per node, and a second up refuses.
            #expect(cluster.upLines.count == 3)
            for (line, name) in zip(cluster.upLines, ["A", "B", "C"]) {
                #expect(line.hasPrefix("\(name)  \(cluster.url(name))  pid "), "\(cluster.upLines)")
            }
            let again = try await cluster.kv("cluster", "up", "--base-port", String(cluster.basePort))
            #expect(again.status == 1)
            #expect(again.stdout.isEmpty)
            #expect(again.stderrLines.count == 1)
            #expect(again.stderr.contains("is already up"), "\(again.stderr)")

            // No node holds this test's pipes (or any pipe) open: only /dev/null and its files.
            for name in ["A", "B", "C"] {
                let pid = try #require(cluster.upPIDs[name])
                let targets = try FileManager.default.contentsOfDirectory(atPath: "/proc/\(pid)/fd").map {
                    (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/\(pid)/fd/\($0)")) ?? "?"
                }
                #expect(!targets.contains { $0.hasPrefix("pipe:") }, "\(name)'s descriptors: \(targets)")
                #expect(targets.contains("/dev/null"))
                #expect(targets.contains { $0.hasSuffix("/\(name).log") })
            }

            let ps = try await cluster.kv("cluster", "ps")
            #expect(ps.status == 0)
            #expect(ps.lines == [["NODE", "URL", "STATE", "PID"]] + ["A", "B", "C"].map {
                [$0, cluster.url($0), "up", String(cluster.upPIDs[$0] ?? 0)]
            })

            let put = try await cluster.kv("--node", cluster.url("A"), "put", "x", "1")
            #expect(put.status == 0, "\(put.stderr)")
            let converged = try await cluster.waitForStatus(0)
            #expect(converged.stdoutLines.last == "converged: 3/3 nodes hold the same 1 key")
            let table = converged.lines.dropLast()
            #expect(table.first == ["NODE", "URL", "STATE", "KEYS", "LAMPORT", "SEQ", "LAG", "DIGEST"])
            #expect(table.dropFirst().map { $0.first } == ["A", "B", "C"])
            #expect(table.dropFirst().allSatisfy { $0[2] == "up" && $0[3] == "1" })
            #expect(Set(table.dropFirst().map { $0.last }).count == 1)
            // LAG: rows each peer has not acknowledged yet, as PEER:ROWS.
            #expect(table.dropFirst().map { [$0[6].prefix(2), $0[7].prefix(2)] } == [["B:", "C:"], ["A:", "C:"], ["A:", "B:"]])

            // --watch redraws every second; on a pipe, rounds are separated by a blank line and
            // no screen-clearing escape is written.
            let watched = try await cluster.kv(["cluster", "status", "--watch", "--count", "2"], timeout: .seconds(60))
            #expect(watched.status == 0, "\(watched.stderr)")
            #expect(watched.stdoutLines.count == 11 && watched.stdoutLines[5].isEmpty, "\(watched.stdoutText)")
            #expect(watched.stdoutLines.filter { $0.hasPrefix("converged: ") }.count == 2)
            #expect(!watched.stdoutText.contains("\u{1B}"))

            // Kill C: ps and status see it down; status exits 2 naming it.
            let cPID = try #require(cluster.upPIDs["C"])
            let kill = try await cluster.kv("cluster", "kill", "C")
            #expect(kill.status == 0, "\(kill.stderr)")
            #expect(kill.stdoutText == "C killed (pid \(cPID))\n")
            let commandLine = FileManager.default.contents(atPath: "/proc/\(cPID)/cmdline") ?? Data()
            #expect(commandLine.isEmpty, "the killed node is gone (at most a zombie)")
            let psAfterKill = try await cluster.kv("cluster", "ps")
            #expect(psAfterKill.lines.last == ["C", cluster.url("C"), "down", "-"])
            let killAgain = try await cluster.kv("cluster", "kill", "C")
            #expect(killAgain.status == 1)
            #expect(killAgain.stderr == "kv: node C is not running\n")

            let down = try await cluster.kv("cluster", "status")
            #expect(down.status == 2, "\(down.stdoutText)")
            #expect(down.lines[3] == ["C", cluster.url("C"), "down", "-", "-", "-", "-", "-"])
            #expect(
                down.stdoutLines.last
                    == "C is unreachable (cannot reach node at \(cluster.url("C")): connection refused)")

            // A write while C is down; C catches up when started again.
            let missed = try await cluster.kv("--node", cluster.url("B"), "put", "k", "10")
            #expect(missed.status == 0)
            let start = try await cluster.kv("cluster", "start", "C")
            #expect(start.status == 0, "\(start.stderr)")
            #expect(start.stdoutText.hasPrefix("C  \(cluster.url("C"))  pid "))
            let startAgain = try await cluster.kv("cluster", "start", "c")
            #expect(startAgain.status == 1)
            #expect(startAgain.stderr.hasPrefix("kv: node C is already running (pid "), "\(startAgain.stderr)")
            let caughtUp = try await cluster.waitForStatus(0)
            #expect(caughtUp.stdoutLines.last == "converged: 3/3 nodes hold the same 2 keys")

            let unknown = try await cluster.kv("cluster", "stop", "X")
            #expect(unknown.status == 64)
            #expect(unknown.stderr == "kv: unknown node 'X': the cluster in \(cluster.directory) has A, B, C\n")

            let stop = try await cluster.kv("cluster", "stop", "B")
            #expect(stop.status == 0, "\(stop.stderr)")
            #expect(stop.stdoutText == "B stopped (pid \(cluster.upPIDs["B"] ?? 0))\n")
            #expect(try cluster.log("B").contains("database closed"), "a SIGTERM stop is graceful")

            let downAll = try await cluster.kv("cluster", "down")
            #expect(downAll.status == 0, "\(downAll.stderr)")
            #expect(downAll.stdoutLines.map { String($0.prefix(10)) } == ["A stopped ", "C stopped "])
            let psDown = try await cluster.kv("cluster", "ps")
            #expect(psDown.lines.dropFirst().map { $0[2] } == ["down", "down", "down"])
            let downAgain = try await cluster.kv("cluster", "down")
            #expect(downAgain.stdoutText == "no node was running\n")
        }
    }

    @Test("a recorded pid that is gone or belongs to another program counts as down")
    func stalePID() async throws {
        try await withKVCluster(nodes: 1) { cluster in
            let stop = try await cluster.kv("cluster", "stop", "A")
            #expect(stop.status == 0, "\(stop.stderr)")
            // Point A's record at a live process that is not kvnode: this test runner.
            var manifest = try cluster.manifest()
            var nodes = try #require(manifest["nodes"] as? [[String: Any]])
            nodes[0]["pid"] = Int(ProcessInfo.processInfo.processIdentifier)
            manifest["nodes"] = nodes
            try JSONSerialization.data(withJSONObject: manifest).write(to: cluster.manifestURL)

            let ps = try await cluster.kv("cluster", "ps")
            #expect(ps.lines.last == ["A", cluster.url("A"), "down", "-"])
            let stopAgain = try await cluster.kv("cluster", "stop", "A")
            #expect(stopAgain.status == 1)
            #expect(stopAgain.stderr == "kv: node A is not running\n")
            let start = try await cluster.kv("cluster", "start", "A")
            #expect(start.status == 0, "\(start.stderr)")
            let up = try await cluster.kv("cluster", "ps")
            #expect(up.lines.last?[2] == "up")
        }
    }

    @Test("a node that dies at start: up exits 1 with its log's end and leaves nothing running")
    func nodeDiesAtStart() async throws {
        try await withTemporaryDirectoryPath { directory in
            // An unknown kvnode flag makes every node exit at once.
            let base = try unusedLocalPortRange(count: 2)
            let result = try await kv(
                ["cluster", "up", "--nodes", "2", "--data", directory, "--base-port", String(base), "--", "--no-such-flag"],
                timeout: .seconds(60))
            #expect(result.status == 1)
            #expect(result.stdout.isEmpty)
            let first = try #require(result.stderrLines.first)
            let named = ["A", "B"].filter {
                first.hasPrefix("kv: node \($0) exited with status 64 as it started; the end of \(directory)/\($0).log:")
            }
            #expect(named.count == 1, "\(result.stderr)")
            #expect(result.stderr.contains("no-such-flag"), "the log's tail follows: \(result.stderr)")
            let ps = try await kv(["cluster", "ps", "--data", directory])
            #expect(ps.lines.dropFirst().map { $0[2] } == ["down", "down"])
        }
    }

    @Test("verify names the keys changed behind a node's back, with what each node holds")
    func verifyFindsDifferences() async throws {
        // Digest repair runs every anti-entropy interval: an hour keeps the difference in place.
        try await withKVCluster(nodeArguments: ["--anti-entropy-interval", "3600"]) { cluster in
            var versions: [String: String] = [:]
            for index in 1...6 {
                let put = try await cluster.kv("--node", cluster.url("A"), "put", "k\(index)", "value \(index)")
                #expect(put.status == 0, "\(put.stderr)")
                // "put k1 (lamport 1, origin A)" → "1@A"
                let words = put.stdoutText.split(whereSeparator: { " (),\n".contains($0) })
                versions["k\(index)"] = "\(words[3])@\(words[5])"
            }
            // Converged and settled: every peer acknowledged every row (LAG all :0), so no push
            // or pull past a mark can bring back what is changed below.
            _ = try await cluster.waitForStatus(0, settled: true)

            // Behind C's back: k2 gone, k3 at an older version, k4 a tombstone of the same version.
            let stop = try await cluster.kv("cluster", "stop", "C")
            #expect(stop.status == 0, "\(stop.stderr)")
            let edit = try await runCommand(
                URL(fileURLWithPath: "/usr/bin/sqlite3"),
                [cluster.directory + "/C.db",
                 "DELETE FROM kv WHERE key = 'k2'; UPDATE kv SET lamport = 1 WHERE key = 'k3'; "
                    + "UPDATE kv SET value = NULL, deleted = 1 WHERE key = 'k4'"])
            #expect(edit.status == 0, "\(edit.stderr)")
            let start = try await cluster.kv("cluster", "start", "C")
            #expect(start.status == 0, "\(start.stderr)")

            let status = try await cluster.kv("cluster", "status")
            #expect(status.status == 1, "\(status.stdoutText)")
            let verdict = try #require(status.stdoutLines.last)
            #expect(verdict.hasPrefix("not converged: C differs (digest "), "\(verdict)")
            #expect(verdict.hasSuffix("; A and B hold \(status.lines[1].last ?? "?"))"), "\(verdict)")

            let verify = try await cluster.kv("cluster", "verify")
            #expect(verify.status == 1, "\(verify.stdoutText)")
            #expect(verify.stderr.isEmpty)
            let lines = verify.stdoutLines
            #expect(lines.last == verdict)
            let rows = verify.lines
            #expect(rows.first == ["KEY", "A", "B", "C"])
            let k2 = try #require(versions["k2"]), k3 = try #require(versions["k3"]), k4 = try #require(versions["k4"])
            #expect(Array(rows.dropFirst().prefix(3)) == [
                ["k2", k2, k2, "missing"],
                ["k3", k3, k3, "1@A"],
                ["k4", k4, k4, "deleted", k4],
            ], "\(verify.stdoutText)")
            #expect(lines.dropLast().last?.hasPrefix("3 keys differ in ") == true, "\(verify.stdoutText)")

            // Nodes given by URL: A and B agree.
            let pair = try await cluster.kv("cluster", "verify", "--node", cluster.url("A"), "--node", cluster.url("B"))
            #expect(pair.status == 0, "\(pair.stdoutText)")
            #expect(pair.stdoutText == "converged: 2/2 nodes hold the same 6 keys\n")
        }
    }

    @Test("watch --after 0 prints puts and deletes in seq order; a live watch sees new changes")
    func watch() async throws {
        try await withKVCluster(nodes: 1) { cluster in
            let node = cluster.url("A")
            // Distinct keys, so every change stays in the feed at its own seq.
            let writes: [[String]] = [
                ["put", "w/1", "one"], ["put", "w/2", "-"], ["delete", "w/3"], ["put", "other", "x"], ["delete", "w/1"],
            ]
            for write in writes {
                let result = try await cluster.kv(["--node", node] + write, stdin: Data([0, 1, 2, 255]))
                #expect(result.status == 0, "\(result.stderr)")
            }
            let all = try await cluster.kv(["--node", node, "watch", "--after", "0", "--count", "4"], timeout: .seconds(30))
            #expect(all.status == 0, "\(all.stderr)")
            #expect(all.stdoutLines == [
                "2  w/2  put  2@A  <4 bytes>",
                "3  w/3  delete  3@A",
                "4  other  put  4@A  x",
                "5  w/1  delete  5@A",
            ])

            let prefixed = try await cluster.kv(
                ["--node", node, "watch", "--prefix", "w/", "--after", "3", "--count", "1", "--json"], timeout: .seconds(30))
            #expect(prefixed.status == 0, "\(prefixed.stderr)")
            let event = try JSONDecoder().decode(WatchEvent.self, from: Data(prefixed.stdoutText.utf8))
            #expect(event == WatchEvent(key: "w/1", value: nil, deleted: true, lamport: 5, origin: "A", seq: 5))

            // Live: the watch waits past the last seq until new changes arrive.
            async let live = cluster.kv(["--node", node, "watch", "--after", "5", "--count", "2"], timeout: .seconds(60))
            for (key, value) in [("live/1", "a"), ("live/2", "b")] {
                let put = try await cluster.kv("--node", node, "put", key, value)
                #expect(put.status == 0)
            }
            let streamed = try await live
            #expect(streamed.status == 0, "\(streamed.stderr)")
            #expect(streamed.stdoutLines == ["6  live/1  put  6@A  a", "7  live/2  put  7@A  b"])
        }
    }

    @Test(
        "bad usage of the new commands exits 64 with one line",
        arguments: [
            ["cluster", "up", "--nodes", "0"], ["cluster", "up", "--nodes", "27"],
            ["cluster", "up", "--base-port", "65535"], ["cluster", "status", "--count", "2"],
            ["cluster", "status", "--watch", "--count", "0"], ["cluster", "stop"], ["cluster", "up", "--wait", "0"],
            ["cluster", "verify", "--node", "https://127.0.0.1:1/x"], ["watch", "--count", "0"], ["watch", "--after", "x"],
        ])
    func usage(arguments: [String]) async throws {
        let result = try await kv(arguments)
        #expect(result.status == 64, "\(result.stderr)")
        #expect(result.stdout.isEmpty)
        #expect(result.stderrLines.count == 1, "\(result.stderr)")
    }

    @Test("add joins a fourth node; status and verify follow the members as one is removed")
    func addAndRemove() async throws {
        try await withKVCluster { cluster in
            #expect(try await cluster.kv("--node", cluster.url("A"), "put", "x", "1").status == 0)
            let added = try await cluster.kv("cluster", "add")
            #expect(added.status == 0, "\(added.stderr)")
            #expect(added.stdoutLines.count == 1 && added.stdoutText.hasPrefix("D  http://127.0.0.1:"), "\(added.stdoutText)")
            let converged = try await cluster.waitForStatus(0)
            #expect(converged.stdoutLines.last == "converged: 4/4 nodes hold the same 1 key", "\(converged.stdoutText)")
            #expect(try await cluster.kv("cluster", "ps").stdoutLines.count == 5)

            // A node given with --node is surveyed alone: the user chose it.
            let onlyB = try await cluster.kv("cluster", "status", "--node", cluster.url("B"))
            #expect(onlyB.stdoutLines.last == "converged: 1/1 nodes hold the same 1 key", "\(onlyB.stdoutText)")

            let removed = try await cluster.kv("--node", cluster.url("A"), "members", "remove", "D")
            #expect(removed.status == 0, "\(removed.stderr)")
            #expect(removed.stdoutLines.contains { $0.hasPrefix("D ") && $0.contains(" removed ") }, "\(removed.stdoutText)")
            #expect(try await cluster.kv("cluster", "stop", "D").status == 0)
            let verified = try await cluster.kv("cluster", "verify")
            #expect(verified.status == 0, "\(verified.stdoutText) \(verified.stderr)")
            #expect(verified.stdoutLines.last?.contains("3/3") == true, "\(verified.stdoutText)")
        }
    }

    @Test("status and verify exit 2 with one verdict line when no node answers")
    func unreachableNodes() async throws {
        let url = "http://127.0.0.1:\(try unusedLocalPort())"
        for command in ["status", "verify"] {
            let result = try await kv(["cluster", command, "--node", url])
            #expect(result.status == 2)
            #expect(result.stdoutLines.last == "127.0.0.1:\(url.split(separator: ":").last ?? "") is unreachable (cannot reach node at \(url): connection refused)")
        }
        let watch = try await kv(["--node", url, "watch"], timeout: .seconds(30))
        #expect(watch.status == 2)
        #expect(watch.stderr == "kv: cannot reach node at \(url): connection refused\n")

        // A node that accepts but never answers: the watch's head has --timeout.
        let silent = try LocalListener()
        defer { silent.close() }
        let started = ContinuousClock.now
        let hung = try await kv(["--node", silent.url, "watch", "--timeout", "0.5"], timeout: .seconds(30))
        #expect(hung.status == 2)
        #expect(hung.stderr == "kv: node at \(silent.url) did not reply in time\n")
        #expect(ContinuousClock.now - started < .seconds(10))
    }
}

/// A cluster that `kv cluster up` started in a temporary directory.
struct KVClusterRun {
    let directory: String
    let basePort: Int
    /// What `up` printed.
    let upLines: [String]

    func url(_ name: String) -> String {
        let index = Int(name.unicodeScalars.first?.value ?? 65) - 65
        return "http://127.0.0.1:\(basePort + index)"
    }

    /// The pid `up` printed for each node.
    var upPIDs: [String: Int32] {
        var pids: [String: Int32] = [:]
        for line in upLines {
            let words = line.split(separator: " ")
            if let name = words.first, let at = words.firstIndex(of: "pid"), at + 1 < words.endIndex, let pid = Int32(words[at + 1]) {
                pids[String(name)] = pid
            }
        }
        return pids
    }

    /// Runs `kv ARGUMENTS --data DIRECTORY` for `cluster` commands, `kv ARGUMENTS` otherwise.
    func kv(_ arguments: String...) async throws -> CommandResult {
        try await kv(arguments)
    }

    func kv(_ arguments: [String], stdin: Data? = nil, timeout: Duration = .seconds(120)) async throws -> CommandResult {
        let withData = arguments.first == "cluster" ? arguments + ["--data", directory] : arguments
        return try await CLITests.kv(withData, stdin: stdin, timeout: timeout)
    }

    /// Polls `kv cluster status` until it exits with `status` and, when `settled`, every LAG
    /// entry is `PEER:0`; returns that run.
    func waitForStatus(_ status: Int32, settled: Bool = false, timeout: Duration = .seconds(60)) async throws -> CommandResult {
        var last: CommandResult?
        try await poll("kv cluster status to exit \(status)", timeout: timeout, interval: .milliseconds(200)) {
            let result = try await kv("cluster", "status")
            last = result
            let lags = result.lines.dropFirst().dropLast().flatMap { $0.filter { $0.contains(":") && !$0.hasPrefix("http") } }
            let isSettled = !settled || lags.allSatisfy { $0.hasSuffix(":0") }
            return result.status == status && isSettled ? nil : "exit \(result.status): \(result.stdoutText)\(result.stderr)"
        }
        return try #require(last)
    }

    var manifestURL: URL { URL(fileURLWithPath: directory + "/cluster.json") }

    func manifest() throws -> [String: Any] {
        let object = try JSONSerialization.jsonObject(with: Data(contentsOf: manifestURL))
        return try #require(object as? [String: Any])
    }

    func log(_ name: String) throws -> String {
        try String(contentsOfFile: directory + "/\(name).log", encoding: .utf8)
    }
}

/// Runs `body` with a cluster `kv cluster up` started on a free port range (retried when a port
/// is taken between the probe and the start), brought down on every path; a failing test sees
/// the nodes' logs.
func withKVCluster<T>(
    nodes: Int = 3, nodeArguments: [String] = [], _ body: (KVClusterRun) async throws -> T
) async throws -> T {
    try await withTemporaryDirectoryPath { directory in
        var cluster: KVClusterRun?
        var lastFailure = ""
        for _ in 0..<3 where cluster == nil {
            let base = try unusedLocalPortRange(count: 2 * nodes)
            var arguments = [
                "cluster", "up", "--nodes", String(nodes), "--data", directory, "--base-port", String(base),
                "--resp-base-port", String(base + nodes),
            ]
            if !nodeArguments.isEmpty { arguments += ["--"] + nodeArguments }
            let up = try await kv(arguments, timeout: .seconds(120))
            if up.status == 0 {
                cluster = KVClusterRun(directory: directory, basePort: base, upLines: up.stdoutLines)
            } else {
                lastFailure = up.stderr
                guard up.stderr.contains("Address already in use") else { break }
            }
        }
        guard let cluster else { throw ClusterUpFailed(stderr: lastFailure) }
        do {
            let result = try await body(cluster)
            try await bringDown(cluster)
            return result
        } catch {
            let logs = (["A", "B", "C"].prefix(nodes)).map { "\($0).log:\n" + ((try? cluster.log($0).suffix(1500)) ?? "") }
            Issue.record("node logs:\n\(logs.joined(separator: "\n"))")
            try? await bringDown(cluster)
            throw error
        }
    }
}

/// `kv cluster down`, then SIGKILL for any node it could not stop, so no test leaves a node.
private func bringDown(_ cluster: KVClusterRun) async throws {
    let down = try await cluster.kv("cluster", "down")
    if down.status != 0, let nodes = try? cluster.manifest()["nodes"] as? [[String: Any]] {
        for node in nodes {
            if let pid = node["pid"] as? Int { kill(Int32(pid), SIGKILL) }
        }
    }
}

struct ClusterUpFailed: Error, CustomStringConvertible {
    let stderr: String
    var description: String { "kv cluster up failed: \(stderr)" }
}

extension CommandResult {
    /// The lines of stdout, without the final empty one.
    var stdoutLines: [String] {
        stdoutText.split(separator: "\n", omittingEmptySubsequences: false)
            .dropLast(stdoutText.hasSuffix("\n") ? 1 : 0).map(String.init)
    }

    /// Each stdout line split into its words.
    var lines: [[String]] {
        stdoutLines.map { $0.split(separator: " ").map(String.init) }
    }
}
