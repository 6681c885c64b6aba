import ArgumentParser
import KVClient
import KVCore

struct Delete: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Delete a key.",
        discussion: """
            Writes a versioned tombstone, whether or not the node has the key (a delete must \
            win over a put this node has not seen yet), and prints its version: \
            `deleted KEY (lamport N, origin NODE)`.

            Examples:
              kv delete greeting
              kv --node http://127.0.0.1:8001 delete user/42
              kv delete -w all user/42             # answered once every node holds the tombstone
            """
    )

    @OptionGroup var global: GlobalOptions

    @Argument(help: "The key to delete.")
    var key: String

    @OptionGroup var durability: DurabilityOptions

    func run() async throws {
        let reply = try await global.withClient { client in
            try await client.delete(key, acknowledgement: durability.acknowledgement)
        }
        Terminal.line("deleted \(reply.key) (lamport \(reply.lamport), origin \(reply.origin))")
    }
}
