#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif
import Dispatch
import Foundation
import Synchronization

/// A TCP proxy on 127.0.0.1 that forwards every connection it accepts to a target port on
/// 127.0.0.1, with faults a test changes while it runs: the network between two nodes, made
/// controllable.
///
/// Put one proxy on each ordered pair of nodes (node X's `--peer Y=URL` names proxy X→Y); then
/// a proxy's faults are the link from X to Y, and a partition is set per direction.
///
/// Promises:
/// - With `Faults.none` the bytes of each direction arrive in order, unchanged, and a half-close
///   (FIN) is passed on, so HTTP keep-alive and `Connection: close` work as without the proxy.
/// - A change of faults applies to every connection accepted afterwards, and to open ones at
///   once for `refuse` (they are reset before `set` returns, including one being accepted) and
///   for `blackholed` (no chunk is forwarded after `set` returns); delay and loss apply from
///   the next chunk.
/// - Bytes are never reordered, duplicated or silently dropped from the middle of a stream (TCP
///   cannot do that either): a lost chunk resets its connection (both sides see RST).
/// - `close()` (or dropping the proxy) resets every open connection and stops listening; no
///   thread of the proxy outlives `close()` by more than about 50 ms.
///
/// Each connection costs two threads (one per direction) blocked in `poll`, so the proxy suits
/// tests with tens of connections, not load tests.
public final class FaultProxy: Sendable {
    /// One direction of a proxied connection.
    public enum Direction: Sendable, Hashable, CaseIterable, CustomStringConvertible {
        /// From the side that connected to the target: requests.
        case toTarget
        /// From the target back to the side that connected: replies.
        case toClient

        public var description: String { self == .toTarget ? "requests" : "replies" }
    }

    /// What the proxy does to traffic. `Faults()` (also `.none`) forwards everything at once.
    public struct Faults: Sendable, Equatable, CustomStringConvertible {
        /// New connections are accepted and reset at once, and setting it resets the open ones:
        /// the target looks down (`connection reset by peer`), and the sender learns it at once.
        public var refuse: Bool
        /// Directions whose bytes are held, not forwarded, while set. Connections stay open and
        /// new ones are accepted, so a sender sees silence and waits for its own timeout (a
        /// silent partition). Clearing it delivers what was held, late, as TCP's retransmissions
        /// would after a partition heals; a request whose sender gave up meanwhile arrives anyway.
        public var blackholed: Set<Direction>
        /// Waited before each chunk is forwarded, in both directions (the link's latency).
        public var delay: Duration
        /// Up to this much more, chosen at random per chunk.
        public var jitter: Duration
        /// The probability (0…1) that a chunk is lost. A lost chunk resets its connection:
        /// the receiver may see a truncated request or reply, then RST.
        public var lossRate: Double

        public init(
            refuse: Bool = false, blackholed: Set<Direction> = [], delay: Duration = .zero,
            jitter: Duration = .zero, lossRate: Double = 0
        ) {
            self.refuse = refuse
            self.blackholed = blackholed
            self.delay = delay
            self.jitter = jitter
            self.lossRate = lossRate
        }

        /// Forward everything, at once.
        public static let none = Faults()
        /// The target looks down: every connection is reset.
        public static let down = Faults(refuse: true)
        /// A silent partition: nothing passes either way and nothing is refused.
        public static let silent = Faults(blackholed: Set(Direction.allCases))

        public var description: String {
            var parts: [String] = []
            if refuse { parts.append("refuse") }
            if !blackholed.isEmpty { parts.append("blackhole \(blackholed.map(\.description).sorted().joined(separator: "+"))") }
            if delay > .zero || jitter > .zero { parts.append("delay \(delay)+\(jitter)") }
            if lossRate > 0 { parts.append("loss \(lossRate)") }
            return parts.isEmpty ? "pass" : parts.joined(separator: ", ")
        }
    }

    /// What the proxy has done since it started, for tests to check that a fault really bit.
    public struct Statistics: Sendable, Equatable {
        /// Connections accepted and forwarded to the target.
        public var forwarded = 0
        /// Connections reset on accept: `refuse` was set, or the target refused the connection.
        public var refused = 0
        /// Chunks lost to `lossRate` (each reset its connection).
        public var lostChunks = 0
        /// Open connections reset by `resetConnections()` or by setting `refuse`.
        public var reset = 0
        /// Bytes forwarded, both directions.
        public var bytes = 0

        public init() {}
    }

    private let core: ProxyCore

    /// The port the proxy listens on, on 127.0.0.1.
    public var port: Int { core.port }

    /// `http://127.0.0.1:PORT`: the URL to give a node in place of its peer's.
    public var url: String { "http://127.0.0.1:\(core.port)" }

    /// Starts listening. Connections accepted before `targetPort` is set (0) are reset; `seed`
    /// drives the jitter and loss decisions.
    public init(targetPort: Int = 0, seed: UInt64 = 0) throws {
        core = try ProxyCore(targetPort: targetPort, seed: seed)
        let core = self.core
        Thread.detachNewThread { core.acceptLoop() }
    }

