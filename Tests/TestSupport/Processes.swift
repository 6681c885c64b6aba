public import Foundation

/// Where `swift build` put the package's executables: next to the running test bundle.
public enum Products {
    public static var directory: URL {
        let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        return exe.deletingLastPathComponent()
    }

    /// The built executable `name` (`kv`, `kvnode`).
    public static func executable(_ name: String) -> URL {
        directory.appendingPathComponent(name)
    }
}

/// What a finished command printed and how it exited.
public struct CommandResult: Sendable {
    public let status: Int32
    public let stdout: Data
    public let stderr: String
    public var stdoutText: String { String(decoding: stdout, as: UTF8.self) }
}

/// Runs `executable` with `arguments` to completion, feeding `stdin`, and collects its output.
/// With a `timeout`, a command still running then is killed (SIGKILL), so a test of a command
/// that should end by itself (`kv watch --count N`) fails instead of hanging.
public func runCommand(
    _ executable: URL,
    _ arguments: [String],
    stdin: Data? = nil,
    environment: [String: String]? = nil,
    timeout: Duration? = nil
) async throws -> CommandResult {
    let process = Process()
    process.executableURL = executable
    process.arguments = arguments
    if let environment {
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
    }
    let outPipe = Pipe()
    let errPipe = Pipe()
    let inPipe = Pipe()
    process.standardOutput = outPipe
    process.standardError = errPipe
    process.standardInput = inPipe
    try process.run()
    let watchdog = timeout.map { limit in
        Task.detached {
            try await Task.sleep(for: limit)
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
    }
    defer { watchdog?.cancel() }
    if let stdin { inPipe.fileHandleForWriting.write(stdin) }
    try inPipe.fileHandleForWriting.close()
    // Read both pipes to the end before waiting, so a chatty child cannot block on a full pipe.
    async let out = readToEnd(outPipe.fileHandleForReading)
    async let err = readToEnd(errPipe.fileHandleForReading)
    let (outData, errData) = await (out, err)
    guard waitForExit(process, within: .seconds(60)) else {
        kill(process.processIdentifier, SIGKILL)
        _ = waitForExit(process, within: .seconds(10))
        return CommandResult(status: -1, stdout: outData, stderr: "still running 60 s after closing its output; killed")
    }
    return CommandResult(
        status: process.terminationStatus, stdout: outData,
        stderr: String(decoding: errData, as: UTF8.self))
}

/// Waits until `process` has ended, for at most `limit`; false if it is still running then.
/// Foundation's `waitUntilExit` has no deadline, and a test must never wait without one.
func waitForExit(_ process: Process, within limit: Duration) -> Bool {
    let deadline = ContinuousClock.now.advanced(by: limit)
    while process.isRunning {
        if ContinuousClock.now >= deadline { return false }
        usleep(5_000)
    }
    return true
}

/// Reads `handle` to its end off the cooperative pool (`offThePool`), so a test that runs a
/// command while it does other work (a `kv watch` beside the writes it waits for) does not hang.
private func readToEnd(_ handle: FileHandle) async -> Data {
    (try? await offThePool { handle.readDataToEndOfFile() }) ?? Data()
}
