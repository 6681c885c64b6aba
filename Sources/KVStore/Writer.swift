import Foundation
import Logging
import SQLite
import Synchronization

/// One request to the writer: `perform` runs on the writer thread inside the request's
/// savepoint and returns how to deliver its result once the transaction commits; `fail`
/// delivers an error instead.
///
/// `isOneStatement`: `perform` changes the database with at most one statement, after any
/// check that may throw. SQLite undoes a failing statement by itself (or the whole
/// transaction, which the writer sees), so such a request runs without a savepoint: two
/// statements fewer per local put or delete.
struct WriteJob: Sendable {
    let perform: @Sendable (WriteSession) throws -> @Sendable () -> Void
    let fail: @Sendable (any Error) -> Void
    var isOneStatement = false
}

/// The single writer of the store: a dedicated thread that owns the read-write connection
/// and commits the waiting requests in groups.
///
/// A thread, not a task: a commit may `fsync`, which blocks its thread for milliseconds, and
/// a blocked thread of the cooperative pool (two on a two-core machine) would stall every
/// task of the process. The thread sleeps on a condition while there is no work.
///
/// Each turn takes every request waiting (up to `maxGroupSize`, or 1 without group commit),
/// runs them in one `BEGIN IMMEDIATE` transaction, each in its own savepoint so a failing
/// request rolls back alone, writes the clock and `next_seq` once, and commits; only then are
/// the callers resumed. A group is as large as what queued up during the previous commit:
/// there is no timer. If the commit fails, every request of the group fails and the
/// in-memory clock and `seq` go back to where the group started.
final class Writer: Sendable {
    private let queue = JobQueue()
    private let stopped = Mutex(StopState())
    private let counters = Mutex(StoreStatistics())
    private let path: String
    private let groupLimit: Int
    private let broadcaster: CommitBroadcaster
    private let cache: ReadCache
    private let logger: Logger

    private struct StopState {
        var done = false
        var waiters: [CheckedContinuation<Void, Never>] = []
    }

    private init(path: String, groupLimit: Int, broadcaster: CommitBroadcaster, cache: ReadCache, logger: Logger) {
        self.path = path
        self.groupLimit = groupLimit
        self.broadcaster = broadcaster
        self.cache = cache
        self.logger = logger
    }

    /// Starts the writer thread, which opens the file and bootstraps it (see `Bootstrap`);
    /// returns once it is ready to take requests, or throws the reason it is not.
    static func start(
        configuration: StoreConfiguration, broadcaster: CommitBroadcaster, cache: ReadCache,
        checkpointer: Checkpointer, logger: Logger
    ) async throws -> (Writer, NodeRow) {
        let writer = Writer(
            path: configuration.path,
            groupLimit: configuration.groupCommit ? max(1, configuration.maxGroupSize) : 1,
            broadcaster: broadcaster, cache: cache, logger: logger)
        let node = try await withCheckedThrowingContinuation { (ready: CheckedContinuation<NodeRow, any Error>) in
            let thread = Thread {
                // Named from inside: on Linux a name given before `start()` does not reach the
                // thread, which then shows in `top -H` and `perf` as a dispatch worker.
                Thread.current.name = "converge-writer"
                let connection: Connection
                let node: NodeRow
                do {
                    connection = try Connection(path: configuration.path, mode: .readWriteCreate)
                    do {
                        node = try Bootstrap.run(connection, configuration: configuration, logger: logger)
                    } catch {
                        connection.close()
                        throw error
                    }
                } catch {
                    writer.queue.close()
                    writer.finish()
                    ready.resume(throwing: StoreError(error, path: configuration.path))
                    return
                }
                handOverCheckpoints(of: connection, to: checkpointer)
                ready.resume(returning: node)
                writer.run(WriteSession(connection: connection, node: node, keyFilter: cache.isEnabled ? cache.keys : nil))
                connection.close()
                writer.finish()
            }
            thread.start()
        }
        return (writer, node)
    }

