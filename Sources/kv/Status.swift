import Foundation
import ArgumentParser
import KVClient
import KVCore

struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the node's state and its peers.",
        discussion: """
            Prints the node (id, epoch, Lamport clock, last seq, live keys, whether it is \
            catching up) and one row per peer: PEER, URL, REACHABLE, SINCE (when REACHABLE \
            last changed), PULLED (the peer's seq applied here), PUSHED (this node's seq the \
            peer acknowledged), TO_PUSH (rows not yet acknowledged), SENT (rows pushed to the peer) \
            and RECEIVED (rows pushed by or pulled from the peer) since this node started and LAST_ERROR. --json \
            prints the node's JSON byte for byte (plus a newline on a terminal).

            Examples:
              kv status
              kv --node http://127.0.0.1:8002 status --json
            """
    )

    @OptionGroup var global: GlobalOptions

    @Flag(help: "Print the node's JSON reply unchanged.")
    var json = false

    func run() async throws {
        if json {
            let body = try await global.withClient { client in try await client.statusJSON() }
            Terminal.write(body)
            if Terminal.stdoutIsTerminal, body.last != UInt8(ascii: "\n") {
                Terminal.write([UInt8(ascii: "\n")])
            }
            return
        }
        let status = try await global.withClient { client in try await client.status() }
        let node = [
            ["node", status.id],
            ["epoch", status.epoch],
            ["lamport", String(status.lamport)],
            ["seq", String(status.seq)],
            ["keys", String(status.keys)],
            ["catching up", status.catchingUp ? "yes" : "no"],
            ["client writes", String(status.clientWrites)],
            ["rows sent per write", status.rowsSentPerWrite.map { String(format: "%.2f", $0) } ?? "-"],
        ]
        for line in Table.render(header: nil, rows: node) { Terminal.line(line) }
        Terminal.line("")
        guard !status.peers.isEmpty else {
            Terminal.line("no peers")
            return
        }
        let rows = status.peers.map { peer in
            [
                peer.id, peer.url, peer.reachable ? "yes" : "no", peer.since ?? "-",
                String(peer.pulledSeq), String(peer.pushedSeq), String(peer.toPush),
                String(peer.rowsSent), String(peer.rowsReceived), peer.lastError ?? "-",
            ]
        }
        let header = ["PEER", "URL", "REACHABLE", "SINCE", "PULLED", "PUSHED", "TO_PUSH", "SENT", "RECEIVED", "LAST_ERROR"]
        for line in Table.render(header: header, rows: rows) { Terminal.line(line) }
    }
}
