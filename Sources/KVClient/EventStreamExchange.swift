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
    /// Runs the exchange until the node ends the reply (returns), `onEvent` throws, the task is
    /// cancelled (returns), or the connection fails (throws `KVClientError`). `authorization`
    /// is sent as the `Authorization` header when given.
    static func run(
        address: NodeAddress,
        tls: ClientTLS?,
        pathAndQuery: String,
        authorization: String? = nil,
        timeout: Duration,
        idleLimit: Duration,
        onEvent: (ServerSentEvent) throws -> Void
    ) async throws {
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
            return
        } catch ChannelError.connectTimeout {
            throw KVClientError.timedOut(url: address.url)
        } catch {
            if let reason = tlsProblem(error) { throw KVClientError.tls(url: address.url, reason: reason) }
            throw KVClientError.unreachable(url: address.url, reason: describe(error))
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
        if let authorization { headers.add(name: "Authorization", value: authorization) }
        let head = HTTPRequestHead(version: .http1_1, method: .GET, uri: pathAndQuery, headers: headers)

        do {
            try await asyncChannel.executeThenClose { inbound, outbound in
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
                            throw KVClientError.badResponse(
                                "GET \(pathAndQuery.prefix { $0 != "?" }) replied with Content-Type '\(type)', not text/event-stream")
                        }
                    case .body(let buffer):
                        guard let responseHead else {
                            throw KVClientError.badResponse("a reply body came before its head")
                        }
                        if (200..<300).contains(responseHead.status.code) {
                            for event in try parser.feed(buffer.readableBytesView) { try onEvent(event) }
                        } else if errorBody.count < 64 * 1024 {
                            errorBody.append(contentsOf: buffer.readableBytesView)
                        }
                    case .end:
                        guard let responseHead else { continue }
                        if !(200..<300).contains(responseHead.status.code) {
                            throw KVClient.serverError(
                                HTTPReply(
                                    status: Int(responseHead.status.code),
                                    headers: responseHead.headers.map { ($0.name, $0.value) },
                                    body: errorBody))
                        }
                        return
                    }
                }
                if Task.isCancelled { return }
                if responseHead == nil, await closedForLateHead() { throw KVClientError.timedOut(url: address.url) }
                throw KVClientError.unreachable(
                    url: address.url,
                    reason: responseHead == nil ? "the node closed the connection" : "the node closed the stream")
            }
        } catch let error as KVClientError {
            if let reason = tlsRecord.failure, [.unreachable, .timedOut].contains(error.kind) {
                throw KVClientError.tls(url: address.url, reason: reason)
            }
            throw error
        } catch is CancellationError {
            return
        } catch is CloseWhenSilent.Silence {
            throw KVClientError.unreachable(
                url: address.url, reason: "the node sent nothing, not even a keep-alive, for \(idleLimit)")
        } catch let error as HTTPParserError {
            throw KVClientError.badResponse("the reply is not valid HTTP/1.1 (\(error))")
        } catch {
            if Task.isCancelled { return }
            if let reason = tlsRecord.failure ?? tlsProblem(error) { throw KVClientError.tls(url: address.url, reason: reason) }
            if await closedForLateHead() { throw KVClientError.timedOut(url: address.url) }
            // onEvent's own errors pass through unchanged.
            if !(error is ChannelError || error is IOError) { throw error }
            throw KVClientError.unreachable(url: address.url, reason: describe(error))
        }
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
