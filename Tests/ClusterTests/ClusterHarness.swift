import Foundation
import KVClient
import KVCore
import Testing
import TestSupport

/// Three (or N) real `kvnode` processes on loopback ports, peers of each other, each with its
/// own database and log in a temporary directory. Tests kill, stop and restart them.
final class LocalCluster: @unchecked Sendable {
    // @unchecked: used by one test at a time, from one task.
    let directory: URL
    private(set) var names: [String]
    /// The arguments of the nodes added with `join`, which have no --peer flags.
    private var joinedArguments: [String: [String]] = [:]
    private(set) var nodes: [String: NodeProcess] = [:]
    private(set) var urls: [String: String] = [:]
    private var clients: [String: KVClient] = [:]
    let extraArguments: [String]
    /// Where a node reaches a peer when not at the peer's own URL: `routes[X][Y]` is the URL node
    /// X is given for peer Y (a `FaultProxy` in `PartitionedCluster`). Set before the nodes start.
    var routes: [String: [String: String]] = [:]

    init(directory: URL, names: [String] = ["A", "B", "C"], extraArguments: [String] = []) throws {
        self.directory = directory
        self.names = names
        self.extraArguments = extraArguments
        // Below the ephemeral range, so the outgoing connections of the tests running beside this
        // one cannot take a node's port between this choice and its bind (or its restart).
        let base = try unusedLocalPortRange(count: names.count)
        for (offset, name) in names.enumerated() {
            urls[name] = "http://127.0.0.1:\(base + offset)"
        }
    }

    func databasePath(_ name: String) -> String { directory.appendingPathComponent("\(name).db").path }

    func arguments(for name: String) -> [String] {
        if let arguments = joinedArguments[name] { return arguments }
        let port = String(urls[name]!.split(separator: ":").last!)  // set in init for every name
        var arguments = ["--id", name, "--port", port, "--db", databasePath(name), "--log-level", "info"]
        for peer in names where peer != name {
            arguments += ["--peer", "\(peer)=\(routes[name]?[peer] ?? urls[peer]!)"]
        }
        return arguments + extraArguments
    }

    /// Starts every node that is not running.
    func start(_ only: [String]? = nil) async throws {
        for name in only ?? names where !(nodes[name]?.isRunning ?? false) {
            if let node = nodes[name] {
                try await node.restart()
            } else {
                nodes[name] = try await NodeProcess.start(
                    arguments(for: name), logFile: directory.appendingPathComponent("\(name).log"))
            }
        }
    }

    func kill(_ name: String) { nodes[name]?.kill() }

    /// Starts one more node, `name`, with `--join` through the members named by `through` (on the
    /// port it had with `samePort`), and waits until it listens (it listens once it has joined).
    func join(_ name: String, through: [String], samePort: Bool = false, extraArguments: [String]? = nil) async throws {
        let port: Int
        if samePort, let url = urls[name], let old = Int(url.split(separator: ":").last ?? "") {
            port = old
        } else {
            port = try unusedLocalPortRange(count: 1)
        }
        urls[name] = "http://127.0.0.1:\(port)"
        var arguments = ["--id", name, "--port", String(port), "--db", databasePath(name), "--log-level", "info"]
        for member in through { arguments += ["--join", urls[member]!] }
        arguments += extraArguments ?? self.extraArguments
        joinedArguments[name] = arguments
        if !names.contains(name) { names.append(name) }
        clients[name] = nil
        nodes[name]?.kill()
        nodes[name] = try await NodeProcess.start(arguments, logFile: directory.appendingPathComponent("\(name).log"))
    }

    /// Restarts a stopped node with its arguments plus `extraArguments` (kept for later restarts).
    func restart(_ name: String, extraArguments: [String]) async throws {
        let arguments = arguments(for: name) + extraArguments
        joinedArguments[name] = arguments
        nodes[name]?.kill()
        nodes[name] = try await NodeProcess.start(arguments, logFile: directory.appendingPathComponent("\(name).log"))
    }

