import Foundation
import KVCore
import Logging
import SQLite

/// The `node` row: who the file belongs to, and the clock and sequence to resume from.
struct NodeRow: Sendable, Equatable {
    let id: NodeID
    let epoch: String
    let lamport: Int64
    let nextSeq: Int64
}

/// Brings a freshly opened read-write connection to a usable store: checks the file without
/// writing, sets WAL and the pragmas, applies the missing migrations and makes the node row.
enum Bootstrap {
    static func run(_ connection: Connection, configuration: StoreConfiguration, logger: Logger) throws -> NodeRow {
        let path = configuration.path
        connection.setBusyTimeout(milliseconds: configuration.busyTimeoutMilliseconds)
        // Only reads until the file is known to be ours: a foreign, corrupt, newer or other
        // node's file must come out of this byte for byte as it went in.
        try inspect(connection, path: path, nodeID: configuration.nodeID)

        let mode = try connection.enableWAL()
        if mode != "wal" {
            logger.warning("the file system refused WAL mode; readers will wait for the writer", metadata: ["path": "\(path)", "journal_mode": "\(mode)"])
        }
        try connection.execute("PRAGMA synchronous = \(configuration.sync.pragmaValue)")
        // A write into `kv` fires the key-count triggers (migration 0003), so SQLite keeps a
        // statement journal for it: every page the statement touches is copied there first.
        // In a file that is a 4 KiB pwrite per row (catch-up of 300 000 rows wrote 10× more
        // than without the triggers); in memory it is a memcpy, freed with the statement.
        try connection.execute("PRAGMA temp_store = MEMORY")
        for pragma in configuration.extraPragmas { try connection.execute(pragma.statement) }
        if let limit = configuration.maxDatabaseBytes {
            let pageSize = try connection.firstRow("PRAGMA page_size") { $0.int64(at: 0) } ?? 4096
            try connection.execute("PRAGMA max_page_count = \(max(1, Int64(limit) / max(1, pageSize)))")
        }

        var applied: [Migration] = []
        let node = try connection.transaction(.immediate) {
            applied = try migrate(connection, path: path)
            if !applied.isEmpty, let marker = configuration.holdInMigrationMarker {
                FaultInjection.hold(creating: marker, logger: logger)
            }
            return try nodeRow(connection, path: path, nodeID: configuration.nodeID, epochSource: configuration.epochSource)
        }
        for migration in applied {
            logger.info(
                "applied migration \(migration.version) (\(migration.name))",
                metadata: ["path": "\(path)", "version": "\(migration.version)"])
        }
        return node
    }

    /// Refuses, by reading only, a file of another program, a newer schema or another node.
    private static func inspect(_ connection: Connection, path: String, nodeID: NodeID) throws {
        // Reading the schema makes SQLite read and check page 1: NOTADB and CORRUPT show here.
        let tables = try connection.rows("SELECT name FROM sqlite_master WHERE type = 'table'") { $0.text(at: 0) }
        guard !tables.isEmpty else { return }
        guard tables.contains("schema_migrations") else { throw StoreError.notAConvergeDatabase(path: path) }
        try checkVersion(connection, path: path)
        if tables.contains("node"), let fileNode = try storedNode(connection, path: path) {
            guard fileNode.id == nodeID else {
                throw StoreError.wrongNode(path: path, fileNode: fileNode.id, requested: nodeID)
            }
        }
    }

    /// The highest recorded schema version; throws if this binary does not know it.
    @discardableResult
    private static func checkVersion(_ connection: Connection, path: String) throws -> Int {
        let found = try connection.firstRow("SELECT coalesce(max(version), 0) FROM schema_migrations") {
            Int($0.int64(at: 0))
        } ?? 0
        let supported = Migrations.latestVersion
        guard found <= supported else {
            throw StoreError.schemaTooNew(path: path, found: found, supported: supported)
        }
        return found
    }

    /// Applies, inside the caller's transaction, every migration above the recorded version.
    private static func migrate(_ connection: Connection, path: String) throws -> [Migration] {
        try connection.execute(
            """
            CREATE TABLE IF NOT EXISTS schema_migrations (
                version    INTEGER PRIMARY KEY,
                name       TEXT NOT NULL,
                applied_at TEXT NOT NULL
            )
            """)
        let found = try checkVersion(connection, path: path)
        let missing = Migrations.all.filter { $0.version > found }
        for migration in missing {
            try connection.execute(migration.sql)
            try connection.run(
                "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, \(SQLText.now))",
                [.integer(Int64(migration.version)), .text(migration.name)])
        }
        return missing
    }

    /// The node row, made now if the file is new; throws if it names another node.
    private static func nodeRow(
        _ connection: Connection, path: String, nodeID: NodeID, epochSource: (@Sendable () -> String)?
    ) throws -> NodeRow {
        if let stored = try storedNode(connection, path: path) {
            guard stored.id == nodeID else {
                throw StoreError.wrongNode(path: path, fileNode: stored.id, requested: nodeID)
            }
            return stored
        }
        let row = NodeRow(id: nodeID, epoch: epochSource?() ?? newEpoch(), lamport: 0, nextSeq: 1)
        try connection.run(
            "INSERT INTO node (singleton, id, epoch, lamport, next_seq, created_at) VALUES (1, ?, ?, ?, ?, \(SQLText.now))",
            [.text(row.id.rawValue), .text(row.epoch), .integer(row.lamport), .integer(row.nextSeq)])
        return row
    }

    static func storedNode(_ connection: Connection, path: String) throws -> NodeRow? {
        try connection.firstRow("SELECT id, epoch, lamport, next_seq FROM node WHERE singleton = 1") { row in
            let rawID = row.text(at: 0)
            guard let id = try? NodeID(rawID) else {
                throw CorruptRow(detail: "node.id \(String(reflecting: rawID)) is not a valid node id")
            }
            let lamport = row.int64(at: 2)
            let nextSeq = row.int64(at: 3)
            guard lamport >= 0, nextSeq >= 1 else {
                throw CorruptRow(detail: "node row has lamport \(lamport) and next_seq \(nextSeq)")
            }
            return NodeRow(id: id, epoch: row.text(at: 1), lamport: lamport, nextSeq: nextSeq)
        }
    }

    /// 32 hex digits from the system's secure generator.
    static func newEpoch() -> String {
        var generator = SystemRandomNumberGenerator()
        var epoch = ""
        for _ in 0..<2 {
            let word = generator.next() as UInt64
            let digits = String(word, radix: 16)
            epoch += String(repeating: "0", count: 16 - digits.count) + digits
        }
        return epoch
    }
}

/// Test-only pauses that let a crash test kill the process at a chosen point.
enum FaultInjection {
    /// Creates `marker`, then blocks the calling thread for up to 60 s: the test that asked
    /// for it kills the process meanwhile.
    static func hold(creating marker: String, logger: Logger) {
        logger.warning("fault injection: holding inside the migration transaction", metadata: ["marker": "\(marker)"])
        _ = FileManager.default.createFile(atPath: marker, contents: Data())
        Thread.sleep(forTimeInterval: 60)
    }
}

/// SQL fragments shared by the statements of the store.
enum SQLText {
    /// The wall clock as ISO 8601 UTC with milliseconds, evaluated by SQLite.
    static let now = "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"
}
