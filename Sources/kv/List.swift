import ArgumentParser
import KVClient
import KVCore

struct List: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List live keys in byte order.",
        discussion: """
            Prints a table with the columns KEY, LAMPORT, ORIGIN and SIZE (bytes). At most \
            --limit keys are listed; when more follow, a line on standard error gives the \
            command for the next page.

            Examples:
              kv list
              kv list --prefix user/
              kv list --prefix user/ --after user/42 --limit 10
            """
    )

    @OptionGroup var global: GlobalOptions

    @Option(help: "List only keys that start with this.")
    var prefix: String?

    @Option(help: "List only keys after this one (the next page after a listing that ended here).")
    var after: String?

    @Option(help: "How many keys to list, 1 to 1000.")
    var limit: Int = 100

    func validate() throws {
        guard (1...1000).contains(limit) else {
            throw ValidationError("--limit must be from 1 to 1000, not \(limit)")
        }
    }

    func run() async throws {
        let page = try await global.withClient { client in
            try await client.list(prefix: prefix, after: after, limit: limit)
        }
        let rows = page.keys.map { [$0.key, String($0.lamport), $0.origin, String($0.size)] }
        for line in Table.render(header: ["KEY", "LAMPORT", "ORIGIN", "SIZE"], rows: rows) {
            Terminal.line(line)
        }
        if let next = page.next {
            var command = ["kv", "list"]
            if let prefix { command += ["--prefix", Shell.quote(prefix)] }
            command += ["--after", Shell.quote(next)]
            if limit != 100 { command += ["--limit", String(limit)] }
            Terminal.note("more keys follow: " + command.joined(separator: " "))
        }
    }
}
