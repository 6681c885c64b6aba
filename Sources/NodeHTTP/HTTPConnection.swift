import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// One request, as `HTTPConnection` writes it.
struct HTTPRequest: Sendable {
    var method: String
    var pathAndQuery: String
    var headers: [(String, String)]
    var body: [UInt8]

    /// Whether sending the request twice can change nothing a second send would not. Only such a
    /// request is resent after its connection broke without a reply.
    var hasNoEffect: Bool { method == "GET" || method == "HEAD" }
}

/// How one exchange on a connection ended.
enum ExchangeOutcome: Sendable {
    /// A whole reply arrived.
    case reply(HTTPReply)
    /// Not one byte of the request was handed to the socket: the connection was already closed.
    /// Safe to send again on a new connection, whatever the method.
    case notSent
    /// The request was written, but the connection ended before a reply's head arrived.
    case closedBeforeReply(reason: String)
    /// The connection failed while a reply was arriving.
    case failed(reason: String)
    /// What arrived is not HTTP/1.1.
    case malformed(reason: String)
}

/// One keep-alive HTTP/1.1 connection.
///
/// A task owns the channel for its whole life (inside `NIOAsyncChannel.executeThenClose`) and runs
/// the exchanges handed to it one at a time, in order: a request is written only after the
/// previous reply was read to its end, so replies cannot be mismatched. The connection ends when
/// the peer closes it, a reply says `Connection: close`, an exchange fails, or `close()` is
/// called; exchanges queued then come back `.notSent`.
final class HTTPConnection: Sendable {
    private let channel: any Channel
    private let queue: AsyncStream<Exchange>.Continuation
    private let tlsRecord: TLSFailureRecord

    private struct Exchange: Sendable {
        let request: HTTPRequest
        let done: CheckedContinuation<ExchangeOutcome, Never>
    }

    private init(channel: any Channel, queue: AsyncStream<Exchange>.Continuation, tlsRecord: TLSFailureRecord) {
        self.channel = channel
        self.queue = queue
        self.tlsRecord = tlsRecord
    }

    /// Whether the channel is still open (a peer's close may not have been noticed yet).
    var isOpen: Bool { channel.isActive }

    /// Why TLS failed on this connection, in words, if it did; an exchange that did not get its
    /// reply is explained by this rather than by the close that followed.
    var tlsFailure: String? { tlsRecord.failure }

    /// Connects to `address`, over TLS when it is `https` (`tls` must then be given); throws NIO's
    /// error when no connection was made in `timeout`.
    static func connect(to address: NodeAddress, tls: ClientTLS?, timeout: TimeAmount) async throws -> HTTPConnection {
        let tlsRecord = TLSFailureRecord()
        let asyncChannel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(timeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .connect(host: address.host, port: address.port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try addTLS(tls, for: address, record: tlsRecord, to: channel)
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(
                        wrappingChannelSynchronously: channel)
                }
            }
        let (stream, queue) = AsyncStream.makeStream(of: Exchange.self)
        // A closed channel ends the queue, so the task below stops waiting for work it cannot do.
        asyncChannel.channel.closeFuture.whenComplete { _ in queue.finish() }
        // The task holds the channel and the queue, not `self`: dropping the last reference to
        // the connection runs `deinit`, which ends the queue and so the task and the channel.
        Task {
            await run(asyncChannel, exchanges: stream, queue: queue, hostHeader: address.hostHeader)
        }
        return HTTPConnection(channel: asyncChannel.channel, queue: queue, tlsRecord: tlsRecord)
    }

    /// Puts TLS first in a new channel's pipeline when `address` is `https`, with a handler after
    /// it that keeps the first TLS error in `record`.
    static func addTLS(_ tls: ClientTLS?, for address: NodeAddress, record: TLSFailureRecord, to channel: any Channel) throws {
        guard address.isSecure else { return }
        guard let tls else { preconditionFailure("an https address needs a ClientTLS; NodeHTTPClient.init supplies one") }
        let pipeline = channel.pipeline.syncOperations
        try pipeline.addHandler(try tls.handler(for: address))
        try pipeline.addHandler(record.handler())
    }

    /// Sends `request` after those queued before it and waits for the outcome. Never throws:
    /// every failure is an outcome, so the caller decides what is safe to retry.
    func exchange(_ request: HTTPRequest) async -> ExchangeOutcome {
        await withCheckedContinuation { done in
            let exchange = Exchange(request: request, done: done)
            switch queue.yield(exchange) {
            case .enqueued: break
            case .dropped, .terminated: done.resume(returning: .notSent)
            @unknown default: done.resume(returning: .notSent)
            }
        }
    }

    /// Closes the channel; an exchange under way ends as failed or closed-before-reply.
    func close() {
        queue.finish()
        channel.close(promise: nil)
    }

