import NIOCore
import NIOSSL
import NIOHTTP1

/// Serves the requests of one HTTP/1.1 connection, one at a time, in the order they came.
///
/// It collects a request's body up to the limit its route allows, hands the request to
/// `KVResponder.serve`, and writes the response from whichever thread finishes it (the event
/// loop itself for a GET, the store's writer thread for a PUT, a task for the rest) without
/// a detour through the cooperative pool. A request refused from its head alone (too large, a
/// peer without the token) is answered at once and its body is read and dropped, so the client
/// can read the answer and reuse the connection. Read-idle for the idle timeout closes the
/// connection unless a response is being produced (a watch may stay silent for long).
///
/// Pipelining is its own job, not `HTTPServerPipelineHandler`'s: that handler holds back the
/// channel's `read` until each response has ended, and NIO answers a held-back read by taking
/// the socket out of epoll and putting it back — two `epoll_ctl` calls per request whenever the
/// response comes later than the request's read (every PUT, which waits for its commit).
/// Here parts that arrive while a response is pending wait in `queued`, and reading goes on
/// unless a pipelining client has more than `maxQueuedParts` parts or `maxQueuedBytes` of
/// body queued. A graceful shutdown (`ChannelShouldQuiesceEvent`) closes the connection at
/// once when it is between requests, else after the response in flight.
final class HTTPConnectionHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private enum State {
        /// Between requests.
        case idle
        /// Collecting the body of `head`, at most `limit` bytes.
        case reading(head: HTTPRequestHead, body: ByteBuffer?, limit: Int)
        /// Already answered from the head; dropping the rest of the request.
        case discarding(keepAlive: Bool, dropped: Int)
        /// The request is complete and its response is being produced or written.
        case responding
    }

    /// Body bytes dropped after an early answer before the connection is closed instead.
    static let maxDiscardBytes = 64 << 20
    /// Pipelined parts, and their body bytes, held while a response is pending before the
    /// connection stops reading.
    static let maxQueuedParts = 64
    static let maxQueuedBytes = 1 << 20

    private let responder: KVResponder
    private var state = State.idle
    private var stream: Task<Void, Never>?
    private var queued = CircularBuffer<HTTPServerRequestPart>()
    private var queuedBytes = 0
    private var readHeldBack = false
    private var draining = false
    private var quiescing = false

    init(responder: KVResponder) {
        self.responder = responder
    }

    /// Whether this connection is TLS and the client presented a certificate (verified in the
    /// handshake against the node's CA file).
    private static func presentedCertificate(_ context: ChannelHandlerContext) -> Bool {
        ((try? context.pipeline.syncOperations.nioSSL_peerCertificate()) ?? nil) != nil
    }

    // MARK: Reading requests in order

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        if quiescing, case .idle = state { return }  // closing: no new request is started
        if case .responding = state {
            queue(part)
        } else if !queued.isEmpty {
            queue(part)
            drain(context: context)
        } else {
            handle(part, context: context)
        }
    }

    func read(context: ChannelHandlerContext) {
        if queued.count >= Self.maxQueuedParts || queuedBytes >= Self.maxQueuedBytes {
            readHeldBack = true
        } else {
            context.read()
        }
    }

    private func queue(_ part: HTTPServerRequestPart) {
        if case .body(let chunk) = part { queuedBytes += chunk.readableBytes }
        queued.append(part)
    }

    /// Hands queued parts on while no response is pending; reads again once the queue is short.
    private func drain(context: ChannelHandlerContext) {
        guard !draining else { return }  // a response that ends inside `handle` comes back here
        draining = true
        defer { draining = false }
        while !queued.isEmpty {
            if case .responding = state { break }
            if quiescing, case .idle = state {
                queued.removeAll()
                queuedBytes = 0
                break
            }
            let part = queued.removeFirst()
            if case .body(let chunk) = part { queuedBytes -= chunk.readableBytes }
            handle(part, context: context)
        }
        if readHeldBack, queued.count < Self.maxQueuedParts, queuedBytes < Self.maxQueuedBytes {
            readHeldBack = false
            context.read()
        }
    }

    private func handle(_ part: HTTPServerRequestPart, context: ChannelHandlerContext) {
        switch part {
        case .head(let head):
            let screening = responder.screen(
                head, presentedCertificate: responder.peersNeedCertificates && Self.presentedCertificate(context))
            if let refusal = screening.refusal {
                state = .discarding(keepAlive: head.isKeepAlive, dropped: 0)
                write(refusal, version: head.version, keepAlive: head.isKeepAlive, context: context)
            } else {
                state = .reading(head: head, body: nil, limit: screening.bodyLimit)
            }
        case .body(var chunk):
            switch state {
            case .reading(let head, var body, let limit):
                state = .responding  // drop the state's reference, so appending does not copy
                let size = (body?.readableBytes ?? 0) + chunk.readableBytes
                guard size <= limit else {
                    state = .discarding(keepAlive: head.isKeepAlive, dropped: size)
                    write(responder.refuseOversizedBody(head), version: head.version, keepAlive: head.isKeepAlive, context: context)
                    return
                }
                if var collected = body.take() {
                    collected.writeBuffer(&chunk)
                    body = collected
                } else {
                    body = chunk
                }
                state = .reading(head: head, body: body, limit: limit)
            case .discarding(let keepAlive, let dropped):
                let total = dropped + chunk.readableBytes
                state = .discarding(keepAlive: keepAlive, dropped: total)
                if total > Self.maxDiscardBytes { context.close(promise: nil) }
            case .idle, .responding:
                break
            }
        case .end:
            switch state {
            case .reading(let head, let body, _):
                state = .responding
                let request = ServerRequest(head: head, body: body ?? context.channel.allocator.buffer(capacity: 0))
                let loop = context.eventLoop
                let bound = NIOLoopBound((handler: self, context: context), eventLoop: loop)
                responder.serve(request) { response in
                    if loop.inEventLoop {
                        bound.value.handler.write(response, version: head.version, keepAlive: head.isKeepAlive, context: bound.value.context)
                    } else {
                        loop.execute {
                            bound.value.handler.write(response, version: head.version, keepAlive: head.isKeepAlive, context: bound.value.context)
                        }
                    }
                }
            case .discarding(let keepAlive, _):
                state = .idle
                if !keepAlive || quiescing { context.close(promise: nil) }
            case .idle, .responding:
                break
            }
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let idle = event as? IdleStateHandler.IdleStateEvent, idle == .read {
            if case .responding = state { return }
            context.close(promise: nil)
            return
        }
        if event is ChannelShouldQuiesceEvent {
            quiescing = true
            if case .idle = state { context.close(promise: nil) }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        stream?.cancel()
        stream = nil
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    // MARK: Writing the response

    private func write(_ response: ServerResponse, version: HTTPVersion, keepAlive requested: Bool, context: ChannelHandlerContext) {
        let keepAlive = requested && !quiescing
        var headers = response.headers
        if !keepAlive { headers.replaceOrAdd(name: "connection", value: "close") }
        switch response.body {
        case .bytes(let bytes):
            headers.replaceOrAdd(name: "content-length", value: String(bytes.readableBytes))
            context.write(wrapOutboundOut(.head(HTTPResponseHead(version: version, status: response.status, headers: headers))), promise: nil)
            if bytes.readableBytes > 0 {
                context.write(wrapOutboundOut(.body(.byteBuffer(bytes))), promise: nil)
            }
            end(keepAlive: keepAlive, context: context)
        case .stream(let produce):
            // No Content-Length: the encoder sends the body chunked.
            context.writeAndFlush(wrapOutboundOut(.head(HTTPResponseHead(version: version, status: response.status, headers: headers))), promise: nil)
            let writer = ResponseStreamWriter(channel: context.channel)
            let loop = context.eventLoop
            let bound = NIOLoopBound((handler: self, context: context), eventLoop: loop)
            stream = Task {
                let failed: Bool
                do {
                    try await produce(writer)
                    failed = false
                } catch {
                    failed = true
                }
                loop.execute {
                    let (handler, context) = bound.value
                    handler.stream = nil
                    if failed {
                        context.close(promise: nil)
                    } else {
                        handler.end(keepAlive: keepAlive, context: context)
                    }
                }
            }
        }
    }

    private func end(keepAlive: Bool, context: ChannelHandlerContext) {
        if case .responding = state { state = .idle }
        if keepAlive {
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
            drain(context: context)
        } else {
            // Nothing after this response is served: what the client pipelined behind a
            // `Connection: close` is dropped, as the close says it will be.
            quiescing = true
            queued.removeAll()
            queuedBytes = 0
            let channel = context.channel
            context.writeAndFlush(wrapOutboundOut(.end(nil))).whenComplete { _ in channel.close(promise: nil) }
        }
    }
}
