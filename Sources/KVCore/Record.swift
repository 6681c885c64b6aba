/// One versioned row of the store: a key with its value, or a tombstone, and the version that
/// wrote it.
///
/// A tombstone (`value == nil`) is a delete that replicates and wins like any write; it is not
/// the absence of a row.
public struct Record: Hashable, Sendable, CustomStringConvertible {
    public let key: String
    /// The stored bytes, or `nil` for a tombstone.
    public let value: [UInt8]?
    public let version: Version

    public init(key: String, value: [UInt8]?, version: Version) {
        self.key = key
        self.value = value
        self.version = version
    }

    /// Whether this row records a delete.
    public var isTombstone: Bool { value == nil }

    public var description: String {
        let body = value.map { "\($0.count) bytes" } ?? "tombstone"
        return "\(key) = \(body) at \(version)"
    }
}
