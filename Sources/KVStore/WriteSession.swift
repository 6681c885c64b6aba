import KVCore
import SQLite

/// The writer's side of the store: the read-write connection, the Lamport clock and the next
/// `seq`, owned by the writer thread alone (so not `Sendable`). Every method runs inside the
/// writer's transaction and a savepoint of its request; the writer persists the clock and
/// `next_seq` once per transaction with `saveCounters()`.
final class WriteSession {
    let connection: Connection
    let nodeID: NodeID
    private(set) var clock: LamportClock
    private(set) var nextSeq: Int64
    /// What the writes of the running transaction store as `updated_at`: the writer reads the
    /// wall clock once per group commit, not SQLite once per row.
    var timestamp = WallClock.timestamp()
    /// The two statements every write runs, kept so a write skips the look-up by SQL text.
    private var statements: (local: Statement, remote: Statement)?
    /// What the running transaction did to each key it wrote, in order, for the read cache:
    /// the row a client's write stored (the cache keeps it), or nil for a row to forget (a
    /// replicated row, an expiry, a write undone).
    private var cacheChanges: [ReadCache.Change] = []
    /// Rows of `kv` the running transaction's statements changed, counted by SQLite: more than
    /// `cacheChanges` means a statement changed rows this session cannot name (a purge).
    private let kvRowChanges: RowChangeCounter

    /// The in-memory counters at one moment, to restore when the work after it is undone.
    struct Counters: Equatable {
        let clock: LamportClock
        let nextSeq: Int64
    }

    /// Told every key before a statement stores it; nil when the read cache is off.
    private let keyFilter: KeyFilter?

    init(connection: Connection, node: NodeRow, keyFilter: KeyFilter? = nil) {
        self.keyFilter = keyFilter
        self.connection = connection
        self.nodeID = node.id
        self.clock = LamportClock(now: node.lamport)
        self.nextSeq = node.nextSeq
        self.kvRowChanges = connection.countRowChanges(in: "kv")
    }

    /// What the read cache must learn from the transaction that ran since the last call.
    enum CacheChanges {
        /// Every row the transaction changed, named.
        case rows([ReadCache.Change])
        /// A statement changed rows it did not name: forget everything.
        case all
    }

    /// Where the recorded cache changes stand now, to undo the ones of a request that fails.
    var cacheChangeMark: Int { cacheChanges.count }

    /// Turns the changes recorded since `mark` into rows to forget: their request was rolled
    /// back, so the rows they name were not stored.
    func forgetCacheChanges(since mark: Int) {
        for index in mark..<cacheChanges.count {
            cacheChanges[index] = ReadCache.Change(key: cacheChanges[index].key, row: nil)
        }
    }

    /// The cache changes of the transaction that just ended, and a clean slate for the next
    /// one. `committed` false (the transaction rolled back): every change becomes a row to
    /// forget.
    func takeCacheChanges(committed: Bool) -> CacheChanges {
        defer {
            cacheChanges.removeAll(keepingCapacity: true)
            kvRowChanges.rows = 0
        }
        if kvRowChanges.rows > cacheChanges.count { return .all }
        if !committed { forgetCacheChanges(since: 0) }
        return .rows(cacheChanges)
    }

    var counters: Counters { Counters(clock: clock, nextSeq: nextSeq) }

    func restore(_ counters: Counters) {
        clock = counters.clock
        nextSeq = counters.nextSeq
    }

    /// Moves the clock up to `lamport` (a peer's clock) if it is later and within the jump a
    /// row may make (`LamportClock.accepts`); returns whether it did.
    func observe(clock lamport: Int64) -> Bool {
        guard LamportClock.accepts(lamport, now: clock.now) else { return false }
        clock.observe(lamport)
        return true
    }

    /// Writes the clock and `next_seq` to the node row.
    func saveCounters() throws {
        try connection.run(
            "UPDATE node SET lamport = ?, next_seq = ? WHERE singleton = 1",
            [.integer(clock.now), .integer(nextSeq)])
    }

    /// A local put (`value` non-nil) or delete (`value` nil, a tombstone): ticks the clock,
    /// stamps the row with this node's version and takes the next `seq`. The new version is
    /// greater than any stored one, since the clock has observed every stored row. One
    /// statement, after the key's check: the writer runs it without a savepoint.
    /// `expiresAt` (milliseconds since the epoch) is stored with a value and dropped with a tombstone.
    func writeLocal(key: String, value: [UInt8]?, expiresAt: Int64? = nil) throws -> WriteReceipt {
        do {
            try KeyRules.validateStored(key)
        } catch {
            throw StoreError.invalidKey(key: key, reason: error)
        }
        let version = Version(lamport: clock.tick(), origin: nodeID)
        let seq = try upsert(Record(key: key, value: value, version: version, expiresAt: value == nil ? nil : expiresAt))
        return WriteReceipt(key: key, version: version, seq: seq)
    }

    /// Merges remote rows: validates all of them first (one invalid row refuses the batch and
    /// changes nothing, not even the clock), then for each row observes its lamport and
    /// stores it with a fresh `seq` if its version is greater than the stored one
    /// (`Merge.shouldReplace`, evaluated by the upsert itself).
    ///
    /// Replication will run this and the update of `peers.pulled_seq` in one request, so the
    /// rows and the mark commit together.
    func apply(_ records: [Record]) throws -> ApplyResult {
        for (index, record) in records.enumerated() {
            do {
                try KeyRules.validateStored(record.key)
            } catch {
                throw StoreError.invalidRecord(index: index, reason: error.description)
            }
            guard record.version.lamport >= 1 else {
                throw StoreError.invalidRecord(index: index, reason: "lamport \(record.version.lamport) is below 1")
            }
        }
        var applied = 0
        var refused: [Record] = []
        for record in records {
            guard LamportClock.accepts(record.version.lamport, now: clock.now) else {
                refused.append(record)
                continue
            }
            clock.observe(record.version.lamport)
            // One statement both compares versions (`Merge.shouldReplace`: greater lamport,
            // then greater origin byte-wise, as SQLite compares TEXT) and writes the row.
            if try upsert(record, onlyIfNewer: true) { applied += 1 }
        }
        return ApplyResult(applied: applied, ignored: records.count - applied - refused.count, refused: refused)
    }

