import KVCore
import KVStore
import Testing

@testable import Replication

/// The pure peer session, one transition at a time: what it asks its driver to do for each
/// event, with time given by the test.
@Suite("PeerSession transitions")
struct PeerSessionTests {
    static let a = try! NodeID("A")  // constants, valid ids
    static let b = try! NodeID("B")
    static let c = try! NodeID("C")

    static func settings() -> ReplicationSettings {
        var settings = ReplicationSettings()
        settings.backoff = Backoff(base: .milliseconds(100), cap: .seconds(5))
        settings.forwardDelay = .milliseconds(500)
        settings.deferredPushPause = .milliseconds(200)
        return settings
    }

    /// A session of A with peer B, A's feed ending at `lastSeq`.
    static func session(lastSeq: Int64 = 0, stored: PeerState? = nil) -> PeerSession {
        PeerSession(peer: b, identity: a, stored: stored, lastSeq: lastSeq, settings: settings(), seed: 1)
    }

    static func row(_ key: String, lamport: Int64, origin: NodeID, seq: Int64) -> StoredRecord {
        StoredRecord(record: Record(key: key, value: [1], version: Version(lamport: lamport, origin: origin)), seq: seq)
    }

    static func page(_ rows: [StoredRecord], to: Int64, lastSeq: Int64, clock: Int64 = 9) -> FeedPage {
        FeedPage(rows: rows, to: to, lastSeq: lastSeq, epoch: "ea", clock: clock, coverage: [])
    }

    /// Drives a session through a hello that B answers with `mark` and last seq `peerSeq`.
    static func greeted(lastSeq: Int64 = 0, mark: Int64 = 0, peerSeq: Int64 = 0) -> PeerSession {
        var session = session(lastSeq: lastSeq)
        var output = SessionOutput()
        session.tick(now: .zero, epoch: "ea", into: &output)
        let hello = HelloRequest(id: "A", epoch: "ea", seq: lastSeq)
        output = SessionOutput()
        session.handle(.helloReplied(HelloReply(id: "B", epoch: "eb", seq: peerSeq, pulledSeq: mark)), of: .hello(hello), now: .zero, epoch: "ea", into: &output)
        output = SessionOutput()
        session.handle(.peerEpochNoted(previous: nil), of: .notePeerEpoch("eb"), now: .zero, epoch: "ea", into: &output)
        output = SessionOutput()
        session.handle(.positionRead(FeedPosition(epoch: "ea", lastSeq: lastSeq, clock: 9)), of: .readPosition, now: .zero, epoch: "ea", into: &output)
        return session
    }

    @Test("a session that has not greeted says hello first, with this node's epoch and last seq")
    func helloFirst() {
        var session = Self.session(lastSeq: 7)
        var output = SessionOutput()
        session.tick(now: .zero, epoch: "ea", into: &output)
        #expect(output.actions == [.hello(HelloRequest(id: "A", epoch: "ea", seq: 7))])
        #expect(!session.greeted)
        // A second tick while the hello is in flight asks nothing more.
        output = SessionOutput()
        session.tick(now: .milliseconds(5), epoch: "ea", into: &output)
        #expect(output.actions.isEmpty)
    }

    @Test("the hello settles in three steps: record the peer's epoch, read the position, take its mark")
    func helloSettles() {
        var session = Self.session(lastSeq: 3)
        var output = SessionOutput()
        session.tick(now: .zero, epoch: "ea", into: &output)
        let hello = HelloRequest(id: "A", epoch: "ea", seq: 3)
        output = SessionOutput()
        session.handle(.helloReplied(HelloReply(id: "B", epoch: "eb", seq: 40, pulledSeq: 2)), of: .hello(hello), now: .zero, epoch: "ea", into: &output)
        #expect(output.actions == [.notePeerEpoch("eb")])
        output = SessionOutput()
        session.handle(.peerEpochNoted(previous: nil), of: .notePeerEpoch("eb"), now: .zero, epoch: "ea", into: &output)
        #expect(output.actions == [.readPosition])
        output = SessionOutput()
        session.handle(.positionRead(FeedPosition(epoch: "ea", lastSeq: 3, clock: 5)), of: .readPosition, now: .zero, epoch: "ea", into: &output)
        #expect(session.greeted)
        #expect(session.marks.pushedSeq == 2 && session.marks.ownSentSeq == 2 && session.marks.peerLastSeq == 40)
        #expect(output.notes.contains(.greeted))
        // The mark is stored, and the rows past it are read for the own lane at once.
        #expect(output.actions == [.persistPushedSeq(2), .readPage(PageRequest(after: 2, receiverHolds: []))])
        #expect(session.health.reachable)
    }

