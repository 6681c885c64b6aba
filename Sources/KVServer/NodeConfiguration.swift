public import KVCore
public import KVStore
public import NodeHTTP
import Replication

/// Everything a node needs to start, filled from `kvnode`'s flags or by a test.
///
/// Every field but `id` and `databasePath` has a default, documented on the field.
public struct NodeConfiguration: Sendable {
    /// This node's id; the database file must belong to it.
    public var id: NodeID
    /// The SQLite file; created with its directory's permission if missing.
    public var databasePath: String
    /// Address to bind. Default `127.0.0.1`: reachable from this machine only.
    public var host: String = "127.0.0.1"
    /// Port to bind. Default 8000; 0 picks a free port (the log line `listening on …` names it).
    public var port: Int = 8000
    /// Port of the Redis protocol (RESP) front end, on `host`; nil (default) serves none, 0
    /// picks a free port (the log line `serving RESP on …` names it). The client token, TLS,
    /// the idle timeout and `maxConnections` (counted per port) apply as on HTTP.
    public var respPort: Int?
    /// The other nodes of the cluster; stored in the `peers` table.
    public var peers: [PeerConfig] = []
    /// Members to ask to add this node (`--join`), tried in turn; empty for none.
    public var joinURLs: [String] = []
    /// How the other members reach this node (`--advertise-url`); nil: the URL it bound.
    public var advertiseURL: String?
    /// How long a join may keep trying before the node gives up starting.
    public var joinTimeout: Duration = .seconds(60)
    /// On a graceful stop (SIGTERM), hand off what peers lack and leave the cluster (`--leave`).
    public var leaveOnStop = false
    /// How long the hand-off of `leaveOnStop` may take.
    public var leaveTimeout: Duration = .seconds(30)
    /// `normal` (default): an acknowledged write survives a crash of the process; `full`: it
    /// also survives a power loss, at the price of a sync per group commit.
    public var sync: SyncMode = .normal
    /// Largest value accepted by `PUT`, inclusive. Default 1 MiB.
    public var maxValueBytes: Int = 1 << 20
    /// Group concurrent writes into one transaction (default). Off only to measure what it buys.
    public var groupCommit: Bool = true
    /// Read-only connections serving reads beside the writer. Default 4.
    public var readConnections: Int = 4
    /// `StoreConfiguration.readCacheBytes`: the read cache's budget; 0 turns it off.
    public var readCacheBytes: Int = 16 << 20
    /// Close a connection on which nothing arrived for this long, in the middle of a request
    /// too (a body that never finishes). Default 60 s.
    public var idleTimeout: Duration = .seconds(60)
    /// Open connections at most; beyond it, new ones wait in the kernel's backlog until one
    /// closes. Default 4 096.
    public var maxConnections: Int = 4_096
    /// The secret internal requests must carry; `nil` (default) leaves `/internal/` open to any
    /// listed peer id, fit only for loopback and trusted networks.
    public var clusterToken: String?
    /// The secret every public request but `GET /health` must carry as
    /// `Authorization: Bearer …`; `nil` (default) serves everyone who can reach the port.
    public var clientToken: String?
    /// A quota on the database file in bytes; nil (default) for none. Past it, writes answer 507
    /// and reads go on.
    public var maxDatabaseBytes: Int?
    /// How long acknowledged tombstones are kept before they are purged. Default 24 h.
    public var tombstoneGrace: Duration = .seconds(86_400)
    /// How often expired keys are turned into tombstones (they read as absent from the moment
    /// they expire; this reclaims their space). Default 1 s.
    public var expirySweepInterval: Duration = .seconds(1)
    /// How often every peer's feed is pulled past the mark. Default 10 s.
    public var antiEntropyInterval: Duration = .seconds(10)
    /// Serve HTTPS only, with this certificate and key; nil (default) serves plain HTTP.
    public var tls: ServerTLS?
    /// How peers given as `https://` URLs are verified, and the certificate shown to them; nil
    /// (default) trusts the system's store and shows none.
    public var peerTLS: ClientTLS?

    /// Fault injection for crash tests only: see `StoreConfiguration.holdInMigrationMarker`.
    public var holdInMigrationMarker: String? = nil
    /// Benchmarks only: see `StoreConfiguration.extraPragmas`.
    public var extraPragmas: [SQLitePragma] = []

    public init(id: NodeID, databasePath: String) {
        self.id = id
        self.databasePath = databasePath
    }

    var storeConfiguration: StoreConfiguration {
        var configuration = StoreConfiguration(path: databasePath, nodeID: id, sync: sync)
        configuration.groupCommit = groupCommit
        configuration.readConnections = readConnections
        configuration.readCacheBytes = readCacheBytes
        configuration.maxDatabaseBytes = maxDatabaseBytes
        configuration.holdInMigrationMarker = holdInMigrationMarker
        configuration.extraPragmas = extraPragmas
        return configuration
    }

    var replicationConfiguration: ReplicationConfiguration {
        var configuration = ReplicationConfiguration(identity: id, peers: peers)
        configuration.clusterToken = clusterToken
        configuration.antiEntropyInterval = antiEntropyInterval
        configuration.tombstoneGrace = tombstoneGrace
        configuration.peerTLS = peerTLS
        return configuration
    }
}
