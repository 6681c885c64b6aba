public import Logging
import Foundation

/// Writes one line per event to standard error: UTC time, level, node id, message, then any
/// metadata as `key=value`. For example:
///
///     2026-11-26T08:41:07.512Z info  [A] listening on http://127.0.0.1:8000
///
/// With `format: .json`, each line is one JSON object instead, for log shippers:
///
///     {"level":"info","message":"listening on http://127.0.0.1:8000","node":"A","time":"2026-11-26T08:41:07.512Z"}
public struct PlainLogHandler: LogHandler {
    /// How each line is written.
    public enum Format: String, Sendable, CaseIterable {
        case plain, json
    }

    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    private let nodeID: String
    private let format: Format

    public init(nodeID: String, format: Format = .plain) {
        self.nodeID = nodeID
        self.format = format
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        if format == .json {
            var fields: [String: String] = [
                "time": Self.timestamp(), "level": event.level.rawValue, "node": nodeID, "message": "\(event.message)",
            ]
            for (key, value) in metadata.merging(event.metadata ?? [:], uniquingKeysWith: { $1 }) where fields[key] == nil {
                fields[key] = "\(value)"
            }
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
            var data = (try? encoder.encode(fields)) ?? Data()
            data.append(UInt8(ascii: "\n"))
            FileHandle.standardError.write(data)
            return
        }
        var line = "\(Self.timestamp()) \(event.level.rawValue.padding(toLength: 7, withPad: " ", startingAt: 0))[\(nodeID)] \(event.message)"
        let merged = metadata.merging(event.metadata ?? [:]) { $1 }
        for (key, value) in merged.sorted(by: { $0.key < $1.key }) {
            line += " \(key)=\(value)"
        }
        line += "\n"
        FileHandle.standardError.write(Data(line.utf8))
    }

    private static func timestamp() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var seconds = now.tv_sec
        var parts = tm()
        gmtime_r(&seconds, &parts)
        return String(
            format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1,
            Int(parts.tm_mday), Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec), now.tv_nsec / 1_000_000)
    }
}
