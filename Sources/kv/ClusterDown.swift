import ArgumentParser

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

struct ClusterDown: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "down",
        abstract: "Stop every node of the local cluster gracefully.",
        discussion: """
            Sends SIGTERM to every running node, waits until each has exited, and prints one line \
            per node stopped. The data stays in --data; 'kv cluster up' starts the cluster again \
            on it. Exits 1 when a node has not exited within --wait.

            Example:
              kv cluster down
            """)

    @OptionGroup var dataOption: DataOption
    @OptionGroup var waitOption: WaitOption

    func run() async throws {
        let directory = dataOption.directory
        try await directory.withLock {
            var manifest = try directory.loadManifest()
            var signalled: [(index: Int, pid: Int32)] = []
            for (index, node) in manifest.nodes.enumerated() {
                guard let pid = node.pid, NodeProcesses.isRunning(pid: pid, id: node.name) else {
                    manifest.nodes[index].pid = nil
                    continue
                }
                NodeProcesses.send(SIGTERM, to: pid)
                signalled.append((index, pid))
            }
            var stuck: [String] = []
            for (index, pid) in signalled {
                let name = manifest.nodes[index].name
                if await NodeProcesses.waitUntilGone(pid: pid, id: name, timeout: waitOption.duration) {
                    manifest.nodes[index].pid = nil
                    Terminal.line("\(name) stopped (pid \(pid))")
                } else {
                    stuck.append("\(name) (pid \(pid))")
                }
            }
            try directory.save(manifest)
            if signalled.isEmpty { Terminal.line("no node was running") }
            if !stuck.isEmpty {
                throw Failure(
                    message: "\(listed(stuck)) did not exit within \(waitOption.duration); 'kv cluster kill NODE' ends one",
                    status: ExitStatus.failed)
            }
        }
    }
}
