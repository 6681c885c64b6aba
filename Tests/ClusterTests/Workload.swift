import Foundation
import KVClient
import KVCore
import Synchronization
import Testing
import TestSupport

/// One write a client sent, and what became of it.
struct AttemptedWrite: Sendable {
    enum Outcome: Sendable, Equatable {
        /// The node answered with this version: the write is committed.
        case acknowledged(Version)
        /// No answer (the node died, the connection broke, a timeout) or an error status: the
        /// write may or may not have been committed.
        case indeterminate
    }

    let key: String
    /// The bytes put, or nil for a delete. Every put of a run carries a distinct value, so the
    /// checker can tell which write a stored row came from.
    let value: [UInt8]?
    /// The node the client sent it to: the origin of its version if it was committed.
    let node: String
    var outcome: Outcome
    /// When the answer (or the failure) came: stamped by `History.record`.
    var finished = ContinuousClock.now
}

/// Every write clients sent during a test, recorded as the answers come in. Thread-safe.
final class History: Sendable {
    private let writes = Mutex<[AttemptedWrite]>([])

    func record(_ write: AttemptedWrite) {
        var write = write
        write.finished = ContinuousClock.now
        writes.withLock { $0.append(write) }
    }

    var all: [AttemptedWrite] { writes.withLock { $0 } }

    var acknowledgedCount: Int {
        writes.withLock { $0.count { if case .acknowledged = $0.outcome { true } else { false } } }
    }

    var count: Int { writes.withLock { $0.count } }

    /// Writes a node acknowledged, in the order they were recorded; with `before`, only those
    /// recorded before that instant.
    func acknowledged(by node: String, before: ContinuousClock.Instant? = nil) -> [(write: AttemptedWrite, version: Version)] {
        all.compactMap { write in
            guard write.node == node, case .acknowledged(let version) = write.outcome else { return nil }
            if let before, write.finished >= before { return nil }
            return (write, version)
        }
    }
}

/// Concurrent clients sending random puts and deletes to the cluster's nodes until stopped or
/// out of operations, recording every attempt in a `History`.
///
/// Each client talks to one node over its own connection and draws its operations from a
/// generator seeded from the run's seed and its index, so a seed replays the same operations
/// (their interleaving with faults depends on timing). Keys come from a small shared space so
/// clients on different nodes conflict.
final class Workload: Sendable {
    struct Options: Sendable {
        var clientsPerNode = 2
        /// Keys are `PREFIX000`…; a small space makes conflicting writes common.
        var keyPrefix = "k"
        var keys = 40
        /// One operation in this many is a delete.
        var deleteOneIn = 5
        /// With a value, one put in this many goes to a key of its own that nothing else writes,
        /// so the checker sees every such write, not only the last of a hot key.
        var freshKeyOneIn: Int? = nil
        /// Operations per client at most.
        var operationsPerClient = Int.max
        /// Pause between one client's operations, so the load leaves the 2-core box room for
        /// replication and the nemesis.
        var pause: Duration = .milliseconds(5)
    }

    let history = History()
    /// Numbers the workloads of a test process, so values stay unique across the workloads of
    /// one test.
    private static let runs = Atomic<Int>(0)
    private let stopped = Atomic<Bool>(false)
    private let task: Mutex<Task<Void, Never>?> = Mutex(nil)

    /// Starts the clients against `nodes` of `cluster` (each node's URL, bypassing any proxy).
    init(cluster: LocalCluster, nodes: [String]? = nil, seed: UInt64, options: Options = Options()) throws {
        let targets = try (nodes ?? cluster.names).flatMap { node in
            try (0..<options.clientsPerNode).map { _ in (node, try KVClient(node: cluster.urls[node]!, timeout: .seconds(5))) }
        }
        let run = Self.runs.add(1, ordering: .relaxed).newValue
        let task = Task { await self.run(number: run, targets: targets, seed: seed, options: options) }
        self.task.withLock { $0 = task }
    }

