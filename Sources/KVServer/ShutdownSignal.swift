import ServiceLifecycle
import Synchronization

/// Tells long-lived responses (watches) that the node is shutting down, so they end and let the
/// server's graceful shutdown finish: a server waits for every request in flight, and a watch
/// never finishes on its own.
final class ShutdownSignal: Sendable {
    private let state = Mutex<(fired: Bool, waiters: [AsyncStream<Void>.Continuation])>((false, []))

    var hasFired: Bool { state.withLock { $0.fired } }

    /// A stream that yields once, when shutdown begins (at once if it already has).
    func stream() -> AsyncStream<Void> {
        let (stream, continuation) = AsyncStream.makeStream(of: Void.self)
        let fired = state.withLock { state -> Bool in
            if !state.fired { state.waiters.append(continuation) }
            return state.fired
        }
        if fired {
            continuation.yield()
            continuation.finish()
        }
        return stream
    }

    func fire() {
        let waiters = state.withLock { state -> [AsyncStream<Void>.Continuation] in
            state.fired = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters {
            waiter.yield()
            waiter.finish()
        }
    }
}

/// A service listed after the HTTP server, so that ServiceLifecycle, which shuts services down in
/// reverse order, reaches it first: it fires the signal, the watches end, and the server's own
/// graceful shutdown no longer waits on them.
struct ShutdownSignalService: Service {
    let signal: ShutdownSignal

    func run() async throws {
        try? await gracefulShutdown()
        signal.fire()
    }
}
