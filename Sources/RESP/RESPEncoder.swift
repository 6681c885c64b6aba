/// Writes `RESPValue`s as RESP bytes. Pure: no I/O, no allocation beyond the output array.
public enum RESPEncoder {
    /// Appends `value`, in `version`'s form, to `output`.
    public static func encode(_ value: RESPValue, version: RESPVersion, into output: inout [UInt8]) {
        switch value {
        case .simpleString(let text):
            output.append(UInt8(ascii: "+"))
            appendLine(text, to: &output)
        case .error(let text):
            output.append(UInt8(ascii: "-"))
            appendLine(text, to: &output)
        case .integer(let number):
            output.append(UInt8(ascii: ":"))
            appendNumber(number, to: &output)
        case .bulkString(let bytes):
            output.append(UInt8(ascii: "$"))
            appendNumber(Int64(bytes.count), to: &output)
            output.append(contentsOf: bytes)
            output.append(contentsOf: crlf)
        case .null:
            if version == .resp3 {
                output.append(contentsOf: [UInt8(ascii: "_"), 13, 10])
            } else {
                output.append(contentsOf: [UInt8(ascii: "$"), UInt8(ascii: "-"), UInt8(ascii: "1"), 13, 10])
            }
        case .array(let elements):
            output.append(UInt8(ascii: "*"))
            appendNumber(Int64(elements.count), to: &output)
            for element in elements { encode(element, version: version, into: &output) }
        case .map(let flattened):
            if version == .resp3 {
                output.append(UInt8(ascii: "%"))
                appendNumber(Int64(flattened.count / 2), to: &output)
            } else {
                output.append(UInt8(ascii: "*"))
                appendNumber(Int64(flattened.count), to: &output)
            }
            for element in flattened { encode(element, version: version, into: &output) }
        case .double(let number):
            let text = number.isFinite ? String(number) : (number.isNaN ? "nan" : (number > 0 ? "inf" : "-inf"))
            if version == .resp3 {
                output.append(UInt8(ascii: ","))
                appendLine(text, to: &output)
            } else {
                encode(.bulk(text), version: version, into: &output)
            }
        }
    }

    /// `value` as bytes, for tests and one-off replies.
    public static func encode(_ value: RESPValue, version: RESPVersion = .resp2) -> [UInt8] {
        var output: [UInt8] = []
        encode(value, version: version, into: &output)
        return output
    }

    /// A command as clients send it: an array of bulk strings.
    public static func command(_ arguments: [String]) -> [UInt8] {
        encode(.array(arguments.map { .bulk($0) }))
    }

    private static let crlf: [UInt8] = [13, 10]

    /// Writes `text` and CRLF; a CR or LF inside would end the line early and desynchronise the
    /// client, so they become spaces.
    private static func appendLine(_ text: String, to output: inout [UInt8]) {
        for byte in text.utf8 { output.append(byte == 13 || byte == 10 ? UInt8(ascii: " ") : byte) }
        output.append(contentsOf: crlf)
    }

    private static func appendNumber(_ number: Int64, to output: inout [UInt8]) {
        output.append(contentsOf: String(number).utf8)
        output.append(contentsOf: crlf)
    }
}
