import KVCore
import KVStore
import Testing

@testable import Replication

/// The pure parts of membership: the member row's text, who is a member, and what the core
/// does when the member list changes.
@Suite("Membership, pure")
struct MembershipCoreTests {
    static let a = PeerSessionTests.a
    static let b = PeerSessionTests.b
    static let c = PeerSessionTests.c
    static let d = try! NodeID("D")  // a constant, valid id

    @Test("a member row's value reads back as the member; other keys and edited values do not")
    func memberRowText() {
        let member = Member(id: Self.d, url: "http://10.0.0.4:8000", state: .removed, epoch: "e1")
        let key = MemberRow.key(of: Self.d)
        #expect(key == "\u{1}member/D")
        #expect(MemberRow.member(key: key, value: MemberRow.value(of: member)) == member)
        #expect(MemberRow.member(key: "member/D", value: MemberRow.value(of: member)) == nil, "not the reserved prefix")
        #expect(MemberRow.member(key: key, value: nil) == nil, "a tombstone is no member")
        for edited in ["gone http://x:1 e", "active  e", "active http://x:1", "active http://x:1 e extra"] {
            #expect(MemberRow.member(key: key, value: Array(edited.utf8)) == nil, "\(edited)")
        }
        #expect(MemberRow.id(ofKey: "\u{1}member/not a node id") == nil)
    }

    @Test("clients cannot write member keys; the store and peers can")
    func reservedKeys() throws {
        #expect(throws: KeyError.controlCharacter(1)) { try KeyRules.validate("\u{1}member/D") }
        try KeyRules.validateStored("\u{1}member/D")
        try KeyRules.validateStored(utf8: Array("\u{1}member/D".utf8))
        #expect(throws: KeyError.controlCharacter(1)) { try KeyRules.validateStored("\u{1}other/D") }
        #expect(throws: KeyError.controlCharacter(1)) { try KeyRules.validateStored(utf8: Array("\u{1}member/ bad".utf8)) }
    }

    @Test("members come from flags, a join reply and rows; rows decide the state, flags the URL; removed ones are out")
    func membershipPrecedence() {
        let membership = Membership(identity: Self.a, seeds: [PeerConfig(id: Self.b, url: "http://proxy-to-b:1")])
        membership.setOwn(url: "http://a:1", epoch: "ea")
        membership.learn([PeerConfig(id: Self.c, url: "http://c:1"), PeerConfig(id: Self.a, url: "http://a:1")])
        #expect(membership.activePeers.map(\.id) == [Self.b, Self.c], "this node is never its own peer")
        #expect(membership.admission(of: Self.d) == .stranger)

        membership.adopt(rows: [
            Member(id: Self.b, url: "http://b:1", state: .active, epoch: "eb"),
            Member(id: Self.c, url: "http://c:1", state: .removed, epoch: "ec"),
            Member(id: Self.d, url: "http://d:1", state: .active, epoch: "ed"),
        ])
        #expect(membership.activePeers == [PeerConfig(id: Self.b, url: "http://proxy-to-b:1"), PeerConfig(id: Self.d, url: "http://d:1")])
        #expect(membership.admission(of: Self.c) == .removed)
        #expect(membership.admission(of: Self.d) == .member)
        #expect(membership.activeCount == 3)
        #expect(membership.all.map(\.state) == [.active, .active, .removed, .active])

        // This very file removed: it replicates with no one. Another file under its id was not.
        membership.adopt(rows: [Member(id: Self.a, url: "http://a:1", state: .removed, epoch: "an older file")])
        #expect(!membership.selfRemoved && membership.activePeers.count == 2)
        membership.adopt(rows: [Member(id: Self.a, url: "http://a:1", state: .removed, epoch: "ea")])
        #expect(membership.selfRemoved && membership.activePeers.isEmpty)
    }

    @Test("a new member gets a session that greets it; a removed one's session goes, and nothing waits for it")
    func coreFollowsTheMembers() {
        var core = ReplicationCore(
            identity: Self.a, peers: [Self.b, Self.c], stored: [], position: FeedPosition(epoch: "ea", lastSeq: 50, clock: 0),
            settings: PeerSessionTests.settings(), seed: 1)
        _ = core.start(now: .zero)
        _ = ReplicationCoreTests().greet(&core, Self.b, seq: 0, mark: 40, ownLastSeq: 50)
        // C never answers; it is removed while the start-up waits for it, and D joins.
        #expect(core.catchingUp)
        let actions = core.membersChanged(to: [Self.b, Self.d], stored: [], lastSeq: 50, seed: 2, now: .seconds(1))
        #expect(core.sessions.map(\.peer) == [Self.b, Self.d])
        #expect(actions.contains { if case .peer(Self.d, .hello) = $0 { true } else { false } }, "D is greeted at once")
        #expect(!actions.contains { if case .peer(Self.c, _) = $0 { true } else { false } })
        #expect(core.handle(.failed(PeerFailure("late")), of: .fetchDigest, for: Self.c, now: .seconds(1)).isEmpty, "a late answer of C is ignored")

        // In a round's repair, the removal of the peer it still waits for lets the round end in
        // a purge through the marks of the members left: C no longer holds the purge back.
        var running = ReplicationCore(
            identity: Self.a, peers: [Self.b, Self.c], stored: [], position: FeedPosition(epoch: "ea", lastSeq: 50, clock: 0),
            settings: PeerSessionTests.settings(), seed: 1)
        _ = running.start(now: .zero)
        _ = ReplicationCoreTests().greet(&running, Self.b, seq: 0, mark: 40, ownLastSeq: 50)
        _ = ReplicationCoreTests().greet(&running, Self.c, seq: 0, mark: 30, ownLastSeq: 50)
        for peer in [Self.b, Self.c] {
            let feed = FetchedFeed(batch: FeedBatch(from: 0, to: 0, rows: []), epoch: "e" + peer.rawValue, lastSeq: 0, clock: 0, coverage: [])
            _ = running.handle(.feedFetched(feed), of: .fetchFeed(after: 0, limit: PeerSessionTests.settings().batchRows), for: peer, now: .zero)
            _ = running.handle(.pulledApplied(PeerApplyResult(mark: 0, applied: 0)), of: .applyPulled(feed, claim: true), for: peer, now: .zero)
        }
        #expect(running.tick(now: .seconds(10)).contains(.readOwnDigest))
        let own = DigestReply(buckets: [], digest: "d", keys: 0, rows: 0)
        _ = running.handle(.ownDigest(own), now: .seconds(10))
        #expect(!running.handle(.digestFetched(own), of: .fetchDigest, for: Self.b, now: .seconds(10)).contains { if case .purgeTombstones = $0 { true } else { false } }, "the round still waits for C")
        let after = running.membersChanged(to: [Self.b], stored: [], lastSeq: 50, seed: 3, now: .seconds(10))
        #expect(after.contains(.purgeTombstones(ackedThrough: 40)), "\(after)")
    }
}
