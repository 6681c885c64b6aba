import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// A `GET` whose reply is a `text/event-stream`, read as it arrives on a connection of its own
/// (a keep-alive connection cannot carry other requests while a stream holds it).
///
/// The connection and the reply's head each have `timeout`; after the head the stream may
/// last forever, but it must never fall silent for `idleLimit` (the node sends keep-alive
/// comments), or it is closed as unreachable. The body is read no faster than `onEvent`
/// returns; a caller that hands events on must bound what it keeps.
enum EventStreamExchange {
    /// Runs the exchange until the node ends a 2xx stream (returns nil), the node answers with
    /// another status (returns that whole reply, its body cut at 64 KiB), the task is cancelled
    /// (returns nil), `onEvent` throws (its error passes through unchanged; a `CancellationError`
    /// returns nil), or the connection fails (throws `NodeHTTPError`). `headers` are sent after
    /// `Host`, `User-Agent` and `Accept`.
    static func run(
        address: NodeAddress,
        tls: ClientTLS?,
        pathAndQuery: String,
        headers extraHeaders: [(String, String)] = [],
        timeout: Duration,
        idleLimit: Duration,
        onEvent: (ServerSentEvent) throws -> Void
    ) async throws -> HTTPReply? {
        let asyncChannel: NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>
        let tlsRecord = TLSFailureRecord()
        do {
            asyncChannel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(TimeAmount(timeout))
                .channelOption(.socketOption(.tcp_nodelay), value: 1)
                .connect(host: address.host, port: address.port) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try HTTPConnection.addTLS(tls, for: address, record: tlsRecord, to: channel)
                        let pipeline = channel.pipeline.syncOperations
                        try pipeline.addHandler(IdleStateHandler(readTimeout: TimeAmount(idleLimit)))
                        try pipeline.addHTTPClientHandlers()
                        try pipeline.addHandler(CloseWhenSilent())
                        return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(
                            wrappingChannelSynchronously: channel)
                    }
                }
        } catch is CancellationError {
            return nil
        } catch ChannelError.connectTimeout {
            throw NodeHTTPError.timedOut(url: address.url)
        } catch {
            if let reason = tlsProblem(error) { throw NodeHTTPError.tls(url: address.url, reason: reason) }
            throw NodeHTTPError.unreachable(url: address.url, reason: describe(error))
        }

        // Closes the channel when the head has not arrived in time; `true` when it did so.
        let channel = asyncChannel.channel
        let headArrived = Mutex(false)
        let headTimer = Task { () -> Bool in
            do {
                try await Task.sleep(for: timeout)
            } catch {
                return false  // cancelled: the head came, or the exchange ended
            }
            guard !headArrived.withLock({ $0 }) else { return false }
            channel.close(promise: nil)
            return true
        }
        defer { headTimer.cancel() }
        /// Whether the head timer closed the channel; stops the timer first, so it never waits.
        func closedForLateHead() async -> Bool {
            headTimer.cancel()
            return await headTimer.value
        }

        var headers = HTTPHeaders()
        headers.add(name: "Host", value: address.hostHeader)
        headers.add(name: "User-Agent", value: "converge-kv")
        headers.add(name: "Accept", value: "text/event-stream")
        for (name, value) in extraHeaders { headers.add(name: name, value: value) }
        let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: pathAndQuery, headers: headers)

        do {
            return try await asyncChannel.executeThenClose { inbound, outbound -> HTTPReply? in
                try await outbound.write(contentsOf: [.head(head), .end(nil)])
                var parser = ServerSentEventParser()
                var responseHead: HTTPResponseHead?
                var errorBody: [UInt8] = []
                for try await part in inbound {
                    switch part {
                    case .head(let received):
                        if received.status.code < 200 { continue }
                        responseHead = received
                        headArrived.withLock { $0 = true }
                        headTimer.cancel()
                        let type = received.headers.first(name: "Content-Type") ?? ""
                        if (200..<300).contains(received.status.code),
                            !type.lowercased().hasPrefix("text/event-stream")
                        {
                            throw NodeHTTPError.badResponse(
                                "GET \(pathAndQuery.prefix { $0 != "?" }) replied with Content-Type '\(type)', not text/event-stream")
                        }
                    case .body(let buffer):
                        guard let responseHead else {
                            throw NodeHTTPError.badResponse("a reply body came before its head")
                        }
                        if (200..<300).contains(responseHead.status.code) {
                            for event in try parser.feed(buffer.readableBytesView) {
                                do {
                                    try onEvent(event)
                                } catch {
                                    throw ConsumerFailure(error: error)
                                }
                            }
                        } else if errorBody.count < 64 * 1024 {
                            errorBody.append(contentsOf: buffer.readableBytesView)
                        }
                    case .end:
                        guard let responseHead else { continue }
                        if !(200..<300).contains(responseHead.status.code) {
                            return HTTPReply(
                                status: Int(responseHead.status.code),
                                headers: responseHead.headers.map { ($0.name, $0.value) },
                                body: errorBody)
                        }
                        return nil
                    }
                }
                if Task.isCancelled { return nil }
                if responseHead == nil, await closedForLateHead() { throw NodeHTTPError.timedOut(url: address.url) }
                throw NodeHTTPError.unreachable(
                    url: address.url,
                    reason: responseHead == nil ? "the node closed the connection" : "the node closed the stream")
            }
        } catch let failure as ConsumerFailure {
            if failure.error is CancellationError { return nil }
            throw failure.error
        } catch let error as NodeHTTPError {
            if let reason = tlsRecord.failure {
                switch error {
                case .unreachable, .timedOut: throw NodeHTTPError.tls(url: address.url, reason: reason)
                case .invalidNodeURL, .badResponse, .tls: break
                }
            }
            throw error
        } catch is CancellationError {
            return nil
        } catch is CloseWhenSilent.Silence {
            throw NodeHTTPError.unreachable(
                url: address.url, reason: "the node sent nothing, not even a keep-alive, for \(idleLimit)")
        } catch let error as HTTPParserError {
            throw NodeHTTPError.badResponse("the reply is not valid HTTP/1.1 (\(error))")
        } catch {
            if Task.isCancelled { return nil }
            if let reason = tlsRecord.failure ?? tlsProblem(error) { throw NodeHTTPError.tls(url: address.url, reason: reason) }
            if await closedForLateHead() { throw NodeHTTPError.timedOut(url: address.url) }
            // An error that is not the connection's (nor TLS's) passes through unchanged.
            if !(error is ChannelError || error is IOError) { throw error }
            throw NodeHTTPError.unreachable(url: address.url, reason: describe(error))
        }
    }

    /// An error `onEvent` threw, carried out of the channel's scope so it reaches the caller
    /// unchanged rather than being read as a connection failure.
    private struct ConsumerFailure: Error {
        let error: any Error
    }
}

/// Closes the channel, failing the read in progress with `Silence`, when `IdleStateHandler`
/// reports that nothing was read for its read timeout.
final class CloseWhenSilent: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias InboundOut = HTTPClientResponsePart

    struct Silence: Error {}

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        context.fireChannelRead(data)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let idle = event as? IdleStateHandler.IdleStateEvent, idle == .read {
            context.fireErrorCaught(Silence())
            context.close(promise: nil)
        } else {
            context.fireUserInboundEventTriggered(event)
        }
    }
}
