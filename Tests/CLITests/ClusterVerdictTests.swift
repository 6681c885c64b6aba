import KVClient
import KVCore
import Testing

@testable import kv

/// The pure parts of `kv cluster status` and `verify`: the verdict and the progress line.
@Suite("cluster verdicts and progress lines")
struct ClusterVerdictTests {
    static func report(_ name: String, digest: String, keys: Int = 5) -> NodeReport {
        let status = NodeStatus(id: name, epoch: "e", lamport: 1, seq: 1, keys: Int64(keys), catchingUp: false, peers: [])
        let reply = DigestReply(buckets: [], digest: digest, keys: keys, rows: keys)
        return NodeReport(target: SurveyTarget(name: name, url: "http://127.0.0.1:1"), outcome: .answered(status: status, digest: reply))
    }

    @Test("one digest everywhere is converged, with the key count")
    func converged() {
        let verdict = ClusterSurvey.verdict(["A", "B", "C"].map { Self.report($0, digest: "0123456789abcdef", keys: 12408) })
        #expect(verdict == Verdict(line: "converged: 3/3 nodes hold the same 12408 keys", status: 0))
    }

    @Test("the nodes outside the majority are named, with the digests")
    func minority() {
        let verdict = ClusterSurvey.verdict([
            Self.report("A", digest: "aaaaaaaaaaaaaaaa"), Self.report("B", digest: "bbbbbbbbbbbbbbbb"),
            Self.report("C", digest: "aaaaaaaaaaaaaaaa"), Self.report("D", digest: "cccccccccccccccc"),
            Self.report("E", digest: "aaaaaaaaaaaaaaaa"),
        ])
        #expect(verdict == Verdict(
            line: "not converged: B and D differ (digests B bbbbbbbbbbbb, D cccccccccccc; A, C and E hold aaaaaaaaaaaa)",
            status: 1))
    }

    @Test("without a majority, every group is shown")
    func noMajority() {
        let verdict = ClusterSurvey.verdict([Self.report("A", digest: "1111111111111111"), Self.report("B", digest: "2222222222222222")])
        #expect(verdict == Verdict(
            line: "not converged: no majority; 2 different digests (A 111111111111, B 222222222222)", status: 1))
    }

    @Test("an unreachable node wins over any difference, exit 2")
    func unreachable() {
        let down = NodeReport(
            target: SurveyTarget(name: "C", url: "http://127.0.0.1:9"),
            outcome: .failed(.unreachable(url: "http://127.0.0.1:9", reason: "connection refused")))
        let verdict = ClusterSurvey.verdict([Self.report("A", digest: "1111111111111111"), down])
        #expect(verdict == Verdict(
            line: "C is unreachable (cannot reach node at http://127.0.0.1:9: connection refused)", status: 2))
    }

    @Test("catch-up progress: rows done and to go, rate, time left")
    func progress() {
        #expect(ClusterStatus.describe(CatchUpProgress(rowsDone: 1200, rowsToGo: 8000, rowsPerSecond: 450), of: "C")
            == "C catching up: 1200 rows done, 8000 to go at 450 rows/s, about 18 s left")
        #expect(ClusterStatus.describe(CatchUpProgress(rowsDone: 0, rowsToGo: 10, rowsPerSecond: 0), of: "B")
            == "B catching up: 0 rows done, 10 to go, time left unknown")
        #expect(ClusterStatus.duration(200) == "3 min 20 s")
        #expect(ClusterStatus.duration(7500) == "2 h 5 min")
    }
}
