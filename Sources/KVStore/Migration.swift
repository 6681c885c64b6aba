/// One schema step, from a file `migrations/NNNN_name.sql` embedded at build time.
public struct Migration: Sendable, Equatable {
    /// The number of the file (`0001` is 1); migrations run in this order.
    public let version: Int
    /// The rest of the file name (`initial`), recorded in `schema_migrations` and logs.
    public let name: String
    /// The file's text, run as one script inside the migration transaction.
    public let sql: String

    /// Parses a file name of four digits, `_`, a name of lowercase letters, digits and `_`,
    /// and `.sql`, such as `0001_initial.sql`. Version 0 is refused.
    public init(fileName: String, sql: String) throws(MigrationError) {
        let bytes = Array(fileName.utf8)
        let digits = bytes.prefix(4)
        let suffix = Array(".sql".utf8)
        guard bytes.count > 4 + 1 + suffix.count,
            digits.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }),
            bytes[4] == UInt8(ascii: "_"),
            bytes.suffix(suffix.count).elementsEqual(suffix)
        else { throw .malformedFileName(fileName) }
        let nameBytes = bytes[5..<(bytes.count - suffix.count)]
        guard
            nameBytes.allSatisfy({ byte in
                (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
                    || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || byte == UInt8(ascii: "_")
            }),
            let version = Int(String(decoding: digits, as: UTF8.self)), version >= 1
        else { throw .malformedFileName(fileName) }
        self.version = version
        self.name = String(decoding: nameBytes, as: UTF8.self)
        self.sql = sql
    }

    /// The file name the migration came from, such as `0001_initial.sql`.
    public var fileName: String {
        let digits = String(version)
        return String(repeating: "0", count: Swift.max(0, 4 - digits.count)) + digits + "_" + name + ".sql"
    }
}

/// Why the embedded migration files cannot be used.
public enum MigrationError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The name is not `NNNN_name.sql` (four digits, at least 0001).
    case malformedFileName(String)
    /// The versions do not run 1, 2, 3… without gap or repeat.
    case outOfSequence(expected: Int, found: Int, fileName: String)

    public var description: String {
        switch self {
        case .malformedFileName(let name):
            return "migration file '\(name)' is not named NNNN_name.sql (four digits from 0001, then a lowercase name)"
        case .outOfSequence(let expected, let found, let name):
            return "migration file '\(name)' has version \(found) where \(expected) was expected; versions run 1, 2, 3… without gaps"
        }
    }
}

/// The migrations this binary carries.
public enum Migrations {
    /// Every migration of the repository's `migrations/` folder, in version order.
    ///
    /// The files are checked when the binary is built into this list; a malformed name or a
    /// gap is a mistake in the repository, so it stops the program at first use with the
    /// reason rather than migrate a database with a wrong schema.
    public static let all: [Migration] = {
        do {
            return try parse(EmbeddedMigrations.files)
        } catch {
            fatalError("the migrations/ folder built into this binary is malformed: \(error)")
        }
    }()

    /// The highest schema version this binary knows.
    public static var latestVersion: Int { all.last?.version ?? 0 }

    /// Parses files given as (file name, SQL), in any order, into migrations ordered by
    /// version; the versions must be exactly 1…n.
    public static func parse(_ files: [(name: String, sql: String)]) throws(MigrationError) -> [Migration] {
        var migrations: [Migration] = []
        for file in files {
            migrations.append(try Migration(fileName: file.name, sql: file.sql))
        }
        migrations.sort { $0.version < $1.version }
        for (offset, migration) in migrations.enumerated() where migration.version != offset + 1 {
            throw .outOfSequence(
                expected: offset + 1, found: migration.version,
                fileName: migration.fileName)
        }
        return migrations
    }
}
