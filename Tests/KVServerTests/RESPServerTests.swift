import Foundation
import KVClient
import KVCore
import KVServer
import KVStore
import Testing
import TestSupport

/// The RESP port of an in-process node, spoken to with a client written apart from the node's
/// codec (`RESPTestClient`). The real clients (redis-cli, redis-py, redis-benchmark) are driven
/// by `scripts/resp-clients`.
@Suite("RESP server")
struct RESPServerTests {
    typealias Reply = RESPTestClient.Reply

    private func withRESPNode(
        configure: @escaping (inout NodeConfiguration) -> Void = { _ in },
        _ body: (ConvergeNode, KVClient, Int) async throws -> Void
    ) async throws {
        try await withNode(configure: { configuration in
            configuration.respPort = 0
            configure(&configuration)
        }) { node, client in
            let port = try #require(node.respPort)
            try await body(node, client, port)
        }
    }

    @Test func pipelinedCommandsAreAnsweredInOrderAndQuitCloses() async throws {
        try await withRESPNode { _, _, port in
            let connection = try RawConnection(port: port)
            connection.send(Array("*3\r\n$3\r\nSET\r\n$1\r\na\r\n$1\r\n1\r\nGET a\r\nDEL a b\r\n*2\r\n$3\r\nGET\r\n$1\r\na\r\nMSET x 1 y 2\r\nMGET x nope y\r\nQUIT\r\nPING\r\n".utf8))
            let (bytes, closed) = try await offThePool { connection.readUntilClosed(timeout: 10) }
            #expect(closed)
            #expect(String(decoding: bytes, as: UTF8.self) == "+OK\r\n$1\r\n1\r\n:1\r\n$-1\r\n+OK\r\n*3\r\n$1\r\n1\r\n$-1\r\n$1\r\n2\r\n+OK\r\n")
        }
    }

    @Test func aValueWrittenOverRESPReadsTheSameOverHTTPAndBack() async throws {
        try await withRESPNode { _, client, port in
            let redis = try RESPTestClient(port: port)
            #expect(try await redis.call("SET", "user:1", "Ada") == .simple("OK"))
            #expect(try await client.get("user:1")?.value == Array("Ada".utf8))
            _ = try await client.put("from/http", value: [0, 1, 2, 255])
            #expect(try await redis.call("GET", "from/http") == .bulk([0, 1, 2, 255]))
            _ = try await client.delete("user:1")
            #expect(try await redis.call("EXISTS", "user:1", "from/http") == .integer(1))
        }
    }

    @Test func keysAndValuesAreRefusedAsOverHTTP() async throws {
        try await withRESPNode(configure: { $0.maxValueBytes = 10 }) { _, client, port in
            let redis = try RESPTestClient(port: port)
            let long = String(repeating: "k", count: KeyRules.maxBytes + 1)
            for reply in [try await redis.call("SET", long, "v"), try await redis.call("SET", "", "v"), try await redis.call("SET", "a\u{1}b", "v")] {
                #expect(reply.description.hasPrefix("-ERR invalid key: "), "\(reply)")
            }
            #expect(try await redis.call("SET", "k", "01234567890") == .error("ERR the value is 11 bytes; this node's limit is 10 bytes (kvnode --max-value-bytes)"))
            #expect(try await redis.call("SET", "k", "0123456789") == .simple("OK"))
            let page = try await client.list()
            #expect(page.keys.map(\.key) == ["k"])
        }
    }

    @Test func refusedCommandsSayWhy() async throws {
        try await withRESPNode { _, _, port in
            let redis = try RESPTestClient(port: port)
            let incr = try await redis.call("INCR", "n")
            #expect(incr.description.hasPrefix("-ERR INCR is not offered by Converge: concurrent writes resolve by last-writer-wins"), "\(incr)")
            #expect(try await redis.call("LPUSH", "l", "x").description.contains("Converge stores strings only"))
            #expect(try await redis.call("NOSUCH", "a").description.hasPrefix("-ERR unknown command 'NOSUCH'"))
            #expect(try await redis.call("GET") == .error("ERR wrong number of arguments for 'get' command"))
            #expect(try await redis.call("SELECT", "1").description.hasPrefix("-ERR DB index is out of range"))
            #expect(try await redis.call("PING") == .simple("PONG"), "the connection survives refusals")
        }
    }

    @Test func theClientTokenIsAUTHsPassword() async throws {
        try await withRESPNode(configure: { $0.clientToken = "s3cret" }) { _, _, port in
            let redis = try RESPTestClient(port: port)
            #expect(try await redis.call("GET", "k") == .error("NOAUTH Authentication required."))
            #expect(try await redis.call("SET", "k", "v") == .error("NOAUTH Authentication required."))
            #expect(try await redis.call("AUTH", "wrong") == .error("WRONGPASS invalid username-password pair or user is disabled."))
            #expect(try await redis.call("AUTH", "someone", "s3cret") == .error("WRONGPASS invalid username-password pair or user is disabled."))
            #expect(try await redis.call("AUTH", "s3cret") == .simple("OK"))
            #expect(try await redis.call("SET", "k", "v") == .simple("OK"))
            let hello = try RESPTestClient(port: port)
            guard case .map(let fields) = try await hello.call("HELLO", "3", "AUTH", "default", "s3cret", "SETNAME", "tester") else {
                Issue.record("HELLO 3 did not answer a map")
                return
            }
            #expect(fields.contains(.bulk(Array("proto".utf8))))
            #expect(try await hello.call("CLIENT", "GETNAME") == .bulk(Array("tester".utf8)))
            #expect(try await hello.call("GET", "missing") == .null)
        }
    }

