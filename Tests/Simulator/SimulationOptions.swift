public import Replication

/// What one simulated run does: how many nodes, what load, which faults, from which seed.
/// Everything random in the run is drawn from `seed`, so the same options replay the same run.
public struct SimulationOptions: Sendable {
    public var nodes: Int
    public var seed: UInt64
    /// Client writes (puts and deletes) spread over `workloadSpan`, at nodes that are up.
    public var writes: Int = 50
    /// The keys written: few, so concurrent writes to one key are common.
    public var keys: Int = 10
    /// The share of writes that are deletes.
    public var deleteShare: Double = 0.25
    /// How long the load and the faults last (simulated time); then every fault heals.
    public var workloadSpan: Duration = .seconds(6)
    public var faults: FaultPlan = .standard
    /// With `faults.membership`: node slots beyond `nodes` that start absent, in nobody's seeds,
    /// and may join during the load.
    public var spareNodes = 2
    /// The replication timing, shortened from production's so that rounds happen often.
    public var settings: ReplicationSettings
    /// How long a request may take before its sender gives up (simulated).
    public var requestTimeout: Duration = .seconds(1)
    /// After healing, the run fails if the nodes have not met within this.
    public var convergenceDeadline: Duration = .seconds(120)
    /// Purge acknowledged tombstones at once (a tombstone grace of zero).
    public var purgeTombstones = true
    /// Count the bytes of every batch (costs an encoding per batch; for the scale figures).
    public var countBytes = false
    /// Record a line per event (for replaying a failure by eye).
    public var keepTrace = false

    public init(nodes: Int, seed: UInt64) {
        self.nodes = nodes
        self.seed = seed
        var settings = ReplicationSettings()
        settings.backoff = Backoff(base: .milliseconds(50), cap: .seconds(1))
        settings.antiEntropyInterval = .seconds(3)
        settings.batchRows = 50
        settings.persistInterval = .milliseconds(500)
        self.settings = settings
    }
}

/// The faults a run injects, each drawn from the seed.
public struct FaultPlan: Sendable, Equatable {
    /// Chance that a message (request or reply) is lost.
    public var drop: Double
    /// Chance that a request is delivered twice.
    public var duplicate: Double
    /// One-way delay of a message, in milliseconds (uniform), so messages reorder.
    public var delayMilliseconds: ClosedRange<Int>
    /// Split the network into two sides, or cut single links, now and then.
    public var partitions: Bool
    /// Crash a node (what it had not committed is lost) and restart it later.
    public var crashes: Bool
    /// Make a node's clock leap ahead (a paused virtual machine resuming).
    public var clockJumps: Bool
    /// One node stays down for the whole load and comes back at the end.
    public var oneNodeDown: Bool = false
    /// The nodes are split in two halves for the whole load, healed at the end.
    public var splitDuringLoad: Bool = false
    /// Change the members now and then: a spare node joins through a random up member; an up
    /// member removes another (down for good, or alive: then refused by the others); a member
    /// crashes and comes back later with the same id and an empty file, and joins again. At
    /// least two active members always remain, another member keeps its file when one is
    /// replaced, and a file that holds the only copy of a removal is not lost (a removal lost
    /// with its file is not modelled).
    public var membership: Bool = false
    /// Steers the membership changes clear of two bugs, since fixed (docs/reliability.md, "Simulation"),
    /// so that the runs go on finding others:
    /// - a join goes only through a member whose file has a row for every removed member
    ///   (`PeerEndpoint.join` writes a new active row for each member the target knows without a
    ///   row, from its seeds or a join reply, and that row may win over the removal), and a
    ///   removal is written only where the victim's newest member row is held (else such a row
    ///   written elsewhere a moment before may win);
    /// - a node starts without the removed members among its seeds, as an operator who drops
    ///   them from `--peer` would (a file with no member rows yet links to a seed that its join
    ///   reply listed as removed, and brings that member's later writes back into the cluster).
    ///
    /// Off (the default), the seeds that found them pass (`SimulationTests.membershipBugsFound`).
    public var avoidKnownBugs: Bool = false
    /// The average time between two faults.
    public var faultInterval: Duration = .seconds(1)

    public init(
        drop: Double, duplicate: Double, delayMilliseconds: ClosedRange<Int>, partitions: Bool, crashes: Bool,
        clockJumps: Bool
    ) {
        self.drop = drop
        self.duplicate = duplicate
        self.delayMilliseconds = delayMilliseconds
        self.partitions = partitions
        self.crashes = crashes
        self.clockJumps = clockJumps
    }

    /// No fault: a quiet network with a little delay.
    public static let none = FaultPlan(
        drop: 0, duplicate: 0, delayMilliseconds: 1...3, partitions: false, crashes: false, clockJumps: false)

    /// Every kind of fault, membership changes included.
    public static let standard: FaultPlan = {
        var plan = FaultPlan(
            drop: 0.02, duplicate: 0.02, delayMilliseconds: 1...30, partitions: true, crashes: true, clockJumps: true)
        plan.membership = true
        return plan
    }()
}
