import Foundation
import Logging
import SQLite
import Synchronization

/// Copies the write-ahead log into the database file on a thread of its own, so the writer
/// never spends a commit's time on a checkpoint's writes and `fdatasync`.
///
/// The writer asks (`request`) when its commit leaves the log at SQLite's checkpoint threshold
/// or more (`PRAGMA wal_autocheckpoint`, 1000 pages by default); this thread then runs a
/// passive checkpoint on a connection of its own, beside the writer and the readers. The
/// log stays as bounded as before: the writer checkpoints by itself, as SQLite would, once the
/// log reaches eight times the threshold (a checkpointer that cannot keep up). Durability is
/// unchanged: a checkpoint syncs the log before it copies and the file after, whoever runs it.
final class Checkpointer: @unchecked Sendable {
    // `@unchecked`: every stored var is guarded by `condition`.
    private let condition = NSCondition()
    private var requested = false
    private var stopping = false
    private var running = false
    private var stopWaiters: [CheckedContinuation<Void, Never>] = []
    private let path: String
    private let busyTimeout: Int
    private let logger: Logger
    /// Checkpoints this thread ran on a file in WAL mode, for tests.
    let completed = Atomic(0)

    init(path: String, busyTimeoutMilliseconds: Int, logger: Logger) {
        self.path = path
        self.busyTimeout = busyTimeoutMilliseconds
        self.logger = logger
    }

    /// Starts the thread; it opens its connection on the first request.
    func start() {
        condition.lock()
        running = true
        condition.unlock()
        let thread = Thread { [self] in
            // At most 15 bytes: Linux refuses a longer thread name and the thread keeps its creator's.
            Thread.current.name = "converge-ckpt"
            run()
            condition.lock()
            running = false
            let waiters = stopWaiters
            stopWaiters = []
            condition.unlock()
            for waiter in waiters { waiter.resume() }
        }
        thread.start()
    }

    /// Asks for a checkpoint soon; requests made while one waits are one.
    func request() {
        condition.lock()
        requested = true
        condition.signal()
        condition.unlock()
    }

    /// Asks the thread to end, without waiting (for a store released without `close()`).
    func requestStop() {
        condition.lock()
        stopping = true
        condition.signal()
        condition.unlock()
    }

    /// Ends the thread after the checkpoint it runs, if any, and closes its connection (the
    /// last connection to close checkpoints what is left). Returns once it has.
    func stop() async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            condition.lock()
            stopping = true
            guard running else {
                condition.unlock()
                continuation.resume()
                return
            }
            stopWaiters.append(continuation)
            condition.signal()
            condition.unlock()
        }
    }

    private func run() {
        var connection: Connection?
        defer { connection?.close() }
        while true {
            condition.lock()
            while !requested && !stopping { condition.wait() }
            let stop = stopping
            requested = false
            condition.unlock()
            if stop { return }
            do {
                if connection == nil {
                    let opened = try Connection(path: path, mode: .readWrite)
                    opened.setBusyTimeout(milliseconds: busyTimeout)
                    // A connection learns the file is in WAL mode only by reading it; until then
                    // a checkpoint does nothing and says so with -1 frames.
                    _ = try opened.textValue("PRAGMA journal_mode")
                    connection = opened
                }
                if let result = try connection?.checkpointPassively(), result.frames >= 0 {
                    completed.add(1, ordering: .relaxed)
                }
            } catch where error.code.primary == .busy {
                // Another checkpoint runs (the writer's own, past the bound): nothing to do.
            } catch {
                logger.warning(
                    "background checkpoint failed; the writer checkpoints by itself once the log grows",
                    metadata: ["path": "\(path)", "error": "\(error)"])
            }
        }
    }
}
