import ArgumentParser
import KVClient
import KVCore

struct Put: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Store a value under a key.",
        discussion: """
            Every put makes a new version, even with the same value, and prints it: \
            `put KEY (lamport N, origin NODE)`. A VALUE of - reads the value from standard \
            input as raw bytes, so files of any content round-trip. A value that starts with \
            '-' goes after --.

            Examples:
              kv put greeting hello
              kv put user/42 '{"name": "Ada"}'
              kv put photo - < photo.jpg
              kv put offset -- -5
            """
    )

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The key: 1 to 1024 bytes of UTF-8 without control characters.")
    var key: String

    @Argument(help: "The value, or - to read it from standard input.")
    var value: String

    func run() async throws {
        let bytes = value == "-" ? try Terminal.readStandardInput() : Array(value.utf8)
        let reply = try await global.withClient { client in
            try await client.put(key, value: bytes)
        }
        Terminal.line("put \(reply.key) (lamport \(reply.lamport), origin \(reply.origin))")
    }
}
