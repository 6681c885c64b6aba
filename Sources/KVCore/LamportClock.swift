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

    /// Moves the clock up to `lamport` if that is later; never moves it back.
    public mutating func observe(_ lamport: Int64) {
        now = max(now, lamport)
    }
}
