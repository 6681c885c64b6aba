import ArgumentParser
import KVClient
import KVCore
import NodeHTTP

struct ClusterVerify: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Compare the nodes' data and list every key they disagree on.",
        discussion: """
            Compares the nodes' digests (256 buckets of row hashes over key, lamport, origin, \
            tombstone and a hash of the value); for each bucket that differs, fetches that \
            bucket's rows from every node and prints a table of the keys that differ: KEY, then \
            per node what it holds: LAMPORT@ORIGIN for a value, 'deleted LAMPORT@ORIGIN' for a \
            tombstone, 'missing' when it has no row (with the value's hash when two nodes hold \
            the same version with different bytes). The last line is the verdict.

            Exit status: 0 when every node holds the same data, 1 when not, 2 when a node could \
            not be reached or refused.

            Examples:
              kv cluster verify
              kv cluster verify --node http://10.0.0.1:8000 --node http://10.0.0.2:8000
            """)

    @OptionGroup var selection: NodeSelection

    func run() async throws {
        let targets = try await selection.targets()
        let token = try selection.global.clientToken()
        let tls = try selection.global.clientTLS()
        let reports = await ClusterSurvey.take(targets, timeout: selection.requestTimeout, token: token, tls: tls)
        let verdict = ClusterSurvey.verdict(reports)
        let digests = reports.compactMap(\.digest)
        guard verdict.status == ExitStatus.failed, digests.count == reports.count else {
            Terminal.line(verdict.line)
            if verdict.status != 0 { throw QuietExit(status: verdict.status) }
            return
        }

        let buckets = Self.differingBuckets(digests)
        let rows: [[String: DigestBucketReply.Row]]
        do {
            rows = try await Self.rows(in: buckets, of: reports, timeout: selection.requestTimeout, token: token, tls: tls)
        } catch let error as KVClientError {
            Terminal.line("cannot narrow the difference down: \(error.description)")
            throw QuietExit(status: ExitStatus.refused)
        }
        let names = reports.map(\.name)
        let table = Self.differences(rows)
        if table.isEmpty {
            Terminal.line("\(buckets.count) \(buckets.count == 1 ? "bucket differs" : "buckets differ") by digest, but their rows now match: writes are still replicating; run again")
        } else {
            for line in Table.render(header: ["KEY"] + names, rows: table) { Terminal.line(line) }
            let keys = table.count == 1 ? "key differs" : "keys differ"
            Terminal.line("\(table.count) \(keys) in \(buckets.count) of \(RowDigestShape.bucketCount) buckets")
        }
        Terminal.line(verdict.line)
        throw QuietExit(status: verdict.status)
    }

    /// The buckets whose hash or count is not the same on every node, in order.
    static func differingBuckets(_ digests: [DigestReply]) -> [String] {
        var seen: [String: Set<String>] = [:]
        var order: [String] = []
        for digest in digests {
            for bucket in digest.buckets {
                if seen[bucket.bucket] == nil { order.append(bucket.bucket) }
                seen[bucket.bucket, default: []].insert("\(bucket.hash)/\(bucket.count)")
            }
        }
        // A bucket one node lists and another does not differs too.
        return order.filter { bucket in
            seen[bucket, default: []].count > 1
                || digests.contains { !$0.buckets.contains { $0.bucket == bucket } }
        }.sorted()
    }

    /// Per node, its rows of `buckets` by key; nodes are asked at once, buckets in turn.
    static func rows(
        in buckets: [String], of reports: [NodeReport], timeout: Duration, token: String?, tls: ClientTLS?
    ) async throws -> [[String: DigestBucketReply.Row]] {
        try await withThrowingTaskGroup(of: (Int, [String: DigestBucketReply.Row]).self) { group in
            for (index, report) in reports.enumerated() {
                group.addTask {
                    let client = try KVClient(node: report.target.url, timeout: timeout, token: token, tls: tls)
                    defer { Task { await client.close() } }
                    var byKey: [String: DigestBucketReply.Row] = [:]
                    for bucket in buckets {
                        for row in try await client.digest(bucket: bucket).rows { byKey[row.key] = row }
                    }
                    return (index, byKey)
                }
            }
            var all = [[String: DigestBucketReply.Row]](repeating: [:], count: reports.count)
            for try await (index, byKey) in group { all[index] = byKey }
            return all
        }
    }

    /// One table row per key whose rows are not the same on every node, keys in byte order.
    static func differences(_ rows: [[String: DigestBucketReply.Row]]) -> [[String]] {
        let keys = Set(rows.flatMap(\.keys)).sorted { Array($0.utf8).lexicographicallyPrecedes(Array($1.utf8)) }
        return keys.compactMap { key in
            let held = rows.map { $0[key] }
            guard Set(held).count > 1 else { return nil }
            // The same version with different bytes is told apart by the value's hash.
            let versions = held.compactMap { $0.map { "\($0.lamport)@\($0.origin)/\($0.deleted)" } }
            let showHash = Set(versions).count < Set(held.compactMap { $0 }).count
            return [key] + held.map { row in
                guard let row else { return "missing" }
                var cell = "\(row.lamport)@\(row.origin)"
                if row.deleted { cell = "deleted " + cell }
                if showHash { cell += " value " + String(row.valueHash.prefix(8)) }
                return cell
            }
        }
    }
}

/// The digest's fixed shape (DESIGN.md §4): 256 buckets, "00" to "ff".
enum RowDigestShape {
    static let bucketCount = 256
}
