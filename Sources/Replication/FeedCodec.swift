import KVCore
public import KVStore

/// A contiguous piece of a node's change feed: every row with `from < seq <= to`, in seq order.
///
/// `to` may be greater than the last row's seq: a node's feed has gaps (a key written twice
/// keeps only its newest seq), and a batch that reaches the end of the feed covers them, so the
/// receiver's mark can move to the sender's last seq even when the last rows were superseded.
public struct FeedBatch: Sendable, Equatable {
    public var from: Int64
    public var to: Int64
    public var rows: [StoredRecord]

    public init(from: Int64, to: Int64, rows: [StoredRecord]) {
        self.from = from
        self.to = to
        self.rows = rows
    }
}

/// The compact binary framing of a `FeedBatch`, used on the wire between nodes.
///
/// Layout (all integers unsigned LEB128 varints unless noted):
///
///     batch = "KVF1" from to count row*
///     row   = flags:u8 seq lamport origin-length origin key-length key [value-length value] [expires-at]
///
/// `flags` bit 0 marks a tombstone (no value follows); bit 1 says the row has an expiry, whose
/// time (milliseconds since the Unix epoch) ends the row; other bits must be 0. A batch
/// without expiries is byte for byte what nodes before expiry sent, so their batches still
/// decode; a row with an expiry is refused by such a node (unknown flag), not misread. Decoding checks
/// everything a peer could get wrong — lengths inside the buffer, keys by `KeyRules`, origins
/// by `NodeID`, lamport ≥ 1, seqs strictly increasing inside `(from, to]`, the row count, no
/// trailing bytes — and throws `FeedDecodingError` naming the offset, so a bad batch is
/// refused whole before anything reaches the store.
public enum FeedCodec {
    static let magic: [UInt8] = Array("KVF1".utf8)
    static let tombstoneFlag: UInt8 = 1
    static let expiryFlag: UInt8 = 2