    /// The port connections are forwarded to.
    public var targetPort: Int {
        get { core.state.withLock { $0.targetPort } }
        set { core.state.withLock { $0.targetPort = newValue } }
    }

    /// The faults in force.
    public var faults: Faults { core.state.withLock { $0.faults } }

    /// Puts `faults` in force; with `refuse`, every open connection is reset at once.
    public func set(_ faults: Faults) {
        core.state.withLock { $0.faults = faults }
        if faults.refuse { core.resetAll() }
    }

    /// Resets every open connection (RST to both sides); new connections are not affected.
    public func resetConnections() { core.resetAll() }

    public var statistics: Statistics { core.state.withLock { $0.statistics } }

    /// Connections open now.
    public var openConnections: Int { core.state.withLock { $0.connections.count } }

    /// Stops listening and resets every open connection. Idempotent.
    public func close() { core.close() }

    deinit { core.close() }
}

/// The proxy's sockets and state, shared by its threads; `FaultProxy` is the handle a test holds,
/// so dropping it closes the proxy although the threads still reference this.
private final class ProxyCore: Sendable {
    struct State: ~Copyable {
        var faults = FaultProxy.Faults.none
        var targetPort: Int
        var connections: [Int: ProxiedConnection] = [:]
        var nextConnection = 0
        var statistics = FaultProxy.Statistics()
        var random: SeededRandom
        var closing = false
    }

    let port: Int
    let state: Mutex<State>
    private let listener: Int32
    private let acceptStopped = DispatchSemaphore(value: 0)
    private let closed = Mutex(false)

    init(targetPort: Int, seed: UInt64) throws {
        let socket = try openLoopbackSocket(backlog: 128)
        listener = socket.descriptor
        port = socket.port
        state = Mutex(State(targetPort: targetPort, random: SeededRandom(seed: seed)))
        setNonBlocking(listener)
    }

    func close() {
        let first = closed.withLock { closed in
            defer { closed = true }
            return !closed
        }
        guard first else { return }
        state.withLock { $0.closing = true }
        resetAll(count: false)
        acceptStopped.wait()
    }

    func resetAll(count: Bool = true) {
        let open = state.withLock { state in
            if count { state.statistics.reset += state.connections.count }
            return Array(state.connections.values)
        }
        for connection in open { connection.abort() }
    }

    // MARK: Accepting

