import Foundation
import KVClient
import KVCore
import NodeHTTP
import Synchronization
import Testing
import TestSupport

/// Issue 12, reads and the durability it buys: `GET /kv/{key}?r=N|quorum|all` answers with the
/// newest copy among that many nodes and repairs older ones; with `w + r > n` a read sees every
/// write acknowledged before it. Real `kvnode` processes.
@Suite("Reads at several nodes (r) and chosen durability")
struct ReadLevelTests {
    /// Anti-entropy far away, so nothing but the read under test repairs a copy.
    static let quiet = ["--anti-entropy-interval", "3600"]

    static func counter(_ name: String, label: String, in metrics: String) -> Int {
        metrics.split(separator: "\n").first { $0.hasPrefix(name + "{") && $0.contains(label) }
            .flatMap { $0.split(separator: " ").last }.flatMap { Int(Double($0) ?? -1) } ?? 0
    }

    @Test("a copy made stale behind the node's back is repaired by one r=all read, on a peer and on the node that reads")
    func oneReadAtAllRepairs() async throws {
        try await withCluster(extraArguments: Self.quiet) { cluster in
            try await cluster.waitUntilConnected()
            let a = try cluster.client("A")
            _ = try await a.put("warm-up", value: [1])  // so the writes below are past lamport 1
            for key in ["repair/peer", "repair/self"] {
                let reply = try await a.put(key, value: Array("new".utf8), acknowledgement: WriteAcknowledgement(nodes: "all"))
                #expect(reply.ackedBy?.count == 3)
            }
            // Behind B's back: while it is down, its copies are set to an older version (1@C,
            // below the writes' own) with sqlite3. Its marks say it holds everything, so nothing is sent again on restart.
            cluster.stop("B")
            let tamper = try await runCommand(
                URL(fileURLWithPath: "/usr/bin/sqlite3"),
                [cluster.databasePath("B"), "UPDATE kv SET value = CAST('old' AS BLOB), lamport = 1, origin = 'C' WHERE key LIKE 'repair/%'"])
            #expect(tamper.status == 0, "\(tamper.stderr)")
            try await cluster.start(["B"])
            try await cluster.waitUntilConnected()
            let b = try cluster.client("B")
            let stale = try await b.get("repair/peer")
            #expect(stale.map { String(decoding: $0.value, as: UTF8.self) } == "old")

            // r=all on A: A's and C's copies win; B is sent the newest.
            let read = try await a.get("repair/peer", level: ReadLevel(nodes: "all"))
            #expect(read.map { String(decoding: $0.value, as: UTF8.self) } == "new")
            #expect(Set(read?.answeredBy ?? []) == ["A", "B", "C"])
            try await cluster.waitForValue("repair/peer", "new", on: "B", timeout: .seconds(10))
            try await poll("A to count the repair of B") {
                let metrics = String(decoding: try await a.send("GET", "/metrics").body, as: UTF8.self)
                return Self.counter("kv_read_repairs_total", label: #"node="B""#, in: metrics) == 1 ? nil : "not counted"
            }
            let bMetrics = String(decoding: try await b.send("GET", "/metrics").body, as: UTF8.self)
            #expect(bMetrics.contains("kv_read_repairs_received_total 1"), "B counts the row it took")

            // r=all on B itself: B's own copy is the stale one, and B repairs itself.
            let own = try await b.get("repair/self", level: ReadLevel(nodes: "all"))
            #expect(own.map { String(decoding: $0.value, as: UTF8.self) } == "new")
            try await cluster.waitForValue("repair/self", "new", on: "B", timeout: .seconds(10))
            // The repaired rows are the same rows as on A: identical tables everywhere.
            try await cluster.waitForConvergence(timeout: .seconds(10))
        }
    }

    @Test("r above the member count or malformed is 400; r with a node down and no quorum is 504 read_timeout naming who answered; the CLI says it in one line")
    func refusalsAndTimeouts() async throws {
        try await withCluster(extraArguments: Self.quiet) { cluster in
            try await cluster.waitUntilConnected()
            let a = try cluster.client("A")
            for query in ["r=4", "r=0", "r=most", "r=2&timeout=0"] {
                let reply = try await a.send("GET", "/kv/x?\(query)")
                #expect(reply.status == 400, "\(query): \(reply.status)")
            }
            _ = try await a.put("here", value: Array("v".utf8), acknowledgement: WriteAcknowledgement(nodes: "all"))
            cluster.stop("B")
            cluster.stop("C")
            let reply = try await a.send("GET", "/kv/here?r=2&timeout=1")
            #expect(reply.status == 504, "\(String(decoding: reply.body, as: UTF8.self))")
            let body = try JSONDecoder().decode(ErrorBody.self, from: Data(reply.body))
            #expect(body.error == "read_timeout" && body.answeredBy == ["A"], "\(body)")
            let one = try await a.get("here")
            #expect(one != nil, "r=1 still answers from this node alone")

            let cli = try await runCommand(
                Products.executable("kv"), ["--node", cluster.urls["A"]!, "get", "-r", "quorum", "--read-timeout", "0.5", "here"],
                timeout: .seconds(60))
            #expect(cli.status == 2, "\(cli.stdoutText) \(cli.stderr)")
            #expect(cli.stderr.contains("read_timeout") && cli.stderr.split(separator: "\n").count == 1, "\(cli.stderr)")
        }
    }

    @Test("w=2: a write acknowledged by A and B survives A's kill -9 and the loss of its file before A could push it on; it reaches everyone after A is replaced")
    func anAcknowledgedWriteOutlivesItsNode() async throws {
        let seed = SeededRandom.seed()
        try await withPartitionedCluster(seed: seed, extraArguments: ["--anti-entropy-interval", "1"]) { network in
            let cluster = network.cluster
            try await cluster.waitUntilConnected()
            // A's link to C is held: only B can hold the write, and A can never forward it.
            network.set("A", "C", .down)
            let a = try cluster.client("A")
            let reply = try await a.put("durable", value: Array("kept".utf8), acknowledgement: WriteAcknowledgement(nodes: "2"))
            #expect(reply.ackedBy == ["A", "B"], "\(String(describing: reply.ackedBy))")
            network.set("A", "B", .down)
            cluster.kill("A")
            for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: cluster.databasePath("A") + suffix) }
            // Acknowledged by B means on B's disk now: read it there at once, no polling.
            let onB = try await cluster.client("B").get("durable")
            #expect(onB.map { String(decoding: $0.value, as: UTF8.self) } == "kept")
            #expect(onB?.origin == "A" && onB?.lamport == reply.lamport)

            // A is replaced by an empty file under the same id; the write comes back to it.
            network.heal()
            try await cluster.start(["A"])
            for name in ["A", "C"] {
                try await cluster.waitForValue("durable", "kept", on: name, timeout: .seconds(30))
            }
            try await cluster.waitForConvergence(timeout: .seconds(30))
        }
    }

    /// One operation of the register workload, as a client saw it.
    struct Operation: Sendable {
        enum Kind: Sendable { case write, read }
        enum Outcome: Sendable, Equatable {
            /// A write acknowledged by w nodes, or a read that answered: the version (nil: 404).
            case ok(Version?)
            /// A write whose outcome is unknown (504, a lost reply): it may or may not be seen.
            case unknown
            /// A read that could not answer (504): no claim.
            case failed
        }
        let client: Int
        let kind: Kind
        let key: String
        /// A write's value, or the value a read returned.
        let value: String?
        let started: ContinuousClock.Instant
        let ended: ContinuousClock.Instant
        let outcome: Outcome
    }

    /// The operations of every client, in the order they ended.
    final class History: Sendable {
        private let recorded = Mutex<[Operation]>([])
        func append(_ operation: Operation) { recorded.withLock { $0.append(operation) } }
        var operations: [Operation] { recorded.withLock { $0 } }
    }

    @Test("w=2 and r=2 under random partitions that leave a quorum: every read returns the latest acknowledged write or a later one")
    func quorumReadsSeeAcknowledgedWrites() async throws {
        let seed = SeededRandom.seed()
        print("quorumReadsSeeAcknowledgedWrites: seed \(seed) (replay with KV_SEED=\(seed))")
        try await withPartitionedCluster(seed: seed, extraArguments: ["--anti-entropy-interval", "1"]) { network in
            let cluster = network.cluster
            try await cluster.waitUntilConnected()
            let history = History()
            let runFor: Duration = .seconds(12)
            let deadline = ContinuousClock.now + runFor
            let keys = ["reg/1", "reg/2"]

            try await withThrowingTaskGroup(of: Void.self) { group in
                for (index, name) in cluster.names.enumerated() {
                    let url = cluster.urls[name]!
                    group.addTask {
                        let client = try KVClient(node: url, timeout: .seconds(10))
                        defer { Task { await client.close() } }
                        var random = SeededRandom(seed: seed &+ UInt64(index))
                        var count = 0
                        while ContinuousClock.now < deadline, count < 2_000 {
                            count += 1
                            let key = keys[Int.random(in: 0..<keys.count, using: &random)]
                            let started = ContinuousClock.now
                            if Bool.random(using: &random) {
                                let value = "c\(index)-\(count)"
                                var outcome = Operation.Outcome.unknown
                                if let reply = try? await client.put(key, value: Array(value.utf8), acknowledgement: WriteAcknowledgement(nodes: "2", timeoutSeconds: 0.5)) {
                                    outcome = .ok(Version(lamport: reply.lamport, origin: try NodeID(reply.origin)))
                                }
                                let operation = Operation(client: index, kind: .write, key: key, value: value, started: started, ended: .now, outcome: outcome)
                                history.append(operation)
                            } else {
                                var outcome = Operation.Outcome.failed
                                var value: String?
                                do {
                                    let read = try await client.get(key, level: ReadLevel(nodes: "2", timeoutSeconds: 0.5))
                                    value = read.map { String(decoding: $0.value, as: UTF8.self) }
                                    outcome = .ok(try read.map { Version(lamport: $0.lamport, origin: try NodeID($0.origin)) })
                                } catch {}
                                let operation = Operation(client: index, kind: .read, key: key, value: value, started: started, ended: .now, outcome: outcome)
                                history.append(operation)
                            }
                        }
                    }
                }
                // The nemesis: every 0.8–1.6 s (longer than the 0.5 s the operations wait) a new network, always leaving a majority that
                // can reach each other: whole, one node cut off (refused or silent), or a bridge
                // (A–B and B–C pass, A–C cut).
                group.addTask {
                    var random = SeededRandom(seed: seed ^ 0x9E37)
                    let names = cluster.names
                    while ContinuousClock.now < deadline {
                        let faults: FaultProxy.Faults = Bool.random(using: &random) ? .down : .silent
                        switch Int.random(in: 0..<4, using: &random) {
                        case 0: network.heal()
                        case 1, 2: network.isolate(names[Int.random(in: 0..<names.count, using: &random)], with: faults)
                        default:
                            let middle = Int.random(in: 0..<names.count, using: &random)
                            let ends = names.indices.filter { $0 != middle }.map { names[$0] }
                            network.heal()
                            network.set(ends[0], ends[1], faults)
                            network.set(ends[1], ends[0], faults)
                        }
                        try await Task.sleep(for: .milliseconds(Int.random(in: 800...1600, using: &random)))
                    }
                    network.heal()
                }
                try await group.waitForAll()
            }

            let operations = history.operations
            let violations = Self.registerViolations(operations)
            let writes = operations.filter { $0.kind == .write }
            let reads = operations.filter { $0.kind == .read }
            let acknowledged = writes.filter { if case .ok = $0.outcome { return true } else { return false } }.count
            let answered = reads.filter { if case .ok = $0.outcome { return true } else { return false } }
            let constrained = answered.filter { read in
                writes.contains { $0.key == read.key && $0.ended < read.started && $0.outcome != .unknown }
            }.count
            print("figures: seed \(seed): \(operations.count) operations in \(runFor): \(acknowledged) of \(writes.count) writes acknowledged by 2, \(answered.count) of \(reads.count) reads answered at 2 nodes, \(constrained) of them after an acknowledged write; \(violations.count) violations")
            #expect(violations.count == 0, "seed \(seed): \(violations.count) violations, e.g. \(violations.prefix(5).joined(separator: "\n"))")
            // About 60 operations in 12 s, split between reads and writes by the seed: 10 of each
            // kind is enough to mean something, and a busy CI start stays above it (20 did not:
            // seed 3853465626111430386 had 14 constrained reads and 0 violations).
            #expect(acknowledged >= 10 && constrained >= 10, "seed \(seed): too few operations to mean anything")
            try await cluster.waitForConvergence(timeout: .seconds(30))
        }
    }

    /// The register check over a history: a read that answered returns the newest version of
    /// its key among the writes acknowledged before it started, or a later one (one that was
    /// acknowledged, is still unknown, or ran concurrently), and only ever a value some write
    /// wrote, at the version that write got.
    static func registerViolations(_ operations: [Operation]) -> [String] {
        var violations: [String] = []
        let writes = operations.filter { $0.kind == .write }
        var writeByValue: [String: Operation] = [:]
        for write in writes { if let value = write.value { writeByValue[value] = write } }
        for read in operations where read.kind == .read {
            guard case .ok(let version) = read.outcome else { continue }
            let floor = writes.compactMap { write -> Version? in
                guard write.key == read.key, write.ended < read.started, case .ok(let written?) = write.outcome else { return nil }
                return written
            }.max()
            if let value = read.value {
                guard let write = writeByValue[value], write.key == read.key else {
                    violations.append("read of \(read.key) by client \(read.client) returned '\(value)', which no write of that key wrote")
                    continue
                }
                if case .ok(let written?) = write.outcome, written != version {
                    violations.append("read of \(read.key) returned '\(value)' at \(String(describing: version)) but that write got \(written)")
                }
                if write.started > read.ended {
                    violations.append("read of \(read.key) returned '\(value)' before its write began")
                }
            }
            if let floor {
                guard let version, version >= floor else {
                    violations.append("read of \(read.key) by client \(read.client) returned \(version.map { "\($0)" } ?? "nothing") although \(floor) was acknowledged before it began")
                    continue
                }
            }
        }
        return violations
    }
}
