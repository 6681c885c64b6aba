import Foundation

/// Runs blocking work (a socket read, a file read to its end) on a thread of its own and
/// awaits it: a blocking call on one of Swift's cooperative threads (two on a 2-core machine)
/// starves every other task of the test process, including the tasks of the nodes under test
/// that would produce what the call waits for.
public func offThePool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread { continuation.resume(with: Result { try body() }) }.start()
    }
}
