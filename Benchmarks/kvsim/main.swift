import ArgumentParser
import ClusterSimulator
import Foundation
import Replication

/// Runs the deterministic simulator at several cluster sizes and prints, per size, what
/// replication costs and how fast it heals (the table of docs/performance.md, "Scale by
/// simulation"). Simulated time: the figures do not depend on this machine's speed.
@main
struct KVSim: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kvsim",
        abstract: "Simulate whole clusters and report rows per write, bytes per write and time to converge per size.")

    @Option(help: "Cluster sizes, comma-separated.")
    var nodes: String = "3,5,9,17,33"

    @Option(help: "Seeds per size and scenario; the figures are their mean.")
    var seeds: Int = 3

    @Option(help: "Client writes per run.")
    var writes: Int = 300

    @Flag(help: "Run the single-lane design of before issue 10 (own writes not pushed apart, forwards after 2 ms), to compare.")
    var before = false

    func run() async throws {
        let sizes = nodes.split(separator: ",").compactMap { Int($0) }
        guard !sizes.isEmpty, sizes.allSatisfy({ $0 >= 2 }), seeds >= 1, writes >= 1 else {
            throw ValidationError("--nodes takes sizes of 2 or more, --seeds and --writes at least 1")
        }
        emit("| nodes | rows/write, all up | goal ≤ 1.1·(N−1) | bytes/write, all up | rows/write, one node down | converge after a split heals (simulated) |")
        emit("|---:|---:|---:|---:|---:|---:|")
        for size in sizes {
            let allUp = try await mean(size) { $0.faults = .none }
            var down = FaultPlan.none
            down.oneNodeDown = true
            let oneDown = try await mean(size) { $0.faults = down }
            var split = FaultPlan.none
            split.splitDuringLoad = true
            let healed = try await mean(size) { $0.faults = split }
            func format(_ value: Double) -> String { String(format: "%.2f", value) }
            emit("| \(size) | \(format(allUp.rowsPerWrite)) | \(format(1.1 * Double(size - 1))) | \(format(allUp.bytesPerWrite)) | \(format(oneDown.rowsPerWrite)) | \(format(healed.converge)) s |")
        }
    }

    struct Figures {
        var rowsPerWrite = 0.0
        var bytesPerWrite = 0.0
        var converge = 0.0
    }

    func mean(_ size: Int, _ configure: (inout SimulationOptions) -> Void) async throws -> Figures {
        var total = Figures()
        for seed in 0..<seeds {
            var options = SimulationOptions(nodes: size, seed: UInt64(1_000 * size + seed))
            options.writes = writes
            options.countBytes = true
            options.workloadSpan = .seconds(20)
            if before {
                options.settings.ownLane = false
                options.settings.forwardDelay = .milliseconds(2)
            }
            configure(&options)
            let report = try await Simulation(options).run()
            guard report.violations.isEmpty else {
                throw ValidationError("seed \(options.seed) at \(size) nodes broke an invariant: \(report.violations.joined(separator: "; "))")
            }
            let writes = Double(max(1, report.statistics.writes))
            total.rowsPerWrite += report.statistics.rowsPerWrite
            total.bytesPerWrite += Double(report.statistics.bytesSent) / writes
            total.converge += report.convergedAfterHealing?.inSeconds ?? .nan
        }
        let count = Double(seeds)
        return Figures(rowsPerWrite: total.rowsPerWrite / count, bytesPerWrite: total.bytesPerWrite / count, converge: total.converge / count)
    }
}

extension Duration {
    var inSeconds: Double {
        Double(components.seconds) + Double(components.attoseconds) / 1e18
    }
}

/// Writes a line at once (unbuffered), so a long run shows each size as it is done.
func emit(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}
