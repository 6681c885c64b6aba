import ArgumentParser
import Foundation
import KVClient
import KVCore

/// `kv members` and `kv members remove ID`.
struct Members: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the cluster's members, or remove one.",
        discussion: """
            Prints one row per member as the node sees it: ID, URL, STATE (active; suspect: \
            active but this node cannot reach it now; removed), REACHABLE and SINCE (when \
            REACHABLE last changed). A suspect member is never removed by itself: an AP store \
            must not shrink during a partition. Remove a member for good with `kv members remove ID`.

            Examples:
              kv members
              kv --node http://127.0.0.1:8001 members --json
              kv members remove C
            """,
        subcommands: [List.self, Remove.self],
        defaultSubcommand: List.self)

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "list", abstract: "List the members (the default).")

        @OptionGroup var global: GlobalOptions

        @Flag(help: "Print the node's JSON reply.")
        var json = false

        func run() async throws {
            let reply = try await global.withClient { client in try await client.members() }
            Members.print(reply, json: json)
        }
    }

    struct Remove: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Mark a member removed everywhere.",
            discussion: """
                The node writes the member's row as removed and replication carries it to every \
                member: they stop replicating with it, refuse it on the peer routes, and no longer \
                wait for it to purge tombstones. The removed node's file cannot come back; a new \
                machine under the same id joins with an empty --db and --join.
                """)

        @OptionGroup var global: GlobalOptions

        @Argument(help: "The id of the member to remove.")
        var id: String

        @Flag(help: "Print the node's JSON reply.")
        var json = false

        func validate() throws {
            do {
                _ = try NodeID(id)
            } catch {
                throw ValidationError("\(error.description)")
            }
        }

        func run() async throws {
            let reply = try await global.withClient { client in try await client.removeMember(id) }
            Members.print(reply, json: json)
        }
    }

    static func print(_ reply: MembersReply, json: Bool) {
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            Terminal.line((try? String(decoding: encoder.encode(reply), as: UTF8.self)) ?? "{}")
            return
        }
        let rows = reply.members.map { member in
            [member.id, member.url, member.state, member.reachable.map { $0 ? "yes" : "no" } ?? "-", member.since ?? "-"]
        }
        for line in Table.render(header: ["ID", "URL", "STATE", "REACHABLE", "SINCE"], rows: rows) { Terminal.line(line) }
    }
}
