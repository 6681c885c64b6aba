@testable import NodeHTTP
import Testing

/// The event-stream parser behind `NodeHTTPClient.eventStream` (and so `KVClient.watch`), fed the way a network delivers bytes.
@Suite("ServerSentEventParser")
struct ServerSentEventParserTests {
    static let stream = Array(
        ": ping\n\nid: 1\ndata: {\"a\":1}\n\nid: 2\r\ndata:{\"b\":2}\r\n\r\nevent: overflow\rdata: x\rdata: y\r\r: bye\n".utf8)

    @Test("events, ids, types, comments and line endings, in one chunk")
    func whole() throws {
        var parser = ServerSentEventParser()
        #expect(try parser.feed(Self.stream) == [
            ServerSentEvent(type: "message", data: "{\"a\":1}", id: "1"),
            ServerSentEvent(type: "message", data: "{\"b\":2}", id: "2"),
            ServerSentEvent(type: "overflow", data: "x\ny", id: "2"),
        ])
    }

    @Test("the same events whatever the chunk boundaries", arguments: [1, 2, 3, 7, 13])
    func chunked(size: Int) throws {
        var parser = ServerSentEventParser()
        var events: [ServerSentEvent] = []
        var start = 0
        while start < Self.stream.count {
            let end = min(start + size, Self.stream.count)
            events += try parser.feed(Self.stream[start..<end])
            start = end
        }
        var whole = ServerSentEventParser()
        #expect(events == (try whole.feed(Self.stream)))
    }

    @Test("an over-long line is refused, not buffered")
    func longLine() {
        var parser = ServerSentEventParser(maxLineBytes: 8)
        #expect(throws: NodeHTTPError.badResponse("an event-stream line is longer than 8 bytes")) {
            _ = try parser.feed(Array("data: 0123456789\n\n".utf8))
        }
    }
}
