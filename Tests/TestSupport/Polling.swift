import Foundation

/// The condition a test waited for did not come true before its deadline.
public struct PollTimeout: Error, CustomStringConvertible {
    public let what: String
    public let lastState: String
    public var description: String { "timed out waiting for \(what); last state: \(lastState)" }
}

/// Re-checks `check` until it returns `nil` (done) or `timeout` passes.
///
/// `check` returns `nil` when the condition holds, or a description of the state it saw, which
/// the thrown `PollTimeout` reports. Used instead of fixed sleeps wherever a test waits for
/// another process or task to reach a state.
public func poll(
    _ what: String,
    timeout: Duration = .seconds(20),
    interval: Duration = .milliseconds(20),
    check: () async throws -> String?
) async throws {
    let clock = ContinuousClock()
    let deadline = clock.now.advanced(by: timeout)
    var lastState = "never checked"
    while true {
        do {
            guard let state = try await check() else { return }
            lastState = state
        } catch {
            lastState = "error: \(error)"
        }
        if clock.now >= deadline { throw PollTimeout(what: what, lastState: lastState) }
        try await Task.sleep(for: interval)
    }
}