    @Test("an address that answers as another node is a failure with the fix, retried after a backoff")
    func wrongPeer() {
        var session = Self.session()
        var output = SessionOutput()
        session.tick(now: .zero, epoch: "ea", into: &output)
        output = SessionOutput()
        session.handle(.helloReplied(HelloReply(id: "C", epoch: "ec", seq: 0, pulledSeq: 0)), of: .hello(HelloRequest(id: "A", epoch: "ea", seq: 0)), now: .zero, epoch: "ea", into: &output)
        #expect(output.actions.isEmpty)
        #expect(!session.health.reachable)
        #expect(session.health.lastError?.contains("answers as node C; check --peer B=URL") == true)
        // Nothing before the backoff (at least half of the 100 ms base), a hello after it.
        output = SessionOutput()
        session.tick(now: .milliseconds(49), epoch: "ea", into: &output)
        #expect(output.actions.isEmpty)
        #expect(session.nextWake(after: .milliseconds(49)).map { $0 >= .milliseconds(50) && $0 <= .milliseconds(100) } == true)
        output = SessionOutput()
        session.tick(now: .milliseconds(100), epoch: "ea", into: &output)
        #expect(output.actions.count == 1)
    }

    @Test("a peer that consumed more of our feed than this file holds makes the node renew its epoch, then greet again")
    func restoredFileRenewsTheEpoch() {
        var session = Self.session(lastSeq: 5)
        var output = SessionOutput()
        session.tick(now: .zero, epoch: "ea", into: &output)
        let hello = HelloRequest(id: "A", epoch: "ea", seq: 5)
        let reply = HelloReply(id: "B", epoch: "eb", seq: 0, pulledSeq: 50)
        session.handle(.helloReplied(reply), of: .hello(hello), now: .zero, epoch: "ea", into: &output)
        session.handle(.peerEpochNoted(previous: nil), of: .notePeerEpoch("eb"), now: .zero, epoch: "ea", into: &output)
        output = SessionOutput()
        session.handle(.positionRead(FeedPosition(epoch: "ea", lastSeq: 5, clock: 5)), of: .readPosition, now: .zero, epoch: "ea", into: &output)
        #expect(output.actions.isEmpty)
        #expect(output.notes.contains { if case .renewEpoch(observed: "ea", _) = $0 { return true } else { return false } })
        #expect(!session.greeted)
        output = SessionOutput()
        session.epochRenewed(now: .zero, epoch: "ea2", into: &output)
        #expect(output.actions == [.hello(HelloRequest(id: "A", epoch: "ea2", seq: 5))])
        #expect(session.marks.pushedSeq == 0, "the peer resets its marks for the new epoch")
    }

