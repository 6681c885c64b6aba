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
        keys = registry.makeGauge(descriptor: .init(metricName: "kv_keys", unitName: "", helpText: "Live (not deleted) keys stored on this node"))
        lamport = registry.makeGauge(descriptor: .init(metricName: "kv_lamport", unitName: "", helpText: "This node's Lamport clock"))
        seq = registry.makeGauge(descriptor: .init(metricName: "kv_seq", unitName: "", helpText: "The last seq this node assigned to a change"))
    }

    private static var requests: MetricNameDescriptor {
        MetricNameDescriptor(
        metricName: "kv_http_requests", unitName: "total",
            helpText: "HTTP requests answered, by route pattern, method and status")
    }

    /// Counts one answered request under its route pattern (never the raw path, whose keys
    /// would make the label set unbounded).
    func countRequest(route: String, method: String, status: Int) {
        registry.makeCounter(
            descriptor: Self.requests,
            labels: [("route", route), ("method", method), ("status", String(status))]
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
