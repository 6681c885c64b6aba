/// Redis's glob patterns (`KEYS`, `SCAN … MATCH`), over bytes: `*` any run, `?` one byte,
/// `[abc]`, `[^abc]`, `[a-z]` a class, `\x` the byte `x` itself. Pure.
public enum RESPGlob {
    /// Whether `string` matches `pattern` whole.
    public static func matches(_ pattern: [UInt8], _ string: [UInt8]) -> Bool {
        matches(pattern[...], string[...])
    }

    /// The bytes every match must start with: the pattern up to its first special byte. Lets a
    /// scan read only that range of keys.
    public static func literalPrefix(_ pattern: [UInt8]) -> [UInt8] {
        var prefix: [UInt8] = []
        var index = 0
        while index < pattern.count {
            switch pattern[index] {
            case UInt8(ascii: "*"), UInt8(ascii: "?"), UInt8(ascii: "["):
                return prefix
            case UInt8(ascii: "\\") where index + 1 < pattern.count:
                prefix.append(pattern[index + 1])
                index += 2
            default:
                prefix.append(pattern[index])
                index += 1
            }
        }
        return prefix
    }

    private static func matches(_ pattern: ArraySlice<UInt8>, _ string: ArraySlice<UInt8>) -> Bool {
        var p = pattern.startIndex
        var s = string.startIndex
        // The last `*` seen and where the string stood after it: on a mismatch, let it eat one more byte.
        var star: (pattern: Int, string: Int)?
        while s < string.endIndex {
            if p < pattern.endIndex {
                switch pattern[p] {
                case UInt8(ascii: "*"):
                    star = (p, s)
                    p += 1
                    continue
                case UInt8(ascii: "?"):
                    p += 1
                    s += 1
                    continue
                case UInt8(ascii: "["):
                    if let (matched, next) = matchClass(pattern, at: p, byte: string[s]), matched {
                        p = next
                        s += 1
                        continue
                    }
                case UInt8(ascii: "\\") where p + 1 < pattern.endIndex:
                    if pattern[p + 1] == string[s] {
                        p += 2
                        s += 1
                        continue
                    }
                default:
                    if pattern[p] == string[s] {
                        p += 1
                        s += 1
                        continue
                    }
                }
            }
            guard let last = star else { return false }
            p = last.pattern + 1
            s = last.string + 1
            star = (last.pattern, last.string + 1)
        }
        while p < pattern.endIndex, pattern[p] == UInt8(ascii: "*") { p += 1 }
        return p == pattern.endIndex
    }

    /// Matches `byte` against the class starting at `start` (`[`); returns whether it matched
    /// and the index after the class. An unclosed class runs to the pattern's end, as in Redis.
    private static func matchClass(_ pattern: ArraySlice<UInt8>, at start: Int, byte: UInt8) -> (Bool, Int)? {
        var index = start + 1
        var negate = false
        if index < pattern.endIndex, pattern[index] == UInt8(ascii: "^") {
            negate = true
            index += 1
        }
        var matched = false
        while index < pattern.endIndex, pattern[index] != UInt8(ascii: "]") {
            if pattern[index] == UInt8(ascii: "\\"), index + 1 < pattern.endIndex {
                if pattern[index + 1] == byte { matched = true }
                index += 2
            } else if index + 2 < pattern.endIndex, pattern[index + 1] == UInt8(ascii: "-"), pattern[index + 2] != UInt8(ascii: "]") {
                let low = min(pattern[index], pattern[index + 2])
                let high = max(pattern[index], pattern[index + 2])
                if byte >= low, byte <= high { matched = true }
                index += 3
            } else {
                if pattern[index] == byte { matched = true }
                index += 1
            }
        }
        if index < pattern.endIndex { index += 1 }  // the closing `]`
        return (matched != negate, index)
    }
}
