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
              kv put session:1 token --ttl 10m    # gone from every node 10 minutes from now
              kv put -w quorum order/7 paid        # answered once a majority of the nodes hold it
            """
    )

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The key: 1 to 1024 bytes of UTF-8 without control characters.")
    var key: String

    @Argument(help: "The value, or - to read it from standard input.")
    var value: String

    @Option(help: ArgumentHelp("Expire the key this long after it is stored: whole seconds, as 30, 30s, 10m, 2h or 1d.", valueName: "duration"))
    var ttl: String?

    @OptionGroup var durability: DurabilityOptions

    func validate() throws {
        if let ttl { _ = try Self.seconds(ttl) }
    }

    /// `30`, `30s`, `10m`, `2h`, `1d` as whole seconds (at least 1).
    static func seconds(_ text: String) throws -> Int64 {
        let units: [(suffix: String, seconds: Int64)] = [("d", 86_400), ("h", 3_600), ("m", 60), ("s", 1)]
        let unit = units.first { text.hasSuffix($0.suffix) }
        let digits = unit.map { String(text.dropLast($0.suffix.count)) } ?? text
        guard let count = Int64(digits), count >= 1, count <= 100 * 365 * 86_400 / (unit?.seconds ?? 1) else {
            throw ValidationError("--ttl '\(text)' is not a duration such as 30, 30s, 10m, 2h or 1d (at least 1 second, at most 100 years)")
        }
        return count * (unit?.seconds ?? 1)
    }

    func run() async throws {
        let bytes = value == "-" ? try Terminal.readStandardInput() : Array(value.utf8)
        let seconds = try ttl.map(Self.seconds)
        let reply = try await global.withClient { client in
            try await client.put(key, value: bytes, ttlSeconds: seconds, acknowledgement: durability.acknowledgement)
        }
        Terminal.line("put \(reply.key) (lamport \(reply.lamport), origin \(reply.origin))")
    }
}
