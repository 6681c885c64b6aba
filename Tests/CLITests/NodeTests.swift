import Foundation
import KVClient
import KVCore
import Testing
import TestSupport

/// `kv` against a real `kvnode` (one per test, on port 0).
@Suite("kv against a running node", .serialized)
struct NodeTests {
    /// Parses `put KEY (lamport N, origin A)` / `deleted KEY (…)`; returns the Lamport time.
    func version(in line: String, verb: String, key: String) -> Int64? {
        let prefix = "\(verb) \(key) (lamport "
        guard line.hasPrefix(prefix), line.hasSuffix(", origin A)\n") else { return nil }
        return Int64(line.dropFirst(prefix.count).prefix { $0.isNumber })
    }

    @Test("put then get round-trips a text value byte-exact")
    func textRoundTrip() async throws {
        try await withNode { node in
            let put = try await kv("--node", node.url, "put", "greeting", "hello, world")
            #expect(put.status == 0, "stderr: \(put.stderr)")
            #expect(put.stderr.isEmpty)
            #expect(version(in: put.stdoutText, verb: "put", key: "greeting") != nil, "stdout: \(put.stdoutText)")

            let get = try await kv("get", "greeting", "--node", node.url)
            #expect(get.status == 0)
            #expect(get.stderr.isEmpty)
            #expect(get.stdoutText == "hello, world")  // no newline added: stdout is a pipe
        }
    }

    @Test("put --ttl stores a key that expires; a malformed --ttl is a usage error")
    func putWithTTL() async throws {
        try await withNode { node in
            let before = Int64(Date().timeIntervalSince1970 * 1000)
            let put = try await kv("--node", node.url, "put", "session", "token", "--ttl", "10m")
            #expect(put.status == 0, "stderr: \(put.stderr)")
            let client = try KVClient(node: node.url)
            let stored = try await client.get("session")
            await client.close()
            let expiresAt = try #require(stored?.expiresAt)
            #expect(expiresAt >= before + 600_000 && expiresAt <= before + 600_000 + 60_000, "\(expiresAt) from \(before)")
            #expect(try await kv("--node", node.url, "get", "session").stdoutText == "token")
            for bad in ["0", "-5s", "10x", "s", "4000000000d"] {
                let refused = try await kv("--node", node.url, "put", "k", "v", "--ttl", bad)
                #expect(refused.status == 64, "--ttl \(bad): \(refused.stderr)")
                #expect(refused.stderr.contains("--ttl"), "\(refused.stderr)")
            }
        }
    }

