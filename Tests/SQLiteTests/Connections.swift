import Foundation
import SQLite
import TestSupport

/// Runs `body` with a connection to a fresh database file in a temporary directory; the
/// connection is closed and the directory removed on every path.
func withConnection<T>(_ body: (Connection) throws -> T) throws -> T {
    try withTemporaryDirectoryPath { directory in
        let connection = try Connection(path: directory + "/test.db")
        defer { connection.close() }
        return try body(connection)
    }
}
