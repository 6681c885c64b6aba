public import KVCore
import SQLite

/// The digest of a node's data: 256 bucket hashes and a hash over them (`KVCore.RowDigest`).
public struct StoreDigest: Sendable, Equatable {
    public struct Bucket: Sendable, Equatable {
        public var count: Int
        public var hash: UInt64
    }

    /// Indexed by bucket number, 0–255.
    public var buckets: [Bucket]
    /// Live keys (member rows left out) and all rows (tombstones and member rows included).
    public var liveKeys: Int
    public var rows: Int

    /// One hash for the whole node: equal digests mean equal rows.
    public var whole: UInt64 {
        RowDigest.hash(buckets.flatMap { bucket in
            withUnsafeBytes(of: bucket.hash.littleEndian) { Array($0) }
        })
    }
}

/// One row as a digest sees it.
public struct DigestRow: Sendable, Equatable {
    public let key: String
    public let lamport: Int64
    public let origin: String
    public let deleted: Bool
    public let valueHash: UInt64
}

extension KVStore {
    /// Reads every row once (on a read connection, in one snapshot) and sums it into its bucket.
    /// A row expired by now counts as a tombstone: nodes that have and have not yet swept it
    /// hold the same data.
    public func digest() async throws -> StoreDigest {
        let now = ExpiryClock.nowMilliseconds()
        return try readers.read { connection in
            try connection.transaction(.deferred) {
                var digest = StoreDigest(
                    buckets: Array(repeating: .init(count: 0, hash: 0), count: RowDigest.bucketCount), liveKeys: 0, rows: 0)
                try connection.withStatement("SELECT key, value, lamport, origin, deleted, expires_at FROM kv") { row in
                    while try row.step() {
                        let entry = Self.digestRow(row, now: now)
                        digest.rows += 1
                        // Tombstones stay out of the hashes: a node that purged one and a node
                        // that still holds it hold the same data.
                        guard !entry.deleted else { continue }
                        let bucket = RowDigest.bucket(ofKey: entry.key)
                        digest.buckets[bucket].count += 1
                        digest.buckets[bucket].hash &+= RowDigest.rowHash(
                            key: entry.key, lamport: entry.lamport, origin: entry.origin, deleted: entry.deleted,
                            valueHash: entry.valueHash)
                        // Member rows are hashed (so anti-entropy repairs them) but are not keys.
                        if MemberRow.id(ofKey: entry.key) == nil { digest.liveKeys += 1 }
                    }
                }
                return digest
            }
        }
    }

    /// The rows of one bucket, sorted by key, for narrowing a difference down to keys.
    public func digestRows(inBucket bucket: Int) async throws -> [DigestRow] {
        let now = ExpiryClock.nowMilliseconds()
        return try readers.read { connection in
            var rows: [DigestRow] = []
            try connection.withStatement("SELECT key, value, lamport, origin, deleted, expires_at FROM kv ORDER BY key") { row in
                while try row.step() {
                    let key = row.text(at: 0)
                    guard RowDigest.bucket(ofKey: key) == bucket else { continue }
                    rows.append(Self.digestRow(row, now: now))
                }
            }
            return rows
        }
    }

    /// A row of `key, value, lamport, origin, deleted, expires_at`; expired at `now` reads as deleted.
    private static func digestRow(_ row: Statement, now: Int64) -> DigestRow {
        let deleted = row.int64(at: 4) != 0 || (!row.isNull(at: 5) && row.int64(at: 5) <= now)
        return DigestRow(
            key: row.text(at: 0), lamport: row.int64(at: 2), origin: row.text(at: 3), deleted: deleted,
            valueHash: RowDigest.valueHash(deleted ? nil : row.blob(at: 1)))
    }
}

extension KVStore {
    /// Every row of one digest bucket with its value, for repairing a peer whose digest differs.
    public func records(inBucket bucket: Int) async throws -> [Record] {
        try readers.read { connection in
            var records: [Record] = []
            try connection.withStatement("SELECT key, value, lamport, origin, deleted, expires_at FROM kv ORDER BY key") { row in
                while try row.step() {
                    let key = row.text(at: 0)
                    guard RowDigest.bucket(ofKey: key) == bucket, let origin = try? NodeID(row.text(at: 3)) else { continue }
                    let value: [UInt8]? = row.int64(at: 4) != 0 ? nil : row.blob(at: 1)
                    let expiresAt: Int64? = row.isNull(at: 5) ? nil : row.int64(at: 5)
                    records.append(
                        Record(key: key, value: value, version: Version(lamport: row.int64(at: 2), origin: origin), expiresAt: expiresAt))
                }
            }
            return records
        }
    }
}
