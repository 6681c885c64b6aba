import Foundation
import KVClient
import KVCore
import Testing
import TestSupport

@Suite("Convergence under crashes, and catch-up at scale", .serialized)
struct ConvergenceTests {
    /// Concurrent puts and deletes on all three nodes while nodes are killed with SIGKILL and
    /// restarted; afterwards every node holds identical rows and no acknowledged write was lost
    /// except to a greater version of the same key. Replay a failure with KV_SEED=<seed>.
    @Test func randomWritesAndKillsConverge() async throws {
        let seed = SeededRandom.seed()
        print("randomWritesAndKillsConverge: seed \(seed) (replay with KV_SEED=\(seed))")
        var random = SeededRandom(seed: seed)
        try await withCluster { cluster in
            var acknowledged: [String: Version] = [:]
            var down: Set<String> = []
            for round in 0..<12 {
                // A fault between rounds: kill a live node, or bring a dead one back.
                if Int.random(in: 0..<3, using: &random) == 0 {
                    if let dead = down.randomElement(using: &random) {
                        try await cluster.start([dead])
                        down.remove(dead)
                    } else if down.count < 2, let victim = cluster.names.randomElement(using: &random) {
                        cluster.kill(victim)
                        down.insert(victim)
                    }
                }
                // Three writers at once, one per node, 10 operations each.
                let plans = cluster.names.map { node in
                    (node, (0..<10).map { _ in (key: "key\(Int.random(in: 0..<15, using: &random))", delete: Int.random(in: 0..<4, using: &random) == 0, value: UInt8(round)) })
                }
                let results = try await withThrowingTaskGroup(of: [(String, Version)].self) { group in
                    for (node, operations) in plans {
                        let client = try cluster.client(node)
                        group.addTask {
                            var done: [(String, Version)] = []
                            for operation in operations {
                                do {
                                    let reply = operation.delete
                                        ? try await client.delete(operation.key)
                                        : try await client.put(operation.key, value: [operation.value])
                                    done.append((reply.key, Version(lamport: reply.lamport, origin: try NodeID(reply.origin))))
                                } catch let error as KVClientError where error.kind == .unreachable || error.kind == .timedOut {
                                    continue  // the node is down: not acknowledged, nothing to check
                                }
                            }
                            return done
                        }
                    }
                    return try await group.reduce(into: []) { $0 += $1 }
                }
                for (key, version) in results { acknowledged[key] = max(acknowledged[key] ?? version, version) }
            }
            try await cluster.start()
            let rows = try await cluster.waitForConvergence(timeout: .seconds(90))
            #expect(!acknowledged.isEmpty, "seed \(seed): some writes were acknowledged")
            for (key, version) in acknowledged {
                let row = try #require(rows.first { $0.key == key }, "seed \(seed): acknowledged key \(key) is missing")
                let final = Version(lamport: row.lamport, origin: try NodeID(row.origin))
                #expect(final >= version, "seed \(seed): \(key) ended at \(final), below acknowledged \(version)")
            }
        }
    }

    /// B and C catch up 200 000 rows from A in bounded memory.
    @Test func catchUpOf200000RowsStaysInBoundedMemory() async throws {
        let rowCount = 200_000
        let rssLimitKiB = 250 * 1024
        try await withCluster(start: false) { cluster in
            try await cluster.start(["A"])
            cluster.stop("A")
            try await bulkLoad(rows: rowCount, into: cluster.databasePath("A"))
            try await cluster.start(["A"])
            let started = ContinuousClock.now
            try await cluster.start(["B", "C"])
            var peakKiB = 0
            try await poll("C to hold \(rowCount) keys", timeout: .seconds(600), interval: .milliseconds(250)) {
                if let pid = cluster.nodes["C"]?.pid { peakKiB = max(peakKiB, peakResidentKiB(pid: pid) ?? 0) }
                let status = try await cluster.client("C").status()
                return status.keys == rowCount ? nil : "\(status.keys) keys"
            }
            let elapsed = ContinuousClock.now - started
            if let pid = cluster.nodes["C"]?.pid { peakKiB = max(peakKiB, peakResidentKiB(pid: pid) ?? 0) }
            print("catch-up of \(rowCount) rows on C: \(elapsed), peak RSS \(peakKiB / 1024) MiB (limit \(rssLimitKiB / 1024) MiB)")
            #expect(peakKiB > 0, "the peak RSS was read")
            #expect(peakKiB < rssLimitKiB, "C's peak RSS \(peakKiB) KiB is over the limit \(rssLimitKiB) KiB")
            try await cluster.waitForConvergence(timeout: .seconds(300))
        }
    }
}

/// Fills a stopped node's fresh database with `rows` rows of 100 random bytes, written as if
/// the node had accepted them (origin A, lamport = seq = 1…rows), using the sqlite3 shell.
func bulkLoad(rows: Int, into path: String) async throws {
    let sql = """
        WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < \(rows))
        INSERT INTO kv (key, value, lamport, origin, seq, deleted, updated_at)
        SELECT printf('bulk/%07d', i), randomblob(100), i, 'A', i, 0, '2026-11-26T00:00:00Z' FROM n;
        UPDATE node SET lamport = \(rows), next_seq = \(rows + 1);
        """
    let result = try await runCommand(URL(fileURLWithPath: "/usr/bin/sqlite3"), [path, sql])
    guard result.status == 0 else { throw HarnessError("bulk load failed: \(result.stderr)") }
}

/// The peak resident set size of a process (VmHWM), in KiB.
func peakResidentKiB(pid: Int32) -> Int? {
    guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
    for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
        return Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "")
    }
    return nil
}
