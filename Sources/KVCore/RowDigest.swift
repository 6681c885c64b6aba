/// The hashes behind `GET /digest`: what lets two nodes compare their data without sending it.
///
/// A row's hash covers `(key, lamport, origin, deleted, hash of value)`; a row falls in one of
/// 256 buckets by the first byte of its key's hash; a bucket's hash is the wrapping sum of its
/// rows' hashes, so it does not depend on the order rows are read in, and two nodes holding the
/// same rows get the same 256 hashes. 64-bit FNV-1a with a final mix: not cryptographic (a
/// digest compares replicas, it does not authenticate them), fast, and dependency-free.
public enum RowDigest {
    public static let bucketCount = 256

    /// 64-bit FNV-1a of `bytes`, finished with a murmur-style mix so nearby inputs spread.
    public static func hash(_ bytes: some Sequence<UInt8>, seed: UInt64 = 0xCBF2_9CE4_8422_2325) -> UInt64 {
        var hash = seed
        for byte in bytes {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01B3
        }
        return mix(hash)
    }

    /// The bucket of a key, 0–255.
    public static func bucket(ofKey key: String) -> Int {
        Int(hash(key.utf8) >> 56)
    }

    /// The hash of one stored row.
    public static func rowHash(key: String, lamport: Int64, origin: String, deleted: Bool, valueHash: UInt64) -> UInt64 {
        var combined = hash(key.utf8)
        combined = mix(combined ^ UInt64(bitPattern: lamport))
        combined = mix(combined ^ hash(origin.utf8, seed: 0x84222325CBF29CE4))
        combined = mix(combined ^ (deleted ? 0x9E37_79B9_7F4A_7C15 : 0))
        return mix(combined ^ valueHash)
    }

    /// The hash of a value; a tombstone's value hashes to 0.
    public static func valueHash(_ value: [UInt8]?) -> UInt64 {
        value.map { hash($0) } ?? 0
    }

    /// `value` as 16 lowercase hex digits.
    public static func hex(_ value: UInt64) -> String {
        let digits = String(value, radix: 16)
        return String(repeating: "0", count: 16 - digits.count) + digits
    }

    private static func mix(_ value: UInt64) -> UInt64 {
        var x = value
        x ^= x >> 33
        x &*= 0xFF51_AFD7_ED55_8CCD
        x ^= x >> 33
        x &*= 0xC4CE_B9FE_1A85_EC53
        x ^= x >> 33
        return x
    }
}
