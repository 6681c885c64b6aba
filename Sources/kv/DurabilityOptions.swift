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
        try NodeCountOption.validate(acknowledgedBy, flag: "-w", timeout: ackTimeout, timeoutFlag: "--ack-timeout")
    }

    var acknowledgement: WriteAcknowledgement? {
        acknowledgedBy.map { WriteAcknowledgement(nodes: $0, timeoutSeconds: ackTimeout) }
    }
}

/// `-r` and `--read-timeout` of `kv get`: how many nodes the read asks, and how long the node
/// waits for them (docs/openapi.yaml, `?r=`).
struct ReadLevelOptions: ParsableArguments {
    @Option(
        name: [.customShort("r"), .customLong("r")],
        help: ArgumentHelp("Read at this many nodes and print the newest copy, repairing older ones: a number, quorum or all (default 1: the node asked).", valueName: "nodes"))
    var readAt: String?

    @Option(help: ArgumentHelp("With -r: how long the node waits for the others, in seconds (default 5).", valueName: "seconds"))
    var readTimeout: Double?

    func validate() throws {
        try NodeCountOption.validate(readAt, flag: "-r", timeout: readTimeout, timeoutFlag: "--read-timeout")
    }

    var level: ReadLevel? {
        readAt.map { ReadLevel(nodes: $0, timeoutSeconds: readTimeout) }
    }
}

/// The grammar `-w` and `-r` share: a number of nodes from 1, quorum or all, and a timeout that
/// goes with it, above 0 and at most 300 seconds.
enum NodeCountOption {
    static func validate(_ nodes: String?, flag: String, timeout: Double?, timeoutFlag: String) throws {
        if let nodes, nodes != "quorum", nodes != "all", (Int(nodes) ?? 0) < 1 {
            throw ValidationError("\(flag) '\(nodes)' is not a number of nodes from 1, quorum or all")
        }
        if let timeout {
            guard nodes != nil else { throw ValidationError("\(timeoutFlag) goes with \(flag)") }
            guard timeout > 0, timeout <= 300 else { throw ValidationError("\(timeoutFlag) must be above 0 and at most 300 seconds") }
        }
    }
}