    private func run(number run: Int, targets: [(String, KVClient)], seed: UInt64, options: Options) async {
        await withTaskGroup(of: Void.self) { group in
            for (index, (node, client)) in targets.enumerated() {
                group.addTask {
                    var random = SeededRandom(seed: seed ^ (UInt64(index + 1) &* 0x9E37_79B9_7F4A_7C15))
                    var done = 0
                    while done < options.operationsPerClient, !self.stopped.load(ordering: .relaxed) {
                        done += 1
                        var key = "\(options.keyPrefix)\(String(format: "%03d", Int.random(in: 0..<options.keys, using: &random)))"
                        let delete = Int.random(in: 0..<options.deleteOneIn, using: &random) == 0
                        if !delete, let oneIn = options.freshKeyOneIn, Int.random(in: 0..<oneIn, using: &random) == 0 {
                            key = "fresh/w\(run).c\(index).\(done)"
                        }
                        let value = delete ? nil : Array("w\(run).c\(index).\(done)".utf8)
                        var write = AttemptedWrite(key: key, value: value, node: node, outcome: .indeterminate)
                        do {
                            let reply = if let value { try await client.put(key, value: value) } else { try await client.delete(key) }
                            write.outcome = .acknowledged(Version(lamport: reply.lamport, origin: try NodeID(reply.origin)))
                            self.history.record(write)
                            try? await Task.sleep(for: options.pause)
                        } catch {
                            self.history.record(write)
                            // The node is down or refused: do not spin on it.
                            try? await Task.sleep(for: .milliseconds(50))
                        }
                    }
                    await client.close()
                }
            }
        }
    }

    /// Tells the clients to stop after their current operation and waits until they have.
    @discardableResult
    func stop() async -> History {
        stopped.store(true, ordering: .relaxed)
        await finish()
        return history
    }

    /// Waits until every client has used up its operations (or was stopped).
    func finish() async {
        let run = task.withLock { $0 }
        await run?.value
    }

    /// Polls until at least `count` writes were acknowledged.
    func waitForAcknowledged(_ count: Int, timeout: Duration = .seconds(30)) async throws {
        try await poll("\(count) acknowledged writes", timeout: timeout) {
            let done = self.history.acknowledgedCount
            return done >= count ? nil : "\(done) acknowledged"
        }
    }
}

/// A violation of what the cluster promises, found by `checkHistory`.
struct Anomaly: CustomStringConvertible {
    let key: String
    let what: String
    var description: String { "\(key): \(what)" }
}

/// Checks the final rows (identical on every node, already waited for) against what clients did:
///
/// 1. no acknowledged write is lost except to a greater version of the same key: every key with
///    an acknowledged write has a row whose version is at or above the greatest acknowledged one;
/// 2. the row is a write that was really sent: a stored value is the value of a put of that key
///    sent to the row's origin node (values are unique per run), a tombstone a delete of that key
///    sent there; if that write was acknowledged, with exactly the acknowledged version;
/// 3. no version was given twice: acknowledged writes have distinct versions (a node whose clock
///    went back after a crash would reuse one);
/// 4. no key appears that no client wrote.
///
/// With `tombstonesPurged` (nodes run with a tiny `--tombstone-grace`), a key may also be absent
/// when its last write was a delete: absence is then accepted if the greatest acknowledged write
/// of the key is a delete, or a delete of the key went unanswered (it may have won); absence
/// after an acknowledged put that no delete could have overtaken is still a lost write, and a
/// purged key that comes back below an acknowledged delete is caught by rule 1.
func checkHistory(_ history: [AttemptedWrite], finalRows: [StoredRow], tombstonesPurged: Bool = false) -> [Anomaly] {
    var anomalies: [Anomaly] = []
    let rows = Dictionary(finalRows.map { ($0.key, $0) }, uniquingKeysWith: { first, _ in first })
    let byKey = Dictionary(grouping: history, by: \.key)

    var versions: [Version: AttemptedWrite] = [:]
    for write in history {
        guard case .acknowledged(let version) = write.outcome else { continue }
        if let earlier = versions[version] {
            anomalies.append(Anomaly(key: write.key, what: "version \(version) acknowledged twice (also for \(earlier.key))"))
        }
        versions[version] = write
    }

    for (key, writes) in byKey {
        let acknowledged = writes.compactMap { write -> Version? in
            if case .acknowledged(let version) = write.outcome { version } else { nil }
        }
        guard let row = rows[key] else {
            if tombstonesPurged, mayHaveEndedDeleted(writes) { continue }
            if let greatest = acknowledged.max() {
                anomalies.append(Anomaly(key: key, what: "missing, though \(greatest) was acknowledged"))
            }
            continue
        }
        guard let origin = try? NodeID(row.origin) else {
            anomalies.append(Anomaly(key: key, what: "stored origin \(row.origin) is not a node id"))
            continue
        }
        let stored = Version(lamport: row.lamport, origin: origin)
        if let greatest = acknowledged.max(), stored < greatest {
            anomalies.append(Anomaly(key: key, what: "ended at \(stored), below the acknowledged \(greatest): a write was lost"))
        }
        let candidates = writes.filter { write in
            write.node == row.origin && (row.deleted ? write.value == nil : write.value.map(hex) == row.valueHex)
        }
        if candidates.isEmpty {
            anomalies.append(Anomaly(key: key, what: "stored \(row) matches no write sent to \(row.origin)"))
        } else if !row.deleted, let source = candidates.first, case .acknowledged(let version) = source.outcome, version != stored {
            anomalies.append(Anomaly(key: key, what: "stored \(row) but its write was acknowledged as \(version)"))
        } else if row.deleted, !candidates.contains(where: { $0.outcome == .indeterminate || $0.outcome == .acknowledged(stored) }) {
            anomalies.append(Anomaly(key: key, what: "stored tombstone \(stored) matches no delete sent to \(row.origin)"))
        }
    }
    for key in rows.keys where byKey[key] == nil {
        anomalies.append(Anomaly(key: key, what: "present, but no client wrote it"))
    }
    return anomalies.sorted { $0.key < $1.key }
}

