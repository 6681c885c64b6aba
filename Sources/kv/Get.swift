import ArgumentParser
import KVClient

struct Get: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the value of a key.",
        discussion: """
            Writes the value's bytes to standard output exactly, so `kv get KEY > FILE` is a \
            byte-exact copy; only on a terminal is a final newline added when the value lacks \
            one. A key that is absent or deleted exits with status 1.

            Examples:
              kv get greeting
              kv get photo > photo.jpg
              kv get greeting || echo "no greeting"
              kv get -r quorum greeting
            """
    )

    @OptionGroup var global: GlobalOptions
    @OptionGroup var consistency: ReadLevelOptions

    @Argument(help: "The key to read.")
    var key: String

    func run() async throws {
        let stored = try await global.withClient { client in
            try await client.get(key, level: consistency.level)
        }
        guard let stored else { throw Failure.keyNotFound(key) }
        Terminal.write(stored.value)
        if Terminal.stdoutIsTerminal, stored.value.last != UInt8(ascii: "\n") {
            Terminal.write([UInt8(ascii: "\n")])
        }
    }
}
