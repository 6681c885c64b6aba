import KVCore
import Testing
import TestSupport

@testable import Replication

/// The pure decision of a read at several nodes: the newest copy by `Merge`'s rule, and who is
/// to be repaired. Checked exhaustively over small sets of copies.
@Suite("ReadResolution")
struct ReadResolutionTests {
    static let nodes = ["A", "B", "C", "D"].map { try! NodeID($0) }  // constants, valid ids
    static let now: Int64 = 1_000_000

    /// Every copy a node may hold of key `k` in these tests: none, a value or a tombstone at
    /// small versions (one content per version, as versions are unique per write), or a value
    /// that has expired.
    static let possible: [Record?] = [nil] + (1...4).flatMap { lamport in
        nodes.prefix(2).enumerated().map { index, origin in
            let version = Version(lamport: Int64(lamport), origin: origin)
            return (lamport + index) % 2 == 0
                ? Record(key: "k", value: nil, version: version)
                : Record(key: "k", value: [UInt8(lamport)], version: version)
        }
    } + [Record(key: "k", value: [9], version: Version(lamport: 5, origin: nodes[0]), expiresAt: now - 1)]

    @Test("over every combination of three copies: the newest is the merge of all, in any order; exactly the older copies are stale")
    func exhaustive() {
        var combinations = 0
        for first in Self.possible {
            for second in Self.possible {
                for third in Self.possible {
                    let records = [first, second, third]
                    let copies = zip(Self.nodes, records).map { ReadResolution.Copy(node: $0, record: $1) }
                    let resolution = ReadResolution(copies, at: Self.now)
                    let reversed = ReadResolution(copies.reversed(), at: Self.now)
                    var merged: [String: Record] = [:]
                    for record in records.compactMap({ $0 }) { Merge.apply(record, to: &merged) }
                    #expect(resolution.newest == merged["k"])
                    #expect(reversed.newest == resolution.newest)
                    #expect(Set(reversed.stale) == Set(resolution.stale))
                    for copy in copies {
                        let expected: Bool
                        switch (copy.record, resolution.newest) {
                        case (_, nil): expected = false
                        case (nil, let newest?): expected = newest.value(at: Self.now) != nil
                        case (let held?, let newest?): expected = held.version < newest.version
                        }
                        #expect(resolution.stale.contains(copy.node) == expected, "\(copy) against \(String(describing: resolution.newest))")
                        #expect(resolution.isStale(copy) == expected)
                    }
                    combinations += 1
                }
            }
        }
        #expect(combinations == Self.possible.count * Self.possible.count * Self.possible.count)
    }

    @Test("a tombstone or an expired value reads as absent and is never sent to a node that holds nothing")
    func absenceIsNotRepairedIntoExistence() {
        let a = Self.nodes[0]
        let b = Self.nodes[1]
        let tombstone = Record(key: "k", value: nil, version: Version(lamport: 5, origin: a))
        let deleted = ReadResolution([.init(node: a, record: tombstone), .init(node: b, record: nil)], at: Self.now)
        #expect(deleted.value == nil)
        #expect(deleted.stale.isEmpty)
        let expired = Record(key: "k", value: [1], version: Version(lamport: 5, origin: a), expiresAt: Self.now)
        let gone = ReadResolution([.init(node: a, record: expired), .init(node: b, record: nil)], at: Self.now)
        #expect(gone.value == nil)
        #expect(gone.stale.isEmpty, "unlike Riak #1649, an expired value is not read-repaired back")
        let older = Record(key: "k", value: [0], version: Version(lamport: 2, origin: b))
        let replaced = ReadResolution([.init(node: a, record: tombstone), .init(node: b, record: older)], at: Self.now)
        #expect(replaced.stale == [b], "an older live value is replaced by the tombstone")
    }

    @Test("the read answers once enough copies are in, or fails once they cannot be")
    func gathering() {
        let a = Self.nodes[0]
        let b = Self.nodes[1]
        let value = Record(key: "k", value: [1], version: Version(lamport: 1, origin: a))
        var gathering = ReadGathering(local: .init(node: a, record: value), needed: 2)
        gathering.asked = 2
        gathering.everyPeerAsked = true
        #expect(gathering.decision(at: Self.now) == nil)
        gathering.take(.failed(b, "connection refused"))
        #expect(gathering.decision(at: Self.now) == nil, "one peer is still to answer")
        gathering.take(.deadline)
        guard case .failure(let shortfall)? = gathering.decision(at: Self.now) else {
            Issue.record("no shortfall after the deadline")
            return
        }
        #expect(shortfall.answeredBy == [a] && shortfall.timedOut)
        #expect(shortfall.description.contains("B: connection refused"))
        var enough = ReadGathering(local: .init(node: a, record: nil), needed: 2)
        enough.asked = 1
        enough.take(.answer(.init(node: b, record: value)))
        guard case .success(let resolution)? = enough.decision(at: Self.now) else {
            Issue.record("no answer with two copies")
            return
        }
        #expect(resolution.newest == value && resolution.stale == [a])
    }
}
