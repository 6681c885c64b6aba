/// Reads the commands a client sends, from bytes that may arrive in any split: RESP arrays of
/// bulk strings (`*2\r\n$3\r\nGET\r\n$1\r\nk\r\n`) and inline commands (`GET k\r\n`), as Redis
/// accepts them.
///
/// It promises never to allocate more than its limits allow for what a client merely declares:
/// a bulk length above `maxBulkBytes`, an argument count above `maxArguments`, a command whose
/// declared bulks add up past `maxCommandBytes`, a header line that does not end within a few
/// bytes, or an inline line longer than `maxInlineBytes` is refused with a
/// `RESPProtocolError` as soon as it is seen, before its bytes are awaited. After an error the
/// parser's state is undefined: the connection must be closed (Redis does the same). Pure: no
/// I/O; the caller feeds it with `append` and drains it with `next`.
public struct RESPCommandParser: Sendable {
    /// What a client may declare. Every limit is inclusive.
    public struct Limits: Sendable {
        /// Largest bulk string (one argument). Default 1 MiB + 4 KiB: a value at the node's
        /// limit plus slack for a key.
        public var maxBulkBytes: Int = (1 << 20) + 4096
        /// Most arguments in one command, the command's name included. Default 1 Mi.
        public var maxArguments: Int = 1 << 20
        /// Most bytes in all the bulks of one command. Default 64 MiB.
        public var maxCommandBytes: Int = 64 << 20
        /// Longest inline command line, as Redis (64 KiB).
        public var maxInlineBytes: Int = 64 << 10

        public init() {}
    }

    /// Longest `*N` or `$N` header line, CRLF included: a sign, 19 digits and CRLF fit.
    static let maxHeaderBytes = 32

    public let limits: Limits
    private var buffer: [UInt8] = []
    private var position = 0
    /// The array being read: how many arguments it declared, and those read so far.
    private var expected: Int?
    private var arguments: [[UInt8]] = []
    private var declaredBytes = 0

    public init(limits: Limits = Limits()) {
        self.limits = limits
    }

    /// Bytes received and not yet consumed by a complete command.
    public var bufferedBytes: Int { buffer.count - position }

    /// Whether a command has begun and not ended (a client that closes now truncated it).
    public var isInsideCommand: Bool { expected != nil || bufferedBytes > 0 }

    /// Adds bytes as they arrived from the client.
    public mutating func append(_ bytes: some Sequence<UInt8>) {
        if position > 0, position == buffer.count {
            buffer.removeAll(keepingCapacity: true)
            position = 0
        } else if position >= 64 << 10, position * 2 >= buffer.count {
            buffer.removeFirst(position)
            position = 0
        }
        buffer.append(contentsOf: bytes)
    }

    /// The next complete command (its name and arguments, never empty), or nil until more
    /// bytes arrive. Throws as soon as what arrived breaks the protocol or a limit.
    public mutating func next() throws(RESPProtocolError) -> [[UInt8]]? {
        while true {
            if expected == nil {
                guard position < buffer.count else { return nil }
                if buffer[position] == UInt8(ascii: "*") {
                    guard let (count, length) = try header(after: "*", what: .multibulkLength) else { return nil }
                    position += length
                    if count <= 0 { continue }  // `*0` and `*-1` are ignored, as by Redis
                    guard count <= limits.maxArguments else {
                        throw .tooManyArguments(declared: count, limit: limits.maxArguments)
                    }
                    expected = count
                    arguments = []
                    arguments.reserveCapacity(min(count, 1024))
                    declaredBytes = 0
                } else {
                    guard let line = try inlineLine() else { return nil }
                    let words = try Self.splitInline(line)
                    if words.isEmpty { continue }  // blank lines are ignored (redis-cli sends them)
                    return words
                }
            }
            guard let count = expected else { continue }
            while arguments.count < count {
                guard position < buffer.count else { return nil }
                guard buffer[position] == UInt8(ascii: "$") else {
                    throw .expectedBulkString(found: buffer[position])
                }
                guard let (length, headerLength) = try header(after: "$", what: .bulkLength) else { return nil }
                guard length >= 0, length <= limits.maxBulkBytes else {
                    throw length < 0 ? .invalidBulkLength : .bulkTooLarge(declared: length, limit: limits.maxBulkBytes)
                }
                guard declaredBytes + length <= limits.maxCommandBytes else {
                    throw .commandTooLarge(limit: limits.maxCommandBytes)
                }
                let start = position + headerLength
                guard buffer.count - start >= length + 2 else { return nil }
                guard buffer[start + length] == 13, buffer[start + length + 1] == 10 else {
                    throw .missingTerminator
                }
                arguments.append(Array(buffer[start..<(start + length)]))
                declaredBytes += length
                position = start + length + 2
            }
            let command = arguments
            arguments = []
            expected = nil
            return command
        }
    }

    private enum HeaderKind { case multibulkLength, bulkLength }

    /// Reads `*N\r\n` or `$N\r\n` at `position`: the number and the line's length, nil if the
    /// line has not fully arrived. Refuses a line that does not end within `maxHeaderBytes`.
    private func header(after marker: Character, what: HeaderKind) throws(RESPProtocolError) -> (Int, Int)? {
        let end = min(buffer.count, position + Self.maxHeaderBytes)
        var index = position + 1
        while index < end, buffer[index] != 10 { index += 1 }
        guard index < end else {
            if buffer.count - position >= Self.maxHeaderBytes {
                throw what == .bulkLength ? .invalidBulkLength : .invalidMultibulkLength
            }
            return nil
        }
        // index is the LF; the line is buffer[position+1 ..< index-1] and must end in CR.
        guard index - 1 > position, buffer[index - 1] == 13 else {
            throw what == .bulkLength ? .invalidBulkLength : .invalidMultibulkLength
        }
        guard let number = Self.integer(buffer[(position + 1)..<(index - 1)]) else {
            throw what == .bulkLength ? .invalidBulkLength : .invalidMultibulkLength
        }
        return (number, index + 1 - position)
    }

