/// One Server-Sent Event, as the WHATWG event-stream format defines it: what
/// `NodeHTTPClient.eventStream` hands its consumer.
public struct ServerSentEvent: Sendable, Hashable {
    /// The `event:` field; `message` when the event named none.
    public var type: String
    /// The `data:` lines joined with newlines.
    public var data: String
    /// The last `id:` seen in the stream so far, if any.
    public var id: String?

    public init(type: String = "message", data: String, id: String? = nil) {
        self.type = type
        self.data = data
        self.id = id
    }
}

/// Turns the bytes of a `text/event-stream` body into events, whatever chunks they arrive in.
///
/// Follows the WHATWG parsing rules: lines end with LF, CRLF or CR; a blank line dispatches the
/// event; `:` starts a comment (keep-alive pings); a field's value loses one leading space;
/// `event`, `data` and `id` are kept, other fields ignored; an event without data is dropped.
/// A line longer than `maxLineBytes` throws, so a broken server cannot grow memory without bound.
struct ServerSentEventParser {
    let maxLineBytes: Int
    private var line: [UInt8] = []
    private var afterCR = false
    private var type = ""
    private var data: [String] = []
    private var lastID: String?

    init(maxLineBytes: Int = 64 << 20) {
        self.maxLineBytes = maxLineBytes
    }

    /// The events completed by `bytes`, in order.
    mutating func feed(_ bytes: some Sequence<UInt8>) throws(NodeHTTPError) -> [ServerSentEvent] {
        var events: [ServerSentEvent] = []
        for byte in bytes {
            if afterCR {
                afterCR = false
                if byte == UInt8(ascii: "\n") { continue }  // the LF of a CRLF
            }
            switch byte {
            case UInt8(ascii: "\r"):
                afterCR = true
                if let event = endLine() { events.append(event) }
            case UInt8(ascii: "\n"):
                if let event = endLine() { events.append(event) }
            default:
                guard line.count < maxLineBytes else {
                    throw .badResponse("an event-stream line is longer than \(maxLineBytes) bytes")
                }
                line.append(byte)
            }
        }
        return events
    }

    /// Handles the completed `line`; returns an event when it was the blank line ending one.
    private mutating func endLine() -> ServerSentEvent? {
        defer { line.removeAll(keepingCapacity: true) }
        if line.isEmpty { return dispatch() }
        if line.first == UInt8(ascii: ":") { return nil }  // a comment
        let name: [UInt8]
        var value: ArraySlice<UInt8>
        if let colon = line.firstIndex(of: UInt8(ascii: ":")) {
            name = Array(line[..<colon])
            value = line[(colon + 1)...]
            if value.first == UInt8(ascii: " ") { value = value.dropFirst() }
        } else {
            name = line
            value = []
        }
        let text = String(decoding: value, as: UTF8.self)
        switch String(decoding: name, as: UTF8.self) {
        case "event": type = text
        case "data": data.append(text)
        case "id" where !value.contains(0): lastID = text
        default: break  // retry, unknown fields
        }
        return nil
    }

    private mutating func dispatch() -> ServerSentEvent? {
        defer {
            type = ""
            data = []
        }
        guard !data.isEmpty else { return nil }
        return ServerSentEvent(
            type: type.isEmpty ? "message" : type, data: data.joined(separator: "\n"), id: lastID)
    }
}
