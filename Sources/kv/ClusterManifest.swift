import Foundation

/// What `kv cluster up` started, kept in `DIR/cluster.json` so every other `kv cluster`
/// command finds the nodes' ports and pids from `--data DIR` alone.
///
/// A recorded pid is a claim, not a fact: a node counts as running only while that pid is a
/// live `kvnode` for the node's id (`NodeProcesses.liveness`), so a file left by a crash or a
/// reboot is harmless.
struct ClusterManifest: Codable, Equatable {
    struct Node: Codable, Equatable {
        var name: String
        var port: Int
        /// The pid of the node's last start; null once `kv` saw it stop.
        var pid: Int32?
        /// The node's RESP (Redis protocol) port; absent when it serves none (and in files
        /// written before RESP).
        var respPort: Int?
        /// Added with `kv cluster add`: starts with `--join` instead of `--peer` flags; absent
        /// for the nodes of `up` (and in files written before membership).
        var joined: Bool?

        enum CodingKeys: String, CodingKey {
            case name, port, pid, joined
            case respPort = "resp_port"
        }
    }

    /// Where every node listens.
    var host: String
    var basePort: Int
    var nodes: [Node]
    /// Extra `kvnode` flags given to `up` after `--`; every start of a node repeats them.
    var nodeArguments: [String]

    enum CodingKeys: String, CodingKey {
        case host
        case basePort = "base_port"
        case nodes
        case nodeArguments = "node_arguments"
    }

    /// Node names in order: A, B, C…
    static let names = (UInt8(ascii: "A")...UInt8(ascii: "Z")).map { String(UnicodeScalar($0)) }

    /// `respBasePort`: node A's RESP port, B's the next, and so on; nil serves no RESP.
    init(nodeCount: Int, basePort: Int, respBasePort: Int? = nil, host: String = "127.0.0.1", nodeArguments: [String]) {
        self.host = host
        self.basePort = basePort
        self.nodeArguments = nodeArguments
        self.nodes = (0..<nodeCount).map { index in
            Node(name: Self.names[index], port: basePort + index, pid: nil, respPort: respBasePort.map { $0 + index })
        }
    }

    func url(of node: Node) -> String { "http://\(host):\(node.port)" }

    func index(of name: String) -> Int? { nodes.firstIndex { $0.name == name } }

    /// The `kvnode` arguments of node `index`: its id, address, file, the nodes of `up` as
    /// peers (a node added later: `--join` through every other node instead), then `nodeArguments`.
    func kvnodeArguments(for index: Int, directory: ClusterDirectory) -> [String] {
        let node = nodes[index]
        var arguments = [
            "--id", node.name, "--host", host, "--port", String(node.port),
            "--db", directory.databasePath(of: node.name),
        ]
        if let respPort = node.respPort { arguments += ["--resp-port", String(respPort)] }
        for peer in nodes where peer.name != node.name {
            if node.joined == true {
                arguments += ["--join", url(of: peer)]
            } else if peer.joined != true {
                arguments += ["--peer", "\(peer.name)=\(url(of: peer))"]
            }
        }
        return arguments + nodeArguments
    }
}

/// The data directory of a local cluster: `cluster.json`, and per node `NODE.db` and `NODE.log`.
struct ClusterDirectory {
    /// As the user gave it, for messages.
    let shown: String
    /// Absolute, so a node started from another working directory finds its file.
    let path: String

    init(_ given: String) {
        shown = given
        let absolute = given.hasPrefix("/") ? given : FileManager.default.currentDirectoryPath + "/" + given
        path = URL(fileURLWithPath: absolute).standardizedFileURL.path
    }

    var manifestPath: String { path + "/cluster.json" }
    func databasePath(of name: String) -> String { path + "/\(name).db" }
    func logPath(of name: String) -> String { path + "/\(name).log" }
    func shownLogPath(of name: String) -> String { (shown.hasSuffix("/") ? shown : shown + "/") + "\(name).log" }

    var exists: Bool {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue
    }

    /// The manifest, or nil when there is none.
    func loadManifestIfPresent() throws(Failure) -> ClusterManifest? {
        guard let data = FileManager.default.contents(atPath: manifestPath) else { return nil }
        do {
            return try JSONDecoder().decode(ClusterManifest.self, from: data)
        } catch {
            throw Failure(
                message: "\(shown)/cluster.json is not a cluster record kv can read; 'kv cluster up --data \(Shell.quote(shown))' writes a new one once no node runs",
                status: ExitStatus.failed)
        }
    }

    /// The manifest; a missing one is a one-line failure saying how to make it.
    func loadManifest() throws(Failure) -> ClusterManifest {
        guard let manifest = try loadManifestIfPresent() else {
            throw Failure(
                message: "no cluster in \(shown) (no cluster.json); start one with 'kv cluster up --data \(Shell.quote(shown))'",
                status: ExitStatus.failed)
        }
        return manifest
    }

    /// Replaces the manifest atomically (write and rename), so a reader never sees half of it.
    func save(_ manifest: ClusterManifest) throws(Failure) {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        do {
            let data = try encoder.encode(manifest) + Data("\n".utf8)
            try data.write(to: URL(fileURLWithPath: manifestPath), options: .atomic)
        } catch {
            throw Failure(message: "cannot write \(shown)/cluster.json: \(error.localizedDescription)", status: ExitStatus.failed)
        }
    }

    /// Creates the directory (and its parents) when missing.
    func create() throws(Failure) {
        do {
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        } catch {
            throw Failure(message: "cannot create \(shown): \(error.localizedDescription)", status: ExitStatus.failed)
        }
    }

    /// Runs `body` holding `cluster.lock` exclusively, so two `kv cluster` commands that change
    /// the cluster (two `up`s, `start` beside `stop`) run one after the other.
    func withLock<T>(_ body: () async throws -> T) async throws -> T {
        let descriptor = open(path + "/cluster.lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw Failure(
                message: "cannot open \(shown)/cluster.lock: \(String(cString: strerror(errno)))",
                status: ExitStatus.failed)
        }
        defer { close(descriptor) }
        while flock(descriptor, LOCK_EX) != 0 {
            guard errno == EINTR else {
                throw Failure(
                    message: "cannot lock \(shown)/cluster.lock: \(String(cString: strerror(errno)))",
                    status: ExitStatus.failed)
            }
        }
        return try await body()
    }

    /// The last `lines` lines of a node's log written since byte `offset`.
    func logTail(of name: String, since offset: UInt64, lines: Int = 10) -> [String] {
        guard let handle = FileHandle(forReadingAtPath: logPath(of: name)) else { return [] }
        defer { try? handle.close() }
        try? handle.seek(toOffset: offset)
        let data = (try? handle.readToEnd()) ?? Data()
        let text = String(decoding: data, as: UTF8.self)
        return text.split(whereSeparator: \.isNewline).suffix(lines).map(String.init)
    }

    /// The size of a node's log now: where what it logs next begins.
    func logSize(of name: String) -> UInt64 {
        let attributes = try? FileManager.default.attributesOfItem(atPath: logPath(of: name))
        return (attributes?[.size] as? NSNumber)?.uint64Value ?? 0
    }
}
