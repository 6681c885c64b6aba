/// A reply the server sends, in terms of RESP types. `RESPEncoder` writes it in RESP2 or RESP3;
/// the types RESP2 lacks (`map`, `double`, `null`) are written as their RESP2 equivalents
/// (a flat array, a bulk string, a null bulk string), as Redis does.
public enum RESPValue: Sendable, Equatable {
    /// `+text`: a short status such as `OK`; must not contain CR or LF.
    case simpleString(String)
    /// `-PREFIX text`: an error line such as `ERR unknown command`; CR and LF are replaced by
    /// spaces when written.
    case error(String)
    case integer(Int64)
    /// `$length` and the bytes: binary safe.
    case bulkString([UInt8])
    /// A missing value: `$-1` in RESP2, `_` in RESP3.
    case null
    case array([RESPValue])
    /// Key/value pairs, flattened (`[k1, v1, k2, v2, …]`): `%` in RESP3, an array in RESP2.
    case map([RESPValue])
    /// `,` in RESP3, a bulk string in RESP2.
    case double(Double)

    public static let ok = RESPValue.simpleString("OK")

    public static func bulk(_ text: String) -> RESPValue { .bulkString(Array(text.utf8)) }
}

/// Which RESP a connection speaks: 2 until `HELLO 3`.
public enum RESPVersion: Int, Sendable {
    case resp2 = 2
    case resp3 = 3
}
