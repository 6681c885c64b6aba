public import ArgumentParser
import Foundation
import NIOCore
import KVCore
import KVServer
import KVStore
import Logging
import NodeHTTP

/// `kvnode`: runs one Converge node until SIGTERM or SIGINT.
struct KVNodeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kvnode",
        abstract: "Run one node of a Converge cluster.",
        discussion: """
            The node keeps every key in one SQLite file (--db), serves the HTTP API on --host:--port \
            and replicates with the nodes named by --peer, and with every member that joins later \
            (--join adds a new node to a running cluster; kv members lists and removes them). It stops cleanly on SIGTERM or SIGINT: \
            requests in flight finish and the database is closed.

            Examples:
              kvnode --id A --port 8000 --db data/A.db \\
                     --peer B=http://127.0.0.1:8001 --peer C=http://127.0.0.1:8002
              kvnode --id A --port 0 --db /tmp/a.db      # any free port; the log names it
              kvnode --id D --port 8003 --db data/D.db --join http://127.0.0.1:8000   # join a running cluster
              kvnode --id A --port 8000 --resp-port 6379 --db A.db   # also speak Redis: redis-cli -p 6379
              kvnode --id A --host 0.0.0.0 --db A.db --tls-cert A.pem --tls-key A.key \\
                     --tls-ca-file ca.pem --cluster-token-file token \\
                     --peer B=https://10.0.0.2:8000 --peer C=https://10.0.0.3:8000
            """)

    @Option(help: "This node's id: letters, digits, '-', '_' or '.'. The database file belongs to it.")
    var id: String

    @Option(help: "Path of the SQLite database file. Created if missing; its directory must exist.")
    var db: String

    @Option(help: "Address to listen on. 0.0.0.0 listens on every interface.")
    var host: String = "127.0.0.1"

    @Option(help: "Port to listen on; 0 picks a free one.")
    var port: Int = 8000

    @Option(help: ArgumentHelp("Also serve the Redis protocol (RESP2/RESP3: redis-cli, redis-py, redis-benchmark) on this port of --host; 0 picks a free one (the log names it). Off when absent. The client token is AUTH's password; TLS and --max-connections apply as on HTTP.", valueName: "port"))
    var respPort: Int?

    @Option(name: .customLong("peer"), help: ArgumentHelp("Another node of the cluster, as ID=URL. Repeat for each peer.", valueName: "ID=URL"))
    var peers: [String] = []

    @Option(name: .customLong("join"), help: ArgumentHelp("A member of a running cluster to join through (http(s)://HOST:PORT). Repeat to name several; they are tried in turn until one adds this node. Needs the cluster's token (and, with TLS, a certificate from its CA). Start a new node with an empty --db.", valueName: "URL"))
    var joins: [String] = []

    @Option(help: ArgumentHelp("How long --join keeps trying the members it names before the node gives up starting.", valueName: "seconds"))
    var joinTimeout: Double = 60

    @Flag(help: "On SIGTERM or SIGINT, leave the cluster: first wait (up to --leave-timeout) until every member holds what this node holds, then mark this node removed everywhere. Its file cannot rejoin afterwards.")
    var leave = false

    @Option(help: ArgumentHelp("How long --leave may wait for the members' acknowledgements.", valueName: "seconds"))
    var leaveTimeout: Double = 30

    @Option(help: ArgumentHelp("How the other members reach this node, as http(s)://HOST:PORT; by default the address it listens on (--host, --port). Needed when it listens on 0.0.0.0 or behind NAT.", valueName: "URL"))
    var advertiseURL: String?

    @Option(help: "normal: an acknowledged write survives a crash of this process; full: it also survives power loss (slower).")
    var sync: SyncMode = .normal

    @Option(help: "Largest value a PUT may carry, in bytes.")
    var maxValueBytes: Int = 1 << 20

    @Option(help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: Logger.Level = .info

    @Option(help: "plain (one line of words per event) or json (one JSON object per line, for log shippers).")
    var logFormat: PlainLogHandler.Format = .plain

    @Option(help: ArgumentHelp("Seconds between pulls from every peer past the mark, repairing what a push missed.", valueName: "seconds"))
    var antiEntropyInterval: Double = 10

    @Option(help: ArgumentHelp("A file holding the cluster's shared secret; every node must be given the same. Without it, any process that knows a peer id can replicate into this node: use it on any network but loopback.", valueName: "path"))
    var clusterTokenFile: String?

    @Option(help: ArgumentHelp("PEM certificate (chain) to serve HTTPS with; needs --tls-key. With it the node serves HTTPS only, and shows this certificate to its peers.", valueName: "path"))
    var tlsCert: String?

    @Option(help: ArgumentHelp("PEM private key of --tls-cert, unencrypted; refused if group or others may read it (chmod 600).", valueName: "path"))
    var tlsKey: String?

    @Option(help: ArgumentHelp("PEM bundle of the CA(s) that sign the cluster's certificates: https peers must present a certificate it signs; when this node serves TLS, a client certificate from another CA is refused and peer requests must come with one it signs. Without it, https peers are verified against the system's trust store.", valueName: "path"))
    var tlsCaFile: String?

    @Option(help: ArgumentHelp("A file holding the secret clients must send as 'Authorization: Bearer TOKEN' (kv: --token-file or KV_TOKEN) on every route but GET /health. Without it, anyone who can reach the port reads and writes.", valueName: "path"))
    var clientTokenFile: String?

    @Option(help: ArgumentHelp("Seconds a tombstone (a delete) is kept after every peer has acknowledged it, before it is purged. Restoring a backup older than this can bring back keys deleted since.", valueName: "seconds"))
    var tombstoneGrace: Double = 86_400

    @Option(help: ArgumentHelp("A quota on the database file, in bytes. Past it, writes fail with 507 and reads go on, as on a full disk.", valueName: "bytes"))
    var maxDbBytes: Int?

    @Option(help: ArgumentHelp("Close a connection on which nothing arrived for this many seconds, even in the middle of a request.", valueName: "seconds"))
    var idleTimeout: Double = 60

    @Option(help: "Open client and peer connections at most; more wait until one closes.")
    var maxConnections: Int = 4_096

    @Option(help: "Read-only SQLite connections serving reads beside the writer. 0 queues reads behind the writes: only for measuring what the pool buys.")
    var readConnections: Int = 4

    @Option(help: ArgumentHelp("Event-loop threads serving HTTP, RESP and replication connections. Default: one less than the CPU cores, at least 1, so the store's writer thread keeps a core of its own ($NIO_SINGLETON_GROUP_LOOP_COUNT, when set, replaces the default).", valueName: "threads"))
    var eventLoops: Int?

    @Option(help: ArgumentHelp("Memory for the cache of rows recently read, or written by clients of this node, in front of the read connections, in MiB (counted as key and value bytes plus 192 per row). 0 turns it off.", valueName: "MiB"))
    var readCacheMb: Int = 16

    @Flag(help: "Commit every write in its own transaction. Slower; only for measuring what group commit buys.")
    var noGroupCommit = false

    func validate() throws {
        do {
            _ = try NodeID(id)
        } catch {
            throw ValidationError("--id: \(error.description)")
        }
        guard (0...65535).contains(port) else { throw ValidationError("--port must be from 0 to 65535, got \(port)") }
        if let respPort {
            guard (0...65535).contains(respPort) else { throw ValidationError("--resp-port must be from 0 to 65535, got \(respPort)") }
            guard respPort == 0 || respPort != port else { throw ValidationError("--resp-port must differ from --port (\(port))") }
        }
        guard (0...64).contains(readConnections) else { throw ValidationError("--read-connections must be from 0 to 64") }
        if let eventLoops {
            guard (1...256).contains(eventLoops) else { throw ValidationError("--event-loops must be from 1 to 256, got \(eventLoops)") }
        }
        guard (0...65536).contains(readCacheMb) else { throw ValidationError("--read-cache-mb must be from 0 to 65536, got \(readCacheMb)") }
        guard idleTimeout > 0 else { throw ValidationError("--idle-timeout must be positive") }
        guard maxConnections >= 1 else { throw ValidationError("--max-connections must be at least 1") }
        guard tombstoneGrace >= 0 else { throw ValidationError("--tombstone-grace must not be negative") }
        guard maxValueBytes >= 0 else { throw ValidationError("--max-value-bytes must not be negative") }
        guard !db.isEmpty else { throw ValidationError("--db needs a file path") }
        guard antiEntropyInterval > 0, antiEntropyInterval <= 86_400 else {
            throw ValidationError("--anti-entropy-interval must be from 0 to 86400 seconds (exclusive of 0)")
        }
        guard (tlsCert == nil) == (tlsKey == nil) else {
            throw ValidationError(tlsCert == nil ? "--tls-key needs --tls-cert (the certificate of that key)" : "--tls-cert needs --tls-key (the certificate's private key)")
        }
        _ = try parsedPeers()
        for url in joins + (advertiseURL.map { [$0] } ?? []) {
            guard let parsed = URL(string: url), parsed.scheme == "http" || parsed.scheme == "https", parsed.host != nil, parsed.port != nil else {
                throw ValidationError("'\(url)' is not a node URL like http://HOST:PORT (in --join or --advertise-url)")
            }
        }
        guard joinTimeout > 0 else { throw ValidationError("--join-timeout must be positive") }
        guard leaveTimeout > 0 else { throw ValidationError("--leave-timeout must be positive") }
        if advertiseURL == nil, joins.isEmpty == false, host == "0.0.0.0" || host == "::" {
            throw ValidationError("--join with --host \(host) needs --advertise-url: the others cannot reach this node at \(host)")
        }
    }

    func parsedPeers() throws -> [PeerConfig] {
        var seen: Set<String> = []
        return try peers.map { text in
            let parts = text.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, !parts[1].isEmpty else {
                throw ValidationError("--peer '\(text)' is not ID=URL (for example B=http://127.0.0.1:8001)")
            }
            let peerID: NodeID
            do {
                peerID = try NodeID(parts[0])
            } catch {
                throw ValidationError("--peer '\(text)': \(error)")
            }
            guard peerID.rawValue != id else { throw ValidationError("--peer '\(text)' names this node itself") }
            guard seen.insert(peerID.rawValue).inserted else { throw ValidationError("--peer \(peerID) is given twice") }
            guard let url = URL(string: parts[1]), url.scheme == "http" || url.scheme == "https", url.host != nil, url.port != nil else {
                throw ValidationError("--peer '\(text)': the URL must look like http://HOST:PORT or https://HOST:PORT")
            }
            return PeerConfig(id: peerID, url: parts[1])
        }
    }

    func run() async throws {
        // Before anything touches NIO's singleton group, which reads this once.
        if let eventLoops {
            NIOSingletons.groupLoopCountSuggestion = eventLoops
        } else if ProcessInfo.processInfo.environment["NIO_SINGLETON_GROUP_LOOP_COUNT"] == nil {
            NIOSingletons.groupLoopCountSuggestion = max(1, System.coreCount - 1)
        }
        let nodeID = try NodeID(id)
        let level = logLevel
        let format = logFormat
        LoggingSystem.bootstrap { _ in
            var handler = PlainLogHandler(nodeID: nodeID.rawValue, format: format)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "kvnode")

        var configuration = NodeConfiguration(id: nodeID, databasePath: db)
        configuration.host = host
        configuration.port = port
        configuration.respPort = respPort
        configuration.peers = try parsedPeers()
        configuration.joinURLs = joins
        configuration.advertiseURL = advertiseURL
        configuration.joinTimeout = .milliseconds(Int64(joinTimeout * 1000))
        configuration.leaveOnStop = leave
        configuration.leaveTimeout = .milliseconds(Int64(leaveTimeout * 1000))
        configuration.sync = sync
        configuration.maxValueBytes = maxValueBytes
        configuration.groupCommit = !noGroupCommit
        configuration.readConnections = readConnections
        configuration.readCacheBytes = readCacheMb << 20
        configuration.maxDatabaseBytes = maxDbBytes
        configuration.idleTimeout = .milliseconds(Int64(idleTimeout * 1000))
        configuration.maxConnections = maxConnections
        configuration.tombstoneGrace = .milliseconds(Int64(tombstoneGrace * 1000))
        configuration.antiEntropyInterval = .milliseconds(Int64(antiEntropyInterval * 1000))
        configuration.holdInMigrationMarker = ProcessInfo.processInfo.environment["KVNODE_FAULT_HOLD_IN_MIGRATION"]
        if let pragmas = ProcessInfo.processInfo.environment["KVNODE_SQLITE_PRAGMAS"] {
            switch SQLitePragma.list(pragmas) {
            case .success(let list): configuration.extraPragmas = list
            case .failure(let error): throw StartupFailure(message: "KVNODE_SQLITE_PRAGMAS: \(error)")
            }
        }
        if let clusterTokenFile {
            configuration.clusterToken = try readToken(clusterTokenFile, flag: "--cluster-token-file")
        }
        if let clientTokenFile {
            configuration.clientToken = try readToken(clientTokenFile, flag: "--client-token-file")
        }
        do {
            if let tlsCert, let tlsKey {
                configuration.tls = try ServerTLS(certificateFile: tlsCert, keyFile: tlsKey, caFile: tlsCaFile)
            }
            if tlsCert != nil || tlsCaFile != nil {
                configuration.peerTLS = try ClientTLS(caFile: tlsCaFile, certificateFile: tlsCert, keyFile: tlsKey)
            }
        } catch {
            throw StartupFailure(message: "\(error)")
        }
        let plainPeers = configuration.peers.filter { $0.url.lowercased().hasPrefix("http://") }.map(\.id.rawValue)
        if configuration.tls != nil, !plainPeers.isEmpty {
            logger.warning("this node serves HTTPS but talks to \(plainPeers.joined(separator: ", ")) over plain HTTP; give every peer as https://")
        }

        if (!configuration.peers.isEmpty || !joins.isEmpty) && configuration.clusterToken == nil {
            logger.warning("no --cluster-token-file: any process that can reach port \(configuration.port) and names a peer id can replicate into this node; fine on loopback, not on a network")
            if configuration.clientToken != nil {
                logger.warning("--client-token-file without --cluster-token-file: a process that names a peer id can still read every row through the peer routes")
            }
        }
        let node: ConvergeNode
        do {
            node = try await ConvergeNode.start(configuration, logger: logger, handleSignals: true)
        } catch {
            throw StartupFailure(message: "\(error)")
        }
        await node.waitUntilStopped()
    }
}

