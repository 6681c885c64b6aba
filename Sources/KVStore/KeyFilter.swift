import Synchronization

/// A Bloom filter of every key that has a row in the file (tombstones included), so a read of
/// a key the node never stored is answered without SQLite.
///
/// What it promises: `mayContain` is true for every key with a row. It may also be true for
/// keys without one (about 1 % of them while the file holds no more rows than the filter was
/// built for, more beyond), and for keys whose rows were purged, since nothing is ever removed.
///
/// Life: the writer `add`s every key before the statement that stores it runs, from the
/// moment the store opens. Until `build` has run — a scan of the file's keys started after
/// that — the filter only remembers those keys and `mayContain` is true for every key; `build`
/// sizes the bits for the keys it scanned, sets them and the remembered keys', and from then
/// on answers. So the filter never lags the file.
final class KeyFilter: Sendable {
    private struct State {
        var words: [UInt64] = []
        var mask: UInt64 = 0
        /// Keys added before `build` finished.
        var pending: [String] = []
        var built = false
        /// `build` failed: nothing is kept and every key may be there.
        var abandoned = false
    }

    private let state = Mutex(State())
    static let hashCount = 7

    /// The two halves of one 64-bit hash of `key`, for double hashing.
    private static func hashes(_ key: String) -> (first: UInt64, second: UInt64) {
        let hash = UInt64(bitPattern: Int64(key.hashValue))
        return (hash & 0xFFFF_FFFF, (hash >> 32) | 1)
    }

    private static func set(_ key: String, in words: inout [UInt64], mask: UInt64) {
        let (first, second) = hashes(key)
        for index in 0..<UInt64(hashCount) {
            let position = (first &+ index &* second) & mask
            words[Int(position >> 6)] |= 1 << (position & 63)
        }
    }

    /// Bits for `keys` at 16 per key (about 1 % false positives with 7 hashes), a power of two
    /// from 2^20 to 2^28 (128 KiB to 32 MiB).
    static func bitCount(forKeys keys: Int) -> Int {
        let (product, overflow) = keys.multipliedReportingOverflow(by: 16)
        let wanted = max(1 << 20, min(1 << 28, overflow ? .max : product))
        return 1 << (Int.bitWidth - (wanted - 1).leadingZeroBitCount)
    }

    func add(_ key: String) {
        state.withLock { state in
            if state.built {
                Self.set(key, in: &state.words, mask: state.mask)
            } else if !state.abandoned {
                state.pending.append(key)
            }
        }
    }

    /// False only if `key` surely has no row.
    func mayContain(_ key: String) -> Bool {
        let (first, second) = Self.hashes(key)
        return state.withLock { state in
            guard state.built else { return true }
            for index in 0..<UInt64(Self.hashCount) {
                let position = (first &+ index &* second) & state.mask
                if state.words[Int(position >> 6)] & (1 << (position & 63)) == 0 { return false }
            }
            return true
        }
    }

    /// Builds the bits from a scan of the file's keys (`scan` calls its argument once per key,
    /// and was started after the writer began adding), sized for `expectedKeys`; from now on
    /// `mayContain` answers. Returns false if `scan` throws: the filter then stops keeping keys
    /// and says every key may be there.
    func build(expectedKeys: Int, scan: (_ add: (String) -> Void) throws -> Void) -> Bool {
        let bits = Self.bitCount(forKeys: expectedKeys)
        let mask = UInt64(bits - 1)
        var words = [UInt64](repeating: 0, count: bits / 64)
        do {
            try scan { Self.set($0, in: &words, mask: mask) }
        } catch {
            state.withLock { state in
                state.pending = []
                state.abandoned = true
            }
            return false
        }
        return state.withLock { state in
            guard !state.abandoned else { return false }
            for key in state.pending { Self.set(key, in: &words, mask: mask) }
            state.pending = []
            state.words = words
            state.mask = mask
            state.built = true
            return true
        }
    }

    /// Keeps nothing from now on and says every key may be there (the store closed).
    func abandon() {
        state.withLock { state in
            state = State()
            state.abandoned = true
        }
    }

    var isBuilt: Bool { state.withLock { $0.built } }
}
