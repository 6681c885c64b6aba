import Foundation
import KVClient
import KVCore
import Testing
import TestSupport

extension FaultInjection {
    /// Issue 4, "Crash": `kill -9` a real node in the middle of a stream of concurrent writes, of a
    /// catch-up, and of push batches. After a process crash nothing acknowledged is lost (with
    /// `--sync normal` as with `--sync full`: the commit is in the WAL file before the answer), a
    /// batch is applied with its mark or not at all, the transfer resumes from the mark, and the
    /// cluster converges.
    @Suite("kill -9 in the middle of the work", .serialized)
    struct CrashTests {
        @Test(arguments: ["normal", "full"])
        func killedMidWriteStreamLosesNoAcknowledgedWrite(sync: String) async throws {
            let seed = SeededRandom.seed()
            print("killedMidWriteStreamLosesNoAcknowledgedWrite(--sync \(sync)): seed \(seed) (replay with KV_SEED=\(seed))")
            try await withCluster(extraArguments: ["--sync", sync, "--anti-entropy-interval", "1"]) { cluster in
                let workload = try Workload(cluster: cluster, seed: seed, options: Workload.Options(clientsPerNode: 3, pause: .milliseconds(2)))
                try await workload.waitForAcknowledged(150)
                cluster.kill("B")
                // B's file as the crash left it: every write B acknowledged is there, at its version
                // or a greater one that B had learned since.
                let rowsAtCrash = try await cluster.rows("B")
                try await expectKeyCountsMatchRows(on: "B", of: cluster, "after the kill, seed \(seed)")
                let acknowledgedSoFar = workload.history.acknowledgedCount
                try await workload.waitForAcknowledged(acknowledgedSoFar + 100)  // A and C go on
                let restarted = ContinuousClock.now
                try await cluster.start(["B"])
                try await poll("B to acknowledge writes again") {
                    workload.history.acknowledged(by: "B").contains { $0.write.finished > restarted } ? nil : "none yet"
                }
                await workload.stop()

                let acknowledgedByB = workload.history.acknowledged(by: "B", before: restarted)
                #expect(acknowledgedByB.count > 20, "seed \(seed): B acknowledged writes before the kill")
                expectStored(acknowledgedByB, in: rowsAtCrash, node: "B", seed: seed)
                let rows = try await cluster.converge(checking: workload.history, seed: seed)
                for name in ["A", "B", "C"] {
                    try await expectKeyCountsMatchRows(on: name, of: cluster, "after converging, seed \(seed)")
                }
                print("figures: --sync \(sync): \(workload.history.count) writes sent, \(workload.history.acknowledgedCount) acknowledged, \(acknowledgedByB.count) by B before its kill, all in its file; \(rows.count) keys converged")
            }
        }

