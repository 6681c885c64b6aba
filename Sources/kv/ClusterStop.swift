import ArgumentParser

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

struct ClusterStop: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stop",
        abstract: "Stop one node gracefully (SIGTERM) and wait until it has exited.",
        discussion: """
            The node finishes the requests in flight and closes its database. Exits 1 when the \
            node is not running or has not exited within --wait.

            Example:
              kv cluster stop C
            """)

    @OptionGroup var dataOption: DataOption
    @OptionGroup var waitOption: WaitOption

    @Argument(help: "The node to stop: A, B, C…")
    var node: String

    func run() async throws {
        try await NodeSignaller(directory: dataOption.directory, wait: waitOption.duration)
            .signal(node, SIGTERM, done: "stopped")
    }
}

struct ClusterKill: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kill",
        abstract: "Kill one node with SIGKILL, as a crash would, and wait until it is gone.",
        discussion: """
            Whatever the node had not committed is lost, as in a crash; what it had is in its \
            file. Exits 1 when the node is not running.

            Example:
              kv cluster kill C
            """)

    @OptionGroup var dataOption: DataOption
    @OptionGroup var waitOption: WaitOption

    @Argument(help: "The node to kill: A, B, C…")
    var node: String

    func run() async throws {
        try await NodeSignaller(directory: dataOption.directory, wait: waitOption.duration)
            .signal(node, SIGKILL, done: "killed")
    }
}

/// Sends a signal to a node of the local cluster and waits until the node is gone.
struct NodeSignaller {
    let directory: ClusterDirectory
    let wait: Duration

    func signal(_ given: String, _ signal: Int32, done: String) async throws {
        try await directory.withLock {
            var manifest = try directory.loadManifest()
            let index = try nodeIndex(given, in: manifest, directory: directory)
            let name = manifest.nodes[index].name
            guard let pid = manifest.nodes[index].pid, NodeProcesses.isRunning(pid: pid, id: name) else {
                throw Failure(message: "node \(name) is not running", status: ExitStatus.failed)
            }
            NodeProcesses.send(signal, to: pid)
            guard await NodeProcesses.waitUntilGone(pid: pid, id: name, timeout: wait) else {
                throw Failure(
                    message: "node \(name) (pid \(pid)) has not exited within \(wait); 'kv cluster kill \(name)' ends it",
                    status: ExitStatus.failed)
            }
            manifest.nodes[index].pid = nil
            try directory.save(manifest)
            Terminal.line("\(name) \(done) (pid \(pid))")
        }
    }
}
