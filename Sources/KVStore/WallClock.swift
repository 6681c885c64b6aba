#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The wall clock in the form the store keeps in `updated_at` and compares in the tombstone
/// purge: ISO 8601 UTC with milliseconds, as SQLite's `strftime('%Y-%m-%dT%H:%M:%fZ', 'now')`
/// writes it (`2026-11-26T13:50:01.123Z`), so the two sort together as text.
enum WallClock {
    static func timestamp() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        return timestamp(secondsSinceEpoch: Int(now.tv_sec), milliseconds: Int(now.tv_nsec / 1_000_000))
    }

    static func timestamp(secondsSinceEpoch: Int, milliseconds: Int) -> String {
        var seconds = time_t(secondsSinceEpoch)
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func digits(_ value: Int32, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        return digits(parts.tm_year + 1900, 4) + "-" + digits(parts.tm_mon + 1, 2) + "-" + digits(parts.tm_mday, 2)
            + "T" + digits(parts.tm_hour, 2) + ":" + digits(parts.tm_min, 2) + ":" + digits(parts.tm_sec, 2)
            + "." + digits(Int32(milliseconds), 3) + "Z"
    }
}
