import Foundation
import KVClient
import KVCore
import Testing
import TestSupport

extension FaultInjection {
    /// Issue 4, "Randomized nemesis run" (DESIGN.md §6, scenario 4): concurrent clients send random
    /// puts and deletes to all three nodes while a nemesis kills (-9), restarts and partitions nodes
    /// at random; then everything is healed and restarted, and the checker verifies identical rows
    /// on every node and that no acknowledged write was lost except to a greater version of its key.
    ///
    /// Prints its seed; `KV_SEED=<seed>` replays the nemesis's schedule and every client's operations
    /// (how they interleave depends on timing). The short run is part of the suite; the long one runs
    /// only with `KV_NEMESIS_LONG=1` (`KV_NEMESIS_SECONDS` sets its length, 600 by default).
    @Suite("Randomized nemesis", .serialized)
    struct NemesisTests {
        @Test func shortRun() async throws {
            try await runNemesis(name: "short", duration: .seconds(20), maxOperations: 20_000, keys: 40)
        }

        /// The same with `--tombstone-grace 0.2`: tombstones are purged as soon as every peer has
        /// acknowledged them, all through the faults (issue 4, "Deletes that stay deleted"). The
        /// checker then accepts a key's absence only where a delete may have won, and a deleted
        /// key that comes back is a lost write.
        @Test func shortRunPurgingTombstones() async throws {
            try await runNemesis(name: "short-purging", duration: .seconds(20), maxOperations: 20_000, keys: 40, tombstoneGrace: 0.2)
        }

        /// The same with membership changes in the schedule (issue 11): nodes join through a
        /// random member, leave with `--leave`, are killed and removed, or are replaced by an
        /// empty file under the same id, while the three original nodes take the load and the
        /// faults. The joined nodes reach the others directly, not through the proxies.
        @Test func shortRunWithMembershipChanges() async throws {
            try await runNemesis(name: "short-membership", duration: .seconds(20), maxOperations: 20_000, keys: 40, membership: true)
        }

        @Test(.enabled(if: ProcessInfo.processInfo.environment["KV_NEMESIS_LONG"] == "1", "set KV_NEMESIS_LONG=1"))
        func longRun() async throws {
            let environment = ProcessInfo.processInfo.environment
            let seconds = Int(environment["KV_NEMESIS_SECONDS"] ?? "") ?? 600
            let grace = environment["KV_NEMESIS_TOMBSTONE_GRACE"].flatMap(Double.init)
            try await runNemesis(
                name: "long", duration: .seconds(seconds), maxOperations: 1_000_000, keys: 200, tombstoneGrace: grace,
                membership: environment["KV_NEMESIS_MEMBERSHIP"] == "1")
        }
    }
}

/// What the nemesis did, counted by kind.
struct NemesisTally: CustomStringConvertible {
    var counts: [String: Int] = [:]
    mutating func note(_ kind: String) { counts[kind, default: 0] += 1 }
    var total: Int { counts.values.reduce(0, +) }
    var description: String { counts.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ") }
}

private func runNemesis(
    name: String, duration: Duration, maxOperations: Int, keys: Int, tombstoneGrace: Double? = nil, membership: Bool = false
) async throws {
    let seed = SeededRandom.seed()
    print("nemesis \(name): seed \(seed) (replay with KV_SEED=\(seed)), \(duration), at most \(maxOperations) operations, tombstone grace \(tombstoneGrace.map { "\($0) s" } ?? "default")\(membership ? ", membership changes" : "")")
    var random = SeededRandom(seed: seed)
    let purging = tombstoneGrace != nil
    let graceArguments = tombstoneGrace.map { ["--tombstone-grace", "\($0)"] } ?? []
    try await withPartitionedCluster(seed: seed, extraArguments: ["--anti-entropy-interval", "1"] + graceArguments) { network in
        let cluster = network.cluster
        let workload = try Workload(
            cluster: cluster, seed: seed ^ 0x5EED, options: Workload.Options(keys: keys, freshKeyOneIn: 4, pause: .milliseconds(10)))
        var tally = NemesisTally()
        var schedule: [String] = []
        var down: Set<String> = []
        var members = MembershipNemesis()
        let started = ContinuousClock.now
        do {
            while ContinuousClock.now - started < duration, workload.history.count < maxOperations {
                let step =
                    if membership, Int.random(in: 0..<4, using: &random) == 0,
                        let change = try await members.step(network, down: down, random: &random)
                    {
                        change
                    } else {
                        try await nemesisStep(network, down: &down, random: &random)
                    }
                if step.kind == "kill -9", let victim = step.detail.split(separator: " ").last.map(String.init) {
                    // The victim's file as the crash left it holds every write it ever acknowledged.
                    let rows = try await cluster.rows(victim)
                    expectStored(
                        workload.history.acknowledged(by: victim, before: .now), in: rows, node: victim, seed: seed,
                        purgedMayBeAbsent: purging ? workload.history.all : nil)
                }
                tally.note(step.kind)
                schedule.append(String(format: "%7.2fs ", (ContinuousClock.now - started).secondsValue) + step.detail)
                // Let the clients write under this fault for a while: a bounded pause that times
                // the fault; nothing waits for a state here.
                try await Task.sleep(for: .milliseconds(Int.random(in: 200...1_500, using: &random)))
            }
            network.heal()
            try await cluster.start()
            await workload.stop()
            let healed = ContinuousClock.now
            let rows = try await cluster.converge(
                checking: workload.history, seed: seed, timeout: .seconds(120), tombstonesPurged: purging)
            let convergence = ContinuousClock.now - healed
            let writes = workload.history.all
            let acknowledged = writes.count { $0.outcome != .indeterminate }
            let proxies = network.statistics
            print("""
                figures: nemesis \(name), seed \(seed): \(String(format: "%.1f", (healed - started).secondsValue)) s of faults, \
                \(writes.count) operations (\(acknowledged) acknowledged, \(writes.count - acknowledged) indeterminate), \
                \(tally.total) faults (\(tally)), proxies reset \(proxies.refused + proxies.reset + proxies.lostChunks) connections; \
                \(purging ? "\(Set(writes.map(\.key)).count - rows.count) keys purged after their delete, " : "")converged \(rows.count) keys in \(String(format: "%.1f", convergence.secondsValue)) s after healing
                """)
        } catch {
            await workload.stop()
            print("nemesis schedule (seed \(seed)):\n" + schedule.joined(separator: "\n"))
            throw error
        }
    }
}

/// Membership changes for the nemesis: extra nodes (M1, M2…) that join through a random
/// original node, and later leave (`--leave`), are killed and removed, or are replaced by an
/// empty file under the same id. At most two at a time; the original three are never removed,
/// so every write of the load stays one the checker must find.
struct MembershipNemesis {
    private var joined: [String] = []
    private var next = 1

