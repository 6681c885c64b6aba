import Foundation

/// Checks on the database path made before SQLite opens it, so that a mistake is reported
/// with the path and the fix, and a file that is not a database is never written to.
enum StoreFile {
    /// The first 16 bytes of every SQLite database file.
    static let header: [UInt8] = Array("SQLite format 3".utf8) + [0]

    /// Throws when `path` cannot hold a store: a missing or unwritable directory, a directory
    /// in place of the file, an unwritable file, or a non-empty file whose first bytes are not
    /// SQLite's header. A missing or empty file is fine: it becomes a new store.
    static func preflight(path: String) throws(StoreError) {
        let manager = FileManager.default
        let directory = StoreError.directory(of: path)
        var isDirectory: ObjCBool = false
        guard manager.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw .directoryMissing(path: path)
        }
        guard manager.isWritableFile(atPath: directory) else { throw .notWritable(path: path) }
        guard manager.fileExists(atPath: path, isDirectory: &isDirectory) else { return }
        guard !isDirectory.boolValue else { throw .notAFile(path: path) }
        guard manager.isReadableFile(atPath: path), manager.isWritableFile(atPath: path),
            let handle = FileHandle(forReadingAtPath: path)
        else { throw .notWritable(path: path) }
        defer { try? handle.close() }
        let start: Data
        do {
            start = try handle.read(upToCount: header.count) ?? Data()
        } catch {
            throw .notWritable(path: path)
        }
        guard start.isEmpty || start.elementsEqual(header) else { throw .notADatabase(path: path) }
    }
}
