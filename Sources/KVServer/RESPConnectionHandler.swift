import NIOCore
import RESP
import Synchronization

/// Serves the commands of one RESP connection and answers them in the order they came.
///
/// Commands a client pipelines are parsed as bytes arrive (`RESPCommandParser`, whose limits
/// bound what a client can make the node hold) and start as soon as their order allows
/// (`RESPCommandSpec.Order`): writes go to the store's writer at once, so sixteen pipelined
/// SETs share one group commit; a read waits until the commands before it have their answers.
/// Answers are kept in slots and written in order, in one flush per burst.
///
/// A protocol error is answered with `-ERR Protocol error: …` after the answers owed, and the
/// connection is closed; nothing of the malformed command runs. At most `maxRunningCommands`
/// run at once (a client streaming SETs cannot queue unbounded work in the writer), and reading
/// pauses while more than `maxQueuedCommands` commands wait. A graceful shutdown
/// (`ChannelShouldQuiesceEvent`) cancels the commands that run as tasks (a `WAIT` may wait
/// forever), and closes the connection once the commands in flight are answered; read-idle for
/// the idle timeout closes it unless a command (a WAIT) is in flight.
final class RESPConnectionHandler: ChannelDuplexHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    static let maxQueuedCommands = 1024
    static let maxRunningCommands = 1024
    private static let nextID = Atomic<Int64>(1)

    private let responder: RESPResponder
    private var parser: RESPCommandParser
    private var session: RESPSession
    /// Parsed commands that have not started.
    private var waiting = CircularBuffer<[[UInt8]]>()
    /// Answers of started commands, in order (nil while a command runs), each with the RESP
    /// version the connection spoke once the command started (HELLO 3 answers in RESP3).
    private var answers = CircularBuffer<(value: RESPValue?, version: RESPVersion)>()
    /// Index in `answers` of the first slot (slots are numbered from the connection's start).
    private var firstSlot = 0
    private var runningWrites = 0
    private var running = 0
    private var tasks: [Int: Task<Void, Never>] = [:]
    private var pumping = false
    private var readHeldBack = false
    /// No command is started any more: QUIT, a protocol error, or a graceful shutdown.
    private var closing = false
    private var protocolError: RESPProtocolError?
    private let mailbox = AnswerMailbox()

    init(responder: RESPResponder, limits: RESPCommandParser.Limits) {
        self.responder = responder
        self.parser = RESPCommandParser(limits: limits)
        self.session = RESPSession(
            id: Self.nextID.wrappingAdd(1, ordering: .relaxed).oldValue, authenticated: responder.clientToken == nil)
    }

    func handlerAdded(context: ChannelHandlerContext) {
        responder.connections.add(1)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        responder.connections.add(-1)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !closing else { return }
        let buffer = unwrapInboundIn(data)
        parser.append(buffer.readableBytesView)
        do {
            while let command = try parser.next() { waiting.append(command) }
        } catch {
            protocolError = error
        }
        pump(context: context)
    }

    func read(context: ChannelHandlerContext) {
        if waiting.count >= Self.maxQueuedCommands {
            readHeldBack = true
        } else {
            context.read()
        }
    }

    /// Starts every waiting command its order allows, then writes the answers that are ready.
    private func pump(context: ChannelHandlerContext) {
        guard !pumping else { return }
        pumping = true
        while !closing, running < Self.maxRunningCommands, let command = waiting.first {
            let order = RESPResponder.order(of: command)
            if order == .write ? running > runningWrites : (order == .read && running > 0) { break }
            waiting.removeFirst()
            start(command, order: order, context: context)
        }
        if !closing, waiting.isEmpty, let error = protocolError {
            protocolError = nil
            answers.append((.error("ERR Protocol error: \(error.description)"), session.version))
            closing = true
        }
        pumping = false
        writeReady(context: context)
        if readHeldBack, waiting.count < Self.maxQueuedCommands / 2, !closing {
            readHeldBack = false
            context.read()
        }
    }

    private func start(_ command: [[UInt8]], order: RESPCommandSpec.Order, context: ChannelHandlerContext) {
        let slot = firstSlot + answers.count
        answers.append((nil, session.version))
        running += 1
        let isWrite = order == .write
        if isWrite { runningWrites += 1 }
        let loop = context.eventLoop
        let bound = NIOLoopBound((handler: self, context: context), eventLoop: loop)
        let mailbox = mailbox
        // A copy: an answer given at once re-enters this handler while `execute` still holds it.
        var changed = session
        let task = responder.execute(command, session: &changed) { answer in
            if loop.inEventLoop {
                bound.value.handler.finish(slot: slot, answer: answer, wasWrite: isWrite, context: bound.value.context)
            } else if mailbox.post(slot: slot, answer: answer, wasWrite: isWrite) {
                loop.execute { bound.value.handler.drainMailbox(context: bound.value.context) }
            }
        }
        session = changed
        answers[offset: slot - firstSlot].version = changed.version
        if session.closeAfterReply { closing = true }
        if let task, answers[offset: slot - firstSlot].value == nil { tasks[slot] = task }
    }

    private func finish(slot: Int, answer: RESPValue, wasWrite: Bool, context: ChannelHandlerContext) {
        tasks[slot] = nil
        let index = slot - firstSlot
        guard index >= 0, index < answers.count, answers[offset: index].value == nil else { return }
        answers[offset: index].value = answer
        running -= 1
        if wasWrite { runningWrites -= 1 }
        if !pumping { pump(context: context) }
    }

    /// Takes every answer posted from other threads since the last drain, then starts what they
    /// unblock and writes what is ready: one hop and one flush for the answers a commit produced.
    private func drainMailbox(context: ChannelHandlerContext) {
        let wasPumping = pumping
        pumping = true
        for posted in mailbox.take() {
            finish(slot: posted.slot, answer: posted.answer, wasWrite: posted.wasWrite, context: context)
        }
        pumping = wasPumping
        if !pumping { pump(context: context) }
    }

    /// Writes the answers ready at the head, in one flush; closes after the last owed answer
    /// when closing.
    private func writeReady(context: ChannelHandlerContext) {
        var bytes: [UInt8] = []
        while let first = answers.first, let answer = first.value {
            RESPEncoder.encode(answer, version: first.version, into: &bytes)
            answers.removeFirst()
            firstSlot += 1
        }
        if !bytes.isEmpty {
            context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(bytes: bytes)), promise: nil)
        }
        if closing, answers.isEmpty {
            let channel = context.channel
            if bytes.isEmpty {
                channel.close(promise: nil)
            } else {
                context.writeAndFlush(wrapOutboundOut(context.channel.allocator.buffer(capacity: 0))).whenComplete { _ in
                    channel.close(promise: nil)
                }
            }
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let idle = event as? IdleStateHandler.IdleStateEvent, idle == .read {
            if running > 0 { return }
            context.close(promise: nil)
            return
        }
        if event is ChannelShouldQuiesceEvent {
            closing = true
            waiting.removeAll()
            for task in tasks.values { task.cancel() }
            writeReady(context: context)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelInactive(context: ChannelHandlerContext) {
        closing = true
        for task in tasks.values { task.cancel() }
        tasks = [:]
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}

/// Answers that arrive on other threads (the store's writer, tasks) for one connection, waiting
/// for its event loop: the first answer posted asks for a drain, the ones posted before it runs
/// ride along, so a group commit costs each connection one hop and one flush, not one per write.
private final class AnswerMailbox: Sendable {
    struct Posted: Sendable {
        let slot: Int
        let answer: RESPValue
        let wasWrite: Bool
    }

    private let state = Mutex<(posted: [Posted], drainScheduled: Bool)>(([], false))

    /// Adds an answer; true when the caller must schedule a drain on the event loop.
    func post(slot: Int, answer: RESPValue, wasWrite: Bool) -> Bool {
        state.withLock { state in
            state.posted.append(Posted(slot: slot, answer: answer, wasWrite: wasWrite))
            if state.drainScheduled { return false }
            state.drainScheduled = true
            return true
        }
    }

    /// Everything posted so far; the next post schedules a drain again.
    func take() -> [Posted] {
        state.withLock { state in
            state.drainScheduled = false
            defer { state.posted = [] }
            return state.posted
        }
    }
}
