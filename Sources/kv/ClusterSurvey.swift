import KVClient
import KVCore
import NodeHTTP

/// A node `status` or `verify` looks at: named by the local cluster's record, or found by URL
/// (then named by the id it reports).
struct SurveyTarget: Sendable {
    let name: String?
    let url: String
}

/// What one node said when asked for its status and its digest.
struct NodeReport: Sendable {
    let target: SurveyTarget
    let outcome: Outcome

    enum Outcome: Sendable {
        case answered(status: NodeStatus, digest: DigestReply)
        /// It could not be reached, or refused or garbled a request; the error says which.
        case failed(KVClientError)
    }

    /// The record's name, else the id the node reports, else its HOST:PORT.
    var name: String {
        if let name = target.name { return name }
        if case .answered(let status, _) = outcome { return status.id }
        return String(target.url.drop { $0 != "/" }.drop { $0 == "/" })
    }

    var digest: DigestReply? {
        if case .answered(_, let digest) = outcome { return digest }
        return nil
    }
}

/// The one-line judgement that ends `status` and `verify`, and the exit status that goes with it.
struct Verdict: Equatable {
    let line: String
    let status: Int32
}

/// Asks every node for `/status` and `/digest` at once, and judges whether they agree.
enum ClusterSurvey {
    /// One report per target, in the targets' order.
    static func take(_ targets: [SurveyTarget], timeout: Duration, token: String?, tls: ClientTLS?) async -> [NodeReport] {
        await withTaskGroup(of: (Int, NodeReport).self) { group in
            for (index, target) in targets.enumerated() {
                group.addTask { (index, await report(on: target, timeout: timeout, token: token, tls: tls)) }
            }
            var reports: [NodeReport?] = Array(repeating: nil, count: targets.count)
            for await (index, report) in group { reports[index] = report }
            return reports.compactMap { $0 }
        }
    }

    static func report(on target: SurveyTarget, timeout: Duration, token: String?, tls: ClientTLS?) async -> NodeReport {
        do throws(KVClientError) {
            let client = try KVClient(node: target.url, timeout: timeout, token: token, tls: tls)
            defer { Task { await client.close() } }
            let status = try await client.status()
            let digest = try await client.digest()
            return NodeReport(target: target, outcome: .answered(status: status, digest: digest))
        } catch {
            return NodeReport(target: target, outcome: .failed(error))
        }
    }

    /// Converged (0) when every node answered with the same digest; 2 when one did not answer;
    /// else 1, naming the nodes outside the largest group that agrees.
    static func verdict(_ reports: [NodeReport]) -> Verdict {
        let failed = reports.compactMap { report -> (name: String, error: KVClientError)? in
            if case .failed(let error) = report.outcome { return (report.name, error) }
            return nil
        }
        if !failed.isEmpty {
            let down = failed.filter { [.unreachable, .timedOut].contains($0.error.kind) }
            let refusing = failed.filter { ![.unreachable, .timedOut].contains($0.error.kind) }
            var parts: [String] = []
            if let first = down.first {
                parts.append("\(listed(down.map(\.name))) \(down.count == 1 ? "is" : "are") unreachable (\(first.error.description))")
            }
            if let first = refusing.first {
                parts.append("\(listed(refusing.map(\.name))) refused (\(first.error.description))")
            }
            return Verdict(line: parts.joined(separator: "; "), status: ExitStatus.refused)
        }
        let digests = reports.compactMap(\.digest)
        // Groups of nodes holding the same digest, largest first, then in the nodes' order.
        var groups: [(digest: String, names: [String])] = []
        for report in reports {
            guard let digest = report.digest?.digest else { continue }
            if let index = groups.firstIndex(where: { $0.digest == digest }) {
                groups[index].names.append(report.name)
            } else {
                groups.append((digest, [report.name]))
            }
        }
        if groups.count <= 1 {
            let keys = digests.first?.keys ?? 0
            return Verdict(
                line: "converged: \(reports.count)/\(reports.count) nodes hold the same \(keys) \(keys == 1 ? "key" : "keys")",
                status: 0)
        }
        let ordered = groups.enumerated().sorted {
            $0.element.names.count != $1.element.names.count
                ? $0.element.names.count > $1.element.names.count : $0.offset < $1.offset
        }.map(\.element)
        let largest = ordered[0]
        if largest.names.count * 2 > reports.count {
            let others = ordered.dropFirst()
            let differing = others.flatMap(\.names)
            let shown = others.count == 1
                ? "digest \(short(others[others.startIndex].digest))"
                : "digests " + others.map { "\(listed($0.names)) \(short($0.digest))" }.joined(separator: ", ")
            let verb = differing.count == 1 ? "differs" : "differ"
            return Verdict(
                line: "not converged: \(listed(differing)) \(verb) (\(shown); \(listed(largest.names)) \(largest.names.count == 1 ? "holds" : "hold") \(short(largest.digest)))",
                status: ExitStatus.failed)
        }
        let shown = ordered.map { "\(listed($0.names)) \(short($0.digest))" }.joined(separator: ", ")
        return Verdict(
            line: "not converged: no majority; \(groups.count) different digests (\(shown))", status: ExitStatus.failed)
    }

    /// The first 12 hex digits of a digest.
    static func short(_ digest: String) -> String { String(digest.prefix(12)) }
}