/// Reads a token (the cluster's or the clients'): the file's first line, trimmed. A file others
/// may read, an empty or an unreadable one stops the node; `flag` names it in the message.
func readToken(_ path: String, flag: String) throws -> String {
    // Like ssh with a private key: a secret others can read is no secret.
    if let attributes = try? FileManager.default.attributesOfItem(atPath: path),
        let mode = (attributes[.posixPermissions] as? NSNumber)?.intValue, mode & 0o077 != 0
    {
        throw StartupFailure(message: "\(flag) \(path) can be read by others (mode \(String(mode & 0o777, radix: 8))); run chmod 600 \(path)")
    }
    guard let data = FileManager.default.contents(atPath: path) else {
        throw StartupFailure(message: "cannot read \(flag) \(path); does it exist and can this user read it?")
    }
    let token = String(decoding: data, as: UTF8.self).split(whereSeparator: \.isNewline).first.map {
        $0.trimmingCharacters(in: .whitespaces)
    } ?? ""
    guard !token.isEmpty else { throw StartupFailure(message: "\(flag) \(path) is empty; put the secret on its first line") }
    return token
}

/// A failure to start, reported as one line without a usage dump.
struct StartupFailure: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

extension SyncMode: ExpressibleByArgument {}
extension PlainLogHandler.Format: ExpressibleByArgument {}
extension Logger.Level: @retroactive ExpressibleByArgument {}

@main
enum Main {
    static func main() async {
        do {
            var command = try KVNodeCommand.parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
        } catch let failure as StartupFailure {
            FileHandle.standardError.write(Data("kvnode: cannot start: \(failure.message)\n".utf8))
            exit(1)
        } catch {
            let code = KVNodeCommand.exitCode(for: error)
            if code == .success { KVNodeCommand.exit(withError: error) }
            let message = KVNodeCommand.message(for: error)
            FileHandle.standardError.write(Data("kvnode: \(message) (see kvnode --help)\n".utf8))
            exit(code.rawValue)
        }
    }
}
