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
    let input = try PipeEnds(), output = try PipeEnds(), errors = try PipeEnds()
    let child: ChildProcess
    do {
        child = try ChildProcess.spawn(
            executable.path, arguments,
            environment: environment.map { ProcessInfo.processInfo.environment.merging($0) { $1 } },
            stdin: .descriptor(input.read), stdout: .descriptor(output.write), stderr: .descriptor(errors.write))
    } catch {
        [input.read, input.write, output.read, output.write, errors.read, errors.write].forEach { close($0) }
        throw error
    }
    close(input.read)
    close(output.write)
    close(errors.write)
    let watchdog = timeout.map { limit in
        Task.detached {
            try await Task.sleep(for: limit)
            child.send(SIGKILL)
        }
    }
    defer { watchdog?.cancel() }
    if let stdin { writeAll(input.write, stdin) }
    close(input.write)
    // Read both pipes to the end before waiting, so a chatty child cannot block on a full pipe.
    async let out = readToEnd(output.read)
    async let err = readToEnd(errors.read)
    let (outData, errData) = await (out, err)
    guard child.waitForExit(within: .seconds(60)), let status = child.terminationStatus else {
        child.send(SIGKILL)
        _ = child.waitForExit(within: .seconds(10))
        return CommandResult(status: -1, stdout: outData, stderr: "still running 60 s after closing its output; killed")
    }
    return CommandResult(status: status, stdout: outData, stderr: String(decoding: errData, as: UTF8.self))
}

/// Reads `fd` to its end off the cooperative pool (`offThePool`), then closes it, so a test that
/// runs a command while it does other work (a `kv watch` beside the writes it waits for) does not hang.
private func readToEnd(_ fd: Int32) async -> Data {
    let data = (try? await offThePool { readAll(fd) }) ?? Data()
    close(fd)
    return data
}