/// Whether the last write of a key may have been a delete: its greatest acknowledged write is a
/// delete, or a delete of it went unanswered (and may hold a greater version than any answer).
func mayHaveEndedDeleted(_ writes: [AttemptedWrite]) -> Bool {
    if writes.contains(where: { $0.value == nil && $0.outcome == .indeterminate }) { return true }
    let greatest = writes.compactMap { write -> (Version, AttemptedWrite)? in
        if case .acknowledged(let version) = write.outcome { (version, write) } else { nil }
    }.max { $0.0 < $1.0 }
    return greatest.map { $0.1.value == nil } ?? true
}

/// Upper-case hex, as sqlite3's `hex()` shows a value in `LocalCluster.rows`.
func hex(_ bytes: [UInt8]) -> String {
    bytes.map { String(format: "%02X", $0) }.joined()
}

extension LocalCluster {
    /// Waits until every node holds identical rows, then checks them against `history`, recording
    /// an issue per anomaly (the seed is in every message). Returns the rows.
    @discardableResult
    func converge(
        checking history: History, seed: UInt64, timeout: Duration = .seconds(60), tombstonesPurged: Bool = false,
        sourceLocation: SourceLocation = #_sourceLocation
    ) async throws -> [StoredRow] {
        let rows = try await waitForConvergence(timeout: timeout)
        for name in names {
            let mine = try await self.rows(name)
            if tombstonesPurged {
                // Purges go on after the rows met (a grace of a fraction of a second), each node
                // at its own moment: a tombstone may have gone since, nothing else may change.
                let tombstones = rows.filter(\.deleted).map(\.description)
                #expect(mine.filter { !$0.deleted } == rows.filter { !$0.deleted }, "seed \(seed): \(name)'s live rows differ from the others'", sourceLocation: sourceLocation)
                #expect(mine.filter(\.deleted).allSatisfy { tombstones.contains($0.description) }, "seed \(seed): \(name) holds a tombstone the others did not", sourceLocation: sourceLocation)
            } else {
                #expect(mine == rows, "seed \(seed): \(name)'s rows differ from the others'", sourceLocation: sourceLocation)
            }
        }
        let writes = history.all
        #expect(writes.contains { if case .acknowledged = $0.outcome { true } else { false } }, "seed \(seed): some writes were acknowledged", sourceLocation: sourceLocation)
        let anomalies = checkHistory(writes, finalRows: rows, tombstonesPurged: tombstonesPurged)
        for anomaly in anomalies.prefix(20) {
            Issue.record("seed \(seed): \(anomaly)", sourceLocation: sourceLocation)
        }
        #expect(anomalies.isEmpty, "seed \(seed): \(anomalies.count) anomalies in \(rows.count) rows", sourceLocation: sourceLocation)
        return rows
    }
}

extension LocalCluster {
    /// Puts one value outside a workload, recording it in `history` so the checker knows it;
    /// `value` must not be one a workload would use (workloads use `wN.cN.N`).
    @discardableResult
    func put(_ key: String, _ value: String, on node: String, recordingIn history: History) async throws -> Version {
        let reply = try await client(node).put(key, value: Array(value.utf8))
        let version = Version(lamport: reply.lamport, origin: try NodeID(reply.origin))
        history.record(AttemptedWrite(key: key, value: Array(value.utf8), node: node, outcome: .acknowledged(version)))
        return version
    }

    /// Polls `node`'s `kv` table until `key` is stored at `version` or a greater one.
    func waitForVersion(_ key: String, atLeast version: Version, on node: String, timeout: Duration = .seconds(30)) async throws {
        try await poll("\(key) at \(version) or later on \(node)", timeout: timeout) {
            guard let row = try await self.rows(node).first(where: { $0.key == key }) else { return "absent" }
            let stored = Version(lamport: row.lamport, origin: try NodeID(row.origin))
            return stored >= version ? nil : "at \(stored)"
        }
    }
}
