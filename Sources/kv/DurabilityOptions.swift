import ArgumentParser
import KVClient

/// `-w` and `--ack-timeout` of `kv put` and `kv delete`: how many nodes must hold the write
/// before the node answers, and how long it waits for them (docs/openapi.yaml, `?w=`).
struct DurabilityOptions: ParsableArguments {
    @Option(
        name: [.customShort("w"), .customLong("w")],
        help: ArgumentHelp("Answer only when this many nodes hold the write: a number, quorum or all (default 1: the node asked).", valueName: "nodes"))
    var acknowledgedBy: String?

    @Option(help: ArgumentHelp("With -w: how long the node waits for the others, in seconds (default 5). The write stays either way.", valueName: "seconds"))
    var ackTimeout: Double?

    /// `-w` is a number from 1, quorum or all; `--ack-timeout` goes with it and is positive.
    func validate() throws {
        if let nodes = acknowledgedBy, nodes != "quorum", nodes != "all", (Int(nodes) ?? 0) < 1 {
            throw ValidationError("-w '\(nodes)' is not a number of nodes from 1, quorum or all")
        }
        if let ackTimeout {
            guard acknowledgedBy != nil else { throw ValidationError("--ack-timeout goes with -w") }
            guard ackTimeout > 0, ackTimeout <= 300 else { throw ValidationError("--ack-timeout must be above 0 and at most 300 seconds") }
        }
    }

    var acknowledgement: WriteAcknowledgement? {
        acknowledgedBy.map { WriteAcknowledgement(nodes: $0, timeoutSeconds: ackTimeout) }
    }
}
