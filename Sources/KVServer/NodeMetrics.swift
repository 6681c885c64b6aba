import Foundation
import KVCore
import KVStore
import Prometheus
import Replication
import Synchronization

/// The node's Prometheus metrics, served on `GET /metrics` in the text exposition format.
///
/// Request counters and latency histograms are updated as requests are answered. Everything
/// that describes state — the store, the peers, the catch-up, the file size — is read when
/// scraped, so it costs nothing between scrapes. The registry belongs to the node (not to a
/// process-wide `MetricsSystem`), so several nodes can run in one process, as the tests do.
final class NodeMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    private let writes: Counter
    private let writeCount = Atomic<Int64>(0)
    /// The counter and histogram of each (route, method, status) seen, so answering a request
    /// costs one small lock and no label formatting after the first of its kind.
    private let requestSeries = Mutex<[RequestSeries: (Counter, DurationHistogram)]>([:])

    private struct RequestSeries: Hashable {
        let route: String
        let method: String
        let status: Int
    }

    init() {
        writes = registry.makeCounter(descriptor: Self.descriptor("kv_client_writes", unit: "total", "Puts and deletes accepted from clients"))
    }

    private static func descriptor(_ name: String, unit: String = "", _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(metricName: name, unitName: unit, helpText: help)
    }

    private static let latencyBuckets: [Duration] = [
        .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2),
        .milliseconds(5), .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100),
        .milliseconds(250), .milliseconds(500), .seconds(1), .seconds(5),
    ]

    /// Counts one answered request under its route pattern (never the raw path, whose keys
    /// would make the label set unbounded), and its latency.
    func countRequest(route: String, method: String, status: Int, took: Duration) {
        let key = RequestSeries(route: route, method: method, status: status)
        let series = requestSeries.withLock { cache in
            if let found = cache[key] { return found }
            let made = (
                registry.makeCounter(
                    descriptor: Self.descriptor("kv_http_requests", unit: "total", "HTTP requests answered, by route pattern, method and status"),
                    labels: [("route", route), ("method", method), ("status", String(status))]),
                registry.makeDurationHistogram(
                    descriptor: Self.descriptor("kv_http_request_duration", unit: "seconds", "Time to answer a request (writes include their commit), by route pattern and method"),
                    labels: [("route", route), ("method", method)], buckets: Self.latencyBuckets)
            )
            cache[key] = made
            return made
        }
        series.0.increment()
        series.1.recordNanoseconds(took.inNanoseconds)
    }

    /// Counts one put or delete accepted from a client.
    func countClientWrite() {
        writeCount.add(1, ordering: .relaxed)
        writes.increment()
    }

    /// Counts one copy of a key that a read at several nodes found older than the newest and
    /// replaced (`node`: the node repaired, this one or a peer).
    func countReadRepair(of node: NodeID) {
        registry.makeCounter(
            descriptor: Self.descriptor("kv_read_repairs", unit: "total", "Stale copies replaced by reads at several nodes (?r=) this node answered, by node repaired"),
            labels: [("node", node.rawValue)]
        ).increment()
    }

    /// Counts rows a peer's read repair brought that were newer than this node's.
    func countRepairReceived(_ rows: Int) {
        guard rows > 0 else { return }
        registry.makeCounter(
            descriptor: Self.descriptor("kv_read_repairs_received", unit: "total", "Rows that peers' reads at several nodes sent this node and that replaced an older copy")
        ).increment(by: Int64(rows))
    }

    /// Client writes accepted since start.
    var clientWrites: Int64 { writeCount.load(ordering: .relaxed) }

    /// The exposition text, with the state gauges read now.
    func render(state: NodeState, statistics: StoreStatistics, peers: [PeerReport], catchUp: (rowsDone: Int64, rowsToGo: Int64, rowsPerSecond: Double)?, databasePath: String) -> [UInt8] {
        func gauge(_ name: String, _ help: String, _ value: Double, labels: [(String, String)] = []) {
            registry.makeGauge(descriptor: Self.descriptor(name, help), labels: labels).set(value)
        }
        gauge("kv_keys", "Live (not deleted) keys stored on this node", Double(state.liveKeys))
        gauge("kv_lamport", "This node's Lamport clock", Double(state.lamport))
        gauge("kv_seq", "The last seq this node assigned to a change", Double(state.lastSeq))
        gauge("kv_store_transactions", "Write transactions committed since start (a group commit counts once)", Double(statistics.transactions))
        gauge("kv_store_write_requests", "Write requests the store's writer completed since start", Double(statistics.requests))
        gauge("kv_store_largest_group", "The most write requests one transaction carried", Double(statistics.largestGroup))
        gauge("kv_store_transaction_seconds", "Time spent in write transactions since start, BEGIN to COMMIT", statistics.transactionTime.inSeconds)
        gauge("kv_database_bytes", "Size of the database file and its WAL", Double(Self.fileSize(databasePath) + Self.fileSize(databasePath + "-wal")))
        for peer in peers {
            let labels = [("peer", peer.id.rawValue)]
            gauge("kv_peer_reachable", "1 when the last exchange with the peer succeeded", peer.reachable ? 1 : 0, labels: labels)
            gauge("kv_peer_rows_sent", "Rows pushed to the peer since start", Double(peer.rowsSent), labels: labels)
            gauge("kv_peer_rows_received", "Rows received from the peer (pushed or pulled) since start", Double(peer.rowsReceived), labels: labels)
            gauge("kv_peer_rows_refused", "Rows from the peer refused for a lamport beyond the accepted range", Double(peer.rowsRefused), labels: labels)
            gauge("kv_peer_rows_to_push", "Replication lag: rows of this node's feed the peer has not acknowledged", Double(peer.toPush), labels: labels)
            gauge("kv_peer_pulled_seq", "The peer's seq up to which this node applied its feed", Double(peer.pulledSeq), labels: labels)
        }
        gauge("kv_catching_up", "1 while the start-up catch-up runs", catchUp == nil ? 0 : 1)
        gauge("kv_catch_up_rows_done", "Rows pulled by the running catch-up", Double(catchUp?.rowsDone ?? 0))
        gauge("kv_catch_up_rows_to_go", "Rows (at most) the running catch-up still has to pull", Double(catchUp?.rowsToGo ?? 0))
        return registry.emitToBuffer()
    }

    private static func fileSize(_ path: String) -> Int64 {
        ((try? FileManager.default.attributesOfItem(atPath: path)[.size]) as? NSNumber)?.int64Value ?? 0
    }
}
