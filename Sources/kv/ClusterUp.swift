import ArgumentParser

struct ClusterUp: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "up",
        abstract: "Start a local cluster of nodes A, B, C… in the background.",
        discussion: """
            Starts --nodes nodes on consecutive ports from --base-port, each with every other node \
            as a peer, its database DIR/NODE.db and its log DIR/NODE.log (appended). The nodes \
            run in sessions of their own, detached from this terminal. Waits until every node \
            answers, then prints one line per node: name, URL and PID. What it started is \
            recorded in DIR/cluster.json for the other cluster commands. kvnode flags after -- \
            go to every node, now and at every later 'kv cluster start'. Each node also speaks \
            the Redis protocol on a port of its own from --resp-base-port (A on 6379, B on 6380… \
            by default; redis-cli -p 6379), printed after its pid; --no-resp leaves it out.

            Exits 1 when the cluster already runs, or when a node fails to start (its log's last \
            lines follow; the nodes this command started are stopped again).

            Examples:
              kv cluster up
              kv cluster up --nodes 5 --data /tmp/demo --base-port 9000
              kv cluster up -- --anti-entropy-interval 60
              kv cluster up --resp-base-port 7000      # redis-cli -p 7000 talks to A
            """)

    @OptionGroup var dataOption: DataOption
    @OptionGroup var waitOption: WaitOption

    @Option(help: "How many nodes, 1 to 26 (A to Z).")
    var nodes: Int = 3

    @Option(help: "The port of node A; B listens on the next one, and so on.")
    var basePort: Int = 8000

    @Option(help: "The RESP (Redis protocol) port of node A; B gets the next one, and so on.")
    var respBasePort: Int = 6379

    @Flag(help: "Serve no RESP port.")
    var noResp = false

    @Argument(parsing: .postTerminator, help: ArgumentHelp("kvnode flags for every node, after --.", valueName: "kvnode-flags"))
    var nodeArguments: [String] = []

    func validate() throws {
        guard (1...26).contains(nodes) else { throw ValidationError("--nodes must be from 1 to 26, not \(nodes)") }
        guard basePort >= 1, basePort + nodes - 1 <= 65535 else {
            throw ValidationError("--base-port must leave room for \(nodes) ports from 1 to 65535")
        }
        if !noResp {
            guard respBasePort >= 1, respBasePort + nodes - 1 <= 65535 else {
                throw ValidationError("--resp-base-port must leave room for \(nodes) ports from 1 to 65535")
            }
            guard respBasePort + nodes <= basePort || basePort + nodes <= respBasePort else {
                throw ValidationError("--resp-base-port \(respBasePort) overlaps the HTTP ports from --base-port \(basePort); choose ports apart")
            }
        }
    }

    func run() async throws {
        let directory = dataOption.directory
        try directory.create()
        let launcher = try NodeLauncher(directory: directory, wait: waitOption.duration)
        try await directory.withLock {
            if let existing = try directory.loadManifestIfPresent() {
                let running = existing.nodes.filter { NodeProcesses.isRunning(pid: $0.pid, id: $0.name) }
                if !running.isEmpty {
                    let which = running.map { "\($0.name) runs as pid \($0.pid ?? 0)" }
                    throw Failure(
                        message: "the cluster in \(directory.shown) is already up (\(which.joined(separator: ", "))); 'kv cluster down --data \(Shell.quote(directory.shown))' stops it",
                        status: ExitStatus.failed)
                }
            }
            var manifest = ClusterManifest(
                nodeCount: nodes, basePort: basePort, respBasePort: noResp ? nil : respBasePort, nodeArguments: nodeArguments)
            try directory.save(manifest)
            var started: [NodeLauncher.Started] = []
            do {
                for index in manifest.nodes.indices {
                    started.append(try launcher.spawn(index, in: &manifest))
                    try directory.save(manifest)
                }
                try await launcher.waitUntilHealthy(started, manifest: manifest)
            } catch var failure as Failure {
                await launcher.undo(started, in: &manifest)
                try? directory.save(manifest)
                if !started.isEmpty {
                    failure.details.append("(stopped \(listed(started.map { manifest.nodes[$0.index].name })) again)")
                }
                throw failure
            }
            for line in NodeLauncher.report(started, manifest: manifest) { Terminal.line(line) }
        }
    }
}
