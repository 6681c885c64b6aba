import Foundation
import KVClient
import KVCore
import Testing
import TestSupport

/// What each row costs on the wire: a row is never pushed back to the node that wrote it, and a
/// node catching up from peers that hold the same rows takes them once, not once per peer.
@Suite("Forwarding cost between real nodes", .serialized)
struct ForwardingTests {
    @Test func writesOnOneNodeAreNeverSentBackToIt() async throws {
        try await withCluster { cluster in
            try await cluster.waitUntilConnected()
            let client = try cluster.client("A")
            for index in 0..<200 { _ = try await client.put("w/\(index)", value: Array("v\(index)".utf8)) }
            try await cluster.waitForConvergence()
            // Wait until every pusher has had its batches acknowledged, so the counts are final.
            try await poll("every peer to acknowledge every row") {
                for name in ["A", "B", "C"] {
                    let status = try await cluster.client(name).status()
                    if let behind = status.peers.first(where: { $0.toPush > 0 }) { return "\(name) → \(behind.id): \(behind.toPush) to push" }
                }
                return nil
            }
            var sentBack: [String] = []
            var total: Int64 = 0
            for name in ["A", "B", "C"] {
                let status = try await cluster.client(name).status()
                total += status.peers.reduce(0) { $0 + $1.rowsSent }
                if let toA = status.peers.first(where: { $0.id == "A" }), toA.rowsSent > 0 {
                    sentBack.append("\(name) sent A \(toA.rowsSent) rows")
                }
            }
            print("figures: 200 writes on A crossed the wire \(total) times (\(Double(total) / 200) rows per write)")
            #expect(sentBack.isEmpty, "rows written on A came back to it: \(sentBack)")
            #expect(total >= 400, "every write reached B and C: \(total) rows sent")
        }
    }

    /// Rows are not sent back to their writer, except to a file that is new to its peers: C's
    /// database is replaced, and its own earlier writes come back through the feeds alone
    /// (anti-entropy, whose digest repair would also find them, never runs here).
    @Test func aReplacedFileGetsItsOwnWritesBackThroughTheFeeds() async throws {
        try await withCluster(extraArguments: ["--anti-entropy-interval", "3600"]) { cluster in
            try await cluster.waitUntilConnected()
            for index in 0..<10 { _ = try await cluster.client("C").put("c/\(index)", value: [UInt8(index)]) }
            let before = try await cluster.waitForConvergence()
            cluster.stop("C")
            for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: cluster.databasePath("C") + suffix) }
            try await cluster.start(["C"])
            let after = try await cluster.waitForConvergence()
            #expect(after == before)
            #expect(after.filter { $0.origin == "C" }.count == 10, "C's own writes came back: \(after)")
        }
    }

    /// A and B hold the same 30 000 rows; C starts empty and catches up. It pulls one feed, then
    /// tells the other peer what it holds, and pushes wait while it pulls: each row comes about
    /// once (a push already under way when the first batch arrived may bring one batch twice).
    @Test func aNodeCatchingUpFromTwoPeersTakesEachRowAboutOnce() async throws {
        let total = 30_000
        try await withCluster(start: false) { cluster in
            try await cluster.start(["A"])
            cluster.stop("A")
            try await bulkLoad(rows: total, into: cluster.databasePath("A"))
            try await cluster.start(["A", "B"])
            try await poll("B to hold \(total) keys", timeout: .seconds(300), interval: .milliseconds(100)) {
                let keys = try await cluster.client("B").status().keys
                return keys == total ? nil : "\(keys) keys"
            }
            try await cluster.start(["C"])
            try await poll("C to finish its catch-up", timeout: .seconds(300), interval: .milliseconds(100)) {
                cluster.log("C").contains("catch-up finished") ? nil : "still catching up"
            }
            let status = try await cluster.client("C").status()
            #expect(status.keys == total)
            let received = status.peers.reduce(0) { $0 + $1.rowsReceived }
            print("figures: C caught up \(total) rows from A and B, receiving \(received) rows")
            #expect(received >= Int64(total))
            #expect(received <= Int64(total) + 2 * 5_000, "C received \(received) rows for \(total) keys")
            try await cluster.waitForConvergence()
        }
    }
}
