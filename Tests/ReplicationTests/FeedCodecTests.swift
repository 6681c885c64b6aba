import KVCore
import KVStore
import Replication
import Testing
import TestSupport

@Suite("Feed batch framing")
struct FeedCodecTests {
    private func row(_ key: String, _ value: [UInt8]?, lamport: Int64, origin: String = "A", seq: Int64) throws -> StoredRecord {
        StoredRecord(record: Record(key: key, value: value, version: Version(lamport: lamport, origin: try NodeID(origin))), seq: seq)
    }

    @Test func roundTripsEveryKindOfRow() throws {
        let batch = FeedBatch(from: 10, to: 400, rows: [
            try row("x", Array("1".utf8), lamport: 1, seq: 11),
            try row("users/42", (0...255).map(UInt8.init), lamport: 300, origin: "node-7", seq: 12),
            try row("gone", nil, lamport: Int64.max, origin: "B", seq: 13),
            try row("empty", [], lamport: 2, seq: 399),
            try row("é漢🙂", [0], lamport: 1 << 40, seq: 400),
        ])
        #expect(try FeedCodec.decode(FeedCodec.encode(batch)) == batch)
        let empty = FeedBatch(from: 5, to: 9, rows: [])
        #expect(try FeedCodec.decode(FeedCodec.encode(empty)) == empty)
    }

