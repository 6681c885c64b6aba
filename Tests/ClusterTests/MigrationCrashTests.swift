import Foundation
import KVClient
import KVCore
import Testing
import TestSupport

extension FaultInjection {
    /// Issue 4, "Crash … of start-up migrations": a node whose file is at schema version 1 (with
    /// rows in it) is killed with SIGKILL while it migrates the file to the current schema. All
    /// migrations run in one transaction with their `schema_migrations` rows, so the file after
    /// the kill is the old schema with every row, intact; the next start migrates it.
    @Suite("kill -9 during start-up migrations", .serialized)
    struct MigrationCrashTests {
        static let rows = 100_000

        /// Deterministic: the node holds inside the migration transaction (the test-only hook
        /// `$KVNODE_FAULT_HOLD_IN_MIGRATION`), after the last migration's SQL ran, and is killed there.
        @Test func killedInsideTheMigrationTransaction() async throws {
            try await withTemporaryDirectory { directory in
                let database = directory.appendingPathComponent("A.db").path
                try await makeVersionOneFile(at: database, rows: Self.rows)
                let marker = directory.appendingPathComponent("holding").path
                let node = try NodeProcess.spawn(
                    ["--id", "A", "--port", "0", "--db", database], logFile: directory.appendingPathComponent("A.log"),
                    environment: ["KVNODE_FAULT_HOLD_IN_MIGRATION": marker])
                defer { node.kill() }
                try await poll("A to hold inside its migrations", timeout: .seconds(60)) {
                    if FileManager.default.fileExists(atPath: marker) { return nil }
                    return node.isRunning ? "not there yet" : "A exited: \(node.log().suffix(500))"
                }
                node.kill()

                try await expectFile(database, atVersion: 1, rows: Self.rows)
                node.environment = [:]
                try await node.restart()
                try await expectFile(database, atVersion: latestVersion, rows: Self.rows, through: node)
                #expect(node.log().contains("applied migration \(latestVersion)"))
            }
        }

        /// Random instants: a copy of the version-1 file is started and killed at a random moment
        /// of its start-up (between launch and 1.2 × the time a first start took to listen),
        /// several times (seeded; the seed is printed). Whatever the instant, the file is at
        /// version 1 or at the latest version, never between, with every row; a last start serves it.
        @Test func killedAtRandomInstantsOfStartUp() async throws {
            let seed = SeededRandom.seed()
            var random = SeededRandom(seed: seed)
            print("killedAtRandomInstantsOfStartUp: seed \(seed) (replay with KV_SEED=\(seed))")
            try await withTemporaryDirectory { directory in
                let pristine = directory.appendingPathComponent("version1.db").path
                try await makeVersionOneFile(at: pristine, rows: Self.rows)
                let database = directory.appendingPathComponent("A.db").path
                let arguments = ["--id", "A", "--port", "0", "--db", database]
                let logFile = directory.appendingPathComponent("A.log")

                try replace(database, with: pristine)
                let launched = ContinuousClock.now
                let timed = try await NodeProcess.start(arguments, logFile: logFile)
                let startUp = ContinuousClock.now - launched
                timed.kill()

                var outcomes: [String] = []
                for round in 0..<8 {
                    try replace(database, with: pristine)
                    let delay = startUp * 1.2 * Double.random(in: 0..<1, using: &random)
                    let node = try NodeProcess.spawn(arguments, logFile: logFile)
                    try await Task.sleep(for: delay)  // the instant of the crash, not a wait for a state
                    node.kill()
                    let version = try await schemaVersion(database)
                    #expect(version == 1 || version == latestVersion, "seed \(seed), round \(round): version \(version)")
                    try await expectFile(database, atVersion: version, rows: Self.rows)
                    outcomes.append("\(delay.inMilliseconds) ms → v\(version)")
                }
                print("figures: killedAtRandomInstantsOfStartUp seed \(seed): start-up took \(startUp.inMilliseconds) ms; kills: \(outcomes.joined(separator: ", "))")
                let node = try await NodeProcess.start(arguments, logFile: logFile)
                defer { node.kill() }
                try await expectFile(database, atVersion: latestVersion, rows: Self.rows, through: node)
            }
        }
    }
}

