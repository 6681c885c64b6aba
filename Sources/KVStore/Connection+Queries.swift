import KVCore
import SQLite

/// The reads of the store. They run on any connection (a pooled reader, or the writer inside
/// its transaction) and turn rows into values, refusing a row the store never writes.
extension Connection {
    func record(forKey key: String) throws -> StoredRecord? {
        try firstRow("SELECT key, value, lamport, origin, seq, deleted, expires_at FROM kv WHERE key = ?", [.text(key)]) {
            try Self.storedRecord($0)
        }
    }

    /// Live keys starting with `prefix` and greater than `after`, in byte order.
    ///
    /// The prefix becomes a key range `[prefix, successor)` so the primary-key index bounds
    /// the scan; SQLite compares TEXT byte-wise (BINARY collation), which is the order of
    /// Unicode scalars and the one users see.
    /// Rows expired at `now` (milliseconds since the epoch) are left out.
    func liveKeys(prefix: String, after: String?, limit: Int, now: Int64) throws -> [KeyEntry] {
        guard limit > 0 else { return [] }
        // key >= ' ': the reserved member rows (first byte U+0001) are the cluster's, not the user's.
        var conditions = ["deleted = 0", "(expires_at IS NULL OR expires_at > ?)", "key >= ' '"]
        var values: [SQLiteValue] = [.integer(now)]
        if let after, !after.utf8.lexicographicallyPrecedes(prefix.utf8) {
            conditions.append("key > ?")
            values.append(.text(after))
        } else {
            conditions.append("key >= ?")
            values.append(.text(prefix))
        }
        if let upper = Self.successor(ofPrefix: prefix) {
            conditions.append("key < ?")
            values.append(.text(upper))
        }
        values.append(.integer(Int64(limit)))
        let sql = "SELECT key, lamport, origin, length(value) FROM kv WHERE \(conditions.joined(separator: " AND ")) ORDER BY key LIMIT ?"
        return try rows(sql, values) { row in
            let key = row.text(at: 0)
            return KeyEntry(
                key: key,
                version: try Self.version(lamport: row.int64(at: 1), origin: row.text(at: 2), key: key),
                size: Int(row.int64(at: 3)))
        }
    }

    /// The rows of the feed table's current entries (migration 0007): an entry is current while
    /// its row still has the entry's seq; the others, left by overwrites and purges, are skipped
    /// here and deleted by `WriteSession.compactFeed`. `CROSS JOIN` keeps `feed` the outer
    /// loop, read in seq order.
    private static let feedRows = """
        SELECT kv.key, kv.value, kv.lamport, kv.origin, kv.seq, kv.deleted, kv.expires_at
        FROM feed CROSS JOIN kv ON kv.rowid = feed.row AND kv.seq = feed.seq
        """

    /// The change feed: rows with `seq > after`, in `seq` order, tombstones included.
    func feed(after seq: Int64, limit: Int) throws -> [StoredRecord] {
        guard limit > 0 else { return [] }
        return try rows(
            "\(Self.feedRows) WHERE feed.seq > ? ORDER BY feed.seq LIMIT ?",
            [.integer(seq), .integer(Int64(limit))]
        ) { try Self.storedRecord($0) }
    }

    /// The feed with rows left out: rows with `after < seq <= through` in `seq` order, except
    /// those an exclusion names, at most `limit`.
    func feed(after seq: Int64, through: Int64, excluding exclusions: [FeedExclusion], limit: Int) throws -> [StoredRecord] {
        guard !exclusions.isEmpty else { return try feed(after: seq, limit: limit) }
        guard limit > 0, through > seq else { return [] }
        let conditions = String(repeating: " AND NOT (kv.origin = ? AND kv.lamport <= ?)", count: exclusions.count)
        var values: [SQLiteValue] = [.integer(seq), .integer(through)]
        for exclusion in exclusions {
            values.append(.text(exclusion.origin.rawValue))
            values.append(.integer(exclusion.throughLamport))
        }
        values.append(.integer(Int64(limit)))
        return try rows(
            "\(Self.feedRows) WHERE feed.seq > ? AND feed.seq <= ?\(conditions) ORDER BY feed.seq LIMIT ?",
            values
        ) { try Self.storedRecord($0) }
    }