    @Test func everyTruncationIsRefused() throws {
        let batch = FeedBatch(from: 0, to: 3, rows: [
            try row("a", [1, 2, 3], lamport: 1, seq: 1), try row("b", nil, lamport: 2, seq: 3),
        ])
        let bytes = FeedCodec.encode(batch)
        for length in 0..<bytes.count {
            #expect(throws: FeedDecodingError.self, "prefix of \(length) bytes") {
                try FeedCodec.decode(Array(bytes.prefix(length)))
            }
        }
        #expect(throws: FeedDecodingError.self) { try FeedCodec.decode(bytes + [0]) }
    }

    @Test func invalidFieldsAreRefused() throws {
        func encoded(_ rows: [StoredRecord], from: Int64 = 0, to: Int64 = 100) -> [UInt8] {
            FeedCodec.encode(FeedBatch(from: from, to: to, rows: rows))
        }
        // Seqs out of order, outside (from, to], or repeated.
        #expect(throws: FeedDecodingError.self) { try FeedCodec.decode(encoded([try row("a", [1], lamport: 1, seq: 5), try row("b", [1], lamport: 1, seq: 4)])) }
        #expect(throws: FeedDecodingError.self) { try FeedCodec.decode(encoded([try row("a", [1], lamport: 1, seq: 101)])) }
        #expect(throws: FeedDecodingError.self) { try FeedCodec.decode(encoded([try row("a", [1], lamport: 1, seq: 7)], from: 7)) }
        #expect(throws: FeedDecodingError.self) { try FeedCodec.decode(encoded([try row("a", [1], lamport: 1, seq: 3), try row("b", [1], lamport: 1, seq: 3)])) }
        // from after to.
        #expect(throws: FeedDecodingError.self) { try FeedCodec.decode(encoded([], from: 9, to: 8)) }
        // Lamport 0, an empty key and a control character are refused by re-encoding by hand.
        var zeroLamport = encoded([try row("a", [1], lamport: 1, seq: 1)])
        let lamportOffset = 4 + 1 + 1 + 1 + 1 + 1  // magic, from, to, count, flags, seq
        zeroLamport[lamportOffset] = 0
        #expect(throws: FeedDecodingError.self) { try FeedCodec.decode(zeroLamport) }
        var badKey = encoded([try row("a", [1], lamport: 1, seq: 1)])
        let keyOffset = lamportOffset + 1 + 2 + 1  // lamport, origin length + "A", key length
        badKey[keyOffset] = 0x01
        #expect(throws: FeedDecodingError.self) { try FeedCodec.decode(badKey) }
        var badFlags = encoded([try row("a", [1], lamport: 1, seq: 1)])
        badFlags[7] = 4  // bits 0 (tombstone) and 1 (expiry) are the only ones defined
        #expect(throws: FeedDecodingError.self) { try FeedCodec.decode(badFlags) }
        #expect(throws: FeedDecodingError.self) { try FeedCodec.decode(Array("JSON".utf8)) }
    }

    @Test func expiriesRoundTripAndRowsWithoutOneKeepTheOldBytes() throws {
        let expiring = StoredRecord(
            record: Record(key: "session", value: [1], version: Version(lamport: 7, origin: try NodeID("A")), expiresAt: 1_767_225_600_123),
            seq: 1)
        let expiredTombstone = StoredRecord(
            record: Record(key: "gone", value: nil, version: Version(lamport: 8, origin: try NodeID("B")), expiresAt: 5), seq: 2)
        let batch = FeedBatch(from: 0, to: 3, rows: [expiring, expiredTombstone, try row("plain", [2], lamport: 9, seq: 3)])
        #expect(try FeedCodec.decode(FeedCodec.encode(batch)) == batch)
        // A batch as nodes before expiry framed it, byte for byte: magic, from 0, to 1, one
        // row with flags 0, seq 1, lamport 3, origin "A", key "k", value "v".
        let old: [UInt8] = Array("KVF1".utf8) + [0, 1, 1, 0, 1, 3, 1, UInt8(ascii: "A"), 1, UInt8(ascii: "k"), 1, UInt8(ascii: "v")]
        #expect(try FeedCodec.decode(old) == FeedBatch(from: 0, to: 1, rows: [try row("k", Array("v".utf8), lamport: 3, seq: 1)]))
        #expect(FeedCodec.encode(FeedBatch(from: 0, to: 1, rows: [try row("k", Array("v".utf8), lamport: 3, seq: 1)])) == old)
    }

    @Test func aHugeClaimedRowCountIsRefusedWithoutAllocating() throws {
        var bytes = Array("KVF1".utf8) + [0, 0]
        bytes += [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F]  // 2^63 - 1 rows
        #expect(throws: FeedDecodingError.self) { try FeedCodec.decode(bytes) }
    }

    @Test func randomBytesNeverCrashTheDecoder() throws {
        let seed = SeededRandom.seed()
        var generator = SeededRandom(seed: seed)
        let valid = FeedCodec.encode(FeedBatch(from: 0, to: 2, rows: [try row("key", [1, 2], lamport: 3, seq: 2)]))
        let rounds = SeededRandom.fuzzRounds(20_000)
        print("randomBytesNeverCrashTheDecoder: seed \(seed) (replay with KV_SEED=\(seed)), \(rounds) mutations")
        for _ in 0..<rounds {
            var bytes = valid
            for _ in 0..<Int.random(in: 1...4, using: &generator) {
                bytes[Int.random(in: 0..<bytes.count, using: &generator)] = UInt8.random(in: 0...255, using: &generator)
            }
            // Either it decodes to something valid or it throws; it must never trap.
            if let batch = try? FeedCodec.decode(bytes) {
                #expect(batch.rows.allSatisfy { $0.seq > batch.from && $0.seq <= batch.to }, "seed \(seed)")
            }
        }
    }
}

@Suite("Backoff")
struct BackoffTests {
    @Test func growsExponentiallyWithJitterAndStaysUnderTheCap() {
        let backoff = Backoff(base: .milliseconds(100), cap: .seconds(5))
        var generator = SeededRandom(seed: 42)
        #expect(backoff.delay(afterFailures: 0, using: &generator) == .zero)
        for failures in 1...40 {
            let ceiling = min(Duration.seconds(5), .milliseconds(100) * (1 << min(failures - 1, 30)))
            for _ in 0..<50 {
                let delay = backoff.delay(afterFailures: failures, using: &generator)
                #expect(delay >= ceiling / 2 && delay <= ceiling, "failures \(failures): \(delay)")
            }
        }
        let delays = Set((0..<20).map { _ in backoff.delay(afterFailures: 5, using: &generator) })
        #expect(delays.count > 1, "jitter varies the delay")
    }
}
