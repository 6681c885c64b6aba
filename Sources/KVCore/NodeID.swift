/// The name of a node (`A`, `B`, `node-7`): what a `Version` carries as its `origin`.
///
/// A node id is 1 to 64 bytes of ASCII letters, digits, `-`, `_` or `.`, so it is safe in a
/// header, a URL, a log line and a file name. Ids compare byte-wise, which is the tie-break of
/// the version order and therefore the same on every node.
public struct NodeID: Hashable, Comparable, Sendable, CustomStringConvertible, Codable {
    /// The id as the user wrote it.
    public let rawValue: String

    /// Longest id accepted, in bytes.
    public static let maxLength = 64

    /// Validates `rawValue`; throws `NodeIDError` naming what is wrong.
    public init(_ rawValue: String) throws(NodeIDError) {
        let bytes = Array(rawValue.utf8)
        guard !bytes.isEmpty else { throw .empty }
        guard bytes.count <= Self.maxLength else { throw .tooLong(rawValue, bytes.count) }
        for byte in bytes where !Self.isAllowed(byte) {
            throw .invalidCharacter(rawValue)
        }
        self.rawValue = rawValue
    }

    public var description: String { rawValue }

    public static func < (lhs: NodeID, rhs: NodeID) -> Bool {
        lhs.rawValue.utf8.lexicographicallyPrecedes(rhs.rawValue.utf8)
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let raw = try container.decode(String.self)
        do {
            try self.init(raw)
        } catch {
            throw DecodingError.dataCorruptedError(
                in: container, debugDescription: error.description)
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(rawValue)
    }

    private static func isAllowed(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"),
            UInt8(ascii: "."):
            return true
        default:
            return false
        }
    }
}

/// Why a string is not a valid `NodeID`.
public enum NodeIDError: Error, Equatable, Sendable, CustomStringConvertible {
    case empty
    case tooLong(String, Int)
    case invalidCharacter(String)

    public var description: String {
        switch self {
        case .empty:
            return "a node id cannot be empty"
        case .tooLong(let id, let count):
            return "node id '\(id.prefix(16))…' is \(count) bytes; the limit is \(NodeID.maxLength)"
        case .invalidCharacter(let id):
            return "node id '\(id)' may contain only letters, digits, '-', '_' and '.'"
        }
    }
}
