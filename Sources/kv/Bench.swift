import ArgumentParser
import Foundation
import KVClient
import KVCore
import NodeHTTP
import Synchronization

/// `kv bench`: a load generator in the spirit of redis-benchmark, over persistent HTTP/1.1
/// connections, with latency percentiles and, against several nodes, replication lag.
struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure throughput and latency of a node or a cluster.",
        discussion: """
            Runs --clients concurrent clients, each on its own keep-alive connection, for \
            --duration seconds against the --node(s) (clients are spread over them), and prints \
            requests per second and latency percentiles (p50, p90, p99, p99.9, max). Keys are \
            bench/<n> for n in 0..<--keys, chosen at random; put writes --value-size bytes; get \
            reads (a key never written answers 404 and counts as a miss, not an error); mixed \
            does --read-percent reads and the rest puts. --rate caps the total request rate. \
            --w and --r ask for writes acknowledged by, and reads at, several nodes.

            With several --node, the first node takes the writes' lag samples: about 20 times a \
            second a just-acknowledged put is polled on every other node until readable, and \
            the lag percentiles are printed, with the rows each node sent to its peers per \
            client write (from /status, before and after).

            Examples:
              kv bench put --clients 64 --duration 10s
              kv bench mixed --node http://127.0.0.1:8000 --node http://127.0.0.1:8001 --node http://127.0.0.1:8002
              kv bench get --keys 1000 --json
              kv bench put --w quorum --node http://127.0.0.1:8000
            """)

    enum Workload: String, ExpressibleByArgument, CaseIterable {
        case put, get, mixed
    }

    @Argument(help: "put, get or mixed.")
    var workload: Workload

    /// `--node`, repeatable: the nodes to load (GlobalOptions, so it may stand anywhere).
    @OptionGroup var global: GlobalOptions

    @Option(help: "Concurrent clients, each with its own connection.")
    var clients: Int = 64

    @Option(name: .customLong("duration"), help: ArgumentHelp("How long to run: seconds, or a number with ms, s or m (10, 10s, 500ms, 2m).", valueName: "time"))
    var runTime: BenchTime = BenchTime(seconds: 10)

    var duration: Double { runTime.seconds }

    @Option(help: "Distinct keys to choose from.")
    var keys: Int = 100_000

    @Option(help: ArgumentHelp("Bytes per value.", valueName: "bytes"))
    var valueSize: Int = 100

    @Option(help: "Total requests per second at most (default: as fast as the node answers).")
    var rate: Double?

    @Option(help: "Percent of reads in the mixed workload.")
    var readPercent: Int = 50

    @Option(name: .customLong("w"), help: ArgumentHelp("Puts answer once this many nodes hold them: a number, quorum or all (default 1).", valueName: "nodes"))
    var writeAt: String?

    @Option(name: .customLong("r"), help: ArgumentHelp("Gets read at this many nodes: a number, quorum or all (default 1).", valueName: "nodes"))
    var readAt: String?

    @Flag(help: "Print one JSON object instead of text.")
    var json = false

    func validate() throws {
        guard (1...10_000).contains(clients) else { throw ValidationError("--clients must be from 1 to 10000") }
        guard duration > 0, duration <= 3_600 else { throw ValidationError("--duration must be from 0 to 3600 seconds") }
        guard keys >= 1 else { throw ValidationError("--keys must be at least 1") }
        guard (0...(1 << 20)).contains(valueSize) else { throw ValidationError("--value-size must be from 0 to 1048576") }
        guard (0...100).contains(readPercent) else { throw ValidationError("--read-percent must be from 0 to 100") }
        if let rate, rate <= 0 { throw ValidationError("--rate must be positive") }
        try NodeCountOption.validate(writeAt, flag: "--w", timeout: nil, timeoutFlag: "")
        try NodeCountOption.validate(readAt, flag: "--r", timeout: nil, timeoutFlag: "")
    }

    var targetNodes: [String] {
        global.nodes.isEmpty ? [global.nodeURL] : global.nodes
    }

    func run() async throws {
        let targets = targetNodes
        let token = try global.clientToken()
        let tls = try global.clientTLS()
        let before = targets.count > 1 ? try await Self.replicationCounters(targets, token: token, tls: tls) : nil
        let recorder = Recorder()
        let value = [UInt8](repeating: UInt8(ascii: "v"), count: valueSize)
        let deadline = ContinuousClock.now + .milliseconds(Int64(duration * 1000))
        let perClientInterval: Duration? = rate.map { .nanoseconds(Int64(Double(clients) / $0 * 1e9)) }
        let lagProbe = targets.count > 1 && workload != .get ? LagProbe(targets: targets, token: token, tls: tls) : nil

        async let probing: Void? = lagProbe?.run()
        do {
            try await runClients(targets: targets, token: token, tls: tls, recorder: recorder, value: value, deadline: deadline, interval: perClientInterval, lagProbe: lagProbe)
        } catch {
            lagProbe?.finish()
            _ = await probing
            throw error
        }
        lagProbe?.finish()
        _ = await probing
        // Rows still in flight would be missing from the count: wait (10 s at most) until every
        // node's peers have acknowledged everything.
        if targets.count > 1 { await Self.waitForReplicationToSettle(targets, token: token, tls: tls, within: .seconds(10)) }
        let after = targets.count > 1 ? try await Self.replicationCounters(targets, token: token, tls: tls) : nil
        let report = recorder.report(seconds: duration)
        let lag = lagProbe?.percentiles()
        var rowsPerWrite: Double?
        if let before, let after, after.writes > before.writes {
            rowsPerWrite = Double(after.sent - before.sent) / Double(after.writes - before.writes)
        }
        print(render(report, lag: lag, rowsPerWrite: rowsPerWrite))
        if report.errors > 0, report.requests == 0 {
            throw Failure(message: "every request failed; first error: \(report.firstError ?? "?")", status: ExitStatus.refused)
        }
    }

    /// Runs the clients until `deadline`, spread over `targets`, recording every answer.
    private func runClients(
        targets: [String], token: String?, tls: ClientTLS?, recorder: Recorder, value: [UInt8], deadline: ContinuousClock.Instant,
        interval: Duration?, lagProbe: LagProbe?
    ) async throws {
        try await withThrowingTaskGroup(of: Void.self) { group in
            for index in 0..<clients {
                let node = targets[index % targets.count]
                let workload = self.workload
                let keys = self.keys
                let readPercent = self.readPercent
                let acknowledgement = writeAt.map { WriteAcknowledgement(nodes: $0) }
                let level = readAt.map { ReadLevel(nodes: $0) }
                group.addTask {
                    let client = try KVClient(node: node, token: token, tls: tls)
                    defer { Task { await client.close() } }
                    var generator = SystemRandomNumberGenerator()
                    var next = ContinuousClock.now
                    while ContinuousClock.now < deadline {
                        if let interval {
                            next = next + interval
                            if next > ContinuousClock.now { try? await Task.sleep(until: next) }
                        }
                        let key = "bench/\(Int.random(in: 0..<keys, using: &generator))"
                        let read = workload == .get || (workload == .mixed && Int.random(in: 0..<100, using: &generator) < readPercent)
                        let started = ContinuousClock.now
                        do {
                            if read {
                                let found = try await client.get(key, level: level)
                                recorder.record(ContinuousClock.now - started, miss: found == nil)
                            } else {
                                let reply = try await client.put(key, value: value, acknowledgement: acknowledgement)
                                let acknowledged = ContinuousClock.now
                                recorder.record(acknowledged - started, miss: false)
                                if node == targets[0] { lagProbe?.offer(key: key, lamport: reply.lamport, acknowledged: acknowledged) }
                            }
                        } catch {
                            recorder.recordError("\(error)")
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
    }

    /// ` (w=quorum, r=2)` when the run asked for more than one node.
    private var levels: String {
        let named = [writeAt.map { "w=\($0)" }, readAt.map { "r=\($0)" }].compactMap { $0 }
        return named.isEmpty ? "" : " (" + named.joined(separator: ", ") + ")"
    }

    private func render(_ report: Recorder.Report, lag: Percentiles?, rowsPerWrite: Double?) -> String {
        func ms(_ duration: Duration) -> Double { (duration.inSeconds * 1000 * 1000).rounded() / 1000 }
        if json {
            var object: [String: Any] = [
                "workload": workload.rawValue, "clients": clients, "duration_s": duration, "nodes": targetNodes,
                "w": writeAt ?? "1", "r": readAt ?? "1",
                "requests": report.requests, "errors": report.errors, "misses": report.misses,
                "requests_per_second": (Double(report.requests) / duration).rounded(),
                "latency_ms": report.latency.map { [
                    "p50": ms($0.p50), "p90": ms($0.p90), "p99": ms($0.p99), "p999": ms($0.p999), "max": ms($0.max),
                ] } ?? [:],
            ]
            if let lag {
                object["replication_lag_ms"] = ["samples": lag.count, "p50": ms(lag.p50), "p90": ms(lag.p90), "p99": ms(lag.p99), "max": ms(lag.max)]
            }
            if let rowsPerWrite { object["rows_sent_per_write"] = (rowsPerWrite * 100).rounded() / 100 }
            let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
            return String(decoding: data, as: UTF8.self)
        }
        var lines = [
            "\(workload.rawValue)\(levels): \(report.requests) requests in \(duration) s from \(clients) clients to \(targetNodes.count) node(s): \(Int(Double(report.requests) / duration)) req/s",
        ]
        if let latency = report.latency {
            lines.append("latency ms: p50 \(ms(latency.p50))  p90 \(ms(latency.p90))  p99 \(ms(latency.p99))  p99.9 \(ms(latency.p999))  max \(ms(latency.max))")
        }
        if report.misses > 0 { lines.append("misses (404): \(report.misses)") }
        if report.errors > 0 { lines.append("errors: \(report.errors) (first: \(report.firstError ?? "?"))") }
        if let lag {
            lines.append("replication lag ms (\(lag.count) samples): p50 \(ms(lag.p50))  p90 \(ms(lag.p90))  p99 \(ms(lag.p99))  max \(ms(lag.max))")
        }
        if let rowsPerWrite { lines.append(String(format: "rows sent per client write: %.2f", rowsPerWrite)) }
        return lines.joined(separator: "\n")
    }

    static func waitForReplicationToSettle(_ targets: [String], token: String?, tls: ClientTLS?, within limit: Duration) async {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            var settled = true
            for node in targets {
                guard let client = try? KVClient(node: node, timeout: .seconds(2), token: token, tls: tls) else { continue }
                let status = try? await client.status()
                await client.close()
                if status?.peers.contains(where: { $0.toPush > 0 }) ?? true { settled = false }
            }
            if settled { return }
            try? await Task.sleep(for: .milliseconds(50))
        }
    }

    /// Σ rows sent to peers and Σ client writes over all nodes, from `/status`.
    static func replicationCounters(_ targets: [String], token: String?, tls: ClientTLS?) async throws -> (sent: Int64, writes: Int64) {
        var sent: Int64 = 0
        var writes: Int64 = 0
        for node in targets {
            let client = try KVClient(node: node, token: token, tls: tls)
            let status = try await client.status()
            await client.close()
            sent += status.peers.reduce(0) { $0 + $1.rowsSent }
            writes += status.clientWrites
        }
        return (sent, writes)
    }
}

/// Latency percentiles of a sorted sample.
struct Percentiles {
    let count: Int
    let p50: Duration
    let p90: Duration
    let p99: Duration
    let p999: Duration
    let max: Duration

    init?(_ unsorted: [Duration]) {
        guard !unsorted.isEmpty else { return nil }
        let sorted = unsorted.sorted()
        func at(_ fraction: Double) -> Duration { sorted[Swift.min(sorted.count - 1, Int(Double(sorted.count - 1) * fraction + 0.5))] }
        count = sorted.count
        p50 = at(0.5)
        p90 = at(0.9)
        p99 = at(0.99)
        p999 = at(0.999)
        max = sorted[sorted.count - 1]
    }
}

/// Collects latencies from every client task.
final class Recorder: Sendable {
    private struct State {
        var latencies: [Duration] = []
        var misses = 0
        var errors = 0
        var firstError: String?
    }

    private let state = Mutex(State())

    struct Report {
        let requests: Int
        let misses: Int
        let errors: Int
        let firstError: String?
        let latency: Percentiles?
    }

    func record(_ latency: Duration, miss: Bool) {
        state.withLock { state in
            state.latencies.append(latency)
            if miss { state.misses += 1 }
        }
    }

    func recordError(_ description: String) {
        state.withLock { state in
            state.errors += 1
            if state.firstError == nil { state.firstError = description }
        }
    }

    func report(seconds: Double) -> Report {
        state.withLock { state in
            Report(
                requests: state.latencies.count, misses: state.misses, errors: state.errors,
                firstError: state.firstError, latency: Percentiles(state.latencies))
        }
    }
}

/// Samples replication lag: about every 50 ms it takes the next put acknowledged by the first
/// node (one acknowledged after it asked, so the sample is fresh) and polls every other node
/// until it holds that version of the key (or a later one), recording the time from the
/// acknowledgement until then.
final class LagProbe: Sendable {
    struct Sample: Sendable {
        let key: String
        let lamport: Int64
        let acknowledged: ContinuousClock.Instant
    }

    private struct State {
        var waiter: CheckedContinuation<Sample?, Never>?
        var finished = false
        var lags: [Duration] = []
    }

    private let targets: [String]
    private let token: String?
    private let tls: ClientTLS?
    private let state = Mutex(State())

    init(targets: [String], token: String?, tls: ClientTLS?) {
        self.targets = targets
        self.token = token
        self.tls = tls
    }

    /// A put the first node just acknowledged; taken only if the probe is waiting for one.
    func offer(key: String, lamport: Int64, acknowledged: ContinuousClock.Instant) {
        let waiter = state.withLock { state in
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume(returning: Sample(key: key, lamport: lamport, acknowledged: acknowledged))
    }

    /// No more puts will come: `run` returns.
    func finish() {
        let waiter = state.withLock { state in
            state.finished = true
            defer { state.waiter = nil }
            return state.waiter
        }
        waiter?.resume(returning: nil)
    }

    private func nextSample() async -> Sample? {
        await withCheckedContinuation { continuation in
            let finished = state.withLock { state in
                if !state.finished { state.waiter = continuation }
                return state.finished
            }
            if finished { continuation.resume(returning: nil) }
        }
    }

    /// Samples until `finish()`; gives up on a sample 10 s after its acknowledgement.
    func run() async {
        var clients: [KVClient] = []
        for node in targets.dropFirst() {
            if let client = try? KVClient(node: node, timeout: .seconds(2), token: token, tls: tls) { clients.append(client) }
        }
        while true {
            try? await Task.sleep(for: .milliseconds(50))
            guard let sample = await nextSample() else { break }
            let giveUp = sample.acknowledged + .seconds(10)
            for client in clients {
                while ContinuousClock.now < giveUp {
                    // Readable once the node holds this write or a later one of the same key.
                    if let stored = try? await client.get(sample.key), stored.lamport >= sample.lamport { break }
                }
            }
            let lag = ContinuousClock.now - sample.acknowledged
            state.withLock { $0.lags.append(lag) }
        }
        for client in clients { await client.close() }
    }

    func percentiles() -> Percentiles? {
        state.withLock { Percentiles($0.lags) }
    }
}

/// A `--duration` of `kv bench`: plain seconds (`10`, `2.5`) or a number with a unit, `ms`,
/// `s` or `m` (`500ms`, `10s`, `2m`), as `redis-benchmark` and etcd's `benchmark` users write it.
struct BenchTime: ExpressibleByArgument, Equatable {
    let seconds: Double

    init(seconds: Double) {
        self.seconds = seconds
    }

    init?(argument: String) {
        let units: [(suffix: String, seconds: Double)] = [("ms", 0.001), ("s", 1), ("m", 60)]
        var number = Substring(argument)
        var scale = 1.0
        for unit in units where argument.hasSuffix(unit.suffix) {
            number = argument.dropLast(unit.suffix.count)
            scale = unit.seconds
            break
        }
        guard let value = Double(number), value.isFinite else { return nil }
        self.seconds = value * scale
    }

    var defaultValueDescription: String { "\(seconds)s" }
}