    /// Leaves the checkpoints of `connection`'s commits to `checkpointer`, at the threshold
    /// SQLite would use (`PRAGMA wal_autocheckpoint`; 0 keeps checkpoints off), and runs one
    /// itself once the log reaches eight times that: the log stays bounded if the checkpointer
    /// falls behind.
    private static func handOverCheckpoints(of connection: Connection, to checkpointer: Checkpointer) {
        guard let threshold = try? connection.firstRow("PRAGMA wal_autocheckpoint", [], { Int($0.int64(at: 0)) }),
            threshold > 0
        else { return }
        connection.onWALCommit { [unowned connection] frames in
            if frames >= 8 * threshold {
                _ = try? connection.checkpointPassively()
            } else if frames >= threshold {
                checkpointer.request()
            }
        }
    }

    /// Queues `body` for the writer and returns its result once its transaction committed.
    /// Errors are `StoreError`s; after `stop()` every request throws `.closed`.
    func submit<T: Sendable>(
        oneStatement: Bool = false, _ body: @escaping @Sendable (WriteSession) throws -> T
    ) async throws -> T {
        try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<T, any Error>) in
            submit(oneStatement: oneStatement, body) { continuation.resume(with: $0) }
        }
    }

    /// Queues `body` for the writer; `completion` gets its result on the writer thread once
    /// the transaction committed (or at once, with `.closed`, after `stop()`). For callers that
    /// are not tasks, such as an event loop: no task is resumed and nothing hops through the
    /// cooperative pool.
    func submit<T: Sendable>(
        oneStatement: Bool = false,
        _ body: @escaping @Sendable (WriteSession) throws -> T,
        completion: @escaping @Sendable (Result<T, StoreError>) -> Void
    ) {
        let path = self.path
        let job = WriteJob(
            perform: { session in
                let value = try body(session)
                return { completion(.success(value)) }
            },
            fail: { error in completion(.failure(StoreError(error, path: path))) },
            isOneStatement: oneStatement)
        if !queue.enqueue(job) { completion(.failure(.closed)) }
    }

    /// Refuses new requests; the thread finishes those already queued, closes the connection
    /// and ends. Returns at once; see `stop()` to wait for it.
    func requestStop() {
        queue.close()
    }

    /// Refuses new requests and returns when the queued ones are done and the connection is
    /// closed. Safe to call many times, from many tasks.
    func stop() async {
        queue.close()
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let alreadyDone = stopped.withLock { state in
                if state.done { return true }
                state.waiters.append(continuation)
                return false
            }
            if alreadyDone { continuation.resume() }
        }
    }

    /// Requests queued and not yet taken by the writer.
    var pendingCount: Int { queue.count }

    func statistics() -> StoreStatistics {
        counters.withLock { $0 }
    }

    private func finish() {
        let waiters = stopped.withLock { state in
            state.done = true
            defer { state.waiters = [] }
            return state.waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    // MARK: The writer thread

    private func run(_ session: WriteSession) {
        while let group = queue.take(max: groupLimit) {
            commit(group, session: session)
        }
    }

    private enum Outcome {
        case succeeded(deliver: @Sendable () -> Void, fail: @Sendable (any Error) -> Void)
        case failed(error: any Error, fail: @Sendable (any Error) -> Void)
    }

    private func commit(_ group: [WriteJob], session: WriteSession) {
        let began = ContinuousClock.now
        let connection = session.connection
        let start = session.counters
        var outcomes: [Outcome] = []
        outcomes.reserveCapacity(group.count)
        session.timestamp = WallClock.timestamp()
        do {
            // A ROLLBACK that failed after an earlier group's error may have left the
            // transaction open; starting another one inside it would be a programmer error.
            try connection.rollback()
            try connection.transaction(.immediate) {
                for job in group {
                    let before = session.counters
                    let cacheMark = session.cacheChangeMark
                    do {
                        let deliver =
                            job.isOneStatement
                            ? try job.perform(session)
                            : try connection.savepoint("request") { try job.perform(session) }
                        outcomes.append(.succeeded(deliver: deliver, fail: job.fail))
                    } catch {
                        session.restore(before)
                        session.forgetCacheChanges(since: cacheMark)
                        outcomes.append(.failed(error: error, fail: job.fail))
                        // Some errors (a full disk, an I/O error) make SQLite roll back the
                        // whole transaction; the rest of the group cannot run in it.
                        guard connection.isInTransaction else { throw error }
                    }
                }
                if session.counters != start {
                    try session.saveCounters()
                    try compactFeed(session, after: start)
                }
            }
        } catch {
            session.restore(start)
            updateCache(session, committed: false)
            logger.error(
                "write transaction failed; its requests were rolled back",
                metadata: ["path": "\(path)", "requests": "\(group.count)", "error": "\(StoreError(error, path: path))"])
            for (index, job) in group.enumerated() {
                if index < outcomes.count, case .failed(let own, _) = outcomes[index] {
                    job.fail(own)
                } else {
                    job.fail(error)
                }
            }
            count(group.count, committed: false, took: ContinuousClock.now - began)
            return
        }
        count(group.count, committed: true, took: ContinuousClock.now - began)
        // Before any answer: a caller told its write is done must not read the old row.
        updateCache(session, committed: true)
        for outcome in outcomes {
            switch outcome {
            case .succeeded(let deliver, _): deliver()
            case .failed(let error, let fail): fail(error)
            }
        }
        if session.nextSeq != start.nextSeq {
            broadcaster.publish(session.nextSeq - 1)
        }
    }

    /// Sweeps the feed table for twice the seqs this transaction took, in a savepoint of its
    /// own: a sweep that fails (it only deletes entries nobody reads) is logged and costs the
    /// transaction's writes nothing.
    private func compactFeed(_ session: WriteSession, after start: WriteSession.Counters) throws {
        let taken = session.nextSeq - start.nextSeq
        guard taken > 0 else { return }
        let connection = session.connection
        do {
            try connection.savepoint("feed") { try session.compactFeed(window: 2 * taken) }
        } catch {
            guard connection.isInTransaction else { throw error }
            logger.debug("feed sweep failed; the next transaction's sweep goes on", metadata: ["path": "\(path)", "error": "\(error)"])
        }
    }

    private func updateCache(_ session: WriteSession, committed: Bool) {
        switch session.takeCacheChanges(committed: committed) {
        case .rows(let changes): cache.apply(changes)
        case .all: cache.invalidateAll()
        }
    }

    private func count(_ requests: Int, committed: Bool, took: Duration) {
        counters.withLock { statistics in
            statistics.transactionTime += took
            if committed { statistics.transactions += 1 }
            statistics.requests += requests
            statistics.largestGroup = max(statistics.largestGroup, requests)
        }
    }
}

/// The writer's queue of requests: callers add from any thread, the writer thread takes
/// everything waiting and sleeps when there is nothing.
///
/// `@unchecked Sendable`: every stored property is read and written only while holding the
/// lock of `condition`, which is also what the writer sleeps on.
final class JobQueue: @unchecked Sendable {
    private let condition = NSCondition()
    private var jobs: [WriteJob] = []
    private var closed = false

    /// Adds `job`; false if the queue is closed (the job was not added).
    func enqueue(_ job: WriteJob) -> Bool {
        condition.lock()
        defer { condition.unlock() }
        guard !closed else { return false }
        jobs.append(job)
        condition.signal()
        return true
    }

    /// Waits for work and takes up to `max` jobs, oldest first; nil once the queue is closed
    /// and empty.
    func take(max: Int) -> [WriteJob]? {
        condition.lock()
        defer { condition.unlock() }
        while jobs.isEmpty && !closed { condition.wait() }
        guard !jobs.isEmpty else { return nil }
        let count = min(max, jobs.count)
        let taken = Array(jobs.prefix(count))
        jobs.removeFirst(count)
        return taken
    }

    /// Refuses new jobs from now on; the ones queued are still taken.
    func close() {
        condition.lock()
        defer { condition.unlock() }
        closed = true
        condition.broadcast()
    }

    var count: Int {
        condition.lock()
        defer { condition.unlock() }
        return jobs.count
    }
}
