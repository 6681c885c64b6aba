public import KVCore
import SQLite

/// A page of the change feed as the replication protocol sends it (DESIGN.md §3).
public struct FeedPage: Sendable, Equatable {
    /// Rows with `seq` in `(after, to]`, in seq order.
    public let rows: [StoredRecord]
    /// The seq up to which this page covers the feed: the last row's seq when more rows
    /// follow, else the node's last seq (so gaps left by overwritten keys are covered too).
    public let to: Int64
    /// The node's last assigned seq when the page was read.
    public let lastSeq: Int64
    /// The node's epoch when the page was read.
    public let epoch: String
    /// The node's Lamport clock when the page was read. When `to == lastSeq` the page reached
    /// the end of the feed, and a receiver that applies it holds, for every key, this node's
    /// own writes up to this time or something newer (docs/protocol.md, "Leaving out what the
    /// receiver has").
    public let clock: Int64
    /// What the node held of other nodes' writes when the page was read (its `coverage()`):
    /// a receiver that applies the page that reached the end holds all of it too.
    public let coverage: [FeedExclusion]

    public init(rows: [StoredRecord], to: Int64, lastSeq: Int64, epoch: String, clock: Int64, coverage: [FeedExclusion]) {
        self.rows = rows
        self.to = to
        self.lastSeq = lastSeq
        self.epoch = epoch
        self.clock = clock
        self.coverage = coverage
    }
}

/// Rows a feed page leaves out because the receiver has them or something newer: those
/// written by `origin` at Lamport time `throughLamport` or earlier.
public struct FeedExclusion: Sendable, Hashable {
    public let origin: NodeID
    public let throughLamport: Int64

    public init(origin: NodeID, throughLamport: Int64) {
        self.origin = origin
        self.throughLamport = throughLamport
    }

    /// Every row `origin` wrote.
    public static func everything(writtenBy origin: NodeID) -> FeedExclusion {
        FeedExclusion(origin: origin, throughLamport: .max)
    }
}

/// The outcome of applying a peer's batch together with its mark.
public struct PeerApplyResult: Sendable, Equatable {
    /// This node's mark of the peer's feed after the batch (`peers.pulled_seq`).
    public let mark: Int64
    /// Rows of the batch that won and were stored.
    public let applied: Int
    /// Rows refused for an absurd lamport (`LamportClock.accepts`); the mark moved past them.
    public var refused: [Record] = []

    public init(mark: Int64, applied: Int, refused: [Record] = []) {
        self.mark = mark
        self.applied = applied
        self.refused = refused
    }
}

/// Where this node's own feed stands: cheap to read (no count of keys).
public struct FeedPosition: Sendable, Equatable {
    public let epoch: String
    public let lastSeq: Int64
    /// The Lamport clock as last committed.
    public let clock: Int64

    public init(epoch: String, lastSeq: Int64, clock: Int64) {
        self.epoch = epoch
        self.lastSeq = lastSeq
        self.clock = clock
    }
}

extension KVStore {
    /// How many seqs one page scans at most when it leaves rows out, so a feed whose rows are
    /// almost all left out is still answered in bounded time (the page then ends early, with
    /// `to` at the end of the scanned window).
    public static let exclusionScanWindow: Int64 = 100_000

    /// A page of the feed after `after`: at most `maxRows` rows and, past the first row, at
    /// most `maxBytes` of keys and values, leaving out the rows `excluding` names. Rows, `to`,
    /// `lastSeq`, `epoch` and `clock` come from one snapshot, so `to` never claims a seq whose
    /// row the page does not hold or deliberately left out.
    public func feed(after: Int64, maxRows: Int, maxBytes: Int, excluding: [FeedExclusion] = []) async throws -> FeedPage {
        try readers.read { connection in
            try connection.transaction(.deferred) {
                try Self.page(connection, after: after, maxRows: maxRows, maxBytes: maxBytes, excluding: excluding)
            }
        }
    }