    public static func encode(_ batch: FeedBatch) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(16 + batch.rows.reduce(0) { $0 + 24 + $1.record.key.utf8.count + ($1.record.value?.count ?? 0) })
        out += magic
        appendVarint(UInt64(bitPattern: batch.from), to: &out)
        appendVarint(UInt64(bitPattern: batch.to), to: &out)
        appendVarint(UInt64(batch.rows.count), to: &out)
        for row in batch.rows {
            let record = row.record
            out.append((record.value == nil ? Self.tombstoneFlag : 0) | (record.expiresAt == nil ? 0 : Self.expiryFlag))
            appendVarint(UInt64(bitPattern: row.seq), to: &out)
            appendVarint(UInt64(bitPattern: record.version.lamport), to: &out)
            appendBytes(record.version.origin.rawValue.utf8, to: &out)
            appendBytes(record.key.utf8, to: &out)
            if let value = record.value { appendBytes(value, to: &out) }
            if let expiresAt = record.expiresAt { appendVarint(UInt64(max(0, expiresAt)), to: &out) }
        }
        return out
    }

    public static func decode(_ bytes: [UInt8]) throws(FeedDecodingError) -> FeedBatch {
        var reader = Reader(bytes: bytes)
        guard bytes.count >= 4, Array(bytes[0..<4]) == magic else {
            throw FeedDecodingError(offset: 0, reason: "not a feed batch (the first bytes are not KVF1)")
        }
        reader.offset = 4
        let from = try reader.int64("from")
        let to = try reader.int64("to")
        guard from <= to else { throw reader.error("from (\(from)) is after to (\(to))") }
        let count = try reader.varint("row count")
        // Every row takes at least 5 bytes, so a count beyond that is a lie; refuse before allocating.
        guard count <= UInt64(bytes.count - reader.offset) / 5 + 1 else {
            throw reader.error("claims \(count) rows, more than the batch could hold")
        }
        var rows: [StoredRecord] = []
        rows.reserveCapacity(Int(count))
        var previousSeq = from
        for index in 0..<Int(count) {
            let flags = try reader.byte("flags of row \(index)")
            guard flags & ~(tombstoneFlag | expiryFlag) == 0 else { throw reader.error("row \(index) has unknown flags \(flags)") }
            let seq = try reader.int64("seq of row \(index)")
            guard seq > previousSeq, seq <= to else {
                throw reader.error("row \(index) has seq \(seq), outside (\(previousSeq), \(to)]")
            }
            previousSeq = seq
            let lamport = try reader.int64("lamport of row \(index)")
            guard lamport >= 1 else { throw reader.error("row \(index) has lamport \(lamport); versions start at 1") }
            let originBytes = try reader.bytes("origin of row \(index)", limit: NodeID.maxLength)
            let origin: NodeID
            do {
                origin = try NodeID(String(decoding: originBytes, as: UTF8.self))
            } catch {
                throw reader.error("row \(index) has an invalid origin")
            }
            let keyBytes = try reader.bytes("key of row \(index)", limit: KeyRules.maxBytes)
            let key: String
            do {
                key = try KeyRules.validateStored(utf8: Array(keyBytes))
            } catch {
                throw reader.error("row \(index): \(error.description)")
            }
            let value: [UInt8]? = flags & tombstoneFlag != 0 ? nil : Array(try reader.bytes("value of row \(index)", limit: Int.max))
            let expiresAt: Int64? = flags & expiryFlag != 0 ? try reader.int64("expiry of row \(index)") : nil
            rows.append(
                StoredRecord(
                    record: Record(key: key, value: value, version: Version(lamport: lamport, origin: origin), expiresAt: expiresAt),
                    seq: seq))
        }
        guard reader.offset == bytes.count else {
            throw reader.error("\(bytes.count - reader.offset) bytes follow the last row")
        }
        return FeedBatch(from: from, to: to, rows: rows)
    }

    private static func appendVarint(_ value: UInt64, to out: inout [UInt8]) {
        var value = value
        while value >= 0x80 {
            out.append(UInt8(truncatingIfNeeded: value) | 0x80)
            value >>= 7
        }
        out.append(UInt8(value))
    }

    private static func appendBytes(_ bytes: some Collection<UInt8>, to out: inout [UInt8]) {
        appendVarint(UInt64(bytes.count), to: &out)
        out.append(contentsOf: bytes)
    }

    private struct Reader {
        let bytes: [UInt8]
        var offset = 0

        func error(_ reason: String) -> FeedDecodingError {
            FeedDecodingError(offset: offset, reason: reason)
        }

        mutating func byte(_ what: @autoclosure () -> String) throws(FeedDecodingError) -> UInt8 {
            guard offset < bytes.count else { throw error("truncated before \(what())") }
            defer { offset += 1 }
            return bytes[offset]
        }

        mutating func varint(_ what: @autoclosure () -> String) throws(FeedDecodingError) -> UInt64 {
            var result: UInt64 = 0
            var shift: UInt64 = 0
            while true {
                let next = try byte(what())
                guard shift < 64, !(shift == 63 && next > 1) else { throw error("\(what()) overflows 64 bits") }
                result |= UInt64(next & 0x7F) << shift
                if next & 0x80 == 0 { return result }
                shift += 7
            }
        }

        mutating func int64(_ what: @autoclosure () -> String) throws(FeedDecodingError) -> Int64 {
            let raw = try varint(what())
            guard raw <= UInt64(Int64.max) else { throw error("\(what()) is negative or too large") }
            return Int64(raw)
        }

        mutating func bytes(_ what: @autoclosure () -> String, limit: Int) throws(FeedDecodingError) -> ArraySlice<UInt8> {
            let length = try varint("length of \(what())")
            guard length <= UInt64(limit) else { throw error("\(what()) is \(length) bytes; the limit is \(limit)") }
            guard length <= UInt64(bytes.count - offset) else { throw error("truncated inside \(what())") }
            defer { offset += Int(length) }
            return bytes[offset..<offset + Int(length)]
        }
    }
}

/// A feed batch that could not be decoded: where and why.
public struct FeedDecodingError: Error, Equatable, CustomStringConvertible {
    public let offset: Int
    public let reason: String

    public var description: String { "malformed feed batch at byte \(offset): \(reason)" }
}
