import Foundation
import KVClient
import KVCore
import NodeHTTP
import Testing
import TestSupport

/// Issue 12, writes: `PUT`/`DELETE /kv/{key}?w=N|quorum|all&timeout=S` answer once that many
/// nodes hold the write durably, with `acked_by`; past the timeout, 504 `write_timeout` names
/// the nodes that hold it, and the write stays and replicates. Real `kvnode` processes.
@Suite("Write acknowledgements (w)")
struct WriteAcknowledgementTests {
    struct Answer: Decodable {
        let ackedBy: [String]?
        let error: String?
        let detail: String?

        enum CodingKeys: String, CodingKey {
            case ackedBy = "acked_by"
            case error, detail
        }
    }

    static func answer(_ reply: HTTPReply) throws -> Answer {
        try JSONDecoder().decode(Answer.self, from: Data(reply.body))
    }

    @Test("w=all, quorum and 2 answer with the nodes that hold the write; each holds it at that version")
    func acknowledgedByTheNodesAskedFor() async throws {
        try await withCluster { cluster in
            try await cluster.waitUntilConnected()
            let a = try cluster.client("A")
            let all = try await a.send("PUT", "/kv/acked/all?w=all", body: Array("1".utf8))
            #expect(all.status == 200, "\(String(decoding: all.body, as: UTF8.self))")
            let allAcks = Set(try Self.answer(all).ackedBy ?? [])
            #expect(allAcks == ["A", "B", "C"])
            // acked_by promises the write is there: read it on the others at once, no polling.
            let version = try JSONDecoder().decode(WriteReply.self, from: Data(all.body))
            for name in ["B", "C"] {
                let held = try await cluster.client(name).get("acked/all")
                #expect(held?.lamport == version.lamport && held?.origin == version.origin, "\(name) holds \(String(describing: held))")
            }
            let quorum = try await a.send("PUT", "/kv/acked/quorum?w=quorum", body: Array("2".utf8))
            #expect(quorum.status == 200)
            let quorumAcks = try Self.answer(quorum).ackedBy ?? []
            #expect(quorumAcks.first == "A" && quorumAcks.count >= 2, "\(quorumAcks)")
            let delete = try await a.send("DELETE", "/kv/acked/all?w=2")
            #expect(delete.status == 200)
            let deleteAcks = try Self.answer(delete).ackedBy ?? []
            #expect(deleteAcks.count >= 2)
            let plain = try await a.send("PUT", "/kv/acked/plain", body: Array("3".utf8))
            let plainAcks = try Self.answer(plain).ackedBy
            #expect(plain.status == 200 && plainAcks == nil, "w=1 answers as before, without acked_by")
        }
    }

    @Test("w above the member count, or not a number, quorum or all, is 400 and stores nothing")
    func badAcknowledgementsAreRefused() async throws {
        try await withCluster { cluster in
            let a = try cluster.client("A")
            for query in ["w=4", "w=0", "w=most", "w=all&timeout=0", "w=2&timeout=x"] {
                let reply = try await a.send("PUT", "/kv/refused?\(query)", body: Array("x".utf8))
                #expect(reply.status == 400, "\(query): \(reply.status)")
                let error = try Self.answer(reply).error
                #expect(error == "invalid_parameter", "\(query)")
            }
            let four = try await a.send("PUT", "/kv/refused?w=4", body: Array("x".utf8))
            let fourDetail = try Self.answer(four).detail ?? ""
            #expect(fourDetail.contains("the cluster has 3 members"), "\(fourDetail)")
            let stored = try await a.get("refused")
            #expect(stored == nil)
        }
    }

    @Test("w=all with a node down: 504 write_timeout naming the two that hold it; the write reaches the third when it returns")
    func allWithANodeDownTimesOutAndStillReplicates() async throws {
        try await withCluster { cluster in
            try await cluster.waitUntilConnected()
            cluster.stop("C")
            let a = try cluster.client("A")
            let started = ContinuousClock.now
            let reply = try await a.send("PUT", "/kv/late?w=all&timeout=1", body: Array("v".utf8))
            let waited = ContinuousClock.now - started
            #expect(reply.status == 504, "\(String(decoding: reply.body, as: UTF8.self))")
            let answer = try Self.answer(reply)
            #expect(answer.error == "write_timeout")
            #expect(answer.ackedBy == ["A", "B"])
            #expect(answer.detail?.contains("stored on A, B") == true, "\(answer.detail ?? "")")
            #expect(waited >= .seconds(1), "it waited for its timeout: \(waited)")
            let kept = try await a.get("late")
            #expect(kept != nil, "the write is never undone")

            // The CLI: one line naming the nodes that hold the write, exit 2.
            let cli = try await runCommand(
                Products.executable("kv"), ["--node", cluster.urls["A"]!, "put", "-w", "all", "--ack-timeout", "0.5", "late2", "v"],
                timeout: .seconds(60))
            #expect(cli.status == 2, "\(cli.stdoutText) \(cli.stderr)")
            #expect(cli.stderr.contains("write_timeout") && cli.stderr.contains("stored on A, B"), "\(cli.stderr)")
            #expect(cli.stderr.split(separator: "\n").count == 1, "one line: \(cli.stderr)")

            try await cluster.start(["C"])
            try await poll("C to hold the writes made while it was down") {
                let c = try cluster.client("C")
                let late = try await c.get("late")
                let late2 = try await c.get("late2")
                return late != nil && late2 != nil ? nil : "not yet"
            }
        }
    }
}