    @Test func expiryIsReadTheSameOverBothFrontEnds() async throws {
        try await withRESPNode { _, client, port in
            let redis = try RESPTestClient(port: port)
            #expect(try await redis.call("SET", "short", "v", "PX", "300") == .simple("OK"))
            #expect(try await redis.call("SET", "long", "v", "EX", "100") == .simple("OK"))
            guard case .integer(let ttl) = try await redis.call("TTL", "long") else { throw RESPTestClient.Failure(description: "TTL") }
            #expect((90...100).contains(ttl), "TTL \(ttl) a moment after EX 100")
            let expires = try #require(try await client.get("long")?.expiresAt)
            #expect(try await redis.call("PEXPIRETIME", "long") == .integer(expires))
            #expect(try await redis.call("PERSIST", "long") == .integer(1))
            #expect(try await redis.call("TTL", "long") == .integer(-1))
            #expect(try await client.get("long")?.expiresAt == nil)
            _ = try await client.put("http", value: Array("v".utf8), ttlSeconds: 50)
            guard case .integer(let httpTTL) = try await redis.call("TTL", "http") else { throw RESPTestClient.Failure(description: "TTL") }
            #expect((40...50).contains(httpTTL), "TTL \(httpTTL) a moment after ttl=50")
            try await poll("short to expire") {
                let value = try await redis.call("GET", "short")
                return value == .null ? nil : "\(value)"
            }
            #expect(try await client.get("short") == nil)
            #expect(try await redis.call("TTL", "short") == .integer(-2))
            #expect(try await redis.call("KEYS", "*") == .array([.bulk(Array("http".utf8)), .bulk(Array("long".utf8))]))
        }
    }

    @Test func malformedFramesAreRefusedAndTheConnectionClosed() async throws {
        try await withRESPNode { _, client, port in
            let cases: [(String, String)] = [
                ("*2\r\n$3\r\nGET\r\n$99999999999\r\n", "bulk length 99999999999 is above this node's limit"),
                ("*x\r\n", "invalid multibulk length"),
                ("*1\r\n:1\r\n", "expected '$', got ':'"),
                ("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nvalue\r\n", "did not end with CRLF"),
                ("SET k \"v\r\n", "unbalanced quotes"),
            ]
            for (input, cause) in cases {
                let connection = try RawConnection(port: port)
                connection.send(Array(("PING\r\n" + input).utf8))
                let (bytes, closed) = try await offThePool { connection.readUntilClosed(timeout: 10) }
                let text = String(decoding: bytes, as: UTF8.self)
                #expect(closed, "\(input.debugDescription) left the connection open")
                #expect(text.hasPrefix("+PONG\r\n-ERR Protocol error: "), "\(text.debugDescription)")
                #expect(text.contains(cause), "\(text.debugDescription)")
            }
            #expect(try await client.list().keys.isEmpty)
        }
    }

    /// Random malformed input: bad and huge lengths, frames cut short, binary garbage. Nothing
    /// is stored and the node keeps serving. Replay with KV_SEED=<seed>.
    @Test func fuzzedMalformedInputStoresNothingAndTheNodeStaysHealthy() async throws {
        let seed = SeededRandom.seed()
        print("RESP server fuzz seed \(seed) (replay with KV_SEED=\(seed))")
        var random = SeededRandom(seed: seed)
        try await withRESPNode { _, client, port in
            for round in 0..<SeededRandom.fuzzRounds(150) {
                let valid = Array("*3\r\n$3\r\nSET\r\n$8\r\nfuzz:\(String(format: "%03d", round % 1000))\r\n$5\r\nvalue\r\n".utf8)
                var input: [UInt8]
                switch round % 4 {
                case 0:  // one length rewritten
                    let headers = valid.indices.filter { valid[$0] == UInt8(ascii: "*") || valid[$0] == UInt8(ascii: "$") }
                    let at = headers.randomElement(using: &random)!
                    let end = valid[at...].firstIndex(of: 13)!
                    let replacement = ["-2", "0x1", "", "99999999999999999999", "2147483648", "+3", " 3", "\(Int.random(in: 9...99, using: &random))"]
                        .randomElement(using: &random)!
                    input = Array(valid[...at]) + Array(replacement.utf8) + Array(valid[end...])
                case 1:  // a huge declared bulk
                    input = Array("*3\r\n$3\r\nSET\r\n$8\r\nfuzz:big\r\n$\(Int.random(in: (2 << 20)...(1 << 40), using: &random))\r\nxx".utf8)
                case 2:  // a frame cut short
                    input = Array(valid.prefix(Int.random(in: 1..<valid.count, using: &random)))
                default:  // binary garbage behind a RESP marker
                    input = [[UInt8(ascii: "*"), UInt8(ascii: "$"), 0, 0xFF].randomElement(using: &random)!]
                    for _ in 0..<Int.random(in: 1...300, using: &random) { input.append(UInt8.random(in: 0...255, using: &random)) }
                    input.removeAll { $0 == 10 }  // no line end: no inline command can complete
                }
                let connection = try RawConnection(port: port)
                connection.send(input)
                connection.close()
            }
            let redis = try RESPTestClient(port: port)
            #expect(try await redis.call("PING") == .simple("PONG"), "seed \(seed)")
            #expect(try await redis.call("DBSIZE") == .integer(0), "seed \(seed)")
            #expect(try await client.list().keys.isEmpty, "seed \(seed)")
            #expect(try await client.health(), "seed \(seed)")
        }
    }