    /// A page of the feed for `receiver`, leaving out what it has (docs/protocol.md, "Leaving
    /// out what the receiver has"): the writes of other nodes it says it holds (`receiverHolds`;
    /// an entry for the receiver itself is ignored) and its own writes, once it has been sent
    /// everything up to its `resend_all_through`. The one place both the pusher and the feed
    /// route decide what a peer is not sent; read in the page's snapshot.
    public func feed(
        for receiver: NodeID, after: Int64, maxRows: Int, maxBytes: Int, receiverHolds: [FeedExclusion]
    ) async throws -> FeedPage {
        try readers.read { connection in
            try connection.transaction(.deferred) {
                var excluding = receiverHolds.filter { $0.origin != receiver }
                let resendAllThrough = try connection.resendAllThrough(of: receiver)
                if after >= resendAllThrough { excluding.append(.everything(writtenBy: receiver)) }
                return try Self.page(connection, after: after, maxRows: maxRows, maxBytes: maxBytes, excluding: excluding)
            }
        }
    }

    /// One page read inside the caller's transaction (see `feed(after:maxRows:maxBytes:excluding:)`).
    private static func page(
        _ connection: Connection, after: Int64, maxRows: Int, maxBytes: Int, excluding: [FeedExclusion]
    ) throws -> FeedPage {
        let position = try connection.feedPosition()
        let through = excluding.isEmpty ? Int64.max : after &+ Self.exclusionScanWindow
        var rows: [StoredRecord] = []
        var bytes = 0
        var more = false
        for row in try connection.feed(after: after, through: through, excluding: excluding, limit: max(1, maxRows) + 1) {
            let size = row.record.key.utf8.count + (row.record.value?.count ?? 0)
            if rows.count == max(1, maxRows) || (!rows.isEmpty && bytes + size > maxBytes) {
                more = true
                break
            }
            rows.append(row)
            bytes += size
        }
        let to = more ? (rows.last?.seq ?? after) : max(after, min(through, position.lastSeq))
        return FeedPage(
            rows: rows, to: to, lastSeq: position.lastSeq, epoch: position.epoch, clock: position.clock,
            coverage: try connection.coverage())
    }

    /// This node's epoch and last seq.
    public func feedPosition() async throws -> FeedPosition {
        try readers.read { try $0.feedPosition() }
    }

    /// Applies a batch `(batchFrom, batchTo]` of `peer`'s feed and moves this node's mark of
    /// that feed to `max(mark, batchTo)`, in one transaction (DESIGN.md §3: the receiver owns
    /// the mark). Throws `.feedGap` without applying anything when `batchFrom` is beyond the
    /// mark, `.unknownPeer` for a peer not in the `peers` table, and `.invalidRecord` for a
    /// batch with an invalid row.
    ///
    /// `senderClock` is set when the batch reached the end of the sender's feed, read when the
    /// sender's clock was at that value: if every row of the batch was taken (none refused),
    /// this node then holds, for every key, the sender's own writes up to that time or
    /// something newer, and records it as `covered_lamport` in the same transaction; it then
    /// also holds what the sender held of other nodes (`senderCoverage`, read with the batch),
    /// and raises its own coverage of those nodes to it.
    public func applyFeed(
        from peer: NodeID, records: [Record], batchFrom: Int64, batchTo: Int64, senderClock: Int64? = nil,
        senderCoverage: [FeedExclusion] = []
    ) async throws -> PeerApplyResult {
        try await writer.submit { session in
            let connection = session.connection
            guard let mark = try connection.pulledSeq(of: peer) else {
                throw StoreError.unknownPeer(peer.rawValue)
            }
            guard batchFrom <= mark else { throw StoreError.feedGap(peer: peer.rawValue, mark: mark) }
            let result = records.isEmpty ? ApplyResult(applied: 0, ignored: 0) : try session.apply(records)
            let newMark = max(mark, batchTo)
            try connection.run(
                "UPDATE peers SET pulled_seq = ?, last_contact = \(SQLText.now) WHERE id = ?",
                [.integer(newMark), .text(peer.rawValue)])
            if let senderClock, result.refused.isEmpty {
                let held = [FeedExclusion(origin: peer, throughLamport: senderClock)]
                    + senderCoverage.filter { $0.origin != peer && $0.origin != session.nodeID }
                for claim in held {
                    try connection.run(
                        "UPDATE peers SET covered_lamport = max(covered_lamport, ?) WHERE id = ?",
                        [.integer(claim.throughLamport), .text(claim.origin.rawValue)])
                }
            }
            return PeerApplyResult(mark: newMark, applied: result.applied, refused: result.refused)
        }
    }

