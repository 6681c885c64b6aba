import Foundation
import KVClient
import KVCore
import Testing
import TestSupport

/// Members joining, leaving and being replaced while real `kvnode` processes run
/// (docs/operations.md, "Members"). Each test ends with identical rows on every member, checked
/// with sqlite3, and every acknowledged write present.
@Suite("Membership", .serialized)
struct MembershipTests {
    static let fast = ["--anti-entropy-interval", "0.5"]

    @Test func threeNodesGrowToFiveUnderAWriteLoad() async throws {
        try await withCluster(extraArguments: Self.fast) { cluster in
            let seed = UInt64.random(in: 0...UInt64.max)
            let before = try Workload(cluster: cluster, seed: seed, options: .init(freshKeyOneIn: 3, pause: .milliseconds(10)))
            try await before.waitForAcknowledged(100)
            try await cluster.join("D", through: ["A"])
            try await cluster.join("E", through: ["C", "B"])
            // The new members take writes too, and every old member replicates with them.
            var options = Workload.Options(freshKeyOneIn: 3, pause: .milliseconds(10))
            options.keyPrefix = "n"
            let after = try Workload(cluster: cluster, nodes: ["D", "E"], seed: seed ^ 1, options: options)
            try await after.waitForAcknowledged(100)
            let history = await before.stop()
            let newHistory = await after.stop()
            // Identical rows on all five (sqlite3), holding every acknowledged write of both loads.
            let rows = try await cluster.waitForConvergence()
            let writes = history.all + newHistory.all
            #expect(writes.filter { if case .acknowledged = $0.outcome { true } else { false } }.count >= 200)
            let anomalies = checkHistory(writes, finalRows: rows)
            #expect(anomalies.isEmpty, "seed \(seed): \(anomalies.count) anomalies: \(anomalies.prefix(5))")
            try await cluster.waitForMembers(["A active", "B active", "C active", "D active", "E active"])
            for name in cluster.names {
                let status = try await cluster.client(name).status()
                #expect(Set(status.peers.map(\.id)) == Set(cluster.names.filter { $0 != name }), "\(name) replicates with every other member")
            }
            let listed = try await runCommand(Products.executable("kv"), ["--node", cluster.urls["E"]!, "members"])
            #expect(listed.status == 0)
            #expect(listed.stdoutText.split(separator: "\n").count == 6, "a header and five members:\n\(listed.stdoutText)")
        }
    }