    /// A decimal integer, optionally negative, of at most 18 digits (no overflow); nil otherwise.
    static func integer(_ digits: ArraySlice<UInt8>) -> Int? {
        var bytes = digits[...]
        var negative = false
        if bytes.first == UInt8(ascii: "-") {
            negative = true
            bytes = bytes.dropFirst()
        }
        guard !bytes.isEmpty, bytes.count <= 18 else { return nil }
        var value = 0
        for byte in bytes {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            value = value * 10 + Int(byte - UInt8(ascii: "0"))
        }
        return negative ? -value : value
    }

    /// The next inline line without its line end, consumed; nil until its LF arrives.
    private mutating func inlineLine() throws(RESPProtocolError) -> ArraySlice<UInt8>? {
        let end = min(buffer.count, position + limits.maxInlineBytes + 2)
        var index = position
        while index < end, buffer[index] != 10 { index += 1 }
        guard index < end else {
            if buffer.count - position > limits.maxInlineBytes + 1 { throw .inlineTooLong(limit: limits.maxInlineBytes) }
            return nil
        }
        var line = buffer[position..<index]
        if line.last == 13 { line = line.dropLast() }
        position = index + 1
        return line
    }

    /// Splits an inline line into words as Redis does (`sdssplitargs`): blanks separate words;
    /// "double quotes" take `\n \r \t \b \a \\ \" \xHH` escapes; 'single quotes' take `\'`; a
    /// closing quote must be followed by a blank or the end.
    static func splitInline(_ line: ArraySlice<UInt8>) throws(RESPProtocolError) -> [[UInt8]] {
        var words: [[UInt8]] = []
        var index = line.startIndex
        func isBlank(_ byte: UInt8) -> Bool { byte == 32 || byte == 9 || byte == 13 || byte == 10 || byte == 11 || byte == 12 }
        while true {
            while index < line.endIndex, isBlank(line[index]) { index += 1 }
            guard index < line.endIndex else { return words }
            var word: [UInt8] = []
            let quote = line[index]
            if quote == UInt8(ascii: "\"") || quote == UInt8(ascii: "'") {
                index += 1
                var closed = false
                while index < line.endIndex {
                    let byte = line[index]
                    if byte == quote {
                        closed = true
                        index += 1
                        break
                    }
                    if byte == UInt8(ascii: "\\"), index + 1 < line.endIndex {
                        let escaped = line[index + 1]
                        if quote == UInt8(ascii: "'") {
                            if escaped == UInt8(ascii: "'") {
                                word.append(escaped)
                                index += 2
                                continue
                            }
                        } else if escaped == UInt8(ascii: "x"), index + 3 < line.endIndex,
                            let high = hexValue(line[index + 2]), let low = hexValue(line[index + 3])
                        {
                            word.append(high << 4 | low)
                            index += 4
                            continue
                        } else {
                            switch escaped {
                            case UInt8(ascii: "n"): word.append(10)
                            case UInt8(ascii: "r"): word.append(13)
                            case UInt8(ascii: "t"): word.append(9)
                            case UInt8(ascii: "b"): word.append(8)
                            case UInt8(ascii: "a"): word.append(7)
                            default: word.append(escaped)
                            }
                            index += 2
                            continue
                        }
                    }
                    word.append(byte)
                    index += 1
                }
                guard closed, index == line.endIndex || isBlank(line[index]) else { throw .unbalancedQuotes }
            } else {
                while index < line.endIndex, !isBlank(line[index]) {
                    word.append(line[index])
                    index += 1
                }
            }
            words.append(word)
        }
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

/// Why the bytes a client sent are not a command. The server answers
/// `-ERR Protocol error: <description>` and closes the connection.
public enum RESPProtocolError: Error, Equatable, Sendable, CustomStringConvertible {
    case invalidMultibulkLength
    case invalidBulkLength
    case expectedBulkString(found: UInt8)
    case missingTerminator
    case bulkTooLarge(declared: Int, limit: Int)
    case tooManyArguments(declared: Int, limit: Int)
    case commandTooLarge(limit: Int)
    case inlineTooLong(limit: Int)
    case unbalancedQuotes

    public var description: String {
        switch self {
        case .invalidMultibulkLength:
            return "invalid multibulk length (an array header must be *N followed by CRLF)"
        case .invalidBulkLength:
            return "invalid bulk length (a bulk header must be $N with 0 <= N, followed by CRLF)"
        case .expectedBulkString(let byte):
            let shown = byte >= 0x20 && byte < 0x7F ? "'\(Character(Unicode.Scalar(byte)))'" : "byte 0x\(String(byte, radix: 16))"
            return "expected '$', got \(shown) (a command is an array of bulk strings)"
        case .missingTerminator:
            return "a bulk string did not end with CRLF where its length said"
        case .bulkTooLarge(let declared, let limit):
            return "bulk length \(declared) is above this node's limit of \(limit) bytes (--max-value-bytes plus room for a key)"
        case .tooManyArguments(let declared, let limit):
            return "\(declared) arguments is above the limit of \(limit) per command; split the command"
        case .commandTooLarge(let limit):
            return "the command's arguments add up to more than \(limit) bytes; split the command"
        case .inlineTooLong(let limit):
            return "an inline command is longer than \(limit) bytes; send large commands as RESP arrays"
        case .unbalancedQuotes:
            return "unbalanced quotes in request"
        }
    }
}
