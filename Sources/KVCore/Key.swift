/// The rules for a key, shared by the server, the store and the client (DESIGN.md §4).
///
/// A key is 1 to 1024 bytes of valid UTF-8 with no control characters (U+0000–U+001F, U+007F).
/// `/`, `:` and spaces are ordinary characters.
public enum KeyRules {
    /// Longest key accepted, in UTF-8 bytes.
    public static let maxBytes = 1024

    /// Checks a key given as a Swift string (always valid UTF-8).
    public static func validate(_ key: String) throws(KeyError) {
        try validate(utf8: Array(key.utf8))
    }

    /// Checks raw bytes (for example a percent-decoded path) and returns them as a string.
    @discardableResult
    public static func validate(utf8 bytes: [UInt8]) throws(KeyError) -> String {
        guard !bytes.isEmpty else { throw .empty }
        guard bytes.count <= maxBytes else { throw .tooLong(bytes.count) }
        guard let key = String(validating: bytes, as: UTF8.self) else { throw .invalidUTF8 }
        for byte in bytes where byte < 0x20 || byte == 0x7F {
            throw .controlCharacter(byte)
        }
        return key
    }

    /// `validate`, for the store: also admits the reserved member keys (`MemberRow`), which
    /// the node itself and its peers write but a client never can.
    public static func validateStored(_ key: String) throws(KeyError) {
        if MemberRow.id(ofKey: key) != nil { return }
        try validate(key)
    }

    /// `validate(utf8:)`, admitting the reserved member keys as `validateStored` does.
    @discardableResult
    public static func validateStored(utf8 bytes: [UInt8]) throws(KeyError) -> String {
        if bytes.first == 0x01, let key = String(validating: bytes, as: UTF8.self), MemberRow.id(ofKey: key) != nil {
            return key
        }
        return try validate(utf8: bytes)
    }
}

/// Why a key was refused.
public enum KeyError: Error, Equatable, Sendable, CustomStringConvertible {
    case empty
    case tooLong(Int)
    case invalidUTF8
    case controlCharacter(UInt8)
    case badPercentEncoding

    public var description: String {
        switch self {
        case .empty:
            return "the key is empty; a key is 1 to \(KeyRules.maxBytes) bytes"
        case .tooLong(let count):
            return "the key is \(count) bytes; the limit is \(KeyRules.maxBytes)"
        case .invalidUTF8:
            return "the key is not valid UTF-8"
        case .controlCharacter(let byte):
            return "the key contains the control character 0x\(String(byte, radix: 16, uppercase: true)); keys may not contain U+0000–U+001F or U+007F"
        case .badPercentEncoding:
            return "the key's percent-encoding is malformed (a '%' must be followed by two hex digits)"
        }
    }
}

/// Percent-encoding of keys in URL paths, as client and server agree on it.
public enum KeyPath {
    /// Encodes a key for the path after `/kv/`: unreserved characters and `/` stay, every other
    /// byte becomes `%XX`.
    public static func encode(_ key: String) -> String {
        var out = ""
        out.reserveCapacity(key.utf8.count)
        for byte in key.utf8 {
            if isUnreserved(byte) || byte == UInt8(ascii: "/") {
                out.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                out += "%"
                out += hexDigit(byte >> 4)
                out += hexDigit(byte & 0x0F)
            }
        }
        return out
    }

    /// Decodes a percent-encoded path segment into bytes; a `%` not followed by two hex digits
    /// is an error, not a literal.
    public static func decode(_ encoded: Substring) throws(KeyError) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(encoded.utf8.count)
        var iterator = encoded.utf8.makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%") {
                guard let high = iterator.next().flatMap(hexValue),
                    let low = iterator.next().flatMap(hexValue)
                else { throw .badPercentEncoding }
                out.append(high << 4 | low)
            } else {
                out.append(byte)
            }
        }
        return out
    }

    private static func isUnreserved(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"),
            UInt8(ascii: "."), UInt8(ascii: "~"), UInt8(ascii: ":"), UInt8(ascii: "@"):
            return true
        default:
            return false
        }
    }

    private static func hexDigit(_ nibble: UInt8) -> String {
        String(nibble, radix: 16, uppercase: true)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
