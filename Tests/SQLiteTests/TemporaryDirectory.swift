import Foundation
import SQLite

/// Runs `body` with the path of a new, empty directory that is removed afterwards, whether
/// `body` returns or throws.
@discardableResult
func withTemporaryDirectory<T>(_ body: (String) throws -> T) throws -> T {
    let url = FileManager.default.temporaryDirectory
        .appendingPathComponent("SQLiteTests-\(UUID().uuidString)", isDirectory: true)
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: false)
    defer { try? FileManager.default.removeItem(at: url) }
    return try body(url.path)
}

/// Runs `body` with a connection to a fresh database file in a temporary directory; the
/// connection is closed and the directory removed on every path.
func withConnection<T>(_ body: (Connection) throws -> T) throws -> T {
    try withTemporaryDirectory { directory in
        let connection = try Connection(path: directory + "/test.db")
        defer { connection.close() }
        return try body(connection)
    }
}
