import Testing

/// The fault-injection suites of issue 4 (`FaultProxyTests`, `PartitionTests`, `CrashTests`,
/// `NemesisTests`), run one at a time: each starts three nodes, six proxies and concurrent
/// clients, and side by side on a small CI machine they would slow each other into timeouts.
/// Filter one with `swift test --filter PartitionTests`.
@Suite("Fault injection", .serialized)
enum FaultInjection {}
