import KVCore
import KVStore

/// The invariants of replication, checked on what the simulated nodes' stores show: at every
/// step on every row that changed and every mark, and at the end on whole files.
///
/// A node's file can be lost to the cluster (its node removed, or the file deleted to replace
/// it with an empty one): `forgive(file:)`. A write that no other file ever held is then
/// allowed to be lost with it; a write some file still in the cluster ever held is not, since
/// a file's version of a key only grows.
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
    /// Every file that ever held each (key, version), and the files lost to the cluster.
    private var holders: [WriteID: Set<FileID>] = [:]
    private var lostFiles: Set<FileID> = []

    /// One file of a node: `generation` grows each time the node's file is replaced.
    struct FileID: Hashable {
        let node: Int
        let generation: Int
    }

    struct WriteID: Hashable {
        let key: String
        let version: Version
    }

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

    /// A client write the node acknowledged, held by its file `file`.
    mutating func acknowledged(_ record: Record, in file: FileID) {
        acknowledged.append(record)
        see(record)
        holders[WriteID(key: record.key, version: record.version), default: []].insert(file)
    }

    /// `file` is lost to the cluster: its node was removed, or the file was deleted. What only it
    /// held may be gone.
    mutating func forgive(file: FileID) {
        lostFiles.insert(file)
    }

    /// The node's file was replaced by an empty one: what it held before says nothing of the new one.
    mutating func newFile(on node: Int) {
        greatest[node] = [:]
        marks[node] = [:]
    }

    /// The newest version of `key` seen anywhere.
    func newestVersion(of key: String) -> Version? {
        contents[key]?.keys.max()
    }

    /// Whether a file still in the cluster other than `file` holds or held (key, version).
    func isHeld(_ key: String, _ version: Version, beyond file: FileID) -> Bool {
        (holders[WriteID(key: key, version: version)] ?? []).contains { $0 != file && !lostFiles.contains($0) }
    }

    /// Whether a file still in the cluster ever held the write: then it must never be lost.
    private func mustSurvive(_ key: String, _ version: Version) -> Bool {
        (holders[WriteID(key: key, version: version)] ?? []).contains { !lostFiles.contains($0) }
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
    mutating func changed(_ record: Record, on node: Int, generation: Int, name: NodeID) {
        see(record)
        holders[WriteID(key: record.key, version: record.version), default: []].insert(FileID(node: node, generation: generation))
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

    /// A client read of `key` on `node` returned `read`: never older than what the node's file
    /// held when the read began (read-your-writes and monotonic reads on one node, through the
    /// read cache and the key filter); absent only if the key never had a row there or its
    /// newest row was a tombstone (which a purge may have taken since).
    mutating func read(_ read: Record?, key: String, on node: Int, name: NodeID) {
        guard let before = greatest[node][key] else { return }
        guard let read else {
            if !before.tombstone { fail("\(name) read \(key) as absent while its file held \(before.version)") }
            return
        }
        if read.version < before.version {
            fail("\(name) read \(key)@\(read.version) while its file held the newer \(before.version): a stale read")
        }
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

    /// The end state, once every active member is up and their live rows agree: they hold the
    /// same live rows, member rows included; every acknowledged write that must survive (some
    /// file still in the cluster held it) is there at its version or superseded by a greater
    /// version of its key (or its key's last surviving write was a delete whose tombstone was
    /// purged); and the live client rows are exactly what `Merge` makes of those writes.
    mutating func final(rows: [[StoredRecord]], names: [NodeID]) {
        let live = rows.map { Dictionary($0.filter { !$0.record.isTombstone }.map { ($0.record.key, $0.record) }, uniquingKeysWith: { a, _ in a }) }
        for index in live.indices.dropFirst() where live[index] != live[0] {
            let keys = Set(live[index].keys).union(live[0].keys).filter { live[index][$0] != live[0][$0] }.sorted()
            fail("\(names[index]) and \(names[0]) hold different live rows, e.g. \(keys.prefix(3).map { "\($0): \(live[index][$0].map(\.description) ?? "none") vs \(live[0][$0].map(\.description) ?? "none")" })")
        }
        let surviving = acknowledged.filter { mustSurvive($0.key, $0.version) }
        for (index, nodeRows) in rows.enumerated() {
            let stored = Dictionary(nodeRows.map { ($0.record.key, $0.record) }, uniquingKeysWith: { a, _ in a })
            for write in surviving {
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
        for write in surviving { Merge.apply(write, to: &model) }
        let expected = model.filter { !$0.value.isTombstone }
        if let first = live.first?.filter({ MemberRow.id(ofKey: $0.key) == nil }), first != expected {
            let keys = Set(first.keys).union(expected.keys).filter { first[$0] != expected[$0] }.sorted()
            fail("the live rows are not what Merge makes of the acknowledged writes, e.g. \(keys.prefix(3).map { "\($0): stored \(first[$0].map(\.description) ?? "none"), Merge \(expected[$0].map(\.description) ?? "none")" })")
        }
    }

    /// Whether every node holds every acknowledged write that must survive at its version or a
    /// greater one (or nothing, when the key's last write is a delete): the end state the run
    /// waits for.
    func holdsEveryAcknowledgedWrite(_ rows: [[StoredRecord]]) -> Bool {
        var newest: [String: Version] = [:]
        for write in acknowledged where mustSurvive(write.key, write.version) && (newest[write.key].map({ write.version > $0 }) ?? true) {
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

    /// Whether the newest version of `key` that must survive is a delete.
    private func lastWriteIsDelete(_ key: String) -> Bool {
        guard let versions = contents[key], let newest = versions.keys.filter({ mustSurvive(key, $0) }).max() else { return false }
        return versions[newest] == .some(nil)
    }

    private func describe(_ value: [UInt8]?) -> String {
        value.map { "\($0.count) bytes" } ?? "tombstone"
    }
}