    @Test func fiveShrinkToThreeByRemovalAndTombstonesPurgeWithoutTheRemovedNodes() async throws {
        try await withCluster(extraArguments: Self.fast + ["--tombstone-grace", "0.2"]) { cluster in
            try await cluster.join("D", through: ["A"])
            try await cluster.join("E", through: ["A"])
            try await cluster.waitForMembers(["A active", "B active", "C active", "D active", "E active"])
            let seed = UInt64.random(in: 0...UInt64.max)
            let load = try Workload(cluster: cluster, nodes: ["A", "B", "C"], seed: seed, options: .init(pause: .milliseconds(10)))
            try await load.waitForAcknowledged(50)
            // D and E are gone for good: killed, then removed (one through the CLI, one through HTTP).
            cluster.kill("D")
            cluster.kill("E")
            let removed = try await runCommand(Products.executable("kv"), ["--node", cluster.urls["A"]!, "members", "remove", "D"])
            #expect(removed.status == 0, "\(removed.stderr)")
            #expect(removed.stdoutText.contains("removed"))
            _ = try await cluster.client("B").removeMember("E")
            cluster.forget("D")
            cluster.forget("E")
            try await load.waitForAcknowledged(load.history.acknowledgedCount + 50)
            let history = await load.stop()
            _ = try await cluster.converge(checking: history, seed: seed, tombstonesPurged: true)
            try await cluster.waitForMembers(["A active", "B active", "C active", "D removed", "E removed"])
            // Every tombstone (the load deletes one write in five) purges, although D and E never acknowledged them.
            try await poll("tombstones to purge on A, B and C", timeout: .seconds(60)) {
                for name in ["A", "B", "C"] {
                    let left = try await cluster.query(name, "SELECT count(*) FROM kv WHERE deleted = 1")
                    if left.first?.first != "0" { return "\(name) holds \(left.first?.first ?? "?") tombstones" }
                }
                return nil
            }
            for name in ["A", "B", "C"] {
                let status = try await cluster.client(name).status()
                #expect(Set(status.peers.map(\.id)) == Set(["A", "B", "C"]).subtracting([name]), "\(name) no longer lists D or E as peers")
            }
            await #expect(throws: KVClientError.self, "an id no member knows is refused (404 no_such_member)") {
                _ = try await cluster.client("A").removeMember("Z")
            }
        }
    }

    @Test func aKilledNodeIsReplacedByAnEmptyOneUnderTheSameIdAndThenByANewId() async throws {
        try await withCluster(extraArguments: Self.fast) { cluster in
            let history = History()
            for index in 0..<30 { _ = try await cluster.put("before\(index)", "v\(index)", on: ["A", "B", "C"][index % 3], recordingIn: history) }
            try await cluster.waitForConvergence()

            // C's machine dies; a new one with an empty file takes its id and address.
            cluster.kill("C")
            cluster.wipe("C")
            for index in 0..<10 { _ = try await cluster.put("while\(index)", "v\(index)", on: "A", recordingIn: history) }
            try await cluster.join("C", through: ["B"], samePort: true)
            _ = try await cluster.put("onNewC", "hello", on: "C", recordingIn: history)
            _ = try await cluster.converge(checking: history, seed: 0)
            let epochs = try await cluster.query("A", "SELECT epoch FROM peers WHERE id = 'C'")
            #expect(epochs.first?.first == (try await cluster.client("C").status().epoch), "A talks to the new file of C")

            // It dies too; this time a machine with a new id, F, replaces it, and C is removed.
            cluster.kill("C")
            try await cluster.join("F", through: ["A"])
            _ = try await cluster.client("A").removeMember("C")
            cluster.forget("C")
            _ = try await cluster.put("onF", "hello", on: "F", recordingIn: history)
            _ = try await cluster.converge(checking: history, seed: 0)
            try await cluster.waitForMembers(["A active", "B active", "C removed", "F active"])
        }
    }

    @Test func aNodeStoppedWithLeaveHandsOffItsWritesAndIsRemovedEverywhere() async throws {
        try await withCluster(extraArguments: Self.fast) { cluster in
            try await cluster.join("D", through: ["A"], extraArguments: Self.fast + ["--leave", "--leave-timeout", "15"])
            try await cluster.waitForMembers(["A active", "B active", "C active", "D active"])
            let seed = UInt64.random(in: 0...UInt64.max)
            let load = try Workload(cluster: cluster, nodes: ["D"], seed: seed, options: .init(clientsPerNode: 4, pause: .zero))
            try await load.waitForAcknowledged(200)
            let history = await load.stop()
            // SIGTERM right after the last acknowledged write: D waits until every member holds
            // its rows, marks itself removed everywhere, then exits 0.
            #expect(cluster.stop("D") == 0)
            #expect(cluster.log("D").contains("left the cluster: every member holds what this node held, and its removal"), "\(cluster.log("D").suffix(800))")
            cluster.forget("D")
            try await cluster.waitForMembers(["A active", "B active", "C active", "D removed"])
            _ = try await cluster.converge(checking: history, seed: seed)
            try await poll("A, B and C to stop replicating with D") {
                for name in ["A", "B", "C"] where try await cluster.client(name).status().peers.map(\.id).contains("D") {
                    return "\(name) still lists D among its peers"
                }
                return nil
            }
        }
    }

    @Test func aStrangerWithoutTheTokenCannotJoin() async throws {
        try await withTemporaryDirectory { directory in
            let token = directory.appendingPathComponent("token")
            let wrongToken = directory.appendingPathComponent("wrong-token")
            #expect(FileManager.default.createFile(atPath: token.path, contents: Data("the-secret\n".utf8), attributes: [.posixPermissions: 0o600]))
            #expect(FileManager.default.createFile(atPath: wrongToken.path, contents: Data("a-guess\n".utf8), attributes: [.posixPermissions: 0o600]))
            try await withCluster(extraArguments: Self.fast + ["--cluster-token-file", token.path]) { cluster in
                for (name, tokenArguments) in [("M", ["--cluster-token-file", wrongToken.path]), ("N", [])] {
                    let result = try await runCommand(
                        Products.executable("kvnode"),
                        ["--id", name, "--port", "0", "--db", directory.appendingPathComponent("\(name).db").path, "--join", cluster.urls["A"]!]
                            + tokenArguments,
                        timeout: .seconds(60))
                    #expect(result.status == 1)
                    #expect(result.stderr.contains("cannot join the cluster") && result.stderr.contains("401"), "\(result.stderr)")
                }
                #expect(try await cluster.memberRows("A").isEmpty, "no member row was written")
                #expect(try await cluster.client("A").members().members.map(\.id) == ["A", "B", "C"])
                // With the token, the same join works.
                try await cluster.join("D", through: ["A"])
                try await cluster.waitForMembers(["A active", "B active", "C active", "D active"])
            }
        }
    }

    @Test func aJoinDuringAPartitionReachesTheCutOffSideAfterHealing() async throws {
        let seed = UInt64.random(in: 0...UInt64.max)
        try await withPartitionedCluster(seed: seed, extraArguments: Self.fast) { network in
            let cluster = network.cluster
            network.partition([["A", "B"], ["C"]])
            let history = History()
            _ = try await cluster.put("before", "x", on: "C", recordingIn: history)
            try await cluster.join("D", through: ["A"])
            _ = try await cluster.put("onD", "joined while C was cut off", on: "D", recordingIn: history)
            _ = try await cluster.put("onC", "written apart", on: "C", recordingIn: history)
            try await cluster.waitForValue("onD", "joined while C was cut off", on: "B")
            #expect(try await cluster.memberRows("C").isEmpty, "C has not heard of the join yet")
            network.heal()
            _ = try await cluster.converge(checking: history, seed: seed)
            try await cluster.waitForMembers(["A active", "B active", "C active", "D active"])
        }
    }

    @Test func aRemovalOnOneSideOfASplitAndAConflictingAddressChangeConvergeToOneMemberList() async throws {
        let seed = UInt64.random(in: 0...UInt64.max)
        try await withPartitionedCluster(seed: seed, names: ["A", "B", "C", "D"], extraArguments: Self.fast) { network in
            let cluster = network.cluster
            // E joins and is removed at once: the cluster has used membership before the split.
            try await cluster.join("E", through: ["A"])
            try await cluster.waitForMembers(["A active", "B active", "C active", "D active", "E active"])
            cluster.kill("E")
            _ = try await cluster.client("B").removeMember("E")
            cluster.forget("E")
            try await cluster.waitForMembers(["A active", "B active", "C active", "D active", "E removed"])

            // A split: A removes D on its side while C, on the other, sees D restart at another
            // address, which D writes as its own row: two versions of D's row at one moment.
            network.partition([["A", "B"], ["C", "D"]])
            let history = History()
            _ = try await cluster.client("A").removeMember("D")
            cluster.stop("D")
            let port = String(cluster.urls["D"]!.split(separator: ":").last!)
            try await cluster.restart("D", extraArguments: ["--advertise-url", "http://localhost:\(port)"])
            _ = try await cluster.put("sideAB", "1", on: "B", recordingIn: history)
            _ = try await cluster.put("sideCD", "2", on: "C", recordingIn: history)
            network.heal()

            // One version of D's row wins everywhere; A, B and C hold identical rows.
            try await poll("A, B and C to agree on D's member row", timeout: .seconds(30)) {
                let rows = try await ["A", "B", "C"].asyncMap { try await cluster.query($0, "SELECT id, state, url, lamport, origin FROM members ORDER BY id") }
                return rows.allSatisfy { $0 == rows[0] } ? nil : "\(rows)"
            }
            let winner = try await cluster.query("A", "SELECT state FROM members WHERE id = 'D'").first?.first
            print("seed \(seed): D's row after the conflict: \(winner ?? "?")")
            if winner == "removed" { cluster.forget("D") }
            _ = try await cluster.converge(checking: history, seed: seed)
        }
    }
}

extension LocalCluster {
    /// Polls until every running member lists exactly `expected` (`id state` lines, suspect
    /// counted as active) in `GET /members`.
    func waitForMembers(_ expected: [String], timeout: Duration = .seconds(30)) async throws {
        try await poll("members \(expected) on \(names)", timeout: timeout) {
            for name in self.names {
                let listed = try await self.client(name).members().members.map {
                    "\($0.id) \($0.state == "suspect" ? "active" : $0.state)"
                }
                if listed != expected { return "\(name): \(listed)" }
            }
            return nil
        }
    }
}
