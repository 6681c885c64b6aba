import KVClient
import KVCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Starts nodes of a local cluster and waits until they answer, or says why one did not.
struct NodeLauncher {
    let directory: ClusterDirectory
    let kvnode: String
    let wait: Duration

    /// A node this launcher started, and where its log stood before, so a failure shows only
    /// what this start wrote.
    struct Started {
        let index: Int
        let pid: Int32
        let logOffset: UInt64
    }

    init(directory: ClusterDirectory, wait: Duration) throws(Failure) {
        self.directory = directory
        self.kvnode = try NodeProcesses.kvnodePath()
        self.wait = wait
    }

    /// Starts node `index` detached and records its pid in `manifest` (not yet saved).
    func spawn(_ index: Int, in manifest: inout ClusterManifest) throws(Failure) -> Started {
        let name = manifest.nodes[index].name
        let offset = directory.logSize(of: name)
        let pid = try NodeProcesses.spawnDetached(
            executable: kvnode, arguments: manifest.kvnodeArguments(for: index, directory: directory),
            logPath: directory.logPath(of: name))
        manifest.nodes[index].pid = pid
        return Started(index: index, pid: pid, logOffset: offset)
    }

    /// Polls until every node in `started` answers `GET /health`. Throws, with the end of its
    /// log, for the first node that exits or does not answer within `wait`.
    func waitUntilHealthy(_ started: [Started], manifest: ClusterManifest) async throws(Failure) {
        var pending = started
        var clients: [Int: KVClient] = [:]
        for node in started {
            clients[node.index] = try? KVClient(node: manifest.url(of: manifest.nodes[node.index]), timeout: .seconds(1))
        }
        defer {
            let all = Array(clients.values)
            Task { for client in all { await client.close() } }
        }
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: wait)
        while true {
            var stillPending: [Started] = []
            for node in pending {
                let name = manifest.nodes[node.index].name
                if case .gone(let status) = NodeProcesses.liveness(pid: node.pid, id: name) {
                    let how = status.map { "exited with status \($0)" } ?? "exited"
                    throw Failure(
                        message: "node \(name) \(how) as it started; the end of \(directory.shownLogPath(of: name)):",
                        status: ExitStatus.failed,
                        details: directory.logTail(of: name, since: node.logOffset))
                }
                let healthy = (try? await clients[node.index]?.health()) ?? false
                if !healthy { stillPending.append(node) }
            }
            pending = stillPending
            guard let late = pending.first else { return }
            if clock.now >= deadline {
                let name = manifest.nodes[late.index].name
                throw Failure(
                    message: "node \(name) (pid \(late.pid)) did not answer /health within \(wait); the end of \(directory.shownLogPath(of: name)):",
                    status: ExitStatus.failed,
                    details: directory.logTail(of: name, since: late.logOffset))
            }
            try? await Task.sleep(for: .milliseconds(50))  // polling to a deadline
        }
    }

    /// Polls until the node `started` lists a member besides itself (`GET /members`), which it
    /// does once a member added it. Throws, with the end of its log, if it exits first (a join
    /// refused) or does not within `wait`.
    func waitUntilJoined(_ started: Started, manifest: ClusterManifest) async throws(Failure) {
        let node = manifest.nodes[started.index]
        let client = try? KVClient(node: manifest.url(of: node), timeout: .seconds(1))
        defer { if let client { Task { await client.close() } } }
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: wait)
        while true {
            if case .gone(let status) = NodeProcesses.liveness(pid: started.pid, id: node.name) {
                throw Failure(
                    message: "node \(node.name) \(status.map { "exited with status \($0)" } ?? "exited") while joining; the end of \(directory.shownLogPath(of: node.name)):",
                    status: ExitStatus.failed,
                    details: directory.logTail(of: node.name, since: started.logOffset))
            }
            if let members = try? await client?.members().members, members.count > 1 { return }
            if clock.now >= deadline {
                throw Failure(
                    message: "node \(node.name) (pid \(started.pid)) did not join within \(wait); the end of \(directory.shownLogPath(of: node.name)):",
                    status: ExitStatus.failed,
                    details: directory.logTail(of: node.name, since: started.logOffset))
            }
            try? await Task.sleep(for: .milliseconds(50))  // polling to a deadline
        }
    }

    /// Stops `started` nodes that still run (SIGTERM, then SIGKILL after 10 s) and clears their
    /// pids in `manifest`: what a failed `up` leaves behind is nothing.
    func undo(_ started: [Started], in manifest: inout ClusterManifest) async {
        for node in started {
            let name = manifest.nodes[node.index].name
            if NodeProcesses.isRunning(pid: node.pid, id: name) {
                NodeProcesses.send(SIGTERM, to: node.pid)
                if await !NodeProcesses.waitUntilGone(pid: node.pid, id: name, timeout: .seconds(10)) {
                    NodeProcesses.send(SIGKILL, to: node.pid)
                    _ = await NodeProcesses.waitUntilGone(pid: node.pid, id: name, timeout: .seconds(10))
                }
            }
            manifest.nodes[node.index].pid = nil
        }
    }

    /// `A  http://127.0.0.1:8000  pid 1234` for each node, then `resp 127.0.0.1:6379` when it
    /// serves RESP.
    static func report(_ started: [Started], manifest: ClusterManifest) -> [String] {
        let rows = started.map { started in
            let node = manifest.nodes[started.index]
            return [node.name, manifest.url(of: node), "pid \(started.pid)"]
                + (node.respPort.map { ["resp \(manifest.host):\($0)"] } ?? [])
        }
        return Table.render(header: nil, rows: rows)
    }
}
