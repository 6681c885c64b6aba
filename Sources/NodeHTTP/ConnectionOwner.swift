import NIOCore

/// The one owner of a client's connection: hands out the open connection, or makes a new one
/// when there is none or the node closed the last one.
///
/// Connecting is shared: callers that arrive while a connection is being made wait for that one
/// instead of opening their own. Requests on the connection are serialized by the connection
/// itself.
actor ConnectionOwner {
    let address: NodeAddress
    let tls: ClientTLS?
    private var current: HTTPConnection?
    private var connecting: Task<HTTPConnection, any Error>?
    private var isClosed = false

    init(address: NodeAddress, tls: ClientTLS?) {
        self.address = address
        self.tls = tls
    }

    /// An open connection, and whether it served requests before (only then can a close by the
    /// node, on an idle connection, explain a missing reply).
    func connection(timeout: Duration) async throws(NodeHTTPError) -> (HTTPConnection, reused: Bool) {
        guard !isClosed else {
            throw .unreachable(url: address.url, reason: "the client was closed")
        }
        if let current, current.isOpen { return (current, true) }
        current?.close()
        current = nil

        let task: Task<HTTPConnection, any Error>
        if let connecting {
            task = connecting
        } else {
            let address = self.address
            let tls = self.tls
            let connectTimeout = TimeAmount(timeout)
            task = Task { try await HTTPConnection.connect(to: address, tls: tls, timeout: connectTimeout) }
            connecting = task
        }
        do {
            let connection = try await task.value
            if connecting == task {
                connecting = nil
                current = connection
            }
            if isClosed { connection.close() }
            return (connection, false)
        } catch {
            if connecting == task { connecting = nil }
            if case ChannelError.connectTimeout = error { throw .timedOut(url: address.url) }
            if let reason = tlsProblem(error) { throw .tls(url: address.url, reason: reason) }
            throw .unreachable(url: address.url, reason: describe(error))
        }
    }

    /// Forgets `connection` (it failed or timed out) so the next request makes a new one.
    func discard(_ connection: HTTPConnection) {
        connection.close()
        if current === connection { current = nil }
    }

    /// Closes the connection and refuses later requests.
    func close() async {
        isClosed = true
        let last = current
        current = nil
        if let last {
            last.close()
            await last.closed()
        }
    }
}