    /// The node row and the counts of live keys and tombstones, in one snapshot. The counts
    /// come from `kv_counts`, which triggers keep with every change to `kv`: no row is counted
    /// here, so this costs the same with a million keys as with none.
    func nodeState(path: String) throws -> NodeState {
        try transaction(.deferred) {
            guard let node = try Bootstrap.storedNode(self, path: path) else {
                throw CorruptRow(detail: "the node row is missing")
            }
            guard let counts = try firstRow("SELECT live, tombstones FROM kv_counts WHERE singleton = 1", [], { row in
                (live: row.int64(at: 0), tombstones: row.int64(at: 1))
            }) else {
                throw CorruptRow(detail: "the kv_counts row is missing")
            }
            return NodeState(
                id: node.id, epoch: node.epoch, lamport: node.lamport, lastSeq: node.nextSeq - 1, liveKeys: counts.live,
                tombstones: counts.tombstones)
        }
    }

    /// `peers.resend_all_through` of one peer; 0 for a peer not in the table.
    func resendAllThrough(of peer: NodeID) throws -> Int64 {
        try firstRow("SELECT resend_all_through FROM peers WHERE id = ?", [.text(peer.rawValue)]) { $0.int64(at: 0) } ?? 0
    }

    func peerStates() throws -> [PeerState] {
        try rows(
            "SELECT id, url, epoch, pulled_seq, pushed_seq, last_contact, covered_lamport, resend_all_through FROM peers ORDER BY id"
        ) { row in
            let rawID = row.text(at: 0)
            guard let id = try? NodeID(rawID) else {
                throw CorruptRow(detail: "peers.id \(String(reflecting: rawID)) is not a valid node id")
            }
            return PeerState(
                id: id, url: row.text(at: 1), epoch: row.isNull(at: 2) ? nil : row.text(at: 2),
                pulledSeq: row.int64(at: 3), pushedSeq: row.int64(at: 4),
                lastContact: row.isNull(at: 5) ? nil : row.text(at: 5),
                coveredLamport: row.int64(at: 6), resendAllThrough: row.int64(at: 7))
        }
    }

    /// Reads a row of `key, value, lamport, origin, seq, deleted, expires_at`.
    private static func storedRecord(_ row: Statement) throws -> StoredRecord {
        let key = row.text(at: 0)
        let deleted = row.int64(at: 5) != 0
        let value: [UInt8]? = deleted ? nil : row.blob(at: 1)
        let version = try version(lamport: row.int64(at: 2), origin: row.text(at: 3), key: key)
        let expiresAt: Int64? = row.isNull(at: 6) ? nil : row.int64(at: 6)
        return StoredRecord(record: Record(key: key, value: value, version: version, expiresAt: expiresAt), seq: row.int64(at: 4))
    }

    private static func version(lamport: Int64, origin: String, key: String) throws -> Version {
        guard lamport >= 1 else {
            throw CorruptRow(detail: "key \(String(reflecting: key)) has lamport \(lamport)")
        }
        guard let node = try? NodeID(origin) else {
            throw CorruptRow(detail: "key \(String(reflecting: key)) has origin \(String(reflecting: origin)), not a node id")
        }
        return Version(lamport: lamport, origin: node)
    }

    /// The least string greater than every string that starts with `prefix`, in byte order:
    /// `prefix` with its last scalar incremented (a maximal last scalar is dropped first).
    /// Nil when there is none (an empty prefix, or only U+10FFFF).
    static func successor(ofPrefix prefix: String) -> String? {
        var scalars = Array(prefix.unicodeScalars)
        while let last = scalars.popLast() {
            var next = last.value + 1
            if next == 0xD800 { next = 0xE000 }  // skip the surrogates, which are not scalars
            if let scalar = Unicode.Scalar(next) {
                scalars.append(scalar)
                var result = ""
                result.unicodeScalars.append(contentsOf: scalars)
                return result
            }
        }
        return nil
    }
}
