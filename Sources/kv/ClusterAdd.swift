import ArgumentParser
import Foundation
import KVClient

/// `kv cluster add`: one more node for the local cluster, joining while the others run.
struct ClusterAdd: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "add",
        abstract: "Start one more node of the local cluster and join it to the running ones.",
        discussion: """
            The new node takes the next name (D after A, B, C), the next port after the last \
            node's (and the next RESP port when the cluster serves RESP), an empty file, and the \
            kvnode flags the cluster was brought up with; it starts with --join through every \
            other node, so any running one adds it. Waits until it lists the other members, \
            then prints its name, URL and PID. Remove a node for good with \
            `kv members remove NAME` (then `kv cluster stop NAME`).

            Examples:
              kv cluster add
              kv cluster add --data /tmp/demo
            """)

    @OptionGroup var dataOption: DataOption
    @OptionGroup var waitOption: WaitOption

    func run() async throws {
        let directory = dataOption.directory
        let launcher = try NodeLauncher(directory: directory, wait: waitOption.duration)
        try await directory.withLock {
            var manifest = try directory.loadManifest()
            guard manifest.nodes.count < ClusterManifest.names.count else {
                throw Failure(message: "the local cluster already has \(manifest.nodes.count) nodes, the most kv cluster names", status: ExitStatus.failed)
            }
            guard let last = manifest.nodes.last else {
                throw Failure(message: "the cluster in \(directory.shown) has no node to join; run kv cluster up", status: ExitStatus.failed)
            }
            let name = ClusterManifest.names[manifest.nodes.count]
            // The port after the last node's, unless a RESP port has it: then after every port.
            var taken = Set(manifest.nodes.map(\.port) + manifest.nodes.compactMap(\.respPort))
            let nextFree = { (taken: Set<Int>) in (taken.max() ?? last.port) + 1 }
            var port = (manifest.nodes.map(\.port).max() ?? last.port) + 1
            if taken.contains(port) { port = nextFree(taken) }
            taken.insert(port)
            var respPort = manifest.nodes.compactMap(\.respPort).max().map { $0 + 1 }
            if let wanted = respPort, taken.contains(wanted) { respPort = nextFree(taken) }
            guard port <= 65535, respPort.map({ $0 <= 65535 }) ?? true else {
                throw Failure(message: "no free port after the cluster's for node \(name)", status: ExitStatus.failed)
            }
            if FileManager.default.fileExists(atPath: directory.databasePath(of: name)) {
                throw Failure(
                    message: "\(directory.databasePath(of: name)) exists, left by an earlier node \(name); a joining node starts with an empty file: move it away first",
                    status: ExitStatus.failed)
            }
            manifest.nodes.append(ClusterManifest.Node(name: name, port: port, pid: nil, respPort: respPort, joined: true))
            let index = manifest.nodes.count - 1
            let started = try launcher.spawn(index, in: &manifest)
            try directory.save(manifest)
            do {
                try await launcher.waitUntilHealthy([started], manifest: manifest)
                try await launcher.waitUntilJoined(started, manifest: manifest)
            } catch {
                await launcher.undo([started], in: &manifest)
                manifest.nodes.removeLast()
                try? directory.save(manifest)
                throw error
            }
            for line in NodeLauncher.report([started], manifest: manifest) { Terminal.line(line) }
        }
    }
}
