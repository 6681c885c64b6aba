import RESP
import Testing
import TestSupport

@Suite("RESP command parser")
struct RESPCommandParserTests {
    private func commands(_ text: String, limits: RESPCommandParser.Limits = .init()) throws -> [[String]] {
        var parser = RESPCommandParser(limits: limits)
        parser.append(Array(text.utf8))
        var found: [[String]] = []
        while let command = try parser.next() { found.append(command.map { String(decoding: $0, as: UTF8.self) }) }
        return found
    }

    @Test func readsArraysOfBulkStrings() throws {
        #expect(try commands("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n*1\r\n$4\r\nPING\r\n") == [["GET", "k"], ["PING"]])
    }

    @Test func bulkStringsAreBinarySafe() throws {
        var parser = RESPCommandParser()
        parser.append(Array("*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$4\r\n".utf8) + [0, 13, 10, 255] + [13, 10])
        #expect(try parser.next() == [Array("SET".utf8), Array("k".utf8), [0, 13, 10, 255]])
    }

    @Test func readsInlineCommandsWithQuotes() throws {
        #expect(try commands("PING\r\nset k \"a b\\x41\\n\"\r\n\r\nget 'it\\'s'\n") == [["PING"], ["set", "k", "a bA\n"], ["get", "it's"]])
    }

    @Test func refusesUnbalancedQuotes() {
        #expect(throws: RESPProtocolError.unbalancedQuotes) { try commands("SET k \"abc\r\n") }
        #expect(throws: RESPProtocolError.unbalancedQuotes) { try commands("SET k \"abc\"x\r\n") }
    }

    @Test func ignoresEmptyArrays() throws {
        #expect(try commands("*0\r\n*-1\r\n*1\r\n$4\r\nPING\r\n") == [["PING"]])
    }

    /// Every split of a pipelined stream gives the same commands.
    @Test func everySplitGivesTheSameCommands() throws {
        let stream = Array("*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\nvalue\r\nPING\r\n*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n".utf8)
        let whole = [["SET", "key", "value"], ["PING"], ["GET", "key"]]
        for cut in 0...stream.count {
            var parser = RESPCommandParser()
            var found: [[String]] = []
            parser.append(stream[..<cut])
            while let command = try parser.next() { found.append(command.map { String(decoding: $0, as: UTF8.self) }) }
            parser.append(stream[cut...])
            while let command = try parser.next() { found.append(command.map { String(decoding: $0, as: UTF8.self) }) }
            #expect(found == whole, "split at \(cut)")
            #expect(!parser.isInsideCommand)
        }
    }

    @Test func aPartialCommandWaits() throws {
        var parser = RESPCommandParser()
        parser.append(Array("*2\r\n$3\r\nGET\r\n$10\r\nabc".utf8))
        #expect(try parser.next() == nil)
        #expect(parser.isInsideCommand)
    }

