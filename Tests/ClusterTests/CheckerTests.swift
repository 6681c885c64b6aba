import KVCore
import Testing

/// The checker the partition, crash and nemesis tests rely on finds each kind of anomaly: a
/// checker that finds nothing would make them pass for nothing.
@Suite("History checker")
struct CheckerTests {
    static func version(_ lamport: Int64, _ origin: String) -> Version {
        Version(lamport: lamport, origin: try! NodeID(origin))  // literal ids: a programmer error if invalid
    }

    static func put(_ key: String, _ value: String, on node: String, _ outcome: AttemptedWrite.Outcome) -> AttemptedWrite {
        AttemptedWrite(key: key, value: Array(value.utf8), node: node, outcome: outcome)
    }

    static func row(_ key: String, _ value: String?, _ lamport: Int64, _ origin: String) -> StoredRow {
        StoredRow(key: key, valueHex: value.map { hex(Array($0.utf8)) } ?? "", lamport: lamport, origin: origin, deleted: value == nil)
    }

    @Test func acceptsTheGreatestAcknowledgedWriteOrAGreaterUnansweredOne() {
        let history = [
            Self.put("x", "1", on: "A", .acknowledged(Self.version(1, "A"))),
            Self.put("x", "2", on: "B", .acknowledged(Self.version(2, "B"))),
            Self.put("y", "3", on: "A", .acknowledged(Self.version(3, "A"))),
            Self.put("y", "4", on: "C", .indeterminate),
            AttemptedWrite(key: "z", value: nil, node: "B", outcome: .acknowledged(Self.version(4, "B"))),
            Self.put("lost-but-unanswered", "5", on: "C", .indeterminate),
        ]
        let rows = [Self.row("x", "2", 2, "B"), Self.row("y", "4", 9, "C"), Self.row("z", nil, 4, "B")]
        #expect(checkHistory(history, finalRows: rows).isEmpty)
    }

    @Test func findsALostWriteAMissingKeyAPhantomAndAReusedVersion() {
        let history = [
            Self.put("x", "1", on: "A", .acknowledged(Self.version(5, "A"))),
            Self.put("x", "2", on: "B", .acknowledged(Self.version(3, "B"))),
            Self.put("gone", "3", on: "A", .acknowledged(Self.version(6, "A"))),
            Self.put("p", "4", on: "A", .acknowledged(Self.version(7, "A"))),
            Self.put("dup", "5", on: "A", .acknowledged(Self.version(7, "A"))),
        ]
        let rows = [
            Self.row("x", "2", 3, "B"),  // below the acknowledged 5A
            Self.row("p", "nobody wrote this", 7, "A"),
            Self.row("dup", "5", 7, "A"),
            Self.row("stranger", "6", 1, "C"),
        ]
        let anomalies = checkHistory(history, finalRows: rows).map(\.description)
        #expect(anomalies.contains { $0.hasPrefix("x: ended at") })
        #expect(anomalies.contains { $0.hasPrefix("gone: missing") })
        #expect(anomalies.contains { $0.hasPrefix("p: stored") && $0.contains("matches no write") })
        #expect(anomalies.contains { $0.contains("acknowledged twice") })
        #expect(anomalies.contains { $0.hasPrefix("stranger: present") })
        #expect(anomalies.count == 5, "\(anomalies)")
    }

    @Test func findsAStoredValueWhoseVersionIsNotTheOneAcknowledged() {
        let history = [Self.put("x", "1", on: "A", .acknowledged(Self.version(2, "A")))]
        let anomalies = checkHistory(history, finalRows: [Self.row("x", "1", 8, "A")])
        #expect(anomalies.map(\.description) == ["x: stored x=31@8A but its write was acknowledged as \(Self.version(2, "A"))"])
    }

    @Test func withPurgedTombstonesAcceptsAbsenceOnlyWhereADeleteMayHaveWon() {
        let history = [
            Self.put("deleted", "1", on: "A", .acknowledged(Self.version(1, "A"))),
            AttemptedWrite(key: "deleted", value: nil, node: "B", outcome: .acknowledged(Self.version(2, "B"))),
            Self.put("maybe", "2", on: "A", .acknowledged(Self.version(3, "A"))),
            AttemptedWrite(key: "maybe", value: nil, node: "C", outcome: .indeterminate),
            AttemptedWrite(key: "overwritten", value: nil, node: "A", outcome: .acknowledged(Self.version(4, "A"))),
            Self.put("overwritten", "3", on: "B", .acknowledged(Self.version(5, "B"))),
            Self.put("resurrected", "4", on: "A", .acknowledged(Self.version(6, "A"))),
            AttemptedWrite(key: "resurrected", value: nil, node: "A", outcome: .acknowledged(Self.version(7, "A"))),
        ]
        let rows = [Self.row("resurrected", "4", 6, "A")]
        let anomalies = checkHistory(history, finalRows: rows, tombstonesPurged: true).map(\.description)
        #expect(anomalies.count == 2, "\(anomalies)")
        #expect(anomalies.contains { $0.hasPrefix("overwritten: missing") })
        #expect(anomalies.contains { $0.hasPrefix("resurrected: ended at") })
        let strict = checkHistory(history, finalRows: rows).map(\.description)
        #expect(strict.contains { $0.hasPrefix("deleted: missing") } && strict.contains { $0.hasPrefix("maybe: missing") })
    }
}
