public import KVCore
import SQLite

/// Why the store refused to open or to do something. Every case names what it concerns (the
/// file, the key, the record) and its description says how to fix it when a user can.
public enum StoreError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The directory that should hold the file does not exist.
    case directoryMissing(path: String)
    /// The file or its directory cannot be written.
    case notWritable(path: String)
    /// The path names a directory or another non-file.
    case notAFile(path: String)
    /// The file exists but is not an SQLite database; it was left untouched.
    case notADatabase(path: String)
    /// SQLite reports the file malformed, or a row holds what the store never writes.
    case corrupt(path: String, detail: String)
    /// The file is an SQLite database of some other program (tables, but no schema_migrations).
    case notAConvergeDatabase(path: String)
    /// The file was migrated by a newer build than this one; it was left untouched.
    case schemaTooNew(path: String, found: Int, supported: Int)
    /// The file belongs to another node; it was left untouched.
    case wrongNode(path: String, fileNode: NodeID, requested: NodeID)
    /// A key given to `put` or `delete` breaks `KeyRules`.
    case invalidKey(key: String, reason: KeyError)
    /// Record `index` of a batch given to `apply` is invalid; nothing of the batch was applied.
    case invalidRecord(index: Int, reason: String)
    /// The disk is full; the write was rolled back.
    case diskFull(path: String)
    /// Another process held the file locked for longer than the busy timeout.
    case busy(path: String)
    /// Any other database failure, with SQLite's description.
    case database(path: String, detail: String)
    /// The store was closed.
    case closed
    /// A replication batch from `peer` starts beyond this node's mark of its feed.
    case feedGap(peer: String, mark: Int64)
    /// A replication request names a node that is not a configured peer.
    case unknownPeer(String)

    public var description: String {
        switch self {
        case .directoryMissing(let path):
            return "cannot create \(path): its directory does not exist; create it (mkdir -p \(Self.directory(of: path))) or give --db another path"
        case .notWritable(let path):
            return "cannot write \(path) or its directory (SQLite keeps \(path)-wal and \(path)-shm beside it); fix the permissions or give --db another path"
        case .notAFile(let path):
            return "\(path) is a directory, not a database file; give --db a file path such as \(path)/node.db"
        case .notADatabase(let path):
            return "\(path) is not an SQLite database; it was left untouched. Give --db another file, or move this one away to start empty"
        case .corrupt(let path, let detail):
            return "\(path) is corrupt (\(detail)); restore it from a backup, or move it away and start empty to catch up from the peers"
        case .notAConvergeDatabase(let path):
            return "\(path) is an SQLite database of another program (it has tables but no schema_migrations); it was left untouched. Give --db another file"
        case .schemaTooNew(let path, let found, let supported):
            return "\(path) has schema version \(found) but this binary supports up to \(supported); upgrade the binary (the file was left untouched)"
        case .wrongNode(let path, let fileNode, let requested):
            return "\(path) belongs to node \(fileNode), not \(requested); start it with --id \(fileNode) or give --db another file"
        case .invalidKey(let key, let reason):
            return "invalid key \(String(reflecting: String(key.prefix(64)))): \(reason)"
        case .invalidRecord(let index, let reason):
            return "record \(index) of the batch is invalid: \(reason); nothing of the batch was applied"
        case .diskFull(let path):
            return "the disk holding \(path) is full; the write was rolled back. Free some space"
        case .feedGap(let peer, let mark):
            return "the batch from \(peer) starts beyond this node's mark \(mark) of its feed; resend from \(mark)"
        case .unknownPeer(let peer):
            return "node \(peer) is not a configured peer; add it with --peer"
        case .busy(let path):
            return "\(path) is locked by another process; is another kvnode using this file?"
        case .database(let path, let detail):
            return "database error on \(path): \(detail)"
        case .closed:
            return "the store is closed"
        }
    }

    static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        let directory = path[..<slash]
        return directory.isEmpty ? "/" : String(directory)
    }
}

/// A row that holds what the store never writes (an invalid origin, a lamport below 1…).
struct CorruptRow: Error {
    let detail: String
}

extension StoreError {
    /// `error` as a `StoreError` about the file at `path`: SQLite's failures get the case a
    /// caller can act on; a `StoreError` passes through.
    init(_ error: any Error, path: String) {
        switch error {
        case let error as StoreError:
            self = error
        case let error as CorruptRow:
            self = .corrupt(path: path, detail: error.detail)
        case let error as SQLiteError:
            if error.isNotADatabase {
                self = .notADatabase(path: path)
            } else if error.isCorrupt {
                self = .corrupt(path: path, detail: error.message)
            } else if error.isFull {
                self = .diskFull(path: path)
            } else if error.isBusy {
                self = .busy(path: path)
            } else if error.isReadOnly || error.code == .cantOpen {
                self = .notWritable(path: path)
            } else {
                self = .database(path: path, detail: error.description)
            }
        default:
            self = .database(path: path, detail: String(describing: error))
        }
    }
}
