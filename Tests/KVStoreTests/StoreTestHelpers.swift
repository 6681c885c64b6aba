import Foundation
import Dispatch
import KVCore
import Logging
import Synchronization
import Testing
import TestSupport

@testable import KVStore

/// A node id known to be valid.
func node(_ name: String) -> NodeID {
    do {
        return try NodeID(name)
    } catch {
        preconditionFailure("test node id \(name) is invalid: \(error)")
    }
}

let nodeA = node("A")
let nodeB = node("B")
let nodeC = node("C")

/// A logger that keeps every message, so tests can check what the store says.
final class LogRecorder: Sendable {
    private let lines = Mutex<[String]>([])

    var messages: [String] { lines.withLock { $0 } }

    var logger: Logger {
        Logger(label: "test") { _ in Handler(recorder: self) }
    }

    private struct Handler: LogHandler {
        let recorder: LogRecorder
        var metadata: Logger.Metadata = [:]
        var logLevel: Logger.Level = .trace

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            recorder.lines.withLock { $0.append(event.message.description) }
        }
    }
}

/// Opens a store on `path` for node `id`, with `configure` applied to the configuration.
func openStore(
    _ path: String, id: NodeID = nodeA, logger: Logger = LogRecorder().logger,
    configure: (inout StoreConfiguration) -> Void = { _ in }
) async throws -> KVStore {
    var configuration = StoreConfiguration(path: path, nodeID: id)
    configure(&configuration)
    return try await KVStore.open(configuration, logger: logger)
}

/// Runs `body` with a store on a fresh file in a temporary directory; the store is closed and
/// the directory removed on every path. `body` also gets the file's path.
@discardableResult
func withStore<T>(
    id: NodeID = nodeA, configure: (inout StoreConfiguration) -> Void = { _ in },
    _ body: (KVStore, String) async throws -> T
) async throws -> T {
    try await withTemporaryDirectoryPath { directory in
        let path = directory + "/node.db"
        let store = try await openStore(path, id: id, configure: configure)
        do {
            let result = try await body(store, path)
            await store.close()
            return result
        } catch {
            await store.close()
            throw error
        }
    }
}

/// The bytes of the file at `path`, or nil if it cannot be read.
func fileBytes(_ path: String) -> [UInt8]? {
    FileManager.default.contents(atPath: path).map { Array($0) }
}

/// A record for `apply`.
func remote(_ key: String, _ value: String?, lamport: Int64, origin: NodeID = nodeB) -> Record {
    Record(key: key, value: value.map { Array($0.utf8) }, version: Version(lamport: lamport, origin: origin))
}

/// Bytes of a string, for values.
func bytes(_ text: String) -> [UInt8] { Array(text.utf8) }

/// Holds the writer inside a transaction until the test releases it, so a test can queue
/// requests behind it or read while a write transaction is provably open.
final class WriterGate: Sendable {
    private struct TimedOut: Error {}

    private let semaphore = DispatchSemaphore(value: 0)
    private let signals = AsyncStream.makeStream(of: Void.self)

    /// Submits a request that runs `work` inside the writer's transaction, announces that it
    /// is there, and waits for `release()` (at most 30 s, then it fails) before committing.
    func hold<T: Sendable>(_ store: KVStore, work: @escaping @Sendable (WriteSession) throws -> T) async throws -> T {
        try await store.writer.submit { session in
            let result = try work(session)
            self.signals.continuation.yield()
            guard self.semaphore.wait(timeout: .now() + 30) == .success else { throw TimedOut() }
            return result
        }
    }

    /// `hold` with no work of its own.
    func hold(_ store: KVStore) async throws {
        try await hold(store) { _ in }
    }

    /// Returns once the held request is inside the transaction.
    func entered() async {
        for await _ in signals.stream { return }
    }

    func release() {
        semaphore.signal()
    }
}

/// Whether `condition` comes true within `seconds`, polled every 2 ms (TestSupport's `poll`).
func eventually(within seconds: Double = 10, _ condition: () async throws -> Bool) async -> Bool {
    do {
        try await poll("condition", timeout: .milliseconds(Int64(seconds * 1000)), interval: .milliseconds(2)) {
            try await condition() ? nil : "not yet"
        }
        return true
    } catch {
        return false
    }
}
