import Foundation
import KVClient
import KVCore
@testable import KVServer
import KVStore
import NIOCore
import NodeHTTP
import Testing

@Suite("GET /digest")
struct DigestTests {
    private func digest(_ client: KVClient, bucket: String? = nil) async throws -> HTTPReply {
        try await client.send("GET", bucket.map { "/digest?bucket=\($0)" } ?? "/digest")
    }

    @Test func equalRowsGiveEqualDigestsAndOneDifferenceShowsInOneBucket() async throws {
        // Two nodes given the same remote rows in different orders hold equal rows.
        let writer = try NodeID("Z")
        var rows: [Record] = []
        for index in 0..<50 {
            let value: [UInt8]? = index % 7 == 0 ? nil : [UInt8(index)]
            rows.append(Record(key: "k\(index)", value: value, version: Version(lamport: Int64(index + 1), origin: writer)))
        }
        try await withNode(id: "A") { nodeA, clientA in
            try await withNode(id: "B") { nodeB, clientB in
                _ = try await nodeA.store.apply(rows)
                _ = try await nodeB.store.apply(rows.reversed())
                let a = try JSONDecoder().decode(DigestReply.self, from: Data(try await digest(clientA).body))
                let b = try JSONDecoder().decode(DigestReply.self, from: Data(try await digest(clientB).body))
                #expect(a == b)
                #expect(a.buckets.count == 256 && a.buckets.first?.bucket == "00" && a.buckets.last?.bucket == "ff")
                #expect(a.rows == 50 && a.keys == 50 - 8)
                #expect(a.buckets.reduce(0) { $0 + $1.count } == 42, "buckets hash live rows; tombstones stay out")

                // One newer version of one key on B: exactly its bucket differs, and narrowing
                // to that bucket names the key.
                _ = try await nodeB.store.apply([Record(key: "k3", value: [9], version: Version(lamport: 100, origin: try NodeID("Z")))])
                let changed = try JSONDecoder().decode(DigestReply.self, from: Data(try await digest(clientB).body))
                #expect(changed.digest != a.digest)
                let differing = zip(a.buckets, changed.buckets).filter { $0 != $1 }.map(\.0.bucket)
                #expect(differing == [DigestTests.bucketName(RowDigest.bucket(ofKey: "k3"))])
                let bucketA = try JSONDecoder().decode(DigestBucketReply.self, from: Data(try await digest(clientA, bucket: differing[0]).body))
                let bucketB = try JSONDecoder().decode(DigestBucketReply.self, from: Data(try await digest(clientB, bucket: differing[0]).body))
                let keysThatDiffer = Set(bucketA.rows).symmetricDifference(Set(bucketB.rows)).map(\.key)
                #expect(Set(keysThatDiffer) == ["k3"])
                #expect(bucketA.rows.map(\.key) == bucketA.rows.map(\.key).sorted())
            }
        }
    }

    @Test func aBadBucketIs400() async throws {
        try await withNode { _, client in
            for bad in ["g0", "1", "100", "-1", ""] {
                let reply = try await digest(client, bucket: bad)
                #expect(reply.status == 400, "bucket=\(bad)")
            }
            #expect(try await digest(client, bucket: "FF").status == 200)
        }
    }

    static func bucketName(_ index: Int) -> String {
        let digits = String(index, radix: 16)
        return digits.count == 1 ? "0" + digits : digits
    }
}

@Suite("Hand-written write reply")
struct FastJSONTests {
    @Test func matchesTheEncoderByteForByte() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        for key in ["x", "users/42", "quote\"back\\slash", "tab\tnew\nline\u{1}", "é漢🙂", "a b%?#"] {
            let reply = WriteReply(key: key, lamport: 123_456_789, origin: "node-7")
            let fast = FastJSON.writeReply(reply)
            let expected = try encoder.encode(reply)
            #expect(Array(fast.readableBytesView) == Array(expected), "key \(key)")
            #expect(try JSONDecoder().decode(WriteReply.self, from: Data(fast.readableBytesView)) == reply)
        }
    }
}
