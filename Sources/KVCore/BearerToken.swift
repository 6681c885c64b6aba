/// The `Authorization: Bearer TOKEN` scheme, shared by the cluster token (node to node) and the
/// client token (client to node), so the header is built and checked in one place.
public enum BearerToken {
    /// The value of the `Authorization` header that carries `token`.
    public static func header(for token: String) -> String {
        "Bearer \(token)"
    }

    /// Whether `authorization` (the header's value, nil when absent) carries exactly `token`.
    ///
    /// Compares every byte whatever the first difference, so the time taken does not tell an
    /// attacker how much of a guessed token was right.
    public static func admits(_ authorization: String?, token: String) -> Bool {
        guard let authorization else { return false }
        let left = Array(authorization.utf8)
        let right = Array(header(for: token).utf8)
        var difference = UInt8(truncatingIfNeeded: left.count ^ right.count)
        for index in 0..<max(left.count, right.count) {
            let a = index < left.count ? left[index] : 0
            let b = index < right.count ? right[index] : 0
            difference |= a ^ b
        }
        return difference == 0 && left.count == right.count
    }
}
