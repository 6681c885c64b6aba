import ArgumentParser

struct ClusterStart: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "start",
        abstract: "Start one node of the local cluster again.",
        discussion: """
            Starts the node with the ports, peers and kvnode flags the cluster was brought up \
            with, waits until it answers, and prints its name, URL and PID. A node that was down \
            catches up from its peers. Exits 1 when the node already runs or fails to start (its \
            log's last lines follow).

            Examples:
              kv cluster start C
              kv cluster start C --data /tmp/demo
            """)

    @OptionGroup var dataOption: DataOption
    @OptionGroup var waitOption: WaitOption

    @Argument(help: "The node to start: A, B, C…")
    var node: String

    func run() async throws {
        let directory = dataOption.directory
        let launcher = try NodeLauncher(directory: directory, wait: waitOption.duration)
        try await directory.withLock {
            var manifest = try directory.loadManifest()
            let index = try nodeIndex(node, in: manifest, directory: directory)
            let name = manifest.nodes[index].name
            if let pid = manifest.nodes[index].pid, NodeProcesses.isRunning(pid: pid, id: name) {
                throw Failure(message: "node \(name) is already running (pid \(pid))", status: ExitStatus.failed)
            }
            let started = try launcher.spawn(index, in: &manifest)
            try directory.save(manifest)
            do {
                try await launcher.waitUntilHealthy([started], manifest: manifest)
            } catch {
                await launcher.undo([started], in: &manifest)
                try? directory.save(manifest)
                throw error
            }
            for line in NodeLauncher.report([started], manifest: manifest) { Terminal.line(line) }
        }
    }
}
