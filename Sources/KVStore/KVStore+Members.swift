public import KVCore
import SQLite

extension KVStore {
    /// The members the cluster's data records (`MemberRow`), ordered by id; rows that do not
    /// parse are left out. A range read of the primary key: a handful of rows.
    public func members() async throws -> [Member] {
        try readers.read { connection in
            try connection.rows(
                "SELECT key, value FROM kv WHERE key >= ? AND key < ? AND deleted = 0 ORDER BY key",
                [.text(MemberRow.prefix), .text(MemberRow.prefix.dropLast() + "0")]
            ) { row in MemberRow.member(key: row.text(at: 0), value: row.blob(at: 1)) }
        }.compactMap { $0 }
    }

    /// Writes `member`'s row as a local write of this node (a new version that wins over every
    /// row it has seen), for replication to carry everywhere.
    @discardableResult
    public func write(_ member: Member) async throws -> WriteReceipt {
        try await put(key: MemberRow.key(of: member.id), value: MemberRow.value(of: member))
    }
}

extension KVStore {
    /// Moves this node's Lamport clock up to `lamport` (saved with the node row), so its next
    /// write is newer than every write the peer that sent it had seen. A joining node takes the
    /// clock of the member that added it: a file made new under the id of a replaced node
    /// would otherwise give its first writes versions the old file already used. Returns false
    /// when the value is too far ahead to trust (`LamportClock.accepts`).
    @discardableResult
    public func observeClock(_ lamport: Int64) async throws -> Bool {
        try await writer.submit { $0.observe(clock: lamport) }
    }
}