    /// Applies `peer`'s own writes sent on its own lane (docs/protocol.md): merges them like any
    /// rows, without moving this node's mark of the peer's feed. With `senderClock` (the batch
    /// reached the end of the peer's feed, and the caller checked it continues what the peer
    /// sent since it greeted), and every row taken, records that this node holds every write of
    /// the peer up to that time, in the same transaction. Throws `.unknownPeer` and
    /// `.invalidRecord` as `applyFeed` does.
    public func applyOwnWrites(from peer: NodeID, records: [Record], senderClock: Int64?) async throws -> PeerApplyResult {
        try await writer.submit { session in
            let connection = session.connection
            guard let mark = try connection.pulledSeq(of: peer) else {
                throw StoreError.unknownPeer(peer.rawValue)
            }
            if let index = records.firstIndex(where: { $0.version.origin != peer }) {
                throw StoreError.invalidRecord(index: index, reason: "an own-lane batch of \(peer) holds a write of \(records[index].version.origin)")
            }
            let result = records.isEmpty ? ApplyResult(applied: 0, ignored: 0) : try session.apply(records)
            if let senderClock, result.refused.isEmpty {
                try connection.run(
                    "UPDATE peers SET covered_lamport = max(covered_lamport, ?), last_contact = \(SQLText.now) WHERE id = ?",
                    [.integer(senderClock), .text(peer.rawValue)])
            }
            return PeerApplyResult(mark: mark, applied: result.applied, refused: result.refused)
        }
    }

    /// What this node holds of its peers' writes (each peer with a `covered_lamport` above 0),
    /// as the exclusions a node sending its feed here may apply.
    public func coverage() async throws -> [FeedExclusion] {
        try readers.read { try $0.coverage() }
    }

    /// One peer's row, or nil if it is not configured.
    public func peer(_ id: NodeID) async throws -> PeerState? {
        try readers.read { try $0.peerStates().first { $0.id == id } }
    }

    /// Records the epoch `peer` announced. If a different epoch was known, the peer's file was
    /// replaced: both marks go back to 0 so the whole feeds are exchanged again, what this node
    /// held of the peer's writes is forgotten (`covered_lamport` 0), and the previous epoch is
    /// returned; otherwise nil. A first or a changed epoch sets `resend_all_through` to this
    /// node's last seq: a file this node has not exchanged with yet may lack writes the peer
    /// made with an earlier file, so until then the peer is sent its own rows too.
    @discardableResult
    public func notePeerEpoch(_ peer: NodeID, epoch: String) async throws -> String? {
        try await writer.submit { session in
            let connection = session.connection
            let known = try connection.firstRow("SELECT epoch FROM peers WHERE id = ?", [.text(peer.rawValue)]) {
                $0.isNull(at: 0) ? "" : $0.text(at: 0)
            }
            guard let known else { throw StoreError.unknownPeer(peer.rawValue) }
            if known == epoch { return nil }
            let lastSeq = session.nextSeq - 1
            if known.isEmpty {
                try connection.run(
                    "UPDATE peers SET epoch = ?, resend_all_through = ?, last_contact = \(SQLText.now) WHERE id = ?",
                    [.text(epoch), .integer(lastSeq), .text(peer.rawValue)])
                return nil
            }
            try connection.run(
                """
                UPDATE peers SET epoch = ?, pulled_seq = 0, pushed_seq = 0, covered_lamport = 0,
                    resend_all_through = ?, last_contact = \(SQLText.now)
                WHERE id = ?
                """,
                [.text(epoch), .integer(lastSeq), .text(peer.rawValue)])
            return known
        }
    }

