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
public func runCommand(
    _ executable: URL,
    _ arguments: [String],
    stdin: Data? = nil,
    environment: [String: String]? = nil
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
    if let stdin { inPipe.fileHandleForWriting.write(stdin) }
    try inPipe.fileHandleForWriting.close()
    // Read both pipes to the end before waiting, so a chatty child cannot block on a full pipe.
    async let out = Task.detached { outPipe.fileHandleForReading.readDataToEndOfFile() }.value
    async let err = Task.detached { errPipe.fileHandleForReading.readDataToEndOfFile() }.value
    let (outData, errData) = await (out, err)
    process.waitUntilExit()
    return CommandResult(
        status: process.terminationStatus, stdout: outData,
        stderr: String(decoding: errData, as: UTF8.self))
}