    /// Resolves when the channel is closed.
    func closed() async {
        try? await channel.closeFuture.get()  // never failed, per `Channel.closeFuture`
    }

    deinit {
        close()
    }

    private static func run(
        _ asyncChannel: NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>,
        exchanges stream: AsyncStream<Exchange>,
        queue: AsyncStream<Exchange>.Continuation,
        hostHeader: String
    ) async {
        var exchanges = stream.makeAsyncIterator()
        do {
            try await asyncChannel.executeThenClose { inbound, outbound in
                var replies = inbound.makeAsyncIterator()
                while let exchange = await exchanges.next() {
                    let outcome = await perform(
                        exchange.request, on: asyncChannel.channel, inbound: &replies,
                        outbound: outbound, hostHeader: hostHeader)
                    exchange.done.resume(returning: outcome.result)
                    if !outcome.keepAlive { break }
                }
            }
        } catch {
            // Closing failed; the channel is gone either way, and every exchange was answered.
        }
        queue.finish()
        while let exchange = await exchanges.next() {
            exchange.done.resume(returning: .notSent)
        }
    }

    private static func perform(
        _ request: HTTPRequest,
        on channel: any Channel,
        inbound replies: inout NIOAsyncChannelInboundStream<HTTPClientResponsePart>.AsyncIterator,
        outbound: NIOAsyncChannelOutboundWriter<HTTPClientRequestPart>,
        hostHeader: String
    ) async -> (result: ExchangeOutcome, keepAlive: Bool) {
        guard channel.isActive else { return (.notSent, false) }

        var headers = HTTPHeaders()
        headers.add(name: "Host", value: hostHeader)
        headers.add(name: "User-Agent", value: "converge-kv")
        for (name, value) in request.headers { headers.add(name: name, value: value) }
        if !request.body.isEmpty || request.method == "PUT" || request.method == "POST" {
            headers.replaceOrAdd(name: "Content-Length", value: String(request.body.count))
        }
        let head = HTTPRequestHead(
            version: .http1_1, method: HTTPMethod(rawValue: request.method),
            uri: request.pathAndQuery, headers: headers)
        var parts: [HTTPClientRequestPart] = [.head(head)]
        if !request.body.isEmpty {
            parts.append(.body(.byteBuffer(ByteBuffer(bytes: request.body))))
        }
        parts.append(.end(nil))
        do {
            // The writer takes the whole request or, when the channel has closed, none of it.
            try await outbound.write(contentsOf: parts)
        } catch {
            return (.notSent, false)
        }

        var responseHead: HTTPResponseHead?
        var body: [UInt8] = []
        do {
            while let part = try await replies.next() {
                switch part {
                case .head(let received):
                    // 1xx replies (100 Continue) precede the real one; skip them.
                    if received.status.code < 200 { continue }
                    responseHead = received
                case .body(let buffer):
                    guard responseHead != nil else {
                        return (.malformed(reason: "a reply body came before its head"), false)
                    }
                    body.append(contentsOf: buffer.readableBytesView)
                case .end:
                    guard let responseHead else { continue }
                    let reply = HTTPReply(
                        status: Int(responseHead.status.code),
                        headers: responseHead.headers.map { ($0.name, $0.value) },
                        body: body)
                    let askedToClose = request.headers.contains {
                        $0.0.lowercased() == "connection" && $0.1.lowercased().contains("close")
                    }
                    return (.reply(reply), responseHead.isKeepAlive && !askedToClose)
                }
            }
        } catch let error as HTTPParserError {
            return (.malformed(reason: "the reply is not valid HTTP/1.1 (\(error))"), false)
        } catch {
            let reason = describe(error)
            return (responseHead == nil ? .closedBeforeReply(reason: reason) : .failed(reason: reason), false)
        }
        let reason = "the node closed the connection"
        return (responseHead == nil ? .closedBeforeReply(reason: reason) : .failed(reason: reason + " mid-reply"), false)
    }
}

/// A short, lower-case phrase for an error from NIO or the system, fit after "cannot reach node
/// at URL: ".
func describe(_ error: any Error) -> String {
    if let error = error as? NIOConnectionError {
        if let failure = error.connectionErrors.first {
            return describe(failure.error)
        }
        if error.dnsAError != nil || error.dnsAAAAError != nil {
            return "cannot resolve host '\(error.host)'"
        }
        return "no address found for host '\(error.host)'"
    }
    if let error = error as? IOError {
        return systemMessage(errno: error.errnoCode)
    }
    if let reason = tlsProblem(error) {
        return reason
    }
    if case NIOSSLError.uncleanShutdown = error {
        return "the connection was closed"
    }
    if let error = error as? ChannelError {
        switch error {
        case .connectTimeout: return "timed out connecting"
        case .ioOnClosedChannel, .alreadyClosed, .eof: return "the connection was closed"
        default: return "\(error)"
        }
    }
    return "\(error)"
}
