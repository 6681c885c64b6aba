// codec-bench: how fast a feed batch is encoded and decoded in the binary framing the nodes use
// (FeedCodec) and in the JSON a simpler protocol would use (values in base64), on the same rows.
//
//   swift run -c release codec-bench [rows] [value-bytes] [rounds]     (defaults 5000 100 20)
//
// Prints one line per codec: rows/s to encode, rows/s to decode, and the batch size in bytes.
import Foundation
import KVCore
import KVStore
import Replication

/// The JSON shape of a feed row: what the protocol would send if it used JSON.
struct JSONRow: Codable {
    let key: String
    let value: String?  // base64; null for a tombstone
    let lamport: Int64
    let origin: String
    let seq: Int64
}

struct JSONBatch: Codable {
    let from: Int64
    let to: Int64
    let rows: [JSONRow]
}

let arguments = CommandLine.arguments.dropFirst().compactMap { Int($0) }
let rowCount = arguments.first ?? 5_000
let valueBytes = arguments.dropFirst().first ?? 100
let rounds = arguments.dropFirst(2).first ?? 20

// Constant, valid ids: a failure here is a programming error.
let origins = try! ["A", "B", "C"].map { try NodeID($0) }
var rows: [StoredRecord] = []
for index in 0..<rowCount {
    let value: [UInt8]? = index % 10 == 9 ? nil : (0..<valueBytes).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ index) }
    let record = Record(
        key: "user/\(index)/profile", value: value,
        version: Version(lamport: Int64(1_000_000 + index), origin: origins[index % 3]))
    rows.append(StoredRecord(record: record, seq: Int64(index + 1)))
}
let batch = FeedBatch(from: 0, to: Int64(rowCount), rows: rows)

func measure(_ name: String, _ body: () throws -> Void) rethrows -> Double {
    try body()  // warm up
    let clock = ContinuousClock()
    let start = clock.now
    for _ in 0..<rounds { try body() }
    let elapsed = clock.now - start
    let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    return Double(rowCount * rounds) / seconds
}

// Binary framing.
var binary: [UInt8] = []
let binaryEncode = measure("binary encode") { binary = FeedCodec.encode(batch) }
var decoded: FeedBatch?
let binaryDecode = try measure("binary decode") { decoded = try FeedCodec.decode(binary) }
precondition(decoded == batch, "the binary round trip changed the batch")

// JSON with base64 values, through Foundation's coders.
let encoder = JSONEncoder()
let decoder = JSONDecoder()
var json = Data()
let jsonEncode = try measure("json encode") {
    let jsonRows = batch.rows.map {
        JSONRow(
            key: $0.record.key, value: $0.record.value.map { Data($0).base64EncodedString() },
            lamport: $0.record.version.lamport, origin: $0.record.version.origin.rawValue, seq: $0.seq)
    }
    json = try encoder.encode(JSONBatch(from: batch.from, to: batch.to, rows: jsonRows))
}
let jsonDecode = try measure("json decode") {
    let parsed = try decoder.decode(JSONBatch.self, from: json)
    let records = try parsed.rows.map { row -> StoredRecord in
        let value: [UInt8]? = try row.value.map { text in
            guard let data = Data(base64Encoded: text) else { throw CocoaError(.coderInvalidValue) }
            return Array(data)
        }
        return StoredRecord(
            record: Record(key: try KeyRules.validate(utf8: Array(row.key.utf8)), value: value,
                           version: Version(lamport: row.lamport, origin: try NodeID(row.origin))),
            seq: row.seq)
    }
    precondition(records.count == rowCount)
}

func line(_ name: String, _ encode: Double, _ decode: Double, _ size: Int) -> String {
    String(format: "%@: encode %.0f rows/s, decode %.0f rows/s, %d bytes per %d-row batch (%d-byte values)",
           name, encode, decode, size, rowCount, valueBytes)
}
print(line("binary", binaryEncode, binaryDecode, binary.count))
print(line("json", jsonEncode, jsonDecode, json.count))
print(String(format: "binary/json: encode %.1fx, decode %.1fx, size %.2fx",
             binaryEncode / jsonEncode, binaryDecode / jsonDecode, Double(binary.count) / Double(json.count)))
