/// Requests to one node over one keep-alive HTTP/1.1 connection (HTTPS when the URL says
/// `https`): the transport under `KVClient`, the pushers and pullers of `Replication`, and any
/// tool that needs a node's raw replies.
///
/// Requests go out on the connection one at a time, in the order they were made; concurrent
/// callers queue. When the node has closed the connection, the next request opens a new one. A
/// request is sent again only when it provably had no effect: it was never written (the
/// connection was found closed), or it is a `GET` or `HEAD` whose reused connection closed before
/// any reply. Any other request that may have reached the node (a `PUT`, a `POST`) is never
/// resent, since the node may have acted on it.
///
/// Every request, connecting included, has the whole `timeout` to complete, after which the
/// connection is closed and the request fails with `.timedOut`. Any status is a reply, not an
/// error; `send` throws only when no whole reply arrived. Call `close()` when done; a client
/// dropped without it closes its connection in the background.
public final class NodeHTTPClient: Sendable {
    let address: NodeAddress
    /// How long one request may take, connecting included.
    public let timeout: Duration
    /// How an `https` node is verified (nil for an `http` node).
    let tls: ClientTLS?
    let owner: ConnectionOwner

    /// How often one request may be resent after the connection closed under it.
    private static let maxResends = 3

    /// Prepares a client for the node at `node` (`http://HOST:PORT` or `https://HOST:PORT`);
    /// connects on first use. Throws `.invalidNodeURL` for anything else.
    ///
    /// `tls` says how an `https` node is verified and the certificate shown to it; nil trusts
    /// the system's store (and throws `.tls` when that store cannot be used). It is not used for
    /// an `http` node.
    public init(node: String, timeout: Duration = .seconds(10), tls: ClientTLS? = nil) throws(NodeHTTPError) {
        let address = try NodeAddress(parsing: node)
        self.address = address
        self.timeout = timeout
        self.tls = try Self.tls(tls, for: address)
        self.owner = ConnectionOwner(address: address, tls: self.tls)
    }

    /// The node's URL, normalized to `http://HOST:PORT` or `https://HOST:PORT`.
    public var url: String { address.url }

    /// `tls`, or for an `https` address without one, the system's trust store.
    private static func tls(_ tls: ClientTLS?, for address: NodeAddress) throws(NodeHTTPError) -> ClientTLS? {
        guard address.isSecure else { return nil }
        if let tls { return tls }
        do {
            return try ClientTLS()
        } catch {
            throw .tls(url: address.url, reason: "cannot use the system's trust store: \(error)")
        }
    }

    /// Sends one request as given (`Host`, `User-Agent` and `Content-Length` are added) and
    /// returns whatever whole reply came, any status. Throws `.unreachable`, `.timedOut`, `.tls`
    /// or `.badResponse` when no whole reply arrived, after the resends described on the type.
    public func send(
        _ method: String, _ pathAndQuery: String, body: [UInt8] = [],
        headers: [(String, String)] = []
    ) async throws(NodeHTTPError) -> HTTPReply {
        let request = HTTPRequest(
            method: method, pathAndQuery: pathAndQuery, headers: headers, body: body)
        let clock = ContinuousClock()
        let deadline = clock.now.advanced(by: timeout)
        var resends = 0
        while true {
            let remaining = clock.now.duration(to: deadline)
            guard remaining > .zero else { throw .timedOut(url: url) }
            let (connection, reused) = try await owner.connection(timeout: remaining)
            let timer = Task { () -> Bool in
                do {
                    try await Task.sleep(until: deadline, clock: clock)
                } catch {
                    return false  // cancelled: the exchange ended first
                }
                connection.close()
                return true
            }
            let outcome = await connection.exchange(request)
            timer.cancel()
            let timedOut = await timer.value
            if case .reply(let reply) = outcome { return reply }
            if let tlsFailure = connection.tlsFailure {
                await owner.discard(connection)
                throw .tls(url: url, reason: tlsFailure)
            }

            let failure: String
            switch outcome {
            case .reply(let reply):
                return reply
            case .notSent:
                await owner.discard(connection)
                if timedOut { throw .timedOut(url: url) }
                if resends < Self.maxResends {
                    resends += 1
                    continue
                }
                failure = "the node closed every connection before the request could be sent"
            case .closedBeforeReply(let reason):
                await owner.discard(connection)
                if timedOut { throw .timedOut(url: url) }
                if reused && request.hasNoEffect && resends < Self.maxResends {
                    resends += 1
                    continue
                }
                // A TLS port closes on a plain request without a word.
                failure = reused || address.isSecure ? reason : reason + " (if it serves HTTPS, use an https:// URL)"
            case .failed(let reason):
                await owner.discard(connection)
                if timedOut { throw .timedOut(url: url) }
                failure = reason
            case .malformed(let reason):
                await owner.discard(connection)
                throw .badResponse(reason)
            }
            throw .unreachable(url: url, reason: failure)
        }
    }

    /// Closes the connection; requests made afterwards fail with `.unreachable`. An event stream
    /// has a connection of its own and ends when its task is cancelled, not here.
    public func close() async {
        await owner.close()
    }
}