    @Test("only own writes in the range, from the peer's mark: one feed batch that moves the mark, with the clock when it reaches the end")
    func ownWritesAloneGoAsAFeedBatch() {
        var session = Self.greeted(lastSeq: 0)
        var output = SessionOutput()
        session.committed(lastSeq: 2, now: .zero, epoch: "ea", into: &output)
        #expect(output.actions == [.readPage(PageRequest(after: 0, receiverHolds: []))])
        let rows = [Self.row("x", lamport: 1, origin: Self.a, seq: 1), Self.row("y", lamport: 2, origin: Self.a, seq: 2)]
        output = SessionOutput()
        session.handle(.pageRead(Self.page(rows, to: 2, lastSeq: 2)), of: .readPage(PageRequest(after: 0, receiverHolds: [])), now: .zero, epoch: "ea", into: &output)
        let expected = PushRequest(lane: .feed, epoch: "ea", batch: FeedBatch(from: 0, to: 2, rows: rows), clock: 9)
        #expect(output.actions == [.push(expected)])
        output = SessionOutput()
        session.handle(.pushAnswered(.accepted(PushReply(pulledSeq: 2, applied: 2, covered: ["A": 9]))), of: .push(expected), now: .zero, epoch: "ea", into: &output)
        #expect(session.marks.pushedSeq == 2)
        #expect(session.marks.peerCoverage == [FeedExclusion(origin: Self.a, throughLamport: 9)])
        #expect(session.health.rowsSent == 2)
        #expect(session.nextWake(after: .zero) == nil, "nothing left to send")
    }

    @Test("own writes among other nodes' rows go on the own lane at once, without the others and without moving the mark")
    func ownLaneSendsOnlyOwnWrites() {
        var session = Self.greeted(lastSeq: 0)
        var output = SessionOutput()
        session.committed(lastSeq: 3, now: .zero, epoch: "ea", into: &output)
        let rows = [
            Self.row("x", lamport: 1, origin: Self.c, seq: 1), Self.row("y", lamport: 2, origin: Self.a, seq: 2),
            Self.row("z", lamport: 3, origin: Self.c, seq: 3),
        ]
        output = SessionOutput()
        session.handle(.pageRead(Self.page(rows, to: 3, lastSeq: 3)), of: .readPage(PageRequest(after: 0, receiverHolds: [])), now: .zero, epoch: "ea", into: &output)
        let expected = PushRequest(lane: .own, epoch: "ea", batch: FeedBatch(from: 0, to: 3, rows: [rows[1]]), clock: 9)
        #expect(output.actions == [.push(expected)])
        output = SessionOutput()
        session.handle(.pushAnswered(.accepted(PushReply(pulledSeq: 0, applied: 1))), of: .push(expected), now: .zero, epoch: "ea", into: &output)
        #expect(session.marks.pushedSeq == 0 && session.marks.ownSentSeq == 3 && session.marks.ownAckedSeq == 3)
        // The feed lane waits the forward delay, then reads past the mark.
        #expect(output.actions.isEmpty)
        #expect(session.nextWake(after: .zero) == .milliseconds(500))
    }

    @Test("the feed lane asks the peer what it holds before forwarding, and forwards only what it still lacks")
    func feedLaneProbesThenForwards() {
        var session = Self.greeted(lastSeq: 0)
        var output = SessionOutput()
        session.committed(lastSeq: 2, now: .zero, epoch: "ea", into: &output)
        let foreign = [Self.row("x", lamport: 1, origin: Self.c, seq: 1), Self.row("y", lamport: 2, origin: Self.c, seq: 2)]
        session.handle(.pageRead(Self.page(foreign, to: 2, lastSeq: 2)), of: .readPage(PageRequest(after: 0, receiverHolds: [])), now: .zero, epoch: "ea", into: &output)
        #expect(session.marks.ownSentSeq == 2, "no own write: nothing on the own lane")
        output = SessionOutput()
        session.tick(now: .milliseconds(499), epoch: "ea", into: &output)
        #expect(output.actions.isEmpty)
        session.tick(now: .milliseconds(500), epoch: "ea", into: &output)
        #expect(output.actions == [.readPage(PageRequest(after: 0, receiverHolds: []))])
        output = SessionOutput()
        session.handle(.pageRead(Self.page(foreign, to: 2, lastSeq: 2)), of: .readPage(PageRequest(after: 0, receiverHolds: [])), now: .milliseconds(500), epoch: "ea", into: &output)
        let probe = PushRequest.probe(epoch: "ea", at: 0)
        #expect(output.actions == [.push(probe)])
        output = SessionOutput()
        session.handle(.pushAnswered(.accepted(PushReply(pulledSeq: 0, applied: 0, covered: ["C": 1]))), of: .push(probe), now: .milliseconds(501), epoch: "ea", into: &output)
        let holds = [FeedExclusion(origin: Self.c, throughLamport: 1)]
        #expect(output.actions == [.readPage(PageRequest(after: 0, receiverHolds: holds))])
        output = SessionOutput()
        let rest = Self.page([foreign[1]], to: 2, lastSeq: 2)
        session.handle(.pageRead(rest), of: .readPage(PageRequest(after: 0, receiverHolds: holds)), now: .milliseconds(502), epoch: "ea", into: &output)
        #expect(output.actions == [.push(PushRequest(lane: .feed, epoch: "ea", batch: FeedBatch(from: 0, to: 2, rows: [foreign[1]]), clock: 9))])
    }

