#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A bare blocking TCP connection to 127.0.0.1, for tests that must misbehave below HTTP: send
/// half a request and stall, or hold thousands of connections open.
public final class RawConnection: @unchecked Sendable {
    // @unchecked: used by one test task at a time; `descriptor` changes only in `close()`.
    private var descriptor: Int32

    /// Connects to `port`; throws `LocalSocketError` when the connection is refused.
    public init(port: Int) throws {
        let fd = try makeTCPSocket()
        var address = loopbackAddress(port: port)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else {
            let code = errno
            _ = rawClose(fd)
            throw LocalSocketError(call: "connect", code: code)
        }
        descriptor = fd
    }

    /// Writes all of `bytes`; false if the peer closed the connection.
    @discardableResult
    public func send(_ bytes: [UInt8]) -> Bool {
        var sent = 0
        while sent < bytes.count {
            let written = bytes[sent...].withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) }
            guard written > 0 else { return false }
            sent += written
        }
        return true
    }

    /// Reads until the peer closes the connection or `timeout` seconds pass without a byte;
    /// returns what arrived and whether the peer closed it.
    public func readUntilClosed(timeout seconds: Int) -> (bytes: [UInt8], closed: Bool) {
        var limit = timeval(tv_sec: seconds, tv_usec: 0)
        _ = setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        var received: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
            if count > 0 {
                received += chunk[0..<count]
            } else {
                return (received, count == 0)  // 0: orderly close; -1: timeout or reset
            }
        }
    }

    /// Reads what is available, waiting up to `timeout` seconds for at least one byte; empty
    /// when the peer closed the connection or nothing came in time.
    public func receive(timeout seconds: Int) -> [UInt8] {
        var limit = timeval(tv_sec: seconds, tv_usec: 0)
        _ = setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        let count = chunk.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
        return count > 0 ? Array(chunk[0..<count]) : []
    }

    public func close() {
        guard descriptor >= 0 else { return }
        _ = rawClose(descriptor)
        descriptor = -1
    }

    deinit { close() }
}

#if canImport(Glibc)
    private let rawClose = Glibc.close
#else
    private let rawClose = Darwin.close
#endif
