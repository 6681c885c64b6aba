import SQLite
import Synchronization

/// Read-only connections lent to one read at a time.
///
/// A read runs on the calling task: a point read takes microseconds, less than a hop to
/// another thread would, and WAL lets it run beside the writer, so it never waits for a
/// write. The pool is a `Mutex`-guarded stack held only to push or pop a connection; when all
/// are lent out, the read opens a temporary connection instead of waiting, so no task ever
/// blocks here.
final class ReadPool: Sendable {
    private struct State {
        var idle: [Connection]
        var closed = false
    }

    private let state: Mutex<State>
    private let path: String
    private let capacity: Int
    private let busyTimeout: Int
    private let pragmas: [SQLitePragma]

    /// Opens `capacity` (at least 1) read-only connections to the store at `path`, which must
    /// already be bootstrapped.
    init(path: String, capacity: Int, busyTimeout: Int, pragmas: [SQLitePragma] = []) throws {
        self.path = path
        self.capacity = max(1, capacity)
        self.busyTimeout = busyTimeout
        self.pragmas = pragmas
        var idle: [Connection] = []
        for _ in 0..<self.capacity {
            idle.append(try Self.open(path: path, busyTimeout: busyTimeout, pragmas: pragmas))
        }
        state = Mutex(State(idle: idle))
    }

    private static func open(path: String, busyTimeout: Int, pragmas: [SQLitePragma]) throws -> Connection {
        let connection = try Connection(path: path, mode: .readOnly)
        connection.setBusyTimeout(milliseconds: busyTimeout)
        for pragma in pragmas { try connection.execute(pragma.statement) }
        return connection
    }

    /// Runs `body` with a connection of its own; errors come out as `StoreError`s.
    func read<T>(_ body: (Connection) throws -> T) throws(StoreError) -> T {
        let connection = try checkOut()
        defer { checkIn(connection) }
        do {
            return try body(connection)
        } catch {
            throw StoreError(error, path: path)
        }
    }

    /// Closes the idle connections now and the lent ones when they come back; later reads
    /// throw `.closed`.
    func close() {
        let idle = state.withLock { state in
            state.closed = true
            defer { state.idle = [] }
            return state.idle
        }
        for connection in idle { connection.close() }
    }

    private func checkOut() throws(StoreError) -> Connection {
        let pooled = try state.withLock { state throws(StoreError) -> Connection? in
            guard !state.closed else { throw .closed }
            return state.idle.popLast()
        }
        if let pooled { return pooled }
        do {
            return try Self.open(path: path, busyTimeout: busyTimeout, pragmas: pragmas)
        } catch {
            throw StoreError(error, path: path)
        }
    }

    private func checkIn(_ connection: Connection) {
        let kept = state.withLock { state in
            guard !state.closed, state.idle.count < capacity else { return false }
            state.idle.append(connection)
            return true
        }
        if !kept { connection.close() }
    }
}
