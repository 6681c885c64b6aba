import KVCore

/// How long a pusher or puller waits before retrying a peer that failed: capped exponential
/// backoff with full jitter.
///
/// The n-th consecutive failure (n ≥ 1) waits a uniformly random time in
/// `[base·2^(n-1) / 2, base·2^(n-1)]`, never more than `cap`. Half the delay is fixed so a retry
/// is never immediate; the other half is random so nodes that lost the same peer do not retry in
/// step. Pure: the random source is a parameter.
public struct Backoff: Sendable, Equatable {
    /// The first delay's upper bound. Default 100 ms.
    public var base: Duration = .milliseconds(100)
    /// The longest delay. Default 5 s, so a peer that comes back is found within seconds.
    public var cap: Duration = .seconds(5)

    public init(base: Duration = .milliseconds(100), cap: Duration = .seconds(5)) {
        self.base = base
        self.cap = cap
    }

    public func delay(afterFailures failures: Int, using random: inout some RandomNumberGenerator) -> Duration {
        guard failures > 0 else { return .zero }
        let exponent = min(failures - 1, 30)
        let ceiling = min(cap, base * (1 << exponent))
        let ceilingNanos = ceiling.inNanoseconds
        let nanos = Int64.random(in: (ceilingNanos / 2)...max(ceilingNanos / 2, ceilingNanos), using: &random)
        return .nanoseconds(nanos)
    }

    public func delay(afterFailures failures: Int) -> Duration {
        var random = SystemRandomNumberGenerator()
        return delay(afterFailures: failures, using: &random)
    }
}
