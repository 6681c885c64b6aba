import Foundation
import KVCore

/// A small deterministic generator (SplitMix64) so a randomized test replays from its seed.
public struct SeededRandom: RandomNumberGenerator, Sendable {
    private var generator: SplitMix64

    public init(seed: UInt64) { generator = SplitMix64(seed: seed) }

    public mutating func next() -> UInt64 { generator.next() }

    /// The seed for a randomized run: `KV_SEED` from the environment to replay, else random.
    /// Tests print it in every failure message.
    public static func seed() -> UInt64 {
        if let text = ProcessInfo.processInfo.environment["KV_SEED"], let seed = UInt64(text) {
            return seed
        }
        return UInt64.random(in: 0...UInt64.max)
    }

    /// How many rounds a randomized fuzz test runs: `short` in the suite, and `short` × 100 in
    /// the long mode asked for on demand with `KV_FUZZ_LONG=1`.
    public static func fuzzRounds(_ short: Int) -> Int {
        ProcessInfo.processInfo.environment["KV_FUZZ_LONG"] == "1" ? short * 100 : short
    }
}