    func acceptLoop() {
        while !state.withLock({ $0.closing }) {
            guard waitUntilReady(listener, events: Int16(POLLIN)) else { continue }
            let client = accept(listener, nil, nil)
            guard client >= 0 else { continue }
            let (faults, targetPort) = state.withLock { ($0.faults, $0.targetPort) }
            guard !faults.refuse, targetPort > 0, let target = connectLoopback(port: targetPort) else {
                closeWithReset(client)
                state.withLock { $0.statistics.refused += 1 }
                continue
            }
            for descriptor in [client, target] {
                setNonBlocking(descriptor)
                var one: Int32 = 1
                _ = setsockopt(descriptor, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
                #if canImport(Darwin)
                    _ = setsockopt(descriptor, SOL_SOCKET, SO_NOSIGPIPE, &one, socklen_t(MemoryLayout<Int32>.size))
                #endif
            }
            let connection = ProxiedConnection(client: client, target: target)
            // Registered under the lock that `set` takes: a `refuse` set while this connection
            // was being made either sees it registered (and resets it) or is seen here.
            let id = state.withLock { state -> Int? in
                guard !state.faults.refuse else {
                    state.statistics.refused += 1
                    return nil
                }
                state.nextConnection += 1
                state.connections[state.nextConnection] = connection
                state.statistics.forwarded += 1
                return state.nextConnection
            }
            guard let id else {
                closeWithReset(client)
                closeWithReset(target)
                continue
            }
            Thread.detachNewThread { self.pump(connection, id: id, from: client, to: target, .toTarget) }
            Thread.detachNewThread { self.pump(connection, id: id, from: target, to: client, .toClient) }
        }
        _ = systemClose(listener)
        acceptStopped.signal()
    }

    // MARK: Forwarding

    /// Moves bytes one way until end of stream, an error, or an abort, applying the faults in
    /// force to each chunk.
    private func pump(
        _ connection: ProxiedConnection, id: Int, from source: Int32, to destination: Int32,
        _ direction: FaultProxy.Direction
    ) {
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while !connection.isAborted {
            let faults = state.withLock { $0.faults }
            if faults.blackholed.contains(direction) {
                // Leave the bytes in the kernel's buffers: the sender sees a window that stops
                // moving, as over a link that drops every packet.
                usleep(10_000)
                continue
            }
            guard waitUntilReady(source, events: Int16(POLLIN)) else { continue }
            let count = buffer.withUnsafeMutableBytes { read(source, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EAGAIN || errno == EINTR { continue }
                connection.abort()
                break
            }
            if count == 0 {
                _ = shutdown(destination, Int32(SHUT_WR))
                break
            }
            // Faults set while this chunk was awaited apply to it: a cut made by `set` holds
            // the chunk from that moment, not one poll interval later.
            var current = state.withLock { $0.faults }
            while current.blackholed.contains(direction), !connection.isAborted {
                usleep(10_000)
                current = state.withLock { $0.faults }
            }
            let (wait, lost) = state.withLock { state -> (Duration, Bool) in
                var wait = current.delay
                if current.jitter > .zero {
                    let limit = max(1, current.jitter.nanoseconds)
                    wait += .nanoseconds(Int64.random(in: 0...limit, using: &state.random))
                }
                let lost = current.lossRate > 0 && Double.random(in: 0..<1, using: &state.random) < current.lossRate
                if lost { state.statistics.lostChunks += 1 }
                return (wait, lost)
            }
            if wait > .zero { sleep(wait, unlessAborted: connection) }
            if lost {
                connection.abort()
                break
            }
            guard send(buffer[..<count], to: destination, unlessAborted: connection) else {
                connection.abort()
                break
            }
            state.withLock { $0.statistics.bytes += count }
        }
        if connection.pumpStopped() {
            _ = state.withLock { $0.connections.removeValue(forKey: id) }
        }
    }

    private func send(_ bytes: ArraySlice<UInt8>, to destination: Int32, unlessAborted connection: ProxiedConnection) -> Bool {
        var offset = bytes.startIndex
        while offset < bytes.endIndex {
            if connection.isAborted { return false }
            let sent = bytes[offset...].withUnsafeBytes {
                systemSend(destination, $0.baseAddress, $0.count, sendFlags)
            }
            if sent < 0 {
                guard errno == EAGAIN || errno == EINTR else { return false }
                _ = waitUntilReady(destination, events: Int16(POLLOUT))
                continue
            }
            offset += sent
        }
        return true
    }

    private func sleep(_ duration: Duration, unlessAborted connection: ProxiedConnection) {
        let deadline = ContinuousClock.now.advanced(by: duration)
        while !connection.isAborted {
            let left = ContinuousClock.now.duration(to: deadline)
            guard left > .zero else { return }
            usleep(useconds_t(min(left.nanoseconds / 1000, 20_000)))
        }
    }
}

/// Both sockets of one proxied connection. The two pumps share it; the last to stop closes both
/// sockets, with RST if the connection was aborted, so no descriptor is closed while the other
/// pump may still use it.
private final class ProxiedConnection: Sendable {
    let client: Int32
    let target: Int32
    private let state = Mutex((aborted: false, running: 2))

    init(client: Int32, target: Int32) {
        self.client = client
        self.target = target
    }

    var isAborted: Bool { state.withLock { $0.aborted } }

    /// Makes both pumps stop within one poll interval and the close send RST.
    func abort() { state.withLock { $0.aborted = true } }

    /// Called once by each pump as it stops; returns true for the last one, which closed both
    /// sockets.
    func pumpStopped() -> Bool {
        let (last, aborted) = state.withLock { state in
            state.running -= 1
            return (state.running == 0, state.aborted)
        }
        guard last else { return false }
        if aborted {
            closeWithReset(client)
            closeWithReset(target)
        } else {
            _ = systemClose(client)
            _ = systemClose(target)
        }
        return true
    }
}

// MARK: Socket helpers

#if canImport(Glibc)
    private let systemSend = Glibc.send
    /// A write to a socket the peer has reset must fail with EPIPE, not kill the test process.
    private let sendFlags = Int32(MSG_NOSIGNAL)
#else
    private let systemSend = Darwin.send
    private let sendFlags: Int32 = 0  // SO_NOSIGPIPE is set on each socket instead
#endif

/// Waits up to 50 ms for `events` on `descriptor`; true when it is ready (or in error, which
/// the next call reports).
private func waitUntilReady(_ descriptor: Int32, events: Int16) -> Bool {
    var entry = pollfd(fd: descriptor, events: events, revents: 0)
    return poll(&entry, 1, 50) > 0
}

private func setNonBlocking(_ descriptor: Int32) {
    let flags = fcntl(descriptor, F_GETFL)
    _ = fcntl(descriptor, F_SETFL, flags | O_NONBLOCK)
}

/// Closes a socket so the peer gets RST instead of FIN (SO_LINGER with a zero timeout).
private func closeWithReset(_ descriptor: Int32) {
    var option = linger(l_onoff: 1, l_linger: 0)
    _ = setsockopt(descriptor, SOL_SOCKET, SO_LINGER, &option, socklen_t(MemoryLayout<linger>.size))
    _ = systemClose(descriptor)
}

/// A blocking connect to 127.0.0.1:`port` (immediate on loopback); nil when refused.
private func connectLoopback(port: Int) -> Int32? {
    guard let descriptor = try? makeTCPSocket() else { return nil }
    #if canImport(Darwin)
        var one: Int32 = 1
        _ = setsockopt(descriptor, SOL_SOCKET, SO_NOSIGPIPE, &one, socklen_t(MemoryLayout<Int32>.size))
    #endif
    var address = loopbackAddress(port: port)
    let connected = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
        }
    }
    guard connected == 0 else {
        _ = systemClose(descriptor)
        return nil
    }
    return descriptor
}

extension Duration {
    /// The whole duration in nanoseconds (saturating is not needed for test-sized durations).
    fileprivate var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}