    mutating func step(
        _ network: PartitionedCluster, down: Set<String>, random: inout SeededRandom
    ) async throws -> (kind: String, detail: String)? {
        let cluster = network.cluster
        let up = ["A", "B", "C"].filter { !down.contains($0) }
        guard let through = up.randomElement(using: &random) else { return nil }
        let flags = ["--anti-entropy-interval", "1", "--leave", "--leave-timeout", "3"]
        if joined.count < 2, joined.isEmpty || Bool.random(using: &random) {
            let name = "M\(next)"
            next += 1
            try await cluster.join(name, through: [through], extraArguments: flags)
            joined.append(name)
            return ("join", "join \(name) through \(through)")
        }
        let victim = joined[Int.random(in: 0..<joined.count, using: &random)]
        switch Int.random(in: 0..<3, using: &random) {
        case 0:
            cluster.stop(victim)
            cluster.forget(victim)
            joined.removeAll { $0 == victim }
            return ("leave", "stop \(victim) with --leave")
        case 1:
            cluster.kill(victim)
            do {
                _ = try await cluster.client(through).removeMember(victim)
            } catch {
                // The row of a join made through a node cut off from this one may not have
                // arrived yet: the member is unknown here. It stays down; retried later.
                return ("remove refused", "kill -9 \(victim); \(through) does not know it yet: \(error)")
            }
            cluster.forget(victim)
            joined.removeAll { $0 == victim }
            return ("remove", "kill -9 \(victim), remove it through \(through)")
        default:
            cluster.kill(victim)
            cluster.wipe(victim)
            try await cluster.join(victim, through: [through], samePort: true, extraArguments: flags)
            return ("replace", "kill -9 \(victim), replace it by an empty file through \(through)")
        }
    }
}

/// One random fault (or repair), applied; returns its kind and a line for the schedule.
private func nemesisStep(
    _ network: PartitionedCluster, down: inout Set<String>, random: inout SeededRandom
) async throws -> (kind: String, detail: String) {
    let cluster = network.cluster
    let names = network.names
    let pick = { (random: inout SeededRandom, from: [String]) in from[Int.random(in: 0..<from.count, using: &random)] }
    var choice = Int.random(in: 0..<10, using: &random)
    if choice < 2, down.count >= 2 { choice = 2 }  // two are down already: bring one back
    switch choice {
    case 0, 1:
        let victim = pick(&random, names.filter { !down.contains($0) })
        cluster.kill(victim)
        down.insert(victim)
        return ("kill -9", "kill -9 \(victim)")
    case 2, 3:
        guard !down.isEmpty else { return ("heal", healing(network)) }
        let node = pick(&random, down.sorted())
        try await cluster.start([node])
        down.remove(node)
        return ("restart", "restart \(node)")
    case 4:
        let node = pick(&random, names)
        let faults = Bool.random(using: &random) ? FaultProxy.Faults.down : .silent
        network.isolate(node, with: faults)
        return ("isolate", "isolate \(node) (\(faults))")
    case 5:
        let alone = pick(&random, names)
        let faults = Bool.random(using: &random) ? FaultProxy.Faults.down : .silent
        network.partition([names.filter { $0 != alone }, [alone]], with: faults)
        return ("split 2–1", "split \(names.filter { $0 != alone }.joined()) | \(alone) (\(faults))")
    case 6:
        let from = pick(&random, names)
        let to = pick(&random, names.filter { $0 != from })
        let faults = Bool.random(using: &random) ? FaultProxy.Faults.down : FaultProxy.Faults(blackholed: [.toClient])
        network.set(from, to, faults)
        return ("one-way", "one-way \(from)→\(to) (\(faults))")
    case 7:
        let faults = FaultProxy.Faults(
            delay: .milliseconds(Int.random(in: 0...20, using: &random)), jitter: .milliseconds(20),
            lossRate: Double(Int.random(in: 1...10, using: &random)) / 100)
        network.degradeEveryLink(faults)
        return ("slow lossy", "every link \(faults)")
    case 8:
        for link in network.links { network.proxy(link.from, link.to).resetConnections() }
        return ("reset", "reset every connection")
    default:
        return ("heal", healing(network))
    }
}

private func healing(_ network: PartitionedCluster) -> String {
    network.heal()
    return "heal the network"
}

extension Duration {
    var secondsValue: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) + Double(attoseconds) / 1e18
    }
}