    @Test("a deferred push waits, then asks with an empty batch, until the peer takes pushes again")
    func deferredPushWaitsAndProbes() {
        var session = Self.greeted(lastSeq: 0)
        var output = SessionOutput()
        session.committed(lastSeq: 1, now: .zero, epoch: "ea", into: &output)
        let rows = [Self.row("x", lamport: 1, origin: Self.a, seq: 1)]
        output = SessionOutput()
        session.handle(.pageRead(Self.page(rows, to: 1, lastSeq: 1)), of: .readPage(PageRequest(after: 0, receiverHolds: [])), now: .zero, epoch: "ea", into: &output)
        guard case .push(let push)? = output.actions.first else {
            Issue.record("no push: \(output.actions)")
            return
        }
        output = SessionOutput()
        session.handle(.pushAnswered(.accepted(PushReply(pulledSeq: 0, applied: 0, deferred: true))), of: .push(push), now: .zero, epoch: "ea", into: &output)
        #expect(output.actions.isEmpty)
        #expect(session.nextWake(after: .zero) == .milliseconds(200))
        session.tick(now: .milliseconds(200), epoch: "ea", into: &output)
        #expect(output.actions == [.push(.probe(epoch: "ea", at: 0))])
    }

    @Test("a 409 makes the session greet again after the base delay")
    func resynchroniseGreetsAgain() {
        var session = Self.greeted(lastSeq: 0)
        var output = SessionOutput()
        session.committed(lastSeq: 1, now: .zero, epoch: "ea", into: &output)
        let rows = [Self.row("x", lamport: 1, origin: Self.a, seq: 1)]
        session.handle(.pageRead(Self.page(rows, to: 1, lastSeq: 1)), of: .readPage(PageRequest(after: 0, receiverHolds: [])), now: .zero, epoch: "ea", into: &output)
        guard case .push(let push)? = output.actions.last else {
            Issue.record("no push: \(output.actions)")
            return
        }
        output = SessionOutput()
        session.handle(.pushAnswered(.resynchronise("hello_first")), of: .push(push), now: .zero, epoch: "ea", into: &output)
        #expect(!session.greeted)
        session.tick(now: .milliseconds(99), epoch: "ea", into: &output)
        #expect(output.actions.isEmpty)
        session.tick(now: .milliseconds(100), epoch: "ea", into: &output)
        #expect(output.actions == [.hello(HelloRequest(id: "A", epoch: "ea", seq: 1))])
    }

    @Test("failures back off exponentially, are logged once, and success is logged once")
    func backoffAndHealth() {
        var session = Self.session()
        var now = Duration.zero
        var waits: [Duration] = []
        var logs = 0
        for _ in 0..<5 {
            var output = SessionOutput()
            session.tick(now: now, epoch: "ea", into: &output)
            guard case .hello(let hello)? = output.actions.first else {
                Issue.record("no hello at \(now)")
                return
            }
            output = SessionOutput()
            session.handle(.failed(PeerFailure("connection refused")), of: .hello(hello), now: now, epoch: "ea", into: &output)
            logs += output.notes.filter { if case .log = $0 { return true } else { return false } }.count
            guard let wake = session.nextWake(after: now) else {
                Issue.record("no retry planned")
                return
            }
            waits.append(wake - now)
            now = wake
        }
        #expect(logs == 1, "an unreachable peer is logged when it becomes unreachable, not at every retry")
        #expect(session.health.consecutiveFailures == 5)
        #expect(waits[4] > waits[0] * 4, "the delays grow: \(waits)")
    }