    /// Adds new peers and updates the URL of known ones; their marks and epochs stay.
    func upsertPeers(_ peers: [PeerConfig]) throws {
        for peer in peers {
            try connection.run(
                "INSERT INTO peers (id, url) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET url = excluded.url",
                [.text(peer.id.rawValue), .text(peer.url)])
        }
    }

    /// Turns up to `limit` live rows whose expiry is at or before `now` into tombstones of the
    /// same version, each with the next `seq` (so watchers and peers see the change; a peer
    /// ignores it, holding the same version). Same version: the expired write still wins over
    /// older ones, so no older value comes back. Returns how many rows it turned.
    func tombstoneExpired(now: Int64, limit: Int) throws -> Int {
        let keys = try connection.rows(
            "SELECT key FROM kv WHERE deleted = 0 AND expires_at IS NOT NULL AND expires_at <= ? ORDER BY expires_at LIMIT ?",
            [.integer(now), .integer(Int64(limit))]
        ) { $0.text(at: 0) }
        for key in keys {
            cacheChanges.append(ReadCache.Change(key: key, row: nil))
            try connection.run(
                "UPDATE kv SET value = NULL, deleted = 1, seq = ?, updated_at = ? WHERE key = ?",
                [.integer(nextSeq), .text(timestamp), .text(key)])
            nextSeq += 1
        }
        return keys.count
    }

    /// Where the sweep of the feed table stands: entries up to this seq were examined last.
    private var feedSweptThrough: Int64 = 0

    /// Deletes the feed entries that are no longer current — their row took a newer seq or was
    /// purged (migration 0007) — among the next `window` seqs of a sweep that runs from the
    /// start of the feed to its end and starts over; returns how many it deleted. The writer
    /// sweeps twice as many seqs as each transaction took, which keeps the table at about 1.3
    /// entries per row under a steady load of overwrites (docs/storage.md, "The feed").
    @discardableResult
    func compactFeed(window: Int64) throws -> Int {
        let lastSeq = nextSeq - 1
        guard window > 0, lastSeq > 0 else { return 0 }
        if feedSweptThrough >= lastSeq { feedSweptThrough = 0 }
        let from = feedSweptThrough
        let through = min(lastSeq, from + window)
        feedSweptThrough = through
        return try connection.run(Self.compactFeedSQL, [.integer(from), .integer(through)])
    }

    private static let compactFeedSQL = """
        DELETE FROM feed WHERE seq IN (
            SELECT feed.seq FROM feed LEFT JOIN kv ON kv.rowid = feed.row
            WHERE feed.seq > ? AND feed.seq <= ? AND (kv.seq IS NULL OR kv.seq <> feed.seq))
        """

    /// Stores `record` as the row of its key with the next `seq`, and returns that `seq`.
    private func upsert(_ record: Record) throws -> Int64 {
        let seq = nextSeq
        _ = try upsert(record, onlyIfNewer: false)
        return seq
    }

    /// Stores `record` as the row of its key with the next `seq` — with `onlyIfNewer`, only if
    /// its version is greater than the stored row's — and says whether it did.
    private func upsert(_ record: Record, onlyIfNewer: Bool) throws -> Bool {
        let statements = try preparedStatements()
        keyFilter?.add(record.key)
        let changed = try connection.run(
            onlyIfNewer ? statements.remote : statements.local,
            [
                .text(record.key), record.value.map(SQLiteValue.blob) ?? .null,
                .integer(record.version.lamport), .text(record.version.origin.rawValue),
                .integer(nextSeq), .integer(record.isTombstone ? 1 : 0), .text(timestamp),
                record.expiresAt.map(SQLiteValue.integer) ?? .null,
            ])
        guard changed > 0 else { return false }
        // A client's write is kept for the reads that follow it; a replicated row is only
        // forgotten, so a catch-up does not fill the cache with rows nobody asked for.
        cacheChanges.append(ReadCache.Change(key: record.key, row: onlyIfNewer ? nil : StoredRecord(record: record, seq: nextSeq)))
        nextSeq += 1
        return true
    }

    private func preparedStatements() throws -> (local: Statement, remote: Statement) {
        if let statements { return statements }
        let prepared = (
            local: try connection.cachedStatement(Self.upsertSQL),
            remote: try connection.cachedStatement(Self.upsertSQL + Self.onlyIfNewerSQL))
        statements = prepared
        return prepared
    }

    private static let upsertSQL = """
        INSERT INTO kv (key, value, lamport, origin, seq, deleted, updated_at, expires_at)
        VALUES (?, ?, ?, ?, ?, ?, ?, ?)
        ON CONFLICT (key) DO UPDATE SET
            value = excluded.value, lamport = excluded.lamport, origin = excluded.origin,
            seq = excluded.seq, deleted = excluded.deleted, updated_at = excluded.updated_at,
            expires_at = excluded.expires_at
        """

    private static let onlyIfNewerSQL = """

        WHERE excluded.lamport > kv.lamport
           OR (excluded.lamport = kv.lamport AND excluded.origin > kv.origin)
        """
}