        /// C catches up a bulk of A's rows by pulling (A cannot push to C); killed in the middle, its
        /// file holds exactly a prefix of A's feed up to its mark, and after a restart it pulls the
        /// rest from the mark, not from the start.
        @Test func killedMidCatchUpResumesFromItsMark() async throws {
            let total = 60_000
            let seed = SeededRandom.seed()
            var random = SeededRandom(seed: seed)
            let killAbove = Int.random(in: 0..<total / 2, using: &random)
            print("killedMidCatchUpResumesFromItsMark: seed \(seed) (replay with KV_SEED=\(seed)): kill C past \(killAbove) rows")
            try await withPartitionedCluster(seed: seed, extraArguments: ["--anti-entropy-interval", "3600"], start: false) { network in
                let cluster = network.cluster
                try await loadBulk(total, into: "A", of: cluster)
                network.set("A", "C", .down)  // the rows reach C by its pulls only
                try await cluster.start(["C"])
                try await killWhenPartlyThere("C", total: total, cluster: cluster, above: killAbove)
                let mark = try await expectFeedPrefix(on: "C", total: total, cluster: cluster)
                print("figures: catch-up of \(total) rows: C killed at mark \(mark)")

                try await cluster.start(["C"])
                try await poll("C to finish catching up", timeout: .seconds(60), interval: .milliseconds(100)) {
                    let keys = try await cluster.client("C").status().keys
                    return keys == total ? nil : "\(keys) keys"
                }
                // The log line comes after the last batch is applied, so after the count above.
                var caughtUp = ""
                try await poll("C to log its catch-up from A") {
                    let log = cluster.log("C")
                    guard let range = log.range(of: #"caught up [0-9]+ rows from A"#, options: .regularExpression) else { return "no line yet" }
                    caughtUp = String(log[range])
                    return nil
                }
                #expect(caughtUp == "caught up \(total - Int(mark)) rows from A", "C pulled exactly the rows past its mark \(mark)")

                network.heal()
                try await cluster.start()
                let rows = try await cluster.waitForConvergence()
                #expect(rows.count == total)
            }
        }

        /// A pushes a bulk of rows to B (B cannot pull: its link to A is cut). A is killed in the
        /// middle, restarted, and resumes from B's mark; then B is killed in the middle of receiving,
        /// restarted, and A resumes again. B's file always holds a prefix of A's feed up to its mark,
        /// and no row crosses twice except one batch in flight at a kill.
        @Test func killedMidPushBatchesTheSenderAndTheReceiverResume() async throws {
            let total = 60_000
            let batchRows = 5_000  // PeerProtocol.defaultBatchRows
            let seed = SeededRandom.seed()
            var random = SeededRandom(seed: seed)
            let killSenderAbove = Int.random(in: 0..<total / 3, using: &random)
            let killReceiverAbove = Int.random(in: total / 3..<2 * total / 3, using: &random)
            print("killedMidPushBatchesTheSenderAndTheReceiverResume: seed \(seed) (replay with KV_SEED=\(seed)): kill A past \(killSenderAbove) rows on B, B past \(killReceiverAbove)")
            try await withPartitionedCluster(seed: seed, extraArguments: ["--anti-entropy-interval", "3600"], start: false) { network in
                let cluster = network.cluster
                try await cluster.start(["B"])
                network.set("B", "A", .down)  // the rows reach B by A's pushes only
                try await loadBulk(total, into: "A", of: cluster)

                try await killWhenPartlyThere("B", total: total, cluster: cluster, victim: "A", above: killSenderAbove)
                let firstMark = try await expectFeedPrefix(on: "B", total: total, cluster: cluster)
                try await cluster.start(["A"])
                try await killWhenPartlyThere("B", total: total, cluster: cluster, above: max(Int(firstMark), killReceiverAbove))
                let secondMark = try await expectFeedPrefix(on: "B", total: total, cluster: cluster)
                #expect(secondMark > firstMark)
                print("figures: push of \(total) rows: A killed at B's mark \(firstMark), B killed at \(secondMark)")

                try await cluster.start(["B"])
                try await poll("B to hold every row", timeout: .seconds(60), interval: .milliseconds(100)) {
                    let keys = try await cluster.client("B").status().keys
                    return keys == total ? nil : "\(keys) keys"
                }
                let sent = try #require(try await cluster.client("A").status().peers.first { $0.id == "B" }).rowsSent
                print("figures: A sent \(sent) rows to B after its restart")
                #expect(sent <= Int64(total) - firstMark + Int64(2 * batchRows), "A resumed from B's mark \(firstMark) after its restart, and from \(secondMark) after B's; it sent \(sent) rows")

                network.heal()
                try await cluster.start()
                let rows = try await cluster.waitForConvergence()
                #expect(rows.count == total)
            }
        }
    }
}

/// Every write in `acknowledged` is stored in `rows` (a node's file read after a crash) at its
/// version or a greater one.
func expectStored(
    _ acknowledged: [(write: AttemptedWrite, version: Version)], in rows: [StoredRow], node: String, seed: UInt64,
    purgedMayBeAbsent history: [AttemptedWrite]? = nil, sourceLocation: SourceLocation = #_sourceLocation
) {
    let stored = Dictionary(rows.map { ($0.key, $0) }, uniquingKeysWith: { first, _ in first })
    var lost: [String] = []
    let deletesByKey = Dictionary(grouping: (history ?? []).filter { $0.value == nil }, by: \.key)
    for (write, version) in acknowledged {
        // With tombstone purging on, a key whose history has a delete may be gone from the file.
        if stored[write.key] == nil, deletesByKey[write.key] != nil { continue }
        guard let row = stored[write.key], let origin = try? NodeID(row.origin),
            Version(lamport: row.lamport, origin: origin) >= version
        else {
            lost.append("\(write.key)@\(version) (file has \(stored[write.key].map(\.description) ?? "nothing"))")
            continue
        }
    }
    #expect(lost.isEmpty, "seed \(seed): \(node) lost \(lost.count) acknowledged writes in the crash: \(lost.prefix(10))", sourceLocation: sourceLocation)
}

/// Starts A once to create its file, stops it, fills it with `rows` bulk rows (`bulk/0000001`…,
/// origin A, lamport = seq = index) and starts it again.
/// Checks that the counts the triggers keep (`kv_counts`) equal a count of `kv`'s rows, in the
/// node's file as it is now (the counts commit with the rows, so a kill cannot part them).
private func expectKeyCountsMatchRows(
    on node: String, of cluster: LocalCluster, _ comment: String, sourceLocation: SourceLocation = #_sourceLocation
) async throws {
    let rows = try await cluster.query(
        node,
        """
        SELECT (SELECT live FROM kv_counts), (SELECT tombstones FROM kv_counts),
            (SELECT count(*) FROM kv WHERE deleted = 0), (SELECT count(*) FROM kv WHERE deleted = 1)
        """)
    let counts = try #require(rows.first, sourceLocation: sourceLocation)
    #expect(counts.count == 4 && counts[0] == counts[2] && counts[1] == counts[3], "\(node) \(comment): kept live/tombstones \(counts.prefix(2)), counted \(counts.suffix(2))", sourceLocation: sourceLocation)
}

private func loadBulk(_ rows: Int, into node: String, of cluster: LocalCluster) async throws {
    try await cluster.start([node])
    cluster.stop(node)
    try await bulkLoad(rows: rows, into: cluster.databasePath(node))
    try await cluster.start([node])
}

/// Polls `node`'s key count and kills `victim` (default: `node`) with SIGKILL as soon as `node`
/// holds more than `above` of A's `total` bulk rows but not all: in the middle of the transfer.
private func killWhenPartlyThere(
    _ node: String, total: Int, cluster: LocalCluster, victim: String? = nil, above: Int = 0
) async throws {
    var seen = 0
    try await poll("\(node) to be part-way through \(total) rows", timeout: .seconds(60), interval: .milliseconds(5)) {
        seen = Int(try await cluster.client(node).status().keys)
        if seen > above, seen < total {
            cluster.kill(victim ?? node)
            return nil
        }
        return seen >= total ? nil : "\(seen) keys"
    }
    #expect(seen > above && seen < total, "\(victim ?? node) was killed with \(node) part-way (\(seen) of \(total) keys, above \(above))")
}

/// Checks the all-or-nothing promise on `node`'s file after a kill: it holds exactly A's bulk
/// rows 1…mark, where mark is its `pulled_seq` for A (a batch and its mark commit together).
/// One statement reads both, so a node still running (the receiver, when the sender was killed)
/// is seen in one snapshot. Returns the mark.
private func expectFeedPrefix(on node: String, total: Int, cluster: LocalCluster) async throws -> Int64 {
    let fields = try await cluster.query(node, """
        SELECT (SELECT pulled_seq FROM peers WHERE id = 'A'), count(*), coalesce(max(key), '')
        FROM kv WHERE key LIKE 'bulk/%'
        """).first ?? []
    let mark = Int64(fields.first ?? "") ?? -1
    let count = fields.count > 1 ? Int64(fields[1]) ?? -1 : -1
    let last = fields.count > 2 ? fields[2] : ""
    #expect(mark > 0 && mark < Int64(total), "\(node)'s mark \(mark) is part-way")
    #expect(count == mark, "\(node) holds \(count) bulk rows with its mark at \(mark)")
    #expect(last == String(format: "bulk/%07d", mark), "\(node)'s last bulk row \(last) is row \(mark)")
    return mark
}
