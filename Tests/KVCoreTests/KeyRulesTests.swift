import KVCore
import Testing
import TestSupport

@Suite("Key rules and path encoding")
struct KeyRulesTests {
    @Test func lengthBounds() throws {
        #expect(throws: KeyError.empty) { try KeyRules.validate("") }
        try KeyRules.validate("k")
        try KeyRules.validate(String(repeating: "a", count: 1024))
        #expect(throws: KeyError.tooLong(1025)) { try KeyRules.validate(String(repeating: "a", count: 1025)) }
        // The limit is in bytes: 512 two-byte characters fit, 513 do not.
        try KeyRules.validate(String(repeating: "é", count: 512))
        #expect(throws: KeyError.tooLong(1026)) { try KeyRules.validate(String(repeating: "é", count: 513)) }
    }

    @Test func everyControlByteIsRefusedAndEveryOtherAsciiByteAccepted() throws {
        for byte in UInt8(0)...UInt8(0x7F) {
            let bytes: [UInt8] = [UInt8(ascii: "a"), byte, UInt8(ascii: "z")]
            if byte < 0x20 || byte == 0x7F {
                #expect(throws: KeyError.controlCharacter(byte)) { try KeyRules.validate(utf8: bytes) }
            } else {
                #expect(try KeyRules.validate(utf8: bytes) == String(decoding: bytes, as: UTF8.self))
            }
        }
    }

    @Test func invalidUTF8IsRefused() throws {
        for bytes: [UInt8] in [[0xFF], [0xC3], [0x61, 0x80], [0xED, 0xA0, 0x80], [0xF8, 0x88, 0x80, 0x80, 0x80]] {
            #expect(throws: KeyError.invalidUTF8) { try KeyRules.validate(utf8: bytes) }
        }
    }

    @Test func pathEncodingRoundTripsRandomKeys() throws {
        let seed = SeededRandom.seed()
        var random = SeededRandom(seed: seed)
        let alphabet = Array("aZ09-_.~:@/ ?#%&+=é漢🙂\"'<>[]{}|\\^`,;!$*()")
        for _ in 0..<2_000 {
            let key = String((0..<Int.random(in: 1...20, using: &random)).map { _ in alphabet.randomElement(using: &random)! })
            let encoded = KeyPath.encode(key)
            #expect(!encoded.contains(" ") && !encoded.contains("?") && !encoded.contains("#"),
                    "no space, ? or # left raw; KV_SEED=\(seed)")
            #expect(encoded.utf8.allSatisfy { $0 < 0x80 }, "ASCII only; KV_SEED=\(seed)")
            #expect(try KeyPath.decode(encoded[...]) == Array(key.utf8), "round trip; KV_SEED=\(seed)")
        }
        #expect(KeyPath.encode("users/42") == "users/42")
        #expect(KeyPath.encode("a b%") == "a%20b%25")
    }

    @Test func malformedPercentEncodingIsAnError() throws {
        for bad in ["%", "%4", "%G0", "a%2", "%%"] {
            #expect(throws: KeyError.badPercentEncoding) { try KeyPath.decode(bad[...]) }
        }
        #expect(try KeyPath.decode("%2f%2F"[...]) == [0x2F, 0x2F])
    }

    @Test func nodeIDRules() throws {
        #expect(throws: NodeIDError.empty) { try NodeID("") }
        #expect(throws: NodeIDError.invalidCharacter("a b")) { try NodeID("a b") }
        #expect(throws: NodeIDError.invalidCharacter("a/b")) { try NodeID("a/b") }
        _ = try NodeID(String(repeating: "x", count: 64))
        #expect(throws: NodeIDError.tooLong(String(repeating: "x", count: 65), 65)) {
            try NodeID(String(repeating: "x", count: 65))
        }
        #expect(try NodeID("node-1.eu_west").rawValue == "node-1.eu_west")
    }
}