    @Test("a hello from the peer ends the backoff: the link greets it at once, and only when it is waiting")
    func peerHelloEndsBackoff() {
        var session = Self.session()
        var output = SessionOutput()
        session.tick(now: .zero, epoch: "ea", into: &output)
        guard case .hello(let hello)? = output.actions.first else {
            Issue.record("no hello")
            return
        }
        // While the hello is in flight, the peer's own hello changes nothing.
        output = SessionOutput()
        session.peerGreeted(now: .milliseconds(1), epoch: "ea", into: &output)
        #expect(output.actions.isEmpty)
        output = SessionOutput()
        session.handle(.failed(PeerFailure("connection refused")), of: .hello(hello), now: .milliseconds(2), epoch: "ea", into: &output)
        #expect(output.actions.isEmpty)
        #expect(session.nextWake(after: .milliseconds(2)).map { $0 > .milliseconds(2) } == true)
        output = SessionOutput()
        session.peerGreeted(now: .milliseconds(3), epoch: "ea", into: &output)
        #expect(output.actions == [.hello(HelloRequest(id: "A", epoch: "ea", seq: 0))])
    }

    @Test("a pull fetches the next page while the current one is applied, and keeps at most one waiting")
    func pullPipelines() {
        var session = Self.greeted(mark: 0)
        var output = SessionOutput()
        session.startPull(.catchUp, now: .zero, into: &output)
        #expect(output.actions == [.fetchFeed(after: 0, limit: ReplicationSettings().batchRows)])
        let limit = ReplicationSettings().batchRows
        func feed(_ from: Int64, _ to: Int64) -> FetchedFeed {
            FetchedFeed(batch: FeedBatch(from: from, to: to, rows: []), epoch: "eb", lastSeq: 30, clock: 4, coverage: [])
        }
        output = SessionOutput()
        session.handle(.feedFetched(feed(0, 10)), of: .fetchFeed(after: 0, limit: limit), now: .zero, epoch: "ea", into: &output)
        #expect(output.actions == [.applyPulled(feed(0, 10), claim: false), .fetchFeed(after: 10, limit: limit)])
        // The second page arrives while the first is applied: it waits, and no third is asked for.
        output = SessionOutput()
        session.handle(.feedFetched(feed(10, 20)), of: .fetchFeed(after: 10, limit: limit), now: .zero, epoch: "ea", into: &output)
        #expect(output.actions.isEmpty)
        output = SessionOutput()
        session.handle(.pulledApplied(PeerApplyResult(mark: 10, applied: 0)), of: .applyPulled(feed(0, 10), claim: false), now: .zero, epoch: "ea", into: &output)
        #expect(output.actions == [.applyPulled(feed(10, 20), claim: false), .fetchFeed(after: 20, limit: limit)])
        output = SessionOutput()
        session.handle(.feedFetched(feed(20, 30)), of: .fetchFeed(after: 20, limit: limit), now: .zero, epoch: "ea", into: &output)
        session.handle(.pulledApplied(PeerApplyResult(mark: 20, applied: 0)), of: .applyPulled(feed(10, 20), claim: false), now: .zero, epoch: "ea", into: &output)
        #expect(output.actions.last == .applyPulled(feed(20, 30), claim: true), "the page that reaches the end claims coverage")
        output = SessionOutput()
        session.handle(.pulledApplied(PeerApplyResult(mark: 30, applied: 0)), of: .applyPulled(feed(20, 30), claim: true), now: .zero, epoch: "ea", into: &output)
        #expect(output.notes.contains(.pullFinished(.catchUp, rows: 0, succeeded: true)))
        #expect(session.marks.pulledSeq == 30)
    }

