/// A Redis-protocol client for tests: sends commands as arrays of bulk strings and reads whole
/// replies, blocking on a thread of its own (`offThePool`), never on the cooperative pool that
/// the nodes under test need. Written apart from the node's codec, so a test of the server does
/// not check the server's encoder against itself.
public final class RESPTestClient: @unchecked Sendable {
    // @unchecked: used by one test task at a time.

    /// A reply as the client reads it.
    public indirect enum Reply: Equatable, Sendable, CustomStringConvertible {
        case simple(String)
        case error(String)
        case integer(Int64)
        case bulk([UInt8])
        case null
        case array([Reply])
        case map([Reply])
        case double(String)

        public var text: String? {
            switch self {
            case .simple(let text), .double(let text): return text
            case .bulk(let bytes): return String(decoding: bytes, as: UTF8.self)
            default: return nil
            }
        }

        public var description: String {
            switch self {
            case .simple(let text): return "+\(text)"
            case .error(let text): return "-\(text)"
            case .integer(let value): return ":\(value)"
            case .bulk(let bytes): return "\"\(String(decoding: bytes, as: UTF8.self))\""
            case .null: return "(nil)"
            case .array(let items): return "[\(items.map(\.description).joined(separator: ", "))]"
            case .map(let items): return "{\(items.map(\.description).joined(separator: ", "))}"
            case .double(let text): return ",\(text)"
            }
        }
    }

    /// The connection closed, or a reply did not arrive or did not parse.
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
        public init(description: String) { self.description = description }
    }

    public let connection: RawConnection
    private var buffer: [UInt8] = []
    private var position = 0

    public init(port: Int) throws {
        connection = try RawConnection(port: port)
    }

    /// Sends one command and reads its reply.
    @discardableResult
    public func call(_ arguments: String...) async throws -> Reply {
        try await call(arguments)
    }

    @discardableResult
    public func call(_ arguments: [String]) async throws -> Reply {
        try await offThePool {
            self.send(arguments)
            return try self.readReply()
        }
    }

    /// Sends one command without reading (for pipelining).
    public func send(_ arguments: [String]) {
        var bytes = Array("*\(arguments.count)\r\n".utf8)
        for argument in arguments {
            bytes += Array("$\(argument.utf8.count)\r\n".utf8) + Array(argument.utf8) + [13, 10]
        }
        connection.send(bytes)
    }

    /// Reads the next reply, waiting up to 10 s for its bytes.
    public func reply() async throws -> Reply {
        try await offThePool { try self.readReply() }
    }

    private func readReply() throws -> Reply {
        while true {
            var cursor = position
            if let reply = try parse(&cursor) {
                position = cursor
                return reply
            }
            let more = connection.receive(timeout: 10)
            guard !more.isEmpty else {
                throw Failure(description: "the connection closed or went silent; unread: \(String(decoding: buffer[position...], as: UTF8.self))")
            }
            buffer += more
        }
    }

    public func close() { connection.close() }

    /// Parses one reply at `cursor`; nil when it has not fully arrived.
    private func parse(_ cursor: inout Int) throws -> Reply? {
        guard let line = readLine(&cursor), let type = line.first else { return nil }
        let rest = String(decoding: line.dropFirst(), as: UTF8.self)
        switch type {
        case UInt8(ascii: "+"): return .simple(rest)
        case UInt8(ascii: "-"): return .error(rest)
        case UInt8(ascii: ","): return .double(rest)
        case UInt8(ascii: "_"): return .null
        case UInt8(ascii: ":"):
            guard let value = Int64(rest) else { throw Failure(description: "bad integer \(rest)") }
            return .integer(value)
        case UInt8(ascii: "$"):
            guard let length = Int(rest) else { throw Failure(description: "bad bulk length \(rest)") }
            if length < 0 { return .null }
            guard buffer.count - cursor >= length + 2 else { return nil }
            defer { cursor += length + 2 }
            return .bulk(Array(buffer[cursor..<(cursor + length)]))
        case UInt8(ascii: "*"), UInt8(ascii: "%"):
            guard let count = Int(rest) else { throw Failure(description: "bad aggregate length \(rest)") }
            if count < 0 { return .null }
            var items: [Reply] = []
            for _ in 0..<(type == UInt8(ascii: "%") ? 2 * count : count) {
                guard let item = try parse(&cursor) else { return nil }
                items.append(item)
            }
            return type == UInt8(ascii: "%") ? .map(items) : .array(items)
        default:
            throw Failure(description: "unknown reply type \(Character(Unicode.Scalar(type)))")
        }
    }

    private func readLine(_ cursor: inout Int) -> ArraySlice<UInt8>? {
        var index = cursor
        while index + 1 < buffer.count {
            if buffer[index] == 13, buffer[index + 1] == 10 {
                defer { cursor = index + 2 }
                return buffer[cursor..<index]
            }
            index += 1
        }
        return nil
    }
}
