import ArgumentParser
import KVClient
import KVCore

/// `kv cluster …`: run a local cluster, and see whether any cluster has converged.
struct Cluster: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run a local cluster; check any cluster's state and convergence.",
        discussion: """
            up, ps, stop, kill, start and down manage nodes A, B, C… on this machine, recorded in \
            --data DIR (default ./data): cluster.json, and per node NODE.db and NODE.log. status \
            and verify work on that cluster or on any nodes given with repeated --node URL.

            Examples:
              kv cluster up
              kv cluster kill C && kv put k 10 && kv cluster start C
              kv cluster status --watch
              kv cluster verify --node http://10.0.0.1:8000 --node http://10.0.0.2:8000
              kv cluster down
            """,
        subcommands: [
            ClusterUp.self, ClusterAdd.self, ClusterPs.self, ClusterStop.self, ClusterKill.self, ClusterStart.self,
            ClusterDown.self, ClusterStatus.self, ClusterVerify.self,
        ]
    )
}

/// `--data DIR`: where a local cluster keeps its record, databases and logs.
struct DataOption: ParsableArguments {
    @Option(
        help: ArgumentHelp(
            "The local cluster's directory: cluster.json, and per node NODE.db and NODE.log.",
            valueName: "dir"))
    var data: String = "./data"

    var directory: ClusterDirectory { ClusterDirectory(data) }

    func validate() throws {
        guard !data.isEmpty else { throw ValidationError("--data needs a directory") }
    }
}

/// `--wait SECONDS`: how long a start or stop may take.
struct WaitOption: ParsableArguments {
    @Option(help: ArgumentHelp("Seconds to wait for nodes to answer (start) or to exit (stop).", valueName: "seconds"))
    var wait: Double = 30

    var duration: Duration { .milliseconds(Int64(wait * 1000)) }

    func validate() throws {
        guard (0.1...3600).contains(wait) else { throw ValidationError("--wait must be from 0.1 to 3600 seconds") }
    }
}

/// Which nodes `status` and `verify` look at: every `--node URL` given, else the local cluster
/// recorded in `--data`.
struct NodeSelection: ParsableArguments {
    @OptionGroup var global: GlobalOptions
    @OptionGroup var dataOption: DataOption

    var requestTimeout: Duration { global.requestTimeout }

    /// The nodes given (`--node`) or recorded by the local cluster, named by the record when they
    /// come from it.
    func givenTargets() throws(Failure) -> [SurveyTarget] {
        if !global.nodes.isEmpty {
            return global.nodes.map { SurveyTarget(name: nil, url: $0) }
        }
        let manifest = try dataOption.directory.loadManifest()
        return manifest.nodes.map { SurveyTarget(name: $0.name, url: manifest.url(of: $0)) }
    }

    /// The nodes to survey. Nodes given with `--node` are taken as given: the user chose them.
    /// The local cluster's nodes are the start: the members as the first of them that answers
    /// lists them (`GET /members`), less the removed ones, plus active members the record lacks
    /// (joined by hand). The recorded nodes alone when none answers (the survey then reports
    /// them down).
    func targets() async throws -> [SurveyTarget] {
        let given = try givenTargets()
        guard global.nodes.isEmpty else { return given }
        let token = try global.clientToken()
        let tls = try global.clientTLS()
        for target in given {
            guard let client = try? KVClient(node: target.url, timeout: requestTimeout, token: token, tls: tls) else { continue }
            let reply = try? await client.members()
            await client.close()
            guard let members = reply?.members else { continue }
            let removed = members.filter { $0.state == "removed" }
            var targets = given.filter { target in
                !removed.contains { $0.id == target.name || $0.url == target.url }
            }
            for member in members where member.state != "removed" {
                if !targets.contains(where: { $0.name == member.id || $0.url == member.url }) {
                    targets.append(SurveyTarget(name: member.id, url: member.url))
                }
            }
            return targets
        }
        return given
    }
}

/// Reads a node name as the cluster spells it (A, B…), refusing one the cluster lacks.
func nodeIndex(_ given: String, in manifest: ClusterManifest, directory: ClusterDirectory) throws(Failure) -> Int {
    guard let index = manifest.index(of: given.uppercased()) else {
        let names = manifest.nodes.map(\.name).joined(separator: ", ")
        throw Failure(
            message: "unknown node '\(given)': the cluster in \(directory.shown) has \(names)",
            status: ExitStatus.usage)
    }
    return index
}

/// "A", "A and B", "A, B and C".
func listed(_ names: [String]) -> String {
    guard names.count > 1, let last = names.last else { return names.first ?? "" }
    return names.dropLast().joined(separator: ", ") + " and " + last
}