    /// Stores `peer`'s acknowledged mark of this node's feed.
    public func setPushedSeq(_ peer: NodeID, _ seq: Int64) async throws {
        try await writer.submit { session in
            _ = try session.connection.run(
                "UPDATE peers SET pushed_seq = ?, last_contact = \(SQLText.now) WHERE id = ?",
                [.integer(seq), .text(peer.rawValue)])
        }
    }

    /// Gives this node's file a new random epoch and returns it, for a file found to be an
    /// older copy of itself: peers then treat its feed as new and re-read it from the start.
    /// What the file claimed to hold of each peer's writes (`covered_lamport`) is dropped with
    /// it, since the copy may be older than the claims.
    public func renewEpoch() async throws -> String {
        try await writer.submit { session in
            let epoch = self.configuration.epochSource?() ?? Bootstrap.newEpoch()
            try session.connection.run("UPDATE node SET epoch = ? WHERE singleton = 1", [.text(epoch)])
            try session.connection.execute("UPDATE peers SET covered_lamport = 0")
            return epoch
        }
    }
}

extension Connection {
    func feedPosition() throws -> FeedPosition {
        guard let position = try firstRow("SELECT epoch, next_seq, lamport FROM node WHERE singleton = 1", [], { row in
            FeedPosition(epoch: row.text(at: 0), lastSeq: row.int64(at: 1) - 1, clock: row.int64(at: 2))
        }) else {
            throw CorruptRow(detail: "the node row is missing")
        }
        return position
    }

    func coverage() throws -> [FeedExclusion] {
        try rows("SELECT id, covered_lamport FROM peers WHERE covered_lamport > 0 ORDER BY id") { row in
            let rawID = row.text(at: 0)
            guard let id = try? NodeID(rawID) else {
                throw CorruptRow(detail: "peers.id \(String(reflecting: rawID)) is not a valid node id")
            }
            return FeedExclusion(origin: id, throughLamport: row.int64(at: 1))
        }
    }

    func pulledSeq(of peer: NodeID) throws -> Int64? {
        try firstRow("SELECT pulled_seq FROM peers WHERE id = ?", [.text(peer.rawValue)]) { $0.int64(at: 0) }
    }
}

extension StoreError {
    /// Whether this is a batch refused because it starts beyond the mark.
    public var isFeedGap: Bool { feedGapMark != nil }

    /// The receiver's mark, when this is a feed gap.
    public var feedGapMark: Int64? {
        if case .feedGap(_, let mark) = self { return mark }
        return nil
    }
}

extension KVStore {
    /// Deletes the tombstones that every peer has acknowledged (`seq <= ackedThrough`) and that
    /// this node stored more than `grace` ago (DESIGN.md §2), in one transaction; returns how
    /// many. A key whose tombstone is purged reads as absent, which is what it was. A grace of zero
    /// or less purges every acknowledged tombstone.
    public func purgeTombstones(ackedThrough: Int64, olderThan grace: Duration) async throws -> Int {
        if grace <= .zero {
            // No grace: every acknowledged tombstone goes, whatever the wall clock says (the
            // simulator relies on this to replay bit for bit).
            return try await writer.submit { session in
                try session.connection.run("DELETE FROM kv WHERE deleted = 1 AND seq <= ?", [.integer(ackedThrough)])
            }
        }
        let seconds = grace.inSeconds
        return try await writer.submit { session in
            try session.connection.run(
                """
                DELETE FROM kv WHERE deleted = 1 AND seq <= ?
                AND updated_at < strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-\(seconds) seconds')
                """,
                [.integer(ackedThrough)])
        }
    }
}
