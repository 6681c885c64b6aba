public import Foundation

/// A real `kvnode` process started by a test, with its log in a file.
///
/// `start` waits (with a deadline, not a sleep) until the node logs the line
/// `listening on http://HOST:PORT`, so `url` is the address it actually bound, which lets tests
/// pass `--port 0`. The process is killed when the test calls `kill()`/`stop()`; a test must
/// end every node it starts.
public final class NodeProcess: @unchecked Sendable {
    // @unchecked: `process` is only touched by the test that owns this object, one call at a time.
    public let arguments: [String]
    public let logFile: URL
    /// Variables added to the test process's environment for the node (fault-injection hooks).
    public var environment: [String: String]
    public private(set) var url: String = ""
    private var process: ChildProcess?

    private init(arguments: [String], logFile: URL, environment: [String: String]) {
        self.arguments = arguments
        self.logFile = logFile
        self.environment = environment
    }

    /// Starts `kvnode ARGUMENTS`, logging to `logFile`, and waits until it listens.
    public static func start(
        _ arguments: [String], logFile: URL, environment: [String: String] = [:], timeout: Duration = .seconds(30)
    ) async throws -> NodeProcess {
        let node = NodeProcess(arguments: arguments, logFile: logFile, environment: environment)
        try await node.launch(timeout: timeout)
        return node
    }

    /// Starts `kvnode ARGUMENTS` without waiting for anything: for tests that kill it during
    /// start-up. `restart()` later waits as `start` does.
    public static func spawn(
        _ arguments: [String], logFile: URL, environment: [String: String] = [:]
    ) throws -> NodeProcess {
        let node = NodeProcess(arguments: arguments, logFile: logFile, environment: environment)
        _ = try node.run()
        return node
    }

    /// Starts the same command again (after a kill or stop), appending to the same log.
    public func restart(timeout: Duration = .seconds(30)) async throws {
        try await launch(timeout: timeout)
    }

    public var isRunning: Bool { process?.isRunning ?? false }
    public var pid: Int32 { process?.pid ?? 0 }

    /// Sends SIGKILL and waits for the process to be gone.
    public func kill() {
        guard let process, process.isRunning else { return }
        process.send(SIGKILL)
        if !process.waitForExit(within: .seconds(30)) {
            FileHandle.standardError.write(Data("kvnode \(process.pid) still running 30 s after SIGKILL\n".utf8))
        }
    }

    /// Sends SIGTERM and waits for the exit status.
    @discardableResult
    public func stop() -> Int32 {
        guard let process else { return 0 }
        process.send(SIGTERM)
        guard process.waitForExit(within: .seconds(30)), let status = process.terminationStatus else {
            // A node that does not stop is a failure of the test that stopped it (-1), not a hang
            // of the whole run: it is killed and its log's end printed.
            FileHandle.standardError.write(
                Data("kvnode \(arguments.joined(separator: " ")) did not stop within 30 s of SIGTERM; killed. Log ends:\n\(log().suffix(2000))\n".utf8))
            process.send(SIGKILL)
            _ = process.waitForExit(within: .seconds(30))
            return -1
        }
        return status
    }

    /// The RESP port the node logged (`serving RESP on HOST:PORT`) at its last start; nil if it
    /// serves none.
    public var respPort: Int? {
        let text = log()
        guard let range = text.range(of: #"serving RESP on [^\s]+:[0-9]+"#, options: [.regularExpression, .backwards]) else {
            return nil
        }
        return text[range].split(separator: ":").last.flatMap { Int($0) }
    }

    /// The node's log so far.
    public func log() -> String {
        (try? String(contentsOf: logFile, encoding: .utf8)) ?? ""
    }

    /// Starts the process; returns the log offset its output begins at.
    private func run() throws -> UInt64 {
        if !FileManager.default.fileExists(atPath: logFile.path) {
            _ = FileManager.default.createFile(atPath: logFile.path, contents: nil)
        }
        let log = open(logFile.path, O_WRONLY | O_APPEND | O_CLOEXEC)
        guard log >= 0 else { throw SpawnFailed(executable: "kvnode", reason: "cannot open \(logFile.path)") }
        defer { close(log) }
        let startOffset = UInt64(max(0, lseek(log, 0, SEEK_END)))
        self.process = try ChildProcess.spawn(
            Products.executable("kvnode").path, arguments,
            environment: environment.isEmpty ? nil : ProcessInfo.processInfo.environment.merging(environment) { $1 },
            stdout: .descriptor(log), stderr: .descriptor(log))
        return startOffset
    }

    private func launch(timeout: Duration) async throws {
        let startOffset = try run()
        guard let process else { return }

        var found: String?
        var exited = false
        try await poll("kvnode \(arguments.joined(separator: " ")) to listen", timeout: timeout) {
            let text = self.log()
            let utf8 = Array(text.utf8)
            let fresh = String(decoding: utf8[min(Int(startOffset), utf8.count)...], as: UTF8.self)
            if let range = fresh.range(of: #"listening on (https?://[^\s]+)"#, options: .regularExpression) {
                found = String(fresh[range].dropFirst("listening on ".count))
                return nil
            }
            if !process.isRunning {
                exited = true
                return nil
            }
            return "not listening yet"
        }
        if exited, found == nil {
            throw NodeExited(status: process.terminationStatus ?? -1, log: String(log().suffix(1000)))
        }
        url = found ?? ""
    }

    deinit {
        process?.send(SIGKILL)
    }
}

/// A `kvnode` a test started exited before it listened.
public struct NodeExited: Error, CustomStringConvertible {
    public let status: Int32
    public let log: String
    public var description: String { "kvnode exited with status \(status) before listening; its log ends:\n\(log)" }
}
