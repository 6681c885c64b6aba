import KVCore
import SQLite

/// One step of a cursor walk over the live keys, as Redis `SCAN` needs it.
public struct ScanPage: Sendable, Equatable {
    /// The live keys among the rows visited, in the walk's order.
    public let keys: [String]
    /// The cursor to continue from; 0 when the walk is complete.
    public let cursor: Int64
}

extension KVStore {
    /// Visits up to `count` rows of `kv` after `cursor` (0 to begin) in the table's row order,
    /// and returns the live keys among them and the cursor to continue from.
    ///
    /// The cursor is SQLite's `rowid` of the last row visited, which an overwrite keeps: a key
    /// live for the whole walk is returned exactly once, as `SCAN` promises; a key added or
    /// deleted during the walk may or may not be; an expired key is not. Costs O(count), never
    /// O(keys).
    public func scan(after cursor: Int64, count: Int) async throws -> ScanPage {
        let limit = max(1, count)
        let now = ExpiryClock.nowMilliseconds()
        return try readers.read { connection in
            var keys: [String] = []
            var last: Int64 = 0
            var visited = 0
            _ = try connection.rows(
                "SELECT rowid, key, deleted = 0 AND (expires_at IS NULL OR expires_at > ?) AND key >= ' ' FROM kv WHERE rowid > ? ORDER BY rowid LIMIT ?",
                [.integer(now), .integer(cursor), .integer(Int64(limit))]
            ) { row -> Void in
                visited += 1
                last = row.int64(at: 0)
                if row.int64(at: 2) != 0 { keys.append(row.text(at: 1)) }
            }
            return ScanPage(keys: keys, cursor: visited < limit ? 0 : last)
        }
    }
}

extension KVStore {
    /// Live keys with an expiry still ahead (`expiring`), and live rows already expired that
    /// the sweep has not turned into tombstones yet (`expired`). Reads the expiry index only.
    public func expiryCounts() async throws -> (expiring: Int64, expired: Int64) {
        let now = ExpiryClock.nowMilliseconds()
        return try readers.read { connection in
            try connection.firstRow(
                "SELECT count(*) FILTER (WHERE expires_at > ?), count(*) FILTER (WHERE expires_at <= ?) FROM kv WHERE deleted = 0 AND expires_at IS NOT NULL",
                [.integer(now), .integer(now)]
            ) { (expiring: $0.int64(at: 0), expired: $0.int64(at: 1)) } ?? (0, 0)
        }
    }

    /// The keys a reader sees now: live rows less those expired and not yet swept.
    public func liveKeyCount() async throws -> Int64 {
        let live = try await state().liveKeys
        return live - (try await expiryCounts().expired)
    }
}