/// Puts a copy of `source` at `path`, dropping the WAL and shared-memory files a killed node left.
private func replace(_ path: String, with source: String) throws {
    for file in [path, path + "-wal", path + "-shm"] where FileManager.default.fileExists(atPath: file) {
        try FileManager.default.removeItem(atPath: file)
    }
    try FileManager.default.copyItem(atPath: source, toPath: path)
}

extension Duration {
    fileprivate var inMilliseconds: Int64 { components.seconds * 1000 + components.attoseconds / 1_000_000_000_000_000 }
}

private let migrationsFolder = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("migrations")

/// The schema version a node brings a file to: the number of `.sql` files in `migrations/`.
private var latestVersion: Int {
    ((try? FileManager.default.contentsOfDirectory(atPath: migrationsFolder.path)) ?? []).filter { $0.hasSuffix(".sql") }.count
}

/// Makes a file as a node of schema version 1 left it: migration 0001 from the repository's
/// `migrations/` folder, its `schema_migrations` row, node A's row and `rows` rows (every tenth
/// one a tombstone), written with the `sqlite3` shell.
private func makeVersionOneFile(at path: String, rows: Int) async throws {
    let initial = try String(contentsOf: migrationsFolder.appendingPathComponent("0001_initial.sql"), encoding: .utf8)
    let sql = """
        PRAGMA journal_mode = WAL;
        BEGIN;
        \(initial)
        CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL);
        INSERT INTO schema_migrations VALUES (1, 'initial', '2026-11-26T00:00:00Z');
        INSERT INTO node VALUES (1, 'A', '0123456789abcdef0123456789abcdef', \(rows), \(rows + 1), '2026-11-26T00:00:00Z');
        WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < \(rows))
        INSERT INTO kv (key, value, lamport, origin, seq, deleted, updated_at)
        SELECT printf('old/%07d', i), CASE WHEN i % 10 = 0 THEN NULL ELSE randomblob(100) END,
               i, 'A', i, i % 10 = 0, '2026-11-26T00:00:00Z' FROM n;
        COMMIT;
        """
    let result = try await runCommand(URL(fileURLWithPath: "/usr/bin/sqlite3"), [path, sql])
    guard result.status == 0 else { throw HarnessError("making a version-1 file failed: \(result.stderr)") }
}

private func sqlite(_ path: String, _ sql: String) async throws -> String {
    let result = try await runCommand(URL(fileURLWithPath: "/usr/bin/sqlite3"), ["-readonly", path, sql])
    guard result.status == 0 else { throw HarnessError("sqlite3 \(sql): \(result.stderr)") }
    return result.stdoutText.trimmingCharacters(in: .whitespacesAndNewlines)
}

private func schemaVersion(_ path: String) async throws -> Int {
    Int(try await sqlite(path, "SELECT max(version) FROM schema_migrations")) ?? -1
}

/// The file passes SQLite's integrity check, records exactly versions 1…`version`, and holds
/// all `rows` rows as written; with `node`, the running node also serves them.
private func expectFile(
    _ path: String, atVersion version: Int, rows: Int, through node: NodeProcess? = nil,
    sourceLocation: SourceLocation = #_sourceLocation
) async throws {
    #expect(try await sqlite(path, "PRAGMA integrity_check") == "ok", sourceLocation: sourceLocation)
    let versions = try await sqlite(path, "SELECT group_concat(version) FROM (SELECT version FROM schema_migrations ORDER BY version)")
    #expect(versions == (1...version).map(String.init).joined(separator: ","), sourceLocation: sourceLocation)
    let summary = try await sqlite(
        path, "SELECT count(*), sum(deleted), max(seq), (SELECT next_seq FROM node) FROM kv WHERE key LIKE 'old/%'")
    #expect(summary == "\(rows)|\(rows / 10)|\(rows)|\(rows + 1)", sourceLocation: sourceLocation)
    if let node {
        let client = try KVClient(node: node.url, timeout: .seconds(5))
        let live = try await client.status().keys
        #expect(live == Int64(rows - rows / 10), sourceLocation: sourceLocation)
        await client.close()
    }
}
