import Foundation
import Testing
import TestSupport

/// A `LocalCluster` whose nodes reach each other only through `FaultProxy`s, one per ordered
/// pair: node X's `--peer Y=URL` names the proxy X→Y, which carries X's requests to Y (pushes,
/// pulls, hellos) and Y's replies to them. So the faults of proxy X→Y are "the network as X
/// sees it when it calls Y", and a partition can be cut per direction. Test clients talk to the
/// nodes directly: partitions are between nodes, never between a client and its node.
final class PartitionedCluster: @unchecked Sendable {
    // @unchecked: used by one test at a time, from one task; the proxies are Sendable.
    let cluster: LocalCluster
    private let proxies: [Link: FaultProxy]

    /// One direction between two nodes.
    struct Link: Hashable, CustomStringConvertible {
        let from: String
        let to: String
        var description: String { "\(from)→\(to)" }
    }

    /// Starts a proxy for every ordered pair of `cluster`'s nodes and routes the nodes through
    /// them; call before the nodes start. `seed` drives the proxies' jitter and loss.
    init(_ cluster: LocalCluster, seed: UInt64) throws {
        self.cluster = cluster
        var proxies: [Link: FaultProxy] = [:]
        for (index, from) in cluster.names.enumerated() {
            for to in cluster.names where to != from {
                let port = Int(cluster.urls[to]!.split(separator: ":").last!)!  // LocalCluster made it
                let proxy = try FaultProxy(targetPort: port, seed: seed &+ UInt64(index * 31 + proxies.count))
                proxies[Link(from: from, to: to)] = proxy
                cluster.routes[from, default: [:]][to] = proxy.url
            }
        }
        self.proxies = proxies
        names = cluster.names
    }

    /// The nodes behind proxies: the cluster's nodes when the proxies were made (a node that
    /// joins later reaches the others directly).
    let names: [String]
    var links: [Link] { proxies.keys.sorted { ($0.from, $0.to) < ($1.from, $1.to) } }

    func proxy(_ from: String, _ to: String) -> FaultProxy { proxies[Link(from: from, to: to)]! }

    /// Sets the faults of the one direction `from` → `to`.
    func set(_ from: String, _ to: String, _ faults: FaultProxy.Faults) {
        proxy(from, to).set(faults)
    }

    /// Cuts every link between nodes of different groups, both directions, with `faults`;
    /// links inside a group pass. Nodes in no group are cut from everyone.
    func partition(_ groups: [[String]], with faults: FaultProxy.Faults = .down) {
        let group = Dictionary(uniqueKeysWithValues: groups.enumerated().flatMap { index, members in members.map { ($0, index) } })
        for link in links {
            let together = group[link.from] != nil && group[link.from] == group[link.to]
            proxies[link]!.set(together ? .none : faults)
        }
    }

    /// Cuts `node` from every other node, both directions.
    func isolate(_ node: String, with faults: FaultProxy.Faults = .down) {
        partition([names.filter { $0 != node }], with: faults)
    }

    /// Puts `faults` on every link.
    func degradeEveryLink(_ faults: FaultProxy.Faults) {
        for proxy in proxies.values { proxy.set(faults) }
    }

    /// Every link passes everything again. Bytes held by a silent partition are delivered.
    func heal() {
        for proxy in proxies.values { proxy.set(.none) }
    }

    /// What every proxy has done, summed.
    var statistics: FaultProxy.Statistics {
        proxies.values.reduce(into: FaultProxy.Statistics()) { total, proxy in
            let one = proxy.statistics
            total.forwarded += one.forwarded
            total.refused += one.refused
            total.lostChunks += one.lostChunks
            total.reset += one.reset
            total.bytes += one.bytes
        }
    }

    /// The faults in force, link by link, for failure messages.
    var faultSummary: String {
        links.map { "\($0): \(proxies[$0]!.faults)" }.joined(separator: "; ")
    }

    func close() {
        for proxy in proxies.values { proxy.close() }
    }
}

/// Runs `body` with a fresh three-node cluster behind proxies, started, and tears down nodes and
/// proxies on every path (node logs are printed on failure, as `withCluster` does).
func withPartitionedCluster(
    seed: UInt64, names: [String] = ["A", "B", "C"], extraArguments: [String] = [], start: Bool = true,
    _ body: (PartitionedCluster) async throws -> Void
) async throws {
    try await withCluster(names: names, extraArguments: extraArguments, start: false) { cluster in
        let network = try PartitionedCluster(cluster, seed: seed)
        defer { network.close() }
        if start { try await cluster.start() }
        do {
            try await body(network)
        } catch {
            print("faults in force at the failure: \(network.faultSummary)")
            throw error
        }
    }
}