    @Test func waitCountsThePeersThatAcknowledged() async throws {
        try await withRESPNode { _, _, port in
            let redis = try RESPTestClient(port: port)
            #expect(try await redis.call("SET", "k", "v") == .simple("OK"))
            #expect(try await redis.call("WAIT", "0", "0") == .integer(0))
            #expect(try await redis.call("WAIT", "1", "0") == .integer(0), "no peers: nothing to wait for")
        }
    }

    @Test(.timeLimit(.minutes(1))) func aGracefulShutdownEndsAWaitThatWouldWaitForever() async throws {
        try await withRESPNode(configure: {
            $0.peers = [PeerConfig(id: try! NodeID("B"), url: "http://127.0.0.1:1")]  // literal, valid id
        }) { node, _, port in
            let redis = try RESPTestClient(port: port)
            #expect(try await redis.call("SET", "k", "v") == .simple("OK"))
            #expect(try await redis.call("WAIT", "1", "100") == .integer(0), "B is unreachable: the timeout answers")
            redis.send(["WAIT", "1", "0"])  // B never acknowledges: waits until cancelled
            // Nothing comes back for a second: the WAIT is running (a bounded check that something
            // stays true, which also lets the node read the command before it is told to stop).
            let early = try await offThePool { redis.connection.receive(timeout: 1) }
            #expect(early.isEmpty, "WAIT 1 0 answered without an acknowledgement: \(early)")
            let started = ContinuousClock.now
            await node.stop()
            #expect(ContinuousClock.now - started < .seconds(10), "the shutdown waited for the WAIT")
            let answer = try await redis.reply()
            #expect(answer.description.hasPrefix("-ERR cancelled"), "\(answer)")
        }
    }

    @Test(.timeLimit(.minutes(1))) func watchShowsAnExpiredKeyAsDeletedAndTheSweepAsADelete() async throws {
        try await withRESPNode(configure: { $0.expirySweepInterval = .milliseconds(50) }) { _, client, port in
            let redis = try RESPTestClient(port: port)
            #expect(try await redis.call("SET", "w/past", "v", "PXAT", "1000") == .simple("OK"))
            #expect(try await redis.call("GET", "w/past") == .null)
            #expect(try await redis.call("SET", "w/soon", "v", "PX", "300") == .simple("OK"))
            let written = try await client.get("w/soon")  // nil if it expired already: a slow machine
            var events: [WatchEvent] = []
            for try await change in client.watch(prefix: "w/", after: 0) {
                events.append(change.event)
                if change.event.key == "w/soon", change.event.deleted { break }
            }
            // The row already expired when written is shown deleted. The one that expires later
            // ends deleted by the sweep, with the version of its SET; the feed is compact, so a
            // watcher that comes after the sweep sees only that delete, one that came before
            // sees the value first.
            let past = events.filter { $0.key == "w/past" }
            let soon = events.filter { $0.key == "w/soon" }
            let pastDeleted = past.allSatisfy { $0.deleted }
            let earlierDeleted = soon.dropLast().contains { $0.deleted }
            #expect(!past.isEmpty && pastDeleted, "\(events)")
            #expect(!earlierDeleted, "\(events)")
            if let written {
                #expect(soon.last?.lamport == written.lamport && soon.last?.origin == written.origin, "\(events)")
            }
        }
    }

    @Test func maxConnectionsHoldsANewRESPConnectionUntilOneCloses() async throws {
        try await withRESPNode(configure: { $0.maxConnections = 1 }) { _, _, port in
            let first = try RESPTestClient(port: port)
            #expect(try await first.call("PING") == .simple("PONG"))
            let second = try RESPTestClient(port: port)
            second.send(["PING"])
            // Held in the kernel's backlog: nothing arrives while the first is open. A bounded
            // check that something stays true, not a wait for a state.
            let early = try await offThePool { second.connection.receive(timeout: 1) }
            #expect(early.isEmpty, "the second connection was served while the first was open")
            first.close()
            #expect(try await second.reply() == .simple("PONG"))
        }
    }
}
