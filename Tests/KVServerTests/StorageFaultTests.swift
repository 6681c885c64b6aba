import Foundation
import KVClient
import KVCore
import KVServer
import KVStore
import NodeHTTP
import Testing
import TestSupport

@Suite("A full disk")
struct StorageFaultTests {
    /// The disk fills up (a quota on the file, which SQLite reports exactly as a full disk):
    /// writes fail with 507 and a clear error, reads go on, nothing acknowledged is lost or
    /// corrupted, and writes succeed again once there is room.
    @Test func writesFailWith507ReadsGoOnAndWritesResumeWithRoom() async throws {
        try await withTemporaryDirectoryForNode { base in
            var configuration = base
            configuration.maxDatabaseBytes = 256 * 1024
            let node = try await ConvergeNode.start(configuration, logger: testLogger)
            let client = try KVClient(node: node.url)
            var acknowledged: [String] = []
            var full: HTTPReply?
            let value = [UInt8](repeating: 0xAB, count: 8 * 1024)
            for index in 0..<200 {
                let reply = try await client.send("PUT", "/kv/fill\(index)", body: value)
                if reply.status == 200 {
                    acknowledged.append("fill\(index)")
                } else {
                    full = reply
                    break
                }
            }
            let refusal = try #require(full, "the quota was never reached")
            #expect(refusal.status == 507)
            #expect(try refusal.errorBody().error == "insufficient_storage")
            #expect(try refusal.errorBody().detail.contains("full"))
            #expect(!acknowledged.isEmpty)
            // Reads still work, and a second write is refused the same way.
            #expect(try await client.get(acknowledged[0])?.value == value)
            #expect(try await client.list(limit: 5).keys.count == 5)
            #expect(try await client.send("PUT", "/kv/another", body: value).status == 507)
            #expect(try await client.health())
            await client.close()
            await node.stop()

            // The file is intact, and with room again writes succeed and nothing was lost.
            let check = try await runCommand(URL(fileURLWithPath: "/usr/bin/sqlite3"), [configuration.databasePath, "PRAGMA integrity_check"])
            #expect(check.stdoutText == "ok\n")
            let roomy = try await ConvergeNode.start(base, logger: testLogger)
            let again = try KVClient(node: roomy.url)
            #expect(try await again.send("PUT", "/kv/after", body: value).status == 200)
            for key in acknowledged { #expect(try await again.get(key)?.value == value, "\(key)") }
            await again.close()
            await roomy.stop()
        }
    }
}