    @Test func refusesAHugeDeclaredBulkBeforeItsBytes() {
        var parser = RESPCommandParser()
        parser.append(Array("*2\r\n$3\r\nGET\r\n$9999999999\r\n".utf8))
        #expect(throws: RESPProtocolError.bulkTooLarge(declared: 9_999_999_999, limit: parser.limits.maxBulkBytes)) {
            try parser.next()
        }
    }

    @Test func refusesTooManyArguments() {
        var limits = RESPCommandParser.Limits()
        limits.maxArguments = 10
        #expect(throws: RESPProtocolError.tooManyArguments(declared: 11, limit: 10)) { try commands("*11\r\n", limits: limits) }
    }

    @Test func refusesACommandPastItsTotalLimit() {
        var limits = RESPCommandParser.Limits()
        limits.maxCommandBytes = 8
        #expect(throws: RESPProtocolError.commandTooLarge(limit: 8)) {
            try commands("*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$5\r\n", limits: limits)
        }
    }

    @Test func refusesMalformedHeaders() {
        #expect(throws: RESPProtocolError.invalidMultibulkLength) { try commands("*x\r\n") }
        #expect(throws: RESPProtocolError.invalidMultibulkLength) { try commands("*1\n") }
        #expect(throws: RESPProtocolError.invalidBulkLength) { try commands("*1\r\n$-5\r\n") }
        #expect(throws: RESPProtocolError.invalidBulkLength) { try commands("*1\r\n$1a\r\n") }
        #expect(throws: RESPProtocolError.invalidBulkLength) { try commands("*1\r\n$" + String(repeating: "1", count: 40)) }
        #expect(throws: RESPProtocolError.expectedBulkString(found: UInt8(ascii: ":"))) { try commands("*1\r\n:1\r\n") }
        #expect(throws: RESPProtocolError.missingTerminator) { try commands("*1\r\n$1\r\nab\r\n") }
    }

    @Test func refusesAnEndlessInlineLine() {
        var parser = RESPCommandParser()
        parser.append([UInt8](repeating: UInt8(ascii: "a"), count: parser.limits.maxInlineBytes + 2))
        #expect(throws: RESPProtocolError.inlineTooLong(limit: parser.limits.maxInlineBytes)) { try parser.next() }
    }

    /// Random bytes and mangled commands: the parser returns commands, waits, or throws — never
    /// traps, never buffers past its limits. Replay with KV_SEED=<seed>.
    @Test func fuzzedInputIsParsedWaitedForOrRefused() {
        let seed = SeededRandom.seed()
        print("RESP parser fuzz seed \(seed) (replay with KV_SEED=\(seed))")
        var random = SeededRandom(seed: seed)
        var limits = RESPCommandParser.Limits()
        limits.maxBulkBytes = 4096
        limits.maxInlineBytes = 1024
        let pieces = ["*", "$", "\r\n", "\r", "\n", "-1", "0", "1", "3", "99999999999999999999", "SET", "GET", " ", "\"", "'", "\\x4", ":"]
        for round in 0..<SeededRandom.fuzzRounds(2000) {
            var parser = RESPCommandParser(limits: limits)
            var input: [UInt8] = []
            if Bool.random(using: &random) {
                for _ in 0..<Int.random(in: 0...400, using: &random) { input.append(UInt8.random(in: 0...255, using: &random)) }
            } else {
                for _ in 0..<Int.random(in: 0...40, using: &random) { input += Array(pieces.randomElement(using: &random)!.utf8) }
            }
            var offset = 0
            outer: while offset < input.count {
                let take = Int.random(in: 1...max(1, input.count - offset), using: &random)
                parser.append(input[offset..<min(input.count, offset + take)])
                offset += take
                do {
                    while let command = try parser.next() {
                        #expect(!command.isEmpty, "seed \(seed) round \(round)")
                        #expect(command.allSatisfy { $0.count <= limits.maxInlineBytes + limits.maxBulkBytes }, "seed \(seed) round \(round)")
                    }
                } catch {
                    break outer
                }
                #expect(parser.bufferedBytes <= input.count, "seed \(seed) round \(round)")
            }
        }
    }
}

@Suite("RESP encoder")
struct RESPEncoderTests {
    private func text(_ value: RESPValue, _ version: RESPVersion = .resp2) -> String {
        String(decoding: RESPEncoder.encode(value, version: version), as: UTF8.self)
    }

    @Test func encodesEveryType() {
        #expect(text(.ok) == "+OK\r\n")
        #expect(text(.error("ERR bad\r\nthing")) == "-ERR bad  thing\r\n")
        #expect(text(.integer(-7)) == ":-7\r\n")
        #expect(text(.bulk("hé")) == "$3\r\nhé\r\n")
        #expect(text(.null) == "$-1\r\n")
        #expect(text(.null, .resp3) == "_\r\n")
        #expect(text(.array([.integer(1), .null])) == "*2\r\n:1\r\n$-1\r\n")
        #expect(text(.map([.bulk("a"), .integer(1)])) == "*2\r\n$1\r\na\r\n:1\r\n")
        #expect(text(.map([.bulk("a"), .integer(1)]), .resp3) == "%1\r\n$1\r\na\r\n:1\r\n")
        #expect(text(.double(1.5), .resp3) == ",1.5\r\n")
        #expect(text(.double(1.5)) == "$3\r\n1.5\r\n")
    }

    @Test func encodedCommandsParseBack() throws {
        var parser = RESPCommandParser()
        parser.append(RESPEncoder.command(["SET", "k", ""]))
        #expect(try parser.next() == [Array("SET".utf8), Array("k".utf8), []])
    }
}

@Suite("RESP glob patterns")
struct RESPGlobTests {
    private func match(_ pattern: String, _ string: String) -> Bool {
        RESPGlob.matches(Array(pattern.utf8), Array(string.utf8))
    }

    @Test func matchesAsRedisDoes() {
        #expect(match("*", ""))
        #expect(match("user:*", "user:42"))
        #expect(!match("user:*", "users"))
        #expect(match("h?llo", "hello"))
        #expect(!match("h?llo", "hllo"))
        #expect(match("h[ae]llo", "hallo"))
        #expect(!match("h[^e]llo", "hello"))
        #expect(match("h[a-b]llo", "hbllo"))
        #expect(match("a\\*b", "a*b"))
        #expect(!match("a\\*b", "axb"))
        #expect(match("*a*b*", "xxaxxbxx"))
        #expect(!match("*a*b", "xxaxxbxxc"))
    }

    @Test func literalPrefixStopsAtTheFirstSpecialByte() {
        #expect(RESPGlob.literalPrefix(Array("user:\\*x*".utf8)) == Array("user:*x".utf8))
        #expect(RESPGlob.literalPrefix(Array("*".utf8)) == [])
    }
}
