import ArgumentParser

struct ClusterPs: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ps",
        abstract: "List the local cluster's nodes: NODE, URL, STATE (up or down) and PID.",
        discussion: """
            A node is up while the PID recorded for it is a running kvnode for that node; a PID \
            that has exited, or now belongs to another program, shows as down. ps does not ask \
            the nodes anything; 'kv cluster status' does.

            Example:
              kv cluster ps --data /tmp/demo
            """)

    @OptionGroup var dataOption: DataOption

    func run() async throws {
        let directory = dataOption.directory
        let manifest = try directory.loadManifest()
        let rows = manifest.nodes.map { node -> [String] in
            let up = NodeProcesses.isRunning(pid: node.pid, id: node.name)
            return [node.name, manifest.url(of: node), up ? "up" : "down", up ? String(node.pid ?? 0) : "-"]
        }
        for line in Table.render(header: ["NODE", "URL", "STATE", "PID"], rows: rows) { Terminal.line(line) }
    }
}
