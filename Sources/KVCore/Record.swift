#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// One versioned row of the store: a key with its value, or a tombstone, and the version that
/// wrote it.
///
/// A tombstone (`value == nil`) is a delete that replicates and wins like any write; it is not
/// the absence of a row. `expiresAt` is part of the write: a row with a value and an expiry
/// reads as absent from that moment on, on every node, and an expiry is changed only by a new
/// version of the row (EXPIRE, PERSIST), so concurrent changes resolve like values do.
public struct Record: Hashable, Sendable, CustomStringConvertible {
    public let key: String
    /// The stored bytes, or `nil` for a tombstone.
    public let value: [UInt8]?
    public let version: Version
    /// When the value stops existing, in milliseconds since the Unix epoch (UTC); nil: never.
    public let expiresAt: Int64?

    public init(key: String, value: [UInt8]?, version: Version, expiresAt: Int64? = nil) {
        self.key = key
        self.value = value
        self.version = version
        self.expiresAt = expiresAt
    }

    /// Whether this row records a delete.
    public var isTombstone: Bool { value == nil }

    /// Whether the row has a value that has expired at `now` (milliseconds since the epoch).
    public func isExpired(at now: Int64) -> Bool {
        guard value != nil, let expiresAt else { return false }
        return expiresAt <= now
    }

    /// The value a reader sees at `now`: nil for a tombstone or an expired row.
    public func value(at now: Int64) -> [UInt8]? {
        isExpired(at: now) ? nil : value
    }

    public var description: String {
        let body = value.map { "\($0.count) bytes" } ?? "tombstone"
        return "\(key) = \(body) at \(version)" + (expiresAt.map { ", expires at \($0) ms" } ?? "")
    }
}

/// The wall clock expiry is measured against: milliseconds since the Unix epoch (UTC). Nodes
/// compare expiry times with their own clocks, so a key expires on each node when that node's
/// clock passes the time; clocks kept in sync (NTP) keep the nodes within their skew.
public enum ExpiryClock {
    public static func nowMilliseconds() -> Int64 {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return Int64(now.tv_sec) * 1000 + Int64(now.tv_nsec / 1_000_000)
    }
}