    /// Deletes a node's database files (after a kill): the machine is replaced by an empty one.
    func wipe(_ name: String) {
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: databasePath(name) + suffix) }
    }

    /// Takes `name` out of the list the harness checks (after it was removed from the cluster).
    func forget(_ name: String) {
        names.removeAll { $0 == name }
    }

    /// The members a node's file records, as `id state` lines, read with sqlite3 from the
    /// `members` view.
    func memberRows(_ name: String) async throws -> [String] {
        try await query(name, "SELECT id || ' ' || state FROM members ORDER BY id").map { $0.joined() }
    }

    @discardableResult
    func stop(_ name: String) -> Int32 { nodes[name]?.stop() ?? 0 }

    func client(_ name: String) throws -> KVClient {
        if let client = clients[name] { return client }
        let client = try KVClient(node: urls[name]!, timeout: .seconds(5))
        clients[name] = client
        return client
    }

    func shutdown() async {
        for client in clients.values { await client.close() }
        for node in nodes.values { node.kill() }
    }

    func log(_ name: String) -> String { nodes[name]?.log() ?? "" }

    /// Every row of a node's `kv` table but the member rows (`memberRows`), read with the
    /// `sqlite3` shell as an operator would.
    func rows(_ name: String) async throws -> [StoredRow] {
        try await query(name, "SELECT key, hex(value), lamport, origin, deleted FROM kv WHERE key >= ' ' ORDER BY key").map { fields in
            StoredRow(
                key: fields[0], valueHex: fields[1], lamport: Int64(fields[2]) ?? -1, origin: fields[3],
                deleted: fields[4] == "1")
        }
    }

    /// The rows `sql` selects from a node's file, read-only with the `sqlite3` shell (which also
    /// reads the file of a killed node, recovering its WAL as a restart would), as text fields.
    func query(_ name: String, _ sql: String) async throws -> [[String]] {
        let result = try await runCommand(
            URL(fileURLWithPath: "/usr/bin/sqlite3"),
            ["-readonly", "-separator", "\u{1F}", "-newline", "\u{1E}", databasePath(name), sql])
        guard result.status == 0 else { throw HarnessError("sqlite3 on \(name): \(result.stderr)") }
        return result.stdoutText.split(separator: "\u{1E}").map { line in
            line.split(separator: "\u{1F}", omittingEmptySubsequences: false).map(String.init)
        }
    }

    /// Waits until every running node's `kv` table is identical, and returns it.
    @discardableResult
    func waitForConvergence(_ only: [String]? = nil, timeout: Duration = .seconds(60)) async throws -> [StoredRow] {
        var converged: [StoredRow] = []
        try await poll("nodes \((only ?? names).joined(separator: ", ")) to converge", timeout: timeout, interval: .milliseconds(100)) {
            let tables = try await (only ?? names).asyncMap { try await self.rows($0) }
            if tables.allSatisfy({ $0 == tables[0] }) {
                converged = tables[0]
                return nil
            }
            return tables.enumerated().map { "\((only ?? self.names)[$0.offset]): \($0.element.count) rows" }.joined(separator: ", ")
        }
        return converged
    }

    /// Polls until every running node has finished its start-up catch-up and reaches all its
    /// peers. A test that counts which way a row travelled (pushed or pulled) waits for this
    /// first: a node whose catch-up runs late would otherwise pull a row its peer meant to push.
    func waitUntilConnected(_ only: [String]? = nil, timeout: Duration = .seconds(30)) async throws {
        try await poll("nodes to finish catching up and reach their peers", timeout: timeout) {
            for name in only ?? self.names {
                let status = try await self.client(name).status()
                if status.catchingUp || !status.peers.allSatisfy(\.reachable) {
                    return "\(name): catching up \(status.catchingUp), peers \(status.peers.map { "\($0.id) \($0.reachable)" })"
                }
            }
            return nil
        }
    }

    /// Polls `node` until `key` reads as `value`.
    func waitForValue(_ key: String, _ value: String, on node: String, timeout: Duration = .seconds(30)) async throws {
        try await poll("\(key)=\(value) on \(node)", timeout: timeout) {
            let stored = try await self.client(node).get(key)
            return stored.map { String(decoding: $0.value, as: UTF8.self) } == value ? nil : "\(String(describing: stored))"
        }
    }
}

/// One row of a node's `kv` table as the sqlite3 shell shows it.
struct StoredRow: Equatable, CustomStringConvertible {
    let key: String
    let valueHex: String
    let lamport: Int64
    let origin: String
    let deleted: Bool

    var description: String { "\(key)=\(deleted ? "⊥" : valueHex)@\(lamport)\(origin)" }
}

struct HarnessError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Runs `body` with a fresh cluster that is torn down on every path; on failure the node logs
/// are attached to the test output.
func withCluster(
    names: [String] = ["A", "B", "C"], extraArguments: [String] = [], start: Bool = true,
    _ body: (LocalCluster) async throws -> Void
) async throws {
    try await withTemporaryDirectory { directory in
        // Ports are picked free and then bound by the nodes; another test's node can take one
        // in between. Such a start is retried on fresh ports, a few times.
        var attempt = 0
        var cluster = try LocalCluster(directory: directory, names: names, extraArguments: extraArguments)
        while start {
            do {
                try await cluster.start()
                break
            } catch let error as NodeExited where error.log.contains("cannot listen") && attempt < 3 {
                attempt += 1
                await cluster.shutdown()
                for name in names {
                    for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: cluster.databasePath(name) + suffix) }
                }
                cluster = try LocalCluster(directory: directory, names: names, extraArguments: extraArguments)
            }
        }
        do {
            try await body(cluster)
            await cluster.shutdown()
        } catch {
            for name in names {
                let log = cluster.log(name)
                print("--- log of \(name) (last 40 lines) ---\n" + log.split(separator: "\n").suffix(40).joined(separator: "\n"))
            }
            await cluster.shutdown()
            throw error
        }
    }
}

extension Array {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var result: [T] = []
        result.reserveCapacity(count)
        for element in self { result.append(try await transform(element)) }
        return result
    }
}
