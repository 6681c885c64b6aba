extension NodeHTTPClient {
    /// Sends `GET pathAndQuery` asking for a `text/event-stream` and hands each Server-Sent Event
    /// to `onEvent` as it arrives, on a connection of its own: the keep-alive connection that
    /// `send` uses stays free, and `close()` does not end the stream.
    ///
    /// Connecting and the reply's head have the client's `timeout`; after the head the stream
    /// may last forever, but a node silent for `idleLimit` (no event, no keep-alive comment)
    /// counts as `.unreachable`. The body is read no faster than `onEvent` returns, so a caller
    /// that hands events on must bound what it keeps.
    ///
    /// Returns nil when the node ended a 2xx stream or the task was cancelled; returns the whole
    /// reply (body cut at 64 KiB) when the node answered with another status. Throws
    /// `NodeHTTPError` when the connection failed or the reply is not an event stream; an error
    /// `onEvent` throws ends the stream and passes through unchanged, except a
    /// `CancellationError`, which ends it quietly (nil).
    public func eventStream(
        _ pathAndQuery: String, headers: [(String, String)] = [], idleLimit: Duration,
        onEvent: (ServerSentEvent) throws -> Void
    ) async throws -> HTTPReply? {
        try await EventStreamExchange.run(
            address: address, tls: tls, pathAndQuery: pathAndQuery, headers: headers, timeout: timeout,
            idleLimit: idleLimit, onEvent: onEvent)
    }
}
