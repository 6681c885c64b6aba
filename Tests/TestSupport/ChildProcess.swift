#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
import Foundation
import Synchronization

/// A program the tests start (`kvnode`, `kv`), spawned with `posix_spawn` and reaped with
/// `waitpid`, instead of Foundation's `Process`.
///
/// Why not `Process`: on Linux it lists `/proc/self/fd` before every spawn and copies each
/// directory entry's whole 256-byte name buffer, which reads past the end of glibc's directory
/// buffer when an entry sits near its end. With the ~1 400 descriptors a busy test process holds,
/// that read crossed into an unmapped page and killed a CI run with SIGSEGV (2026-12-06, stop 15).
/// Here the child closes every descriptor above 2 itself (`posix_spawn_file_actions_addclosefrom_np`,
/// glibc 2.34+) and gets default signal dispositions and an empty signal mask.
public final class ChildProcess: Sendable {
    /// Where a child's standard input, output or error comes from or goes to.
    public enum Stream: Sendable {
        /// `/dev/null`.
        case null
        /// A descriptor of the test process (a pipe end, an open file); the caller keeps owning it.
        case descriptor(Int32)
    }

    public let pid: Int32
    /// The exit code, or the signal number for a child killed by a signal (as Foundation's
    /// `terminationStatus`); nil while it runs.
    private let ended = Mutex<Int32?>(nil)

    private init(pid: Int32) { self.pid = pid }

    /// Starts `executable` with `arguments`; `environment` replaces the test process's whole
    /// environment when given.
    public static func spawn(
        _ executable: String, _ arguments: [String], environment: [String: String]? = nil,
        stdin: Stream = .null, stdout: Stream, stderr: Stream
    ) throws -> ChildProcess {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for (stream, target) in [(stdin, Int32(0)), (stdout, 1), (stderr, 2)] {
            switch stream {
            case .null:
                posix_spawn_file_actions_addopen(&actions, target, "/dev/null", target == 0 ? O_RDONLY : O_WRONLY, 0)
            case .descriptor(let fd):
                posix_spawn_file_actions_adddup2(&actions, fd, target)
            }
        }
        if let closeFrom = closeFromAction {
            _ = closeFrom(&actions, 3)
        }

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var allSignals = sigset_t()
        sigfillset(&allSignals)
        var noSignals = sigset_t()
        sigemptyset(&noSignals)
        posix_spawnattr_setsigdefault(&attributes, &allSignals)
        posix_spawnattr_setsigmask(&attributes, &noSignals)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))

        let environmentLines = (environment ?? ProcessInfo.processInfo.environment).map { "\($0.key)=\($0.value)" }
        var pid: pid_t = 0
        let status = withCStrings([executable] + arguments) { argv in
            withCStrings(environmentLines) { envp in
                posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
            }
        }
        guard status == 0 else {
            throw SpawnFailed(executable: executable, reason: String(cString: strerror(status)))
        }
        return ChildProcess(pid: pid)
    }

    /// The exit status once the child has ended (see `ended`), nil while it runs. Reaps it.
    public var terminationStatus: Int32? {
        ended.withLock { ended in
            if let ended { return ended }
            var status: Int32 = 0
            let result = waitpid(pid, &status, WNOHANG)
            guard result == pid else { return nil }
            let low = status & 0x7f
            ended = low == 0 ? (status >> 8) & 0xff : low
            return ended
        }
    }

    public var isRunning: Bool { terminationStatus == nil }

    /// Sends `signal` to the child unless it has already been reaped (its pid may be reused).
    public func send(_ signal: Int32) {
        ended.withLock { ended in
            if ended == nil { _ = kill(pid, signal) }
        }
    }

    /// Waits until the child has ended, for at most `limit`; false if it is still running then.
    public func waitForExit(within limit: Duration) -> Bool {
        let deadline = ContinuousClock.now.advanced(by: limit)
        while isRunning {
            if ContinuousClock.now >= deadline { return false }
            usleep(5_000)
        }
        return true
    }

    deinit {
        if isRunning { _ = kill(pid, SIGKILL) }
    }

    /// glibc's `posix_spawn_file_actions_addclosefrom_np`, looked up at run time: Swift's Glibc
    /// module does not export it. Nil on a C library without it; the tests' own descriptors are
    /// close-on-exec, so only descriptors opened by libraries without that flag would leak.
    private static let closeFromAction: ClosedFromFunction? = {
        guard let symbol = dlsym(dlopen(nil, RTLD_NOW), "posix_spawn_file_actions_addclosefrom_np") else { return nil }
        return unsafeBitCast(symbol, to: ClosedFromFunction.self)
    }()
    private typealias ClosedFromFunction = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
}

/// `posix_spawn` refused to start a program.
public struct SpawnFailed: Error, CustomStringConvertible {
    public let executable: String
    public let reason: String
    public var description: String { "could not start \(executable): \(reason)" }
}

/// A pipe whose two ends are close-on-exec in the test process; a child gets an end through
/// `ChildProcess.Stream.descriptor`, which `dup2` makes inheritable in the child only.
public struct PipeEnds: Sendable {
    public let read: Int32
    public let write: Int32

    public init() throws {
        var ends: [Int32] = [0, 0]
        guard pipe(&ends) == 0 else {
            throw SpawnFailed(executable: "pipe", reason: String(cString: strerror(errno)))
        }
        // Glibc's Swift module has no pipe2; a child spawned between the two calls still does
        // not inherit these, as `ChildProcess.spawn` closes everything above 2 in the child.
        _ = fcntl(ends[0], F_SETFD, FD_CLOEXEC)
        _ = fcntl(ends[1], F_SETFD, FD_CLOEXEC)
        (read, write) = (ends[0], ends[1])
    }
}

/// Writes all of `bytes` to `fd`, retrying on EINTR; stops at the first other error.
func writeAll(_ fd: Int32, _ bytes: Data) {
    bytes.withUnsafeBytes { buffer in
        var offset = 0
        while offset < buffer.count {
            let written = write(fd, buffer.baseAddress! + offset, buffer.count - offset)
            if written > 0 {
                offset += written
            } else if written < 0 && errno == EINTR {
                continue
            } else {
                return
            }
        }
    }
}

/// Reads `fd` until end of file, retrying on EINTR; stops at the first other error.
func readAll(_ fd: Int32) -> Data {
    var data = Data()
    var chunk = [UInt8](repeating: 0, count: 65_536)
    while true {
        let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
        if count > 0 {
            data.append(contentsOf: chunk[..<count])
        } else if count < 0 && errno == EINTR {
            continue
        } else {
            return data
        }
    }
}

private func withCStrings<R>(_ strings: [String], _ body: ([UnsafeMutablePointer<CChar>?]) -> R) -> R {
    let pointers = strings.map { strdup($0) } + [nil]
    defer { pointers.forEach { free($0) } }
    return body(pointers)
}
