#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The `kvnode` processes of a local cluster: started detached, recognized by their command
/// line, signalled, and waited for. Linux only (`/proc`, `POSIX_SPAWN_SETSID`).
enum NodeProcesses {
    /// The `kvnode` in the directory of the running `kv` (`/proc/self/exe`, symlinks resolved),
    /// so a cluster runs the build that the `kv` in hand belongs to.
    static func kvnodePath() throws(Failure) -> String {
        guard let resolved = realpath("/proc/self/exe", nil) else {
            throw Failure(message: "cannot find the running kv binary (/proc/self/exe)", status: ExitStatus.failed)
        }
        let exe = String(cString: resolved)
        free(resolved)
        let directory = exe.split(separator: "/", omittingEmptySubsequences: false).dropLast().joined(separator: "/")
        let path = directory + "/kvnode"
        guard access(path, X_OK) == 0 else {
            throw Failure(
                message: "cannot find kvnode next to kv (no executable \(path)); build both with 'swift build'",
                status: ExitStatus.failed)
        }
        return path
    }

    /// Starts `executable arguments` in a session of its own (`setsid`), with standard input
    /// from /dev/null, standard output and error appended to `logPath`, no other inherited
    /// descriptor, and default handling and no mask for the signals that stop it. Nothing ties
    /// it to this process or its terminal: `kv cluster up | cat` returns, and closing the
    /// terminal leaves it running. Returns its pid.
    static func spawnDetached(executable: String, arguments: [String], logPath: String) throws(Failure) -> pid_t {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, logPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        // Descriptors this process inherited without close-on-exec (a test runner's pipes, a
        // shell's extra redirections) must not reach the node, or it would hold them open.
        for descriptor in inheritableDescriptors() where descriptor > 2 {
            posix_spawn_file_actions_addclose(&actions, descriptor)
        }

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var noMask = sigset_t()
        sigemptyset(&noMask)
        posix_spawnattr_setsigmask(&attributes, &noMask)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGTERM, SIGINT, SIGHUP, SIGQUIT] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(
            &attributes, Int16(spawnSetSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))

        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var pid: pid_t = 0
        let result = posix_spawn(&pid, executable, &actions, &attributes, argv, environ)
        guard result == 0 else {
            throw Failure(
                message: "cannot start \(executable): \(String(cString: strerror(result)))",
                status: ExitStatus.failed)
        }
        return pid
    }

    /// glibc's `POSIX_SPAWN_SETSID` (2.26 and later): the child calls `setsid()`. Swift's Glibc
    /// module does not import it, since the header declares it only under `_GNU_SOURCE`.
    private static let spawnSetSID: Int32 = 0x80

    /// This process's open descriptors that an exec would keep (no close-on-exec).
    private static func inheritableDescriptors() -> [Int32] {
        guard let directory = opendir("/proc/self/fd") else { return [] }
        defer { closedir(directory) }
        var descriptors: [Int32] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            guard let descriptor = Int32(name) else { continue }
            let flags = fcntl(descriptor, F_GETFD)
            if flags >= 0, flags & FD_CLOEXEC == 0 { descriptors.append(descriptor) }
        }
        return descriptors
    }

    /// How a process this `kv` may have started is doing.
    enum Liveness: Equatable {
        case running
        /// Gone; with its exit status when this process reaped it (it was our child).
        case gone(status: Int32?)
    }

    /// Whether `pid` is a live `kvnode` serving node `id`. A pid that is gone, a zombie, or now
    /// belongs to another program (pids are reused) is not. Reaps `pid` when it is a child of
    /// this process that has exited.
    static func liveness(pid: pid_t, id: String) -> Liveness {
        guard pid > 0 else { return .gone(status: nil) }
        var status: Int32 = 0
        switch waitpid(pid, &status, WNOHANG) {
        case pid:
            return .gone(status: exitStatus(status))
        case 0:
            // Our child, not yet exited: an unreaped child's pid cannot have been reused, and
            // its /proc files may already read empty while it exits, which would lose its
            // status to the checks below (seen in CI: "node A exited as it started", no status).
            return .running
        default:
            break  // not our child (ECHILD): what /proc says about it decides
        }
        guard let stat = readProcFile("/proc/\(pid)/stat"),
            let close = stat.lastIndex(of: UInt8(ascii: ")")),
            close + 2 < stat.count
        else { return .gone(status: nil) }
        let state = stat[close + 2]
        if state == UInt8(ascii: "Z") || state == UInt8(ascii: "X") {
            // It exited after the waitpid above: reap it now when it is ours, for its status.
            let reaped = waitpid(pid, &status, WNOHANG) == pid
            return .gone(status: reaped ? exitStatus(status) : nil)
        }
        guard let commandLine = readProcFile("/proc/\(pid)/cmdline") else { return .gone(status: nil) }
        let words = commandLine.split(separator: 0, omittingEmptySubsequences: false).map {
            String(decoding: $0, as: UTF8.self)
        }
        guard let program = words.first, program.split(separator: "/").last == "kvnode" else {
            return .gone(status: nil)
        }
        let servesID = zip(words, words.dropFirst()).contains { $0 == "--id" && $1 == id }
        return servesID ? .running : .gone(status: nil)
    }

    static func isRunning(pid: pid_t?, id: String) -> Bool {
        guard let pid else { return false }
        return liveness(pid: pid, id: id) == .running
    }

    /// Sends `signal` to `pid`; false when there is no such process.
    @discardableResult
    static func send(_ signal: Int32, to pid: pid_t) -> Bool {
        kill(pid, signal) == 0
    }

    /// Waits until `pid` is no longer a running `kvnode` for `id`, or `timeout` passes; true
    /// when it is gone.
    static func waitUntilGone(pid: pid_t, id: String, timeout: Duration) async -> Bool {
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: timeout)
        while liveness(pid: pid, id: id) == .running {
            if clock.now >= deadline { return false }
            try? await Task.sleep(for: .milliseconds(20))  // polling to a deadline
        }
        return true
    }

    /// The status a shell would show for a `waitpid` result: the exit code, or 128 + signal.
    private static func exitStatus(_ status: Int32) -> Int32 {
        let signal = status & 0x7f
        return signal == 0 ? (status >> 8) & 0xff : 128 + signal
    }

    /// The whole of a small /proc file (their size reads as 0, so read to the end).
    private static func readProcFile(_ path: String) -> [UInt8]? {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else { return nil }
        defer { _ = close(descriptor) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                return nil
            }
            if count == 0 { return bytes }
            bytes.append(contentsOf: chunk[0..<count])
        }
    }
}