    @Test("a binary value with all 256 byte values round-trips through stdin")
    func binaryRoundTrip() async throws {
        try await withNode { node in
            let bytes = Data((0..<1024).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) } + (0...255).map { UInt8($0) })
            let put = try await kv("--node", node.url, "put", "blob", "-", stdin: bytes)
            #expect(put.status == 0, "stderr: \(put.stderr)")
            let get = try await kv("--node", node.url, "get", "blob")
            #expect(get.status == 0)
            #expect(get.stdout == bytes)
        }
    }

    @Test("an empty value is stored and read back empty")
    func emptyValue() async throws {
        try await withNode { node in
            let put = try await kv("--node", node.url, "put", "empty", "")
            #expect(put.status == 0, "stderr: \(put.stderr)")
            let get = try await kv("--node", node.url, "get", "empty")
            #expect(get.status == 0)
            #expect(get.stdout.isEmpty)
        }
    }

    @Test("get of a missing key exits 1 with one line")
    func missingKey() async throws {
        try await withNode { node in
            let get = try await kv("--node", node.url, "get", "nothing-here")
            #expect(get.status == 1)
            #expect(get.stdout.isEmpty)
            #expect(get.stderr == "kv: key 'nothing-here' not found\n")
        }
    }

    @Test("delete writes a later version, after which get exits 1")
    func deleteThenGet() async throws {
        try await withNode { node in
            let put = try await kv("--node", node.url, "put", "doomed", "v")
            let putVersion = try #require(version(in: put.stdoutText, verb: "put", key: "doomed"))
            let delete = try await kv("--node", node.url, "delete", "doomed")
            #expect(delete.status == 0, "stderr: \(delete.stderr)")
            let deleteVersion = try #require(
                version(in: delete.stdoutText, verb: "deleted", key: "doomed"), "stdout: \(delete.stdoutText)")
            #expect(deleteVersion > putVersion)
            let get = try await kv("--node", node.url, "get", "doomed")
            #expect(get.status == 1)
            #expect(get.stderr == "kv: key 'doomed' not found\n")
            // A delete of a key the node never had still writes a tombstone.
            let blind = try await kv("--node", node.url, "delete", "never-there")
            #expect(blind.status == 0, "stderr: \(blind.stderr)")
        }
    }

    @Test("list shows a table, filters by prefix and pages with --after")
    func listPaging() async throws {
        try await withNode { node in
            for key in ["a/1", "a/2", "a/3", "a/4", "a/5", "b/1"] {
                let put = try await kv("--node", node.url, "put", key, "value-\(key)")
                #expect(put.status == 0, "stderr: \(put.stderr)")
            }
            let first = try await kv("--node", node.url, "list", "--prefix", "a/", "--limit", "2")
            #expect(first.status == 0, "stderr: \(first.stderr)")
            let lines = first.stdoutText.split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
            #expect(lines.first == ["KEY", "LAMPORT", "ORIGIN", "SIZE"])
            #expect(lines.dropFirst().map { $0.first } == ["a/1", "a/2"])
            #expect(lines.dropFirst().allSatisfy { $0.count == 4 && $0[2] == "A" && $0[3] == "9" })
            #expect(first.stderr == "more keys follow: kv list --prefix a/ --after a/2 --limit 2\n")

            let last = try await kv("--node", node.url, "list", "--prefix", "a/", "--after", "a/4", "--limit", "2")
            #expect(last.status == 0)
            let lastKeys = last.stdoutText.split(separator: "\n").dropFirst().map { $0.split(separator: " ").first }
            #expect(lastKeys == ["a/5"])
            #expect(last.stderr.isEmpty)

            let all = try await kv("--node", node.url, "list")
            let allKeys = all.stdoutText.split(separator: "\n").dropFirst().compactMap { $0.split(separator: " ").first }
            #expect(allKeys == ["a/1", "a/2", "a/3", "a/4", "a/5", "b/1"])
            #expect(all.stderr.isEmpty)
        }
    }

    @Test("status prints the node and its peers; --json is the node's JSON")
    func status() async throws {
        try await withNode { node in
            _ = try await kv("--node", node.url, "put", "x", "1")
            let human = try await kv("--node", node.url, "status")
            #expect(human.status == 0, "stderr: \(human.stderr)")
            // The first block is "LABEL  VALUE" lines, aligned; then "no peers".
            let block = human.stdoutText.split(separator: "\n\n", maxSplits: 1)
            var fields: [String: String] = [:]
            for line in (block.first ?? "").split(separator: "\n") {
                let parts = line.split(separator: "  ", maxSplits: 1)
                if parts.count == 2 { fields[String(parts[0])] = parts[1].trimmingCharacters(in: .whitespaces) }
            }
            #expect(fields["node"] == "A", "stdout: \(human.stdoutText)")
            #expect(fields["keys"] == "1")
            #expect(fields["catching up"] == "no")
            #expect(fields["epoch"]?.isEmpty == false)
            #expect(fields["lamport"].flatMap { Int($0) } != nil)
            #expect(fields["seq"].flatMap { Int($0) } != nil)
            #expect(block.count == 2 && block[1] == "no peers\n")

            let json = try await kv("--node", node.url, "status", "--json")
            #expect(json.status == 0)
            let status = try JSONDecoder().decode(NodeStatus.self, from: json.stdout)
            #expect(status.id == "A")
            #expect(status.keys == 1)
            #expect(status.peers.isEmpty)
            // What the node sent, unchanged: the same document as the client's raw body (the
            // node's key order varies between replies, so bytes are compared as JSON values).
            let client = try KVClient(node: node.url)
            let raw = try await client.statusJSON()
            await client.close()
            #expect(json.stdout.count == raw.count)
            #expect(try JSONDecoder().decode(NodeStatus.self, from: Data(raw)) == status)
        }
    }

    @Test(
        "keys with slashes, spaces, %, ?, # and non-ASCII round-trip and list as themselves",
        arguments: [
            "dir/sub/file", "with space", "100%", "%41", "what?", "a?b=c&d=e", "hash#tag", "plus+sign",
            "naïve/日本語/🙂", "/leading-slash", "trailing-slash/", "double//slash", "user:42@host",
        ])
    func unusualKeys(key: String) async throws {
        try await withNode { node in
            let value = "value of \(key)"
            let put = try await kv("--node", node.url, "put", key, value)
            #expect(put.status == 0, "stderr: \(put.stderr)")
            #expect(put.stdoutText.hasPrefix("put \(key) (lamport "), "stdout: \(put.stdoutText)")
            let get = try await kv("--node", node.url, "get", key)
            #expect(get.status == 0, "stderr: \(get.stderr)")
            #expect(get.stdoutText == value)
            let list = try await kv("--node", node.url, "list", "--prefix", key)
            #expect(list.stdoutText.split(separator: "\n").dropFirst().map { $0.hasPrefix(key + "  ") } == [true], "stdout: \(list.stdoutText)")
            let delete = try await kv("--node", node.url, "delete", key)
            #expect(delete.stdoutText.hasPrefix("deleted \(key) (lamport "))
        }
    }

    @Test("a 2000-byte key exits 2 with the node's 400 in one line")
    func keyTooLong() async throws {
        try await withNode { node in
            let key = String(repeating: "k", count: 2000)
            for arguments in [["put", key, "v"], ["get", key], ["delete", key]] {
                let result = try await kv(["--node", node.url] + arguments)
                #expect(result.status == 2)
                #expect(result.stdout.isEmpty)
                #expect(result.stderrLines.count == 1)
                #expect(result.stderr.hasPrefix("kv: node refused the request: 400 "), "stderr: \(result.stderr)")
            }
        }
    }
}
