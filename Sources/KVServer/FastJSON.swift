import KVCore
import NIOCore

/// The JSON of the hottest reply, written by hand: `PUT` and `DELETE` answer
/// `{"key":…,"lamport":…,"origin":…}` on every write, and going through `JSONEncoder` costs
/// more than the rest of the reply. Same bytes as the encoder with sorted keys and unescaped
/// slashes (a test compares them).
enum FastJSON {
    static func writeReply(_ reply: WriteReply) -> ByteBuffer {
        var buffer = ByteBuffer()
        buffer.reserveCapacity(reply.key.utf8.count + reply.origin.utf8.count + 48)
        buffer.writeStaticString(#"{"key":"#)
        appendString(reply.key, to: &buffer)
        buffer.writeStaticString(#","lamport":"#)
        buffer.writeString(String(reply.lamport))
        buffer.writeStaticString(#","origin":"#)
        appendString(reply.origin, to: &buffer)
        buffer.writeStaticString("}")
        return buffer
    }

    /// A JSON string literal: quotes, backslashes and control characters escaped, the rest as
    /// UTF-8.
    static func appendString(_ text: String, to buffer: inout ByteBuffer) {
        buffer.writeInteger(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): buffer.writeStaticString(#"\""#)
            case UInt8(ascii: "\\"): buffer.writeStaticString(#"\\"#)
            case 0x08: buffer.writeStaticString(#"\b"#)
            case 0x0C: buffer.writeStaticString(#"\f"#)
            case 0x0A: buffer.writeStaticString(#"\n"#)
            case 0x0D: buffer.writeStaticString(#"\r"#)
            case 0x09: buffer.writeStaticString(#"\t"#)
            case 0..<0x20:
                let hex = String(byte, radix: 16)
                buffer.writeString("\\u00" + (hex.count == 1 ? "0" + hex : hex))
            default: buffer.writeInteger(byte)
            }
        }
        buffer.writeInteger(UInt8(ascii: "\""))
    }
}
