import KVStore
import Prometheus

/// The node's Prometheus metrics, served on `GET /metrics` in the text exposition format.
///
/// Counters are created on first use and live as long as the node. Gauges that describe the
/// store (keys, clock, seq) are refreshed when scraped, so they cost nothing between scrapes.
final class NodeMetrics: Sendable {
    let registry = PrometheusCollectorRegistry()
    private let keys: Gauge
    private let lamport: Gauge
    private let seq: Gauge

    init() {
        keys = registry.makeGauge(name: "kv_keys", help: "Live (not deleted) keys stored on this node")
        lamport = registry.makeGauge(name: "kv_lamport", help: "This node's Lamport clock")
        seq = registry.makeGauge(name: "kv_seq", help: "The last seq this node assigned to a change")
    }

    /// Counts one answered request under its route pattern (never the raw path, whose keys
    /// would make the label set unbounded).
    func countRequest(route: String, method: String, status: Int) {
        registry.makeCounter(
            name: "kv_http_requests_total",
            labels: [("route", route), ("method", method), ("status", String(status))],
            help: "HTTP requests answered, by route pattern, method and status"
        ).increment()
    }

    /// The exposition text, with the store gauges read now.
    func render(state: NodeState) -> [UInt8] {
        keys.set(Double(state.liveKeys))
        lamport.set(Double(state.lamport))
        seq.set(Double(state.lastSeq))
        return registry.emitToBuffer()
    }
}
