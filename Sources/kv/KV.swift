import ArgumentParser
import KVClient

/// `kv`: the command-line client of a Converge node.
///
/// `main` is ours, not the parser's, so that every failure is one line on stderr with the
/// status of DESIGN.md §5: 0 done, 1 key not found, 2 node unreachable or request refused,
/// 64 bad usage.
@main
struct KV: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kv",
        abstract: "Read and write keys on a Converge node.",
        discussion: """
            Talks to one node over its HTTP API. The node is --node URL, else $KV_NODE, else \
            http://127.0.0.1:8000; --node may stand before or after the subcommand. A node run \
            with --client-token-file wants its token: --token-file PATH, else $KV_TOKEN (the \
            token itself). An https:// node is checked against --tls-ca-file (or \
            $KV_TLS_CA_FILE), else the system's trust store.

            Exit status: 0 done, 1 key not found, 2 the node could not be reached or refused \
            the request, 64 bad usage.

            Examples:
              kv put greeting hello
              kv --node http://127.0.0.1:8001 get greeting
              kv --tls-ca-file ca.pem --node https://10.0.0.1:8000 get greeting
              kv list --prefix user/
              kv status
            """,
        subcommands: [Put.self, Get.self, Delete.self, List.self, Status.self, Members.self, Watch.self, Cluster.self, Bench.self]
    )

    @OptionGroup var global: GlobalOptions

    static func main() async {
        let status: Int32
        do {
            var command = try await asyncParseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
            status = 0
        } catch let error as KVClientError {
            Terminal.error(error.status == 401 ? Self.unauthorizedLine : error.description)
            status = error.kind == .invalidNodeURL ? ExitStatus.usage : ExitStatus.refused
        } catch let failure as Failure {
            Terminal.error(failure.message)
            for line in failure.details { Terminal.note("  " + line) }
            status = failure.status
        } catch let quiet as QuietExit {
            status = quiet.status
        } catch {
            let code = exitCode(for: error)
            guard code != .success, !(error is ExitCode) else {
                exit(withError: error)  // help, version: the parser prints them
            }
            Terminal.error(usageLine(for: error))
            status = code.rawValue
        }
        Terminal.exit(status)
    }

    /// What a 401 means to a user of `kv`, whatever the node's words.
    static let unauthorizedLine =
        "node refused the request: 401 unauthorized: missing or wrong client token; pass --token-file PATH or set KV_TOKEN"

    /// The parser's message for a usage error on one line, with where to find help.
    static func usageLine(for error: any Error) -> String {
        let message = self.message(for: error)
            .split(whereSeparator: \.isNewline).first.map(String.init) ?? "bad usage"
        let trimmed = message.hasPrefix("Error: ") ? String(message.dropFirst(7)) : message
        // The full message ends with "See 'kv SUB --help' …"; keep just the command to run.
        var hint = "kv --help"
        let full = fullMessage(for: error)
        if let start = full.firstRange(of: "See '"),
            let end = full[start.upperBound...].firstIndex(of: "'")
        {
            hint = String(full[start.upperBound..<end])
        }
        return "\(trimmed) (see '\(hint)')"
    }
}

/// Exit statuses of DESIGN.md §5.
enum ExitStatus {
    static let notFound: Int32 = 1
    /// The command could not do what was asked (a node already runs, a cluster did not converge).
    static let failed: Int32 = 1
    static let refused: Int32 = 2
    static let usage: Int32 = 64
}

/// A failure reported as one line and an exit status; `details` (a log's tail) follow it on
/// stderr, indented.
struct Failure: Error {
    let message: String
    let status: Int32
    var details: [String] = []

    static func keyNotFound(_ key: String) -> Failure {
        Failure(message: "key '\(key)' not found", status: ExitStatus.notFound)
    }
}

/// Ends `kv` with `status` after the command already said everything on stdout (a verdict).
struct QuietExit: Error {
    let status: Int32
}