    @Test("a feed from another epoch than the one greeted ends the pull and asks for a new hello")
    func pullRefusesAnotherEpoch() {
        var session = Self.greeted()
        var output = SessionOutput()
        session.startPull(.antiEntropy, now: .zero, into: &output)
        // The first anti-entropy round only takes note of the mark.
        #expect(output.notes == [.pullFinished(.antiEntropy, rows: 0, succeeded: true)])
        output = SessionOutput()
        session.startPull(.antiEntropy, now: .seconds(10), into: &output)
        let limit = ReplicationSettings().batchRows
        #expect(output.actions == [.fetchFeed(after: 0, limit: limit)])
        output = SessionOutput()
        let stranger = FetchedFeed(batch: FeedBatch(from: 0, to: 0, rows: []), epoch: "other", lastSeq: 0, clock: nil, coverage: [])
        session.handle(.feedFetched(stranger), of: .fetchFeed(after: 0, limit: limit), now: .seconds(10), epoch: "ea", into: &output)
        #expect(output.notes.contains(.pullFinished(.antiEntropy, rows: 0, succeeded: false)))
        #expect(!session.greeted)
    }

    @Test("anti-entropy does not pull a peer whose pushes moved the mark since the last round")
    func antiEntropySkipsAPeerThatPushes() {
        var session = Self.greeted()
        var output = SessionOutput()
        session.startPull(.antiEntropy, now: .zero, into: &output)
        session.received(rows: 3, refused: [], mark: 12, into: &output)
        output = SessionOutput()
        session.startPull(.antiEntropy, now: .seconds(10), into: &output)
        #expect(output.actions.isEmpty && output.notes == [.pullFinished(.antiEntropy, rows: 0, succeeded: true)])
        output = SessionOutput()
        session.startPull(.antiEntropy, now: .seconds(20), into: &output)
        #expect(output.actions == [.fetchFeed(after: 12, limit: ReplicationSettings().batchRows)])
    }

    @Test("digest repair fetches only buckets that differ and held still on the peer")
    func digestComparison() {
        func digest(_ hashes: [String], whole: String) -> DigestReply {
            DigestReply(buckets: hashes.enumerated().map { .init(bucket: "0\($0.offset)", count: 1, hash: $0.element) }, digest: whole, keys: 3, rows: 3)
        }
        let own = digest(["a", "b", "c"], whole: "1")
        let theirs = digest(["a", "x", "y"], whole: "2")
        #expect(DigestComparison.bucketsToRepair(own: own, theirs: theirs, previous: nil) == [], "the first round only remembers")
        #expect(DigestComparison.bucketsToRepair(own: own, theirs: theirs, previous: ["a", "x", "moving"]) == [1])
        #expect(DigestComparison.bucketsToRepair(own: own, theirs: own, previous: ["a", "b", "c"]) == [], "equal digests: nothing")
    }
}

/// The node-level core: start-up order, catch-up, deferral, anti-entropy rounds.
@Suite("ReplicationCore")
struct ReplicationCoreTests {
    static let a = PeerSessionTests.a
    static let b = PeerSessionTests.b
    static let c = PeerSessionTests.c

    func greet(_ core: inout ReplicationCore, _ peer: NodeID, seq: Int64, mark: Int64 = 0, ownLastSeq: Int64 = 0) -> [ReplicationAction] {
        let hello = HelloRequest(id: "A", epoch: "ea", seq: 0)
        _ = core.handle(.helloReplied(HelloReply(id: peer.rawValue, epoch: "e" + peer.rawValue, seq: seq, pulledSeq: mark)), of: .hello(hello), for: peer, now: .zero)
        _ = core.handle(.peerEpochNoted(previous: nil), of: .notePeerEpoch("e" + peer.rawValue), for: peer, now: .zero)
        return core.handle(.positionRead(FeedPosition(epoch: "ea", lastSeq: ownLastSeq, clock: 0)), of: .readPosition, for: peer, now: .zero)
    }

