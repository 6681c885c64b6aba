import Foundation
import KVClient
import KVCore
import NodeHTTP
import Testing
import TestSupport

@Suite("Watch and metrics across a cluster", .serialized)
struct WatchAndMetricsTests {
    /// A watcher on C sees every change to its prefix once, in C's seq order, while the writes
    /// land on A and B; reconnecting with the last seq it saw, it misses nothing and repeats
    /// nothing.
    @Test func aWatchOnCSeesWritesFromAAndBOnceInOrderAndResumes() async throws {
        try await withCluster { cluster in
            try await cluster.waitUntilConnected()
            let watcher = try KVClient(node: cluster.urls["C"]!, timeout: .seconds(10))  // set for every name
            let start = try await watcher.status().seq
            var seen: [WatchEvent] = []
            let firstKeys = Set((0..<20).map { "w/\($0)" })
            try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask {
                    for index in 0..<20 {
                        let node = index % 2 == 0 ? "A" : "B"
                        _ = try await cluster.client(node).put("w/\(index)", value: Array("\(index)".utf8))
                        _ = try await cluster.client(node).put("other/\(index)", value: [1])
                    }
                }
                for try await change in watcher.watch(prefix: "w/", after: start) {
                    seen.append(change.event)
                    if Set(seen.map(\.key)) == firstKeys { break }
                }
                try await group.waitForAll()
            }
            #expect(seen.count == 20, "every change once: \(seen.map(\.key))")
            #expect(seen.map(\.seq) == seen.map(\.seq).sorted() && Set(seen.map(\.seq)).count == 20, "in C's seq order")
            #expect(seen.allSatisfy { $0.key.hasPrefix("w/") && !$0.deleted })
            #expect(Set(seen.map(\.origin)) == ["A", "B"])

            // Disconnected; more writes happen; reconnect after the last seq seen.
            let last = try #require(seen.last?.seq)
            for index in 20..<30 { _ = try await cluster.client("A").put("w/\(index)", value: [2]) }
            _ = try await cluster.client("B").delete("w/0")
            var resumed: [WatchEvent] = []
            for try await change in watcher.watch(prefix: "w/", after: last) {
                resumed.append(change.event)
                if resumed.count == 11 { break }
            }
            #expect(Set(resumed.map(\.key)) == Set((20..<30).map { "w/\($0)" } + ["w/0"]))
            #expect(resumed.allSatisfy { $0.seq > last }, "nothing seen before comes again")
            #expect(resumed.map(\.seq) == resumed.map(\.seq).sorted())
            #expect(resumed.first { $0.key == "w/0" }?.deleted == true)
            await watcher.close()
        }
    }

    /// `/metrics` counters move with writes and with replication.
    @Test func metricsCountWritesAndReplication() async throws {
        try await withCluster { cluster in
            try await cluster.waitUntilConnected()
            let beforeA = try await metrics(of: cluster, "A")
            let beforeB = try await metrics(of: cluster, "B")
            for index in 0..<25 { _ = try await cluster.client("A").put("m/\(index)", value: [1]) }
            try await cluster.waitForConvergence()
            try await poll("A's metrics to show the pushes") {
                let afterA = try await metrics(of: cluster, "A")
                let afterB = try await metrics(of: cluster, "B")
                let checks = [
                    afterA["kv_client_writes_total"] == (beforeA["kv_client_writes_total"] ?? 0) + 25,
                    (afterA[#"kv_peer_rows_sent{peer="B"}"#] ?? 0) >= (beforeA[#"kv_peer_rows_sent{peer="B"}"#] ?? 0) + 25,
                    (afterA[#"kv_peer_rows_sent{peer="C"}"#] ?? 0) >= (beforeA[#"kv_peer_rows_sent{peer="C"}"#] ?? 0) + 25,
                    (afterB[#"kv_peer_rows_received{peer="A"}"#] ?? 0) >= (beforeB[#"kv_peer_rows_received{peer="A"}"#] ?? 0) + 25,
                    afterA[#"kv_peer_rows_to_push{peer="B"}"#] == 0,
                    (afterA["kv_keys"] ?? 0) == 25,
                    (afterA[#"kv_http_requests_total{route="/kv/{key}",method="PUT",status="200"}"#] ?? 0) >= 25,
                ]
                return checks.allSatisfy { $0 } ? nil : "checks \(checks)"
            }
        }
    }

    /// Every sample line of a node's `/metrics`, as name-with-labels → value.
    private func metrics(of cluster: LocalCluster, _ node: String) async throws -> [String: Double] {
        let reply = try await cluster.client(node).send("GET", "/metrics")
        var samples: [String: Double] = [:]
        for line in String(decoding: reply.body, as: UTF8.self).split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else { continue }
            samples[String(line[..<space])] = value
        }
        return samples
    }
}
