import ArgumentParser
import Foundation
import KVClient
import KVCore

struct Watch: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print changes to keys as they happen.",
        discussion: """
            Streams the node's changes (GET /watch) in the node's seq order, one line each: SEQ, \
            KEY, put or delete, LAMPORT@ORIGIN and the value (as text when it is printable UTF-8, \
            else <N bytes>). --json prints each change's JSON as the node sent it. Starts from \
            now, or just after --after SEQ, so a watch that ended resumes without missing a change.

            When the node drops the watch for falling behind, a line on stderr gives the command \
            to resume with, and the exit status is 2.

            Examples:
              kv watch
              kv watch --prefix user/ --after 1200
              kv watch --json | jq .key
            """)

    @OptionGroup var global: GlobalOptions

    @Option(help: "Watch only keys that start with this.")
    var prefix: String?

    @Option(help: "Start just after this seq of the node (0: from its first change).")
    var after: Int64?

    @Flag(help: "Print each change's JSON as the node sent it.")
    var json = false

    @Option(help: "Exit after this many changes.")
    var count: Int?

    func validate() throws {
        if let after, after < 0 { throw ValidationError("--after must be a seq, 0 or more") }
        if let count, count < 1 { throw ValidationError("--count must be at least 1") }
    }

    func run() async throws {
        let client = try global.client()
        defer { Task { await client.close() } }
        var seen = 0
        do {
            for try await change in client.watch(prefix: prefix, after: after) {
                Terminal.line(json ? change.data : Self.line(for: change.event))
                seen += 1
                if let count, seen >= count { return }
            }
        } catch let error as KVClientError where error.kind == .fellBehind {
            var command = ["kv"]
            if !global.nodes.isEmpty { command += ["--node", Shell.quote(global.nodeURL)] }
            if let tokenFile = global.tokenFile { command += ["--token-file", Shell.quote(tokenFile)] }
            command += ["watch"]
            if let prefix { command += ["--prefix", Shell.quote(prefix)] }
            command += ["--after", String(error.resumeAfter ?? 0)]
            if json { command.append("--json") }
            throw Failure(
                message: "watch fell behind; resume with: " + command.joined(separator: " "),
                status: ExitStatus.refused)
        }
    }

    /// `SEQ  KEY  put|delete  LAMPORT@ORIGIN  VALUE`.
    static func line(for event: WatchEvent) -> String {
        let version = "\(event.lamport)@\(event.origin)"
        if event.deleted { return "\(event.seq)  \(event.key)  delete  \(version)" }
        return "\(event.seq)  \(event.key)  put  \(version)  \(shown(event.value))"
    }

    /// The value as text when it is valid, printable UTF-8 (no control characters), else its
    /// size as `<N bytes>`.
    static func shown(_ base64: String?) -> String {
        guard let base64, let data = Data(base64Encoded: base64) else { return "<unreadable value>" }
        let bytes = [UInt8](data)
        guard let text = String(validating: bytes, as: UTF8.self),
            !text.unicodeScalars.contains(where: { $0.properties.generalCategory == .control })
        else { return "<\(bytes.count) bytes>" }
        return text
    }
}
