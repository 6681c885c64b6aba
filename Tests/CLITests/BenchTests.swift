import Foundation
import Testing
import TestSupport

@testable import kv

@Suite("kv bench")
struct BenchTests {
    @Test func durationsTakeSecondsOrAUnit() {
        #expect(BenchTime(argument: "10")?.seconds == 10)
        #expect(BenchTime(argument: "10s")?.seconds == 10)
        #expect(BenchTime(argument: "2.5s")?.seconds == 2.5)
        #expect(BenchTime(argument: "500ms")?.seconds == 0.5)
        #expect(BenchTime(argument: "2m")?.seconds == 120)
        for bad in ["", "s", "ten", "10 s", "10x", "nan", "infs"] {
            #expect(BenchTime(argument: bad) == nil, "\(bad)")
        }
    }

    @Test func percentilesOfAKnownSample() throws {
        let sample = (1...1000).map { Duration.milliseconds($0) }.shuffled()
        let percentiles = try #require(Percentiles(sample))
        #expect(percentiles.count == 1000)
        #expect(percentiles.p50 == .milliseconds(501))
        #expect(percentiles.p90 == .milliseconds(900))
        #expect(percentiles.p99 == .milliseconds(990))
        #expect(percentiles.p999 == .milliseconds(999))
        #expect(percentiles.max == .milliseconds(1000))
        #expect(Percentiles([]) == nil)
        let one = try #require(Percentiles([.milliseconds(7)]))
        #expect(one.p50 == .milliseconds(7) && one.p999 == .milliseconds(7) && one.max == .milliseconds(7))
    }

    @Test("bad arguments exit 64 with one line", arguments: [
        ["bench", "put", "--clients", "0"], ["bench", "put", "--duration", "0"], ["bench", "put", "--duration", "10x"], ["bench", "put", "--duration", "2h"], ["bench", "fly"],
        ["bench", "get", "--keys", "0"], ["bench", "mixed", "--read-percent", "101"], ["bench", "put", "--rate", "-5"],
        ["bench", "put", "--value-size", "2000000"], ["bench", "put", "--node", "https://127.0.0.1:1/kv"],
    ])
    func badArguments(arguments: [String]) async throws {
        let result = try await runCommand(Products.executable("kv"), arguments)
        #expect(result.status == 64, "\(arguments): \(result.stderr)")
        #expect(result.stderr.split(separator: "\n").count == 1, "\(result.stderr)")
    }

    @Test func aShortRunAgainstTwoNodesReportsThroughputLatencyLagAndRowsPerWrite() async throws {
        try await withTemporaryDirectory { directory in
            let portA = try unusedLocalPort()
            let portB = try unusedLocalPort()
            let a = try await NodeProcess.start(
                ["--id", "A", "--port", "\(portA)", "--db", directory.appendingPathComponent("A.db").path, "--peer", "B=http://127.0.0.1:\(portB)"],
                logFile: directory.appendingPathComponent("A.log"))
            defer { a.kill() }
            let b = try await NodeProcess.start(
                ["--id", "B", "--port", "\(portB)", "--db", directory.appendingPathComponent("B.db").path, "--peer", "A=http://127.0.0.1:\(portA)"],
                logFile: directory.appendingPathComponent("B.log"))
            defer { b.kill() }
            let result = try await runCommand(
                Products.executable("kv"),
                ["bench", "put", "--node", a.url, "--node", b.url, "--clients", "4", "--duration", "1s", "--keys", "50", "--json"])
            #expect(result.status == 0, "\(result.stderr)")
            let report = try #require(try JSONSerialization.jsonObject(with: result.stdout) as? [String: Any])
            #expect((report["requests"] as? Int ?? 0) > 0)
            #expect(report["errors"] as? Int == 0)
            #expect(report["nodes"] as? [String] == [a.url, b.url])
            let latency = try #require(report["latency_ms"] as? [String: Double])
            #expect(latency["p50"]! <= latency["p99"]! && latency["p99"]! <= latency["max"]!)
            #expect(report["replication_lag_ms"] != nil)
            // At most N·(N−1) = 2 per write; fewer when a key is overwritten before its push (the
            // feed keeps only a key's newest row), which 4 clients on 50 keys make common.
            let rowsPerWrite = try #require(report["rows_sent_per_write"] as? Double)
            #expect(rowsPerWrite > 0 && rowsPerWrite <= 2)
        }
    }
}
