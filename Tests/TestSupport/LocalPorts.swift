#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Why a test's local socket could not be set up.
public struct LocalSocketError: Error, CustomStringConvertible {
    public let call: String
    public let code: Int32
    public var description: String { "\(call) failed: errno \(code)" }
}

/// A TCP port on 127.0.0.1 that nothing listens on: bound on port 0 to let the kernel pick a
/// free one, then closed. For tests of "connection refused"; another process could take the
/// port in between, which on a test machine is rare enough.
public func unusedLocalPort() throws -> Int {
    let socket = try LocalListener(listen: false)
    let port = socket.port
    socket.close()
    return port
}

/// The first of `count` consecutive ports on 127.0.0.1 that could all be bound just now, for a
/// command that takes a base port (`kv cluster up --base-port`). Bases are drawn at random
/// from 20000–32000, below Linux's ephemeral range (32768 and up), so the kernel's picks for
/// outgoing connections and `unusedLocalPort` cannot land in the range. Another process could
/// still take a port in between: callers retry on a collision.
public func unusedLocalPortRange(count: Int) throws -> Int {
    for _ in 0..<200 {
        let base = Int.random(in: 20_000...(32_000 - count))
        let free = (base..<(base + count)).allSatisfy { port in
            guard let socket = try? LocalListener(listen: false, port: port) else { return false }
            socket.close()
            return true
        }
        if free { return base }
    }
    throw LocalSocketError(call: "bind (no \(count) consecutive free ports found)", code: EADDRINUSE)
}

/// A socket on 127.0.0.1 with a kernel-chosen port that accepts connections (the kernel
/// completes the handshake from its backlog) but never reads or answers: a node that hangs. For
/// timeout tests. Closed by `close()` or when dropped.
public final class LocalListener: @unchecked Sendable {
    // @unchecked: `descriptor` is written only by `close()`, which the owning test calls once.
    public let port: Int
    private var descriptor: Int32

    public convenience init() throws {
        try self.init(listen: true)
    }

    fileprivate init(listen: Bool, port: Int = 0) throws {
        let socket = try openLoopbackSocket(backlog: listen ? 16 : nil, port: port)
        self.port = socket.port
        self.descriptor = socket.descriptor
    }

    /// `http://127.0.0.1:PORT`.
    public var url: String { "http://127.0.0.1:\(port)" }

    public func close() {
        guard descriptor >= 0 else { return }
        _ = systemClose(descriptor)
        descriptor = -1
    }

    deinit { close() }
}

/// A new IPv4 TCP socket; the caller owns the descriptor.
func makeTCPSocket() throws -> Int32 {
    #if canImport(Glibc)
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    #else
        let fd = socket(AF_INET, SOCK_STREAM, 0)
    #endif
    guard fd >= 0 else { throw LocalSocketError(call: "socket", code: errno) }
    return fd
}

/// 127.0.0.1:`port` as a socket address.
func loopbackAddress(port: Int) -> sockaddr_in {
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = UInt16(port).bigEndian
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    return address
}

/// A TCP socket bound to 127.0.0.1 on a kernel-chosen port, listening with `backlog` when one
/// is given: the one place tests open a loopback socket (`LocalListener`, `unusedLocalPort`,
/// `FaultProxy`). The caller owns the descriptor.
func openLoopbackSocket(backlog: Int32?, port: Int = 0) throws -> (descriptor: Int32, port: Int) {
    let fd = try makeTCPSocket()
    var address = loopbackAddress(port: port)
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
    }
    guard bound == 0 else {
        let code = errno
        _ = systemClose(fd)
        throw LocalSocketError(call: "bind", code: code)
    }
    if let backlog {
        guard systemListen(fd, backlog) == 0 else {
            let code = errno
            _ = systemClose(fd)
            throw LocalSocketError(call: "listen", code: code)
        }
    }
    let named = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    guard named == 0 else {
        let code = errno
        _ = systemClose(fd)
        throw LocalSocketError(call: "getsockname", code: code)
    }
    return (fd, Int(UInt16(bigEndian: address.sin_port)))
}

#if canImport(Glibc)
    let systemClose = Glibc.close
    private let systemListen = Glibc.listen
#else
    let systemClose = Darwin.close
    private let systemListen = Darwin.listen
#endif
