import SQLite
import Testing
import TestSupport

@testable import KVStore

@Suite("The writer's wall clock")
struct WallClockTests {
    /// `updated_at` is written by Swift and compared by SQLite (the tombstone purge): both must
    /// print the same instant the same way.
    @Test(
        "a timestamp reads as SQLite's strftime of the same instant",
        arguments: [
            (0, 0), (951_782_400, 5), (1_764_165_001, 123), (1_796_000_000, 999), (4_102_444_799, 1),
        ])
    func matchesSQLite(seconds: Int, milliseconds: Int) throws {
        try withTemporaryDirectoryPath { directory in
            let connection = try Connection(path: directory + "/clock.db")
            defer { connection.close() }
            let sqlite = try connection.textValue(
                "SELECT strftime('%Y-%m-%dT%H:%M:%fZ', \(seconds).\(String(1000 + milliseconds).dropFirst()), 'unixepoch')")
            #expect(WallClock.timestamp(secondsSinceEpoch: seconds, milliseconds: milliseconds) == sqlite)
        }
    }

    @Test("now lies between two readings of SQLite's clock")
    func nowIsNow() throws {
        try withTemporaryDirectoryPath { directory in
            let connection = try Connection(path: directory + "/clock.db")
            defer { connection.close() }
            let sql = "SELECT strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"
            let before = try #require(try connection.textValue(sql))
            let ours = WallClock.timestamp()
            let after = try #require(try connection.textValue(sql))
            #expect(before <= ours && ours <= after, "\(before) \(ours) \(after)")
        }
    }
}
