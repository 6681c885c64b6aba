import Foundation
import KVClient
import KVCore
import KVServer
import KVStore
import NodeHTTP
import Testing
import TestSupport

/// Random paths and query strings against a real node: the key and query parsers may refuse
/// them (4xx) but never fail (5xx), never store a key that breaks the rules, and the node stays
/// up. Replay with KV_SEED=<seed>.
@Suite("Request parser fuzzing")
struct RequestFuzzTests {
    @Test func randomPathsAndQueriesAreRefusedOrServedNeverFailed() async throws {
        let seed = SeededRandom.seed()
        var random = SeededRandom(seed: seed)
        let pieces = ["%", "%2", "%2F", "%ZZ", "%00", "%7F", "%FF", "%C3%A9", "%E2%82", "/", "//", "?", "&", "=", "a", "é", "..", "#",
                      " ", "+", "limit=", "prefix=", "after=", "0", "1001", "-1", "kv", "%25"]
        try await withNode { node, client in
            for round in 0..<SeededRandom.fuzzRounds(600) {
                var tail = ""
                for _ in 0..<Int.random(in: 0...8, using: &random) { tail += pieces.randomElement(using: &random)! }
                let encodedTail = tail.addingPercentEncoding(withAllowedCharacters: .urlQueryAllowed.union(["%"])) ?? tail
                let method = ["GET", "PUT", "DELETE", "POST"].randomElement(using: &random)!
                let path = [("/kv/" + encodedTail), ("/kv?" + encodedTail), ("/digest?" + encodedTail), ("/" + encodedTail)]
                    .randomElement(using: &random)!
                let reply = try await client.send(method, path, body: [1])
                #expect(reply.status < 500, "seed \(seed), round \(round): \(method) \(path) → \(reply.status) \(String(decoding: reply.body.prefix(200), as: UTF8.self))")
            }
            // Whatever was stored is a valid key.
            var after: String?
            repeat {
                let page = try await client.list(after: after, limit: 1000)
                for entry in page.keys { #expect(throws: Never.self, "seed \(seed)") { try KeyRules.validate(entry.key) } }
                after = page.next
            } while after != nil
            #expect(try await client.health())
            _ = node
        }
    }
}
