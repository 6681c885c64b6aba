import ArgumentParser
import Foundation
import KVClient
import KVCore

struct ClusterStatus: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show every node's state and whether the nodes have converged.",
        discussion: """
            Asks each node for /status and /digest and prints one table: NODE, URL, STATE (up, \
            catching-up, down, error), KEYS (live), LAMPORT, SEQ, LAG (per peer, rows of this \
            node the peer has not acknowledged: B:0 C:12) and DIGEST (of all the node's rows, \
            tombstones included; 12 hex digits). A node catching up gets a line with its \
            progress. The last line is the verdict.

            Exit status: 0 when every node holds the same data, 1 when not, 2 when a node could \
            not be reached or refused.

            Examples:
              kv cluster status
              kv cluster status --watch
              kv cluster status --node http://10.0.0.1:8000 --node http://10.0.0.2:8000
            """)

    @OptionGroup var selection: NodeSelection

    @Flag(help: "Redraw every second until Ctrl-C.")
    var watch = false

    @Option(help: "With --watch: stop after this many rounds, exiting as the last did.")
    var count: Int?

    func validate() throws {
        if let count {
            guard watch else { throw ValidationError("--count goes with --watch") }
            guard count >= 1 else { throw ValidationError("--count must be at least 1") }
        }
    }

    func run() async throws {
        let targets = try await selection.targets()
        let token = try selection.global.clientToken()
        let tls = try selection.global.clientTLS()
        let clock = ContinuousClock()
        var round = 0
        while true {
            let started = clock.now
            let reports = await ClusterSurvey.take(targets, timeout: selection.requestTimeout, token: token, tls: tls)
            let verdict = ClusterSurvey.verdict(reports)
            var lines = Self.render(reports)
            lines.append(verdict.line)
            if watch && Terminal.stdoutIsTerminal {
                Terminal.write(Array("\u{1B}[H\u{1B}[2J".utf8))  // home, clear screen
                lines.insert("every 1 s, Ctrl-C to stop", at: 0)
            } else if round > 0 {
                Terminal.line("")
            }
            for line in lines { Terminal.line(line) }
            round += 1
            if !watch || count.map({ round >= $0 }) == true {
                if verdict.status != 0 { throw QuietExit(status: verdict.status) }
                return
            }
            try await Task.sleep(until: started.advanced(by: .seconds(1)), clock: clock)
        }
    }

    /// The table, then a progress line per node catching up.
    static func render(_ reports: [NodeReport]) -> [String] {
        var progress: [String] = []
        let rows = reports.map { report -> [String] in
            switch report.outcome {
            case .failed(let error):
                let state = [.unreachable, .timedOut].contains(error.kind) ? "down" : "error"
                return [report.name, report.target.url, state, "-", "-", "-", "-", "-"]
            case .answered(let status, let digest):
                if let catchUp = status.catchUp { progress.append(describe(catchUp, of: report.name)) }
                let lag = status.peers.sorted { $0.id < $1.id }.map { "\($0.id):\($0.toPush)" }
                return [
                    report.name, report.target.url, status.catchingUp ? "catching-up" : "up",
                    String(digest.keys), String(status.lamport), String(status.seq),
                    lag.isEmpty ? "-" : lag.joined(separator: " "), ClusterSurvey.short(digest.digest),
                ]
            }
        }
        let header = ["NODE", "URL", "STATE", "KEYS", "LAMPORT", "SEQ", "LAG", "DIGEST"]
        return Table.render(header: header, rows: rows) + progress
    }

    /// `C catching up: 1200 rows done, 8000 to go at 450 rows/s, about 18 s left`.
    static func describe(_ progress: CatchUpProgress, of name: String) -> String {
        let rate = progress.rowsPerSecond
        var line = "\(name) catching up: \(progress.rowsDone) rows done, \(progress.rowsToGo) to go"
        if rate > 0 {
            line += " at \(Int(rate.rounded())) rows/s, about \(duration(Double(progress.rowsToGo) / rate)) left"
        } else {
            line += ", time left unknown"
        }
        return line
    }

    /// `45 s`, `3 min 20 s`, `2 h 5 min`.
    static func duration(_ seconds: Double) -> String {
        let total = Int(seconds.rounded(.up))
        if total < 60 { return "\(total) s" }
        if total < 3600 { return "\(total / 60) min \(total % 60) s" }
        return "\(total / 3600) h \(total % 3600 / 60) min"
    }
}
