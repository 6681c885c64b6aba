// RESP ceiling: the fastest a bare SwiftNIO server can answer Redis-protocol
// SET/GET with no storage. Benchmark helper only; not a Redis implementation.
import NIOCore
import NIOPosix

let maxBulk = 1 << 20        // refuse bulk strings longer than 1 MiB
let maxArgs = 1024           // refuse arrays with more elements
let maxInline = 64 * 1024    // refuse inline lines longer than this

enum Cmd { case set, get, ping, config, other, none }
enum Parsed { case need, bad, done(Cmd, Int) }   // .done(command, index after it)

let replyOK = Array("+OK\r\n".utf8)
let replyGet = Array("$16\r\nxxxxxxxxxxxxxxxx\r\n".utf8)
let replyPong = Array("+PONG\r\n".utf8)
let replyEmpty = Array("*0\r\n".utf8)
let replyErr = Array("-ERR unknown\r\n".utf8)

/// Case-insensitive match of p[from..<from+len] against a lowercase ASCII name.
@inline(__always)
func nameIs(_ p: UnsafeRawBufferPointer, _ from: Int, _ len: Int, _ name: StaticString) -> Bool {
  guard len == name.utf8CodeUnitCount else { return false }
  let n = name.utf8Start
  for k in 0..<len where p[from + k] | 0x20 != n[k] { return false }
  return true
}

@inline(__always)
func classify(_ p: UnsafeRawBufferPointer, _ from: Int, _ len: Int) -> Cmd {
  if nameIs(p, from, len, "set") { return .set }
  if nameIs(p, from, len, "get") { return .get }
  if nameIs(p, from, len, "ping") { return .ping }
  if nameIs(p, from, len, "config") { return .config }
  return .other
}

/// Parses "<int>\r\n" starting at i. Returns (value, index after LF), nil if incomplete; value nil if malformed.
@inline(__always)
func parseInt(_ p: UnsafeRawBufferPointer, _ start: Int) -> (Int?, Int)? {
  var i = start, neg = false, v = 0, digits = 0
  if i < p.count && p[i] == UInt8(ascii: "-") { neg = true; i += 1 }
  while i < p.count {
    let b = p[i]
    if b == UInt8(ascii: "\r") {
      guard i + 1 < p.count else { return nil }
      guard p[i + 1] == UInt8(ascii: "\n"), digits > 0 else { return (nil, 0) }
      return (neg ? -v : v, i + 2)
    }
    guard b >= 0x30 && b <= 0x39, digits < 10 else { return (nil, 0) }
    v = v * 10 + Int(b - 0x30); digits += 1; i += 1
  }
  return nil
}

/// Parses one command (RESP array of bulk strings, or an inline command) at `start`.
func parseOne(_ p: UnsafeRawBufferPointer, _ start: Int) -> Parsed {
  guard start < p.count else { return .need }
  if p[start] != UInt8(ascii: "*") {               // inline command: "PING\r\n"
    var i = start
    while i < p.count && p[i] != UInt8(ascii: "\n") { i += 1 }
    guard i < p.count else { return i - start > maxInline ? .bad : .need }
    var s = start
    while s < i && (p[s] == 0x20 || p[s] == 0x09) { s += 1 }
    var e = s
    while e < i && p[e] != 0x20 && p[e] != 0x09 && p[e] != UInt8(ascii: "\r") { e += 1 }
    return .done(e == s ? .none : classify(p, s, e - s), i + 1)
  }
  guard let (n, afterCount) = parseInt(p, start + 1) else { return .need }
  guard let count = n, count <= maxArgs else { return .bad }
  var i = afterCount, cmd = Cmd.none
  if count <= 0 { return .done(.none, i) }          // *0 / *-1: nothing to answer
  for arg in 0..<count {
    guard i < p.count else { return .need }
    guard p[i] == UInt8(ascii: "$") else { return .bad }
    guard let (l, afterLen) = parseInt(p, i + 1) else { return .need }
    guard let len = l, len >= 0, len <= maxBulk else { return .bad }
    guard afterLen + len + 2 <= p.count else { return .need }
    guard p[afterLen + len] == UInt8(ascii: "\r"), p[afterLen + len + 1] == UInt8(ascii: "\n") else { return .bad }
    if arg == 0 { cmd = classify(p, afterLen, len) }
    i = afterLen + len + 2
  }
  return .done(cmd, i)
}

final class RESPHandler: ChannelInboundHandler {
  typealias InboundIn = ByteBuffer
  typealias OutboundOut = ByteBuffer
  var pending: ByteBuffer? = nil   // leftover bytes of an incomplete command

  func channelRead(context: ChannelHandlerContext, data: NIOAny) {
    var input = unwrapInboundIn(data)
    if var prev = pending { pending = nil; prev.writeBuffer(&input); input = prev }
    var out = context.channel.allocator.buffer(capacity: 256)
    let (consumed, bad) = input.withUnsafeReadableBytes { p -> (Int, Bool) in
      var i = 0
      while true {
        switch parseOne(p, i) {
        case .need: return (i, false)
        case .bad: return (i, true)
        case .done(let cmd, let next):
          i = next
          switch cmd {
          case .set: out.writeBytes(replyOK)
          case .get: out.writeBytes(replyGet)
          case .ping: out.writeBytes(replyPong)
          case .config: out.writeBytes(replyEmpty)
          case .other: out.writeBytes(replyErr)
          case .none: break
          }
        }
      }
    }
    input.moveReaderIndex(forwardBy: consumed)
    if out.readableBytes > 0 { context.writeAndFlush(wrapOutboundOut(out), promise: nil) }
    if bad { context.close(promise: nil); return }
    if input.readableBytes > 0 { input.discardReadBytes(); pending = input }
  }

  func errorCaught(context: ChannelHandlerContext, error: Error) { context.close(promise: nil) }
}

let port = Int(CommandLine.arguments.dropFirst().first ?? "6390") ?? 6390
// Event loops: the second argument, else one per core.
let loops = CommandLine.arguments.count > 2 ? Int(CommandLine.arguments[2]) ?? System.coreCount : System.coreCount
let group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, loops))
let server = try ServerBootstrap(group: group)
  .serverChannelOption(.backlog, value: 256)
  .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
  .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
  .childChannelInitializer { ch in
    ch.eventLoop.makeCompletedFuture { try ch.pipeline.syncOperations.addHandler(RESPHandler()) }
  }.bind(host: "127.0.0.1", port: port).wait()
print("resp-ceiling listening on 127.0.0.1:\(port)")
try server.closeFuture.wait()