    @Test("greets every peer, then pulls the one with the most to offer first, deferring their pushes until done")
    func startUp() {
        var core = ReplicationCore(
            identity: Self.a, peers: [Self.b, Self.c], stored: [], position: FeedPosition(epoch: "ea", lastSeq: 0, clock: 0),
            settings: PeerSessionTests.settings(), seed: 1)
        let first = core.start(now: .zero)
        #expect(first.filter { if case .peer(_, .hello) = $0 { return true } else { return false } }.count == 2)
        #expect(core.catchingUp && !core.defersPushes(from: Self.b))
        _ = greet(&core, Self.b, seq: 10)
        let afterC = greet(&core, Self.c, seq: 99)
        #expect(afterC.contains(.peer(Self.c, .fetchFeed(after: 0, limit: PeerSessionTests.settings().batchRows))), "C offers more: pulled first")
        #expect(core.defersPushes(from: Self.b) && core.defersPushes(from: Self.c))
        let feed = FetchedFeed(batch: FeedBatch(from: 0, to: 99, rows: []), epoch: "eC", lastSeq: 99, clock: 5, coverage: [])
        _ = core.handle(.feedFetched(feed), of: .fetchFeed(after: 0, limit: PeerSessionTests.settings().batchRows), for: Self.c, now: .zero)
        let next = core.handle(.pulledApplied(PeerApplyResult(mark: 99, applied: 0)), of: .applyPulled(feed, claim: true), for: Self.c, now: .zero)
        #expect(next.contains(.peer(Self.b, .fetchFeed(after: 0, limit: PeerSessionTests.settings().batchRows))))
        let feedB = FetchedFeed(batch: FeedBatch(from: 0, to: 10, rows: []), epoch: "eB", lastSeq: 10, clock: 5, coverage: [])
        _ = core.handle(.feedFetched(feedB), of: .fetchFeed(after: 0, limit: PeerSessionTests.settings().batchRows), for: Self.b, now: .zero)
        let done = core.handle(.pulledApplied(PeerApplyResult(mark: 10, applied: 0)), of: .applyPulled(feedB, claim: true), for: Self.b, now: .zero)
        #expect(done.contains(.log(LogLine(level: .info, message: "catch-up finished"))))
        #expect(!core.catchingUp && !core.defersPushes(from: Self.b))
    }

    @Test("a round of anti-entropy ends with a purge through the lowest mark any peer acknowledged")
    func roundEndsWithPurge() {
        var core = ReplicationCore(
            identity: Self.a, peers: [Self.b, Self.c], stored: [], position: FeedPosition(epoch: "ea", lastSeq: 50, clock: 0),
            settings: PeerSessionTests.settings(), seed: 1)
        _ = core.start(now: .zero)
        _ = greet(&core, Self.b, seq: 0, mark: 40, ownLastSeq: 50)
        _ = greet(&core, Self.c, seq: 0, mark: 30, ownLastSeq: 50)
        // Both catch-up pulls find nothing.
        for peer in [Self.b, Self.c] {
            let feed = FetchedFeed(batch: FeedBatch(from: 0, to: 0, rows: []), epoch: "e" + peer.rawValue, lastSeq: 0, clock: 0, coverage: [])
            _ = core.handle(.feedFetched(feed), of: .fetchFeed(after: 0, limit: PeerSessionTests.settings().batchRows), for: peer, now: .zero)
            _ = core.handle(.pulledApplied(PeerApplyResult(mark: 0, applied: 0)), of: .applyPulled(feed, claim: true), for: peer, now: .zero)
        }
        #expect(core.nextWake(after: .zero) != nil)
        let round = core.tick(now: .seconds(10))
        #expect(round.contains(.readOwnDigest), "the first round's pulls only note the marks, so the digest comes at once")
        let own = DigestReply(buckets: [], digest: "d", keys: 0, rows: 0)
        let repairs = core.handle(.ownDigest(own), now: .seconds(10))
        #expect(repairs.filter { if case .peer(_, .fetchDigest) = $0 { return true } else { return false } }.count == 2)
        _ = core.handle(.digestFetched(own), of: .fetchDigest, for: Self.b, now: .seconds(10))
        let purge = core.handle(.digestFetched(own), of: .fetchDigest, for: Self.c, now: .seconds(10))
        #expect(purge.contains(.purgeTombstones(ackedThrough: 30)))
    }
}
