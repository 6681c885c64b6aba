/// A Lamport logical clock: a counter that never goes backwards.
///
/// A local write calls `tick()` and stamps the row with the result, which is greater than
/// anything this clock has issued or observed. Every row received from a peer is passed to
/// `observe(_:)`, so the next local write is ordered after it. The owner persists `now` in the
/// same transaction as the rows it stamps, so the clock survives restarts.
public struct LamportClock: Hashable, Sendable {
    /// The greatest time issued or observed so far (0 for a new node).
    public private(set) var now: Int64

    public init(now: Int64 = 0) {
        self.now = max(0, now)
    }

    /// Advances the clock and returns the new time, for a local write.
    ///
    /// The clock saturates at `Int64.max` rather than wrapping; peers bound the times they
    /// accept so that a real cluster never gets near it.
    public mutating func tick() -> Int64 {
        now = now == Int64.max ? now : now + 1
        return now
    }

    /// How far ahead of this clock a row from a peer may be. A cluster advances its clocks by
    /// one per write, so 2^40 (about 10^12 writes: 35 years at 1 000 writes per second) is
    /// never reached honestly; a row beyond it is refused, so one bad peer cannot push every
    /// clock to `Int64.max`, where `tick()` stops advancing and new writes could no longer win.
    public static let maxJump: Int64 = 1 << 40
    /// No row above this is accepted at all (half the range), whatever the clock says.
    public static let ceiling: Int64 = Int64.max / 2

    /// Whether a row stamped `lamport` may be accepted from a peer by a node whose clock is
    /// `now` (see `maxJump` and `ceiling`).
    public static func accepts(_ lamport: Int64, now: Int64) -> Bool {
        lamport >= 1 && lamport <= ceiling && lamport <= now.addingReportingOverflow(maxJump).partialValue
    }

    /// Moves the clock up to `lamport` if that is later; never moves it back.
    public mutating func observe(_ lamport: Int64) {
        now = max(now, lamport)
    }
}
