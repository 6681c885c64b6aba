/// A value SQLite stores or returns: one of its five storage classes.
public enum SQLiteValue: Hashable, Sendable, CustomStringConvertible {
    case integer(Int64)
    case double(Double)
    /// UTF-8 text; may contain NUL characters, which are stored, not truncated.
    case text(String)
    /// Bytes; an empty array is stored as an empty blob, not as NULL.
    case blob([UInt8])
    case null

    /// A description that names the type and size but never shows text or blob contents, so
    /// values can be mentioned in logs without leaking data.
    public var description: String {
        switch self {
        case .integer: return "integer"
        case .double: return "double"
        case .text(let text): return "text(\(text.utf8.count) bytes)"
        case .blob(let bytes): return "blob(\(bytes.count) bytes)"
        case .null: return "NULL"
        }
    }
}
