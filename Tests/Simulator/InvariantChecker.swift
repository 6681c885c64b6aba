import KVCore
import KVStore

/// The invariants of replication, checked on what the simulated nodes' stores show: at every
/// step on every row that changed and every mark, and at the end on whole files.
struct InvariantChecker {
    private(set) var violations: [String] = []

    /// Every content ever seen for each (key, version), anywhere: a version is one write.
    private var contents: [String: [Version: [UInt8]?]] = [:]
    /// Per node, the greatest version each key has held, tombstones and purged rows included.
    private var greatest: [[String: (version: Version, tombstone: Bool)]]
    /// Per node, the last marks seen, keyed by (peer, peer's epoch, own epoch).
    private var marks: [[MarkKey: (pulled: Int64, pushed: Int64)]]
    /// Every acknowledged client write.
    private(set) var acknowledged: [Record] = []

    struct MarkKey: Hashable {
        let peer: NodeID
        let peerEpoch: String
        let ownEpoch: String
    }

    init(nodes: Int) {
        greatest = Array(repeating: [:], count: nodes)
        marks = Array(repeating: [:], count: nodes)
    }

    mutating func fail(_ message: String) {
        if violations.count < 20 { violations.append(message) }
    }

    /// A client write the node acknowledged.
    mutating func acknowledged(_ record: Record) {
        acknowledged.append(record)
        see(record)
    }

    private mutating func see(_ record: Record) {
        if let known = contents[record.key]?[record.version] {
            if known != record.value {
                fail("\(record.key)@\(record.version) was seen with two contents: \(describe(known)) and \(describe(record.value))")
            }
        } else {
            contents[record.key, default: [:]][record.version] = .some(record.value)
        }
    }

    /// A row of `node` that changed (it has a new seq): its version only ever grows, and a
    /// version has one content everywhere.
    mutating func changed(_ record: Record, on node: Int, name: NodeID) {
        see(record)
        if let before = greatest[node][record.key] {
            if record.version < before.version {
                fail("\(name) took \(record.key)@\(record.version) after holding the newer \(before.version)\(before.tombstone ? " (a tombstone, maybe purged since)" : ""): an older write came back")
                return
            }
            if record.version == before.version, !(record.isTombstone && before.tombstone) {
                fail("\(name) applied \(record.key)@\(record.version) a second time")
            }
        }
        greatest[node][record.key] = (record.version, record.isTombstone)
    }

    /// The marks in `node`'s `peers` table: for a given pair of epochs they never go back.
    mutating func marks(_ peers: [PeerState], on node: Int, name: NodeID, ownEpoch: String) {
        for peer in peers {
            let key = MarkKey(peer: peer.id, peerEpoch: peer.epoch ?? "", ownEpoch: ownEpoch)
            if let before = marks[node][key] {
                if peer.pulledSeq < before.pulled {
                    fail("\(name)'s pulled_seq of \(peer.id) went back from \(before.pulled) to \(peer.pulledSeq)")
                }
                if peer.pushedSeq < before.pushed {
                    fail("\(name)'s pushed_seq of \(peer.id) went back from \(before.pushed) to \(peer.pushedSeq)")
                }
            }
            marks[node][key] = (peer.pulledSeq, peer.pushedSeq)
        }
    }

    /// The end state, once every node is up and their live rows agree: every node holds the
    /// same live rows; every acknowledged write is there at its version or superseded by a
    /// greater version of its key (or its key's last write was a delete whose tombstone was
    /// purged); and the live rows are exactly what `Merge` makes of the acknowledged writes.
    mutating func final(rows: [[StoredRecord]], names: [NodeID]) {
        let live = rows.map { Dictionary($0.filter { !$0.record.isTombstone }.map { ($0.record.key, $0.record) }, uniquingKeysWith: { a, _ in a }) }
        for index in live.indices.dropFirst() where live[index] != live[0] {
            let keys = Set(live[index].keys).union(live[0].keys).filter { live[index][$0] != live[0][$0] }.sorted()
            fail("\(names[index]) and \(names[0]) hold different live rows, e.g. \(keys.prefix(3).map { "\($0): \(live[index][$0].map(\.description) ?? "none") vs \(live[0][$0].map(\.description) ?? "none")" })")
        }
        for (index, nodeRows) in rows.enumerated() {
            let stored = Dictionary(nodeRows.map { ($0.record.key, $0.record) }, uniquingKeysWith: { a, _ in a })
            for write in acknowledged {
                if let row = stored[write.key] {
                    if row.version < write.version {
                        fail("\(names[index]) lost the acknowledged \(write.key)@\(write.version): it holds \(row.version)")
                    }
                } else if !lastWriteIsDelete(write.key) {
                    fail("\(names[index]) lost the acknowledged \(write.key)@\(write.version): it holds nothing and the key's last write is not a delete")
                }
            }
        }
        var model: [String: Record] = [:]
        for write in acknowledged { Merge.apply(write, to: &model) }
        let expected = model.filter { !$0.value.isTombstone }
        if let first = live.first, first != expected {
            let keys = Set(first.keys).union(expected.keys).filter { first[$0] != expected[$0] }.sorted()
            fail("the live rows are not what Merge makes of the acknowledged writes, e.g. \(keys.prefix(3).map { "\($0): stored \(first[$0].map(\.description) ?? "none"), Merge \(expected[$0].map(\.description) ?? "none")" })")
        }
    }

    /// Whether every node holds every acknowledged write at its version or a greater one (or
    /// nothing, when the key's last write is a delete): the end state the run waits for.
    func holdsEveryAcknowledgedWrite(_ rows: [[StoredRecord]]) -> Bool {
        var newest: [String: Version] = [:]
        for write in acknowledged where newest[write.key].map({ write.version > $0 }) ?? true {
            newest[write.key] = write.version
        }
        for nodeRows in rows {
            let stored = Dictionary(nodeRows.map { ($0.record.key, $0.record.version) }, uniquingKeysWith: { a, _ in a })
            for (key, version) in newest {
                if let held = stored[key] {
                    if held < version { return false }
                } else if !lastWriteIsDelete(key) {
                    return false
                }
            }
        }
        return true
    }

    private func lastWriteIsDelete(_ key: String) -> Bool {
        guard let versions = contents[key], let newest = versions.keys.max() else { return false }
        return versions[newest] == .some(nil)
    }

    private func describe(_ value: [UInt8]?) -> String {
        value.map { "\($0.count) bytes" } ?? "tombstone"
    }
}
