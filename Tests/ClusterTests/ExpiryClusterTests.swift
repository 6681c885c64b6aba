import Foundation
import KVClient
import KVCore
import Testing
import TestSupport

/// Expiry across real nodes behind fault proxies: an expired key is gone on every node and no
/// repair brings an older value back (Riak #1649), and concurrent EXPIRE and PERSIST resolve
/// by (lamport, origin) like any write.
@Suite("Expiry across a cluster", .serialized)
struct ExpiryClusterTests {
    static let arguments = ["--anti-entropy-interval", "1", "--resp-port", "0"]

    private func redis(_ cluster: LocalCluster, _ name: String) throws -> RESPTestClient {
        try RESPTestClient(port: try #require(cluster.nodes[name]?.respPort, "\(name) logged no RESP port"))
    }

    @Test func keysThatExpireWhileANodeIsPartitionedAreGoneEverywhereAfterTheHeal() async throws {
        let seed = SeededRandom.seed()
        print("keysThatExpireWhileANodeIsPartitionedAreGoneEverywhereAfterTheHeal: seed \(seed) (replay with KV_SEED=\(seed))")
        try await withPartitionedCluster(seed: seed, extraArguments: Self.arguments) { network in
            let cluster = network.cluster
            let keys = (0..<20).map { "session/\($0)" }
            // C holds an older value of every key, without an expiry.
            for key in keys { _ = try await cluster.client("A").put(key, value: Array("old".utf8)) }
            for key in keys { try await cluster.waitForValue(key, "old", on: "C") }

            network.isolate("C")
            let onA = try redis(cluster, "A")
            for (index, key) in keys.enumerated() {
                if index.isMultiple(of: 2) {
                    #expect(try await onA.call("SET", key, "new", "EX", "1") == .simple("OK"))
                } else {
                    _ = try await cluster.client("A").put(key, value: Array("new".utf8), ttlSeconds: 1)
                }
            }
            try await poll("the keys to expire on A and B") {
                for node in ["A", "B"] {
                    for key in keys where try await cluster.client(node).get(key) != nil { return "\(key) still on \(node)" }
                }
                return nil
            }
            let cRows = try await cluster.rows("C")
            #expect(
                cRows.filter { keys.contains($0.key) }.allSatisfy { $0.valueHex == "6F6C64" && !$0.deleted },
                "seed \(seed): the partition held, C still has the old values")

            network.heal()
            try await poll("C to drop the old values") {
                for key in keys where try await cluster.client("C").get(key) != nil { return "\(key) still on C" }
                return nil
            }
            // Their space is reclaimed: each node's sweep turns them into tombstones.
            try await poll("every node to sweep the expired rows into tombstones") {
                for node in cluster.names {
                    let live = try await cluster.query(node, "SELECT count(*) FROM kv WHERE key LIKE 'session/%' AND value IS NOT NULL")
                    if live != [["0"]] { return "\(node) still holds \(live) values" }
                }
                return nil
            }
            let rows = try await cluster.waitForConvergence()
            let expiredRows = rows.filter { keys.contains($0.key) }
            #expect(expiredRows.count == keys.count && expiredRows.allSatisfy(\.deleted), "seed \(seed): \(rows)")
            let verify = try await runCommand(
                Products.executable("kv"), ["cluster", "verify"] + cluster.names.flatMap { ["--node", cluster.urls[$0]!] },
                timeout: .seconds(60))
            #expect(verify.status == 0, "seed \(seed): \(verify.stdoutText) \(verify.stderr)")
            #expect(verify.stdoutText.contains("converged"), "\(verify.stdoutText)")

            // Three anti-entropy rounds (1 s each) later, nothing came back anywhere. A bounded
            // check that something stays true, not a wait for a state.
            let until = ContinuousClock.now + .seconds(3)
            while ContinuousClock.now < until {
                for node in cluster.names {
                    for key in keys {
                        #expect(try await cluster.client(node).get(key) == nil, "seed \(seed): \(key) came back on \(node)")
                    }
                    #expect(try await redis(cluster, node).call("KEYS", "session/*") == .array([]))
                }
                try await Task.sleep(for: .milliseconds(250))
            }
        }
    }

    @Test func aPersistConcurrentWithAnExpireConvergesToOneOutcomeEverywhere() async throws {
        let seed = SeededRandom.seed()
        print("aPersistConcurrentWithAnExpireConvergesToOneOutcomeEverywhere: seed \(seed) (replay with KV_SEED=\(seed))")
        try await withPartitionedCluster(seed: seed, extraArguments: Self.arguments) { network in
            let cluster = network.cluster
            let onA = try redis(cluster, "A")
            let onB = try redis(cluster, "B")
            for key in ["k1", "k2"] { #expect(try await onA.call("SET", key, "v", "EX", "3600") == .simple("OK")) }
            try await cluster.waitForValue("k2", "v", on: "B")
            try await cluster.waitForValue("k2", "v", on: "C")

            network.partition([["A"], ["B"], ["C"]])
            // k1: A expires it, B persists it. k2: the other way round.
            #expect(try await onA.call("EXPIRE", "k1", "2") == .integer(1))
            #expect(try await onB.call("PERSIST", "k1") == .integer(1))
            #expect(try await onA.call("PERSIST", "k2") == .integer(1))
            #expect(try await onB.call("EXPIRE", "k2", "2") == .integer(1))
            // The outcome every node must reach: the write with the greater (lamport, origin).
            var expired: [String: Bool] = [:]
            for key in ["k1", "k2"] {
                let a = try #require(try await cluster.client("A").get(key))
                let b = try #require(try await cluster.client("B").get(key))
                let aWins = Version(lamport: a.lamport, origin: try NodeID(a.origin)) > Version(lamport: b.lamport, origin: try NodeID(b.origin))
                expired[key] = (aWins ? a : b).expiresAt != nil
            }

            network.heal()
            try await poll("every node to agree on the versions and expiries") {
                let tables = try await cluster.names.asyncMap {
                    try await cluster.query($0, "SELECT key, lamport, origin, coalesce(expires_at, 'never') FROM kv WHERE key IN ('k1', 'k2') ORDER BY key")
                }
                return tables.allSatisfy { $0 == tables[0] } ? nil : "\(tables)"
            }
            for key in ["k1", "k2"] {
                if expired[key] == true {
                    try await poll("\(key) to expire on every node") {
                        for node in cluster.names where try await cluster.client(node).get(key) != nil { return "\(key) on \(node)" }
                        return nil
                    }
                } else {
                    for node in cluster.names {
                        #expect(try await redis(cluster, node).call("TTL", key) == .integer(-1), "seed \(seed): \(key) on \(node)")
                    }
                }
            }
            try await cluster.waitForConvergence()
        }
    }
}
