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
}

/// The outcome of applying a peer's batch together with its mark.
public struct PeerApplyResult: Sendable, Equatable {
    /// This node's mark of the peer's feed after the batch (`peers.pulled_seq`).
    public let mark: Int64
    /// Rows of the batch that won and were stored.
    public let applied: Int
    /// Rows refused for an absurd lamport (`LamportClock.accepts`); the mark moved past them.
    public var refused: [Record] = []
}

/// Where this node's own feed stands: cheap to read (no count of keys).
public struct FeedPosition: Sendable, Equatable {
    public let epoch: String
    public let lastSeq: Int64
}

extension KVStore {
    /// A page of the feed after `after`: at most `maxRows` rows and, past the first row, at
    /// most `maxBytes` of keys and values. Rows, `to`, `lastSeq` and `epoch` come from one
    /// snapshot, so `to` never claims a seq whose row the page does not hold.
    public func feed(after: Int64, maxRows: Int, maxBytes: Int) async throws -> FeedPage {
        try readers.read { connection in
            try connection.transaction(.deferred) {
                var rows: [StoredRecord] = []
                var bytes = 0
                var more = false
                for row in try connection.feed(after: after, limit: max(1, maxRows) + 1) {
                    let size = row.record.key.utf8.count + (row.record.value?.count ?? 0)
                    if rows.count == max(1, maxRows) || (!rows.isEmpty && bytes + size > maxBytes) {
                        more = true
                        break
                    }
                    rows.append(row)
                    bytes += size
                }
                let position = try connection.feedPosition()
                let to = more ? (rows.last?.seq ?? after) : max(after, position.lastSeq)
                return FeedPage(rows: rows, to: to, lastSeq: position.lastSeq, epoch: position.epoch)
            }
        }
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
    public func applyFeed(from peer: NodeID, records: [Record], batchFrom: Int64, batchTo: Int64) async throws
        -> PeerApplyResult
    {
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
            return PeerApplyResult(mark: newMark, applied: result.applied, refused: result.refused)
        }
    }

    /// One peer's row, or nil if it is not configured.
    public func peer(_ id: NodeID) async throws -> PeerState? {
        try readers.read { try $0.peerStates().first { $0.id == id } }
    }

    /// Records the epoch `peer` announced. If a different epoch was known, the peer's file was
    /// replaced: both marks go back to 0 so the whole feeds are exchanged again, and the
    /// previous epoch is returned; otherwise nil.
    @discardableResult
    public func notePeerEpoch(_ peer: NodeID, epoch: String) async throws -> String? {
        try await writer.submit { session in
            let connection = session.connection
            let known = try connection.firstRow("SELECT epoch FROM peers WHERE id = ?", [.text(peer.rawValue)]) {
                $0.isNull(at: 0) ? "" : $0.text(at: 0)
            }
            guard let known else { throw StoreError.unknownPeer(peer.rawValue) }
            if known == epoch { return nil }
            if known.isEmpty {
                try connection.run(
                    "UPDATE peers SET epoch = ?, last_contact = \(SQLText.now) WHERE id = ?",
                    [.text(epoch), .text(peer.rawValue)])
                return nil
            }
            try connection.run(
                "UPDATE peers SET epoch = ?, pulled_seq = 0, pushed_seq = 0, last_contact = \(SQLText.now) WHERE id = ?",
                [.text(epoch), .text(peer.rawValue)])
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
    public func renewEpoch() async throws -> String {
        try await writer.submit { session in
            let epoch = Bootstrap.newEpoch()
            try session.connection.run("UPDATE node SET epoch = ? WHERE singleton = 1", [.text(epoch)])
            return epoch
        }
    }
}

extension Connection {
    func feedPosition() throws -> FeedPosition {
        guard let position = try firstRow("SELECT epoch, next_seq FROM node WHERE singleton = 1", [], { row in
            FeedPosition(epoch: row.text(at: 0), lastSeq: row.int64(at: 1) - 1)
        }) else {
            throw CorruptRow(detail: "the node row is missing")
        }
        return position
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
    /// many. A key whose tombstone is purged reads as absent, which is what it was.
    public func purgeTombstones(ackedThrough: Int64, olderThan grace: Duration) async throws -> Int {
        let seconds = max(0, grace.inSeconds)
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
