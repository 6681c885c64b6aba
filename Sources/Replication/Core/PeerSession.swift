public import KVCore
public import KVStore

/// This node's relationship with one peer, as a state machine with no I/O: it takes what
/// happened (a commit, the result of an action it asked for, the passing of time) and says
/// what to do next (`PeerAction`s for its driver, `SessionNote`s for `ReplicationCore`).
///
/// It owns the marks of the link (`PeerMarks`: the one place they live while the node runs)
/// and the link's health. It never reads a clock (`now` is given), draws randomness only from
/// the seeded generator it was made with, and keeps at most one request in flight on the push
/// connection and one on the pull connection, besides one local apply of a pulled page.
///
/// The push connection carries, in this order of priority: the hello (until greeted), a probe
/// when the peer deferred, the **own lane** (this node's own writes, sent at once, without
/// moving the peer's mark), and the **feed lane** (every row the peer still lacks, a
/// `forwardDelay` after the commit, moving the peer's mark). The pull connection carries pulls
/// (catch-up and anti-entropy) and digest repair. docs/protocol.md tells why.
public struct PeerSession: Sendable {
    public let peer: NodeID
    let identity: NodeID
    let settings: ReplicationSettings
    private var random: SplitMix64

    public private(set) var marks: PeerMarks
    public private(set) var health = LinkHealth()
    /// Whether the current connection to the peer has said hello and settled the marks.
    public private(set) var greeted = false
    /// This node's last seq as the commits announced it.
    private(set) var knownLastSeq: Int64

    private var pushStep: PushStep?
    private var pushRetryAt: Duration = .zero
    private var helloAttempts = 0
    /// Set when the peer deferred a push: the next push waits until then and is a probe.
    private var deferredUntil: Duration?
    private var forwardDueAt: Duration?
    private var lastPersistAt: Duration = .zero
    private var pull: PullJob?
    private var repair: RepairJob?
    /// This node's mark of the peer's feed at the previous anti-entropy round.
    private var markAtLastRound: Int64?
    /// The peer's bucket hashes at the previous repair (a bucket is repaired only when it held still).
    private var previousPeerBuckets: [String]?

    enum PushStep: Sendable, Equatable {
        case hello(HelloRequest)
        case notingEpoch(HelloRequest, HelloReply)
        case checkingRestore(HelloRequest, HelloReply)
        case awaitingRenewal
        case readingOwn
        case sendingOwn(PushRequest)
        case readingFeed(probed: Bool)
        /// `forFeed`: a probe before a feed batch (else after a deferral).
        case probing(forFeed: Bool)
        case sendingFeed(FeedPage)
    }

    /// Why a pull runs.
    public enum PullPurpose: String, Sendable, Equatable {
        case catchUp = "caught up"
        case antiEntropy = "anti-entropy repaired"
    }

    struct PullJob: Sendable, Equatable {
        let purpose: PullPurpose
        let started: Duration
        var rows = 0
        var fetching: Int64?
        var applying: FetchedFeed?
        var fetched: FetchedFeed?
        var lastProgress: Duration
        /// Failed: what is still in flight is awaited and dropped; no new request starts.
        var abandoned = false
    }

    struct RepairJob: Sendable, Equatable {
        let own: DigestReply
        var buckets: [Int] = []
        var applied = 0
    }

    public init(
        peer: NodeID, identity: NodeID, stored: PeerState?, lastSeq: Int64, settings: ReplicationSettings, seed: UInt64
    ) {
        self.peer = peer
        self.identity = identity
        self.settings = settings
        self.random = SplitMix64(seed: seed)
        self.knownLastSeq = lastSeq
        let pushed = stored?.pushedSeq ?? 0
        marks = PeerMarks(
            pushedSeq: pushed, pulledSeq: stored?.pulledSeq ?? 0, ownSentSeq: pushed, ownAckedSeq: pushed, peerLastSeq: 0,
            peerEpoch: stored?.epoch, peerCoverage: [])
    }

    /// This node's own writes up to this seq are held durably by the peer, as it said: it
    /// acknowledged an own batch or a feed batch reaching here (or held what they left out).
    public var heldThrough: Int64 { max(marks.ownAckedSeq, marks.pushedSeq) }

    // MARK: Events

    /// A commit on this node: its feed now ends at `lastSeq`.
    mutating func committed(lastSeq: Int64, now: Duration, epoch: String, into output: inout SessionOutput) {
        knownLastSeq = max(knownLastSeq, lastSeq)
        startPush(now: now, epoch: epoch, into: &output)
    }

    /// Time passed: start whatever is due.
    mutating func tick(now: Duration, epoch: String, into output: inout SessionOutput) {
        startPush(now: now, epoch: epoch, into: &output)
    }

    /// The peer pushed a batch to this node, which took it: its mark of the peer is `mark`.
    mutating func received(rows: Int, refused: [Record], mark: Int64, into output: inout SessionOutput) {
        marks.pulledSeq = max(marks.pulledSeq, mark)
        health.rowsReceived += rows
        noteRefused(refused, into: &output)
    }

    /// The peer greeted this node, so it is up: if this link is waiting out a backoff before
    /// greeting it, it greets now instead of after up to `backoff.cap`.
    mutating func peerGreeted(now: Duration, epoch: String, into output: inout SessionOutput) {
        guard !greeted, pushStep == nil, pushRetryAt > now else { return }
        pushRetryAt = now
        startPush(now: now, epoch: epoch, into: &output)
    }

    /// The node took a new epoch (its file was found to be an older copy): every link greets again.
    mutating func epochRenewed(now: Duration, epoch: String, into output: inout SessionOutput) {
        greeted = false
        // Peers reset their marks of this node's feed when they see the new epoch.
        marks.pushedSeq = 0
        marks.ownSentSeq = 0
        marks.ownAckedSeq = 0
        helloAttempts = 0
        if pushStep == .awaitingRenewal { pushStep = nil }
        startPush(now: now, epoch: epoch, into: &output)
    }

    /// The node renewed nothing (another link had already): greet with the current epoch.
    mutating func renewalSettled(now: Duration, epoch: String, into output: inout SessionOutput) {
        if pushStep == .awaitingRenewal { pushStep = nil }
        startPush(now: now, epoch: epoch, into: &output)
    }

    /// The earliest time something is due on this link, if anything waits for time.
    func nextWake(after now: Duration) -> Duration? {
        guard pushStep == nil else { return nil }
        if pushRetryAt > now { return pushRetryAt }
        if !greeted { return nil }
        if let deferredUntil { return deferredUntil }
        if settings.ownLane, marks.ownSentSeq < knownLastSeq { return nil }
        if marks.pushedSeq < knownLastSeq { return forwardDueAt }
        return nil
    }

    // MARK: The push connection

    private mutating func startPush(now: Duration, epoch: String, into output: inout SessionOutput) {
        guard pushStep == nil, now >= pushRetryAt else { return }
        if !greeted {
            let request = HelloRequest(id: identity.rawValue, epoch: epoch, seq: knownLastSeq)
            pushStep = .hello(request)
            output.actions.append(.hello(request))
            return
        }
        if let until = deferredUntil {
            guard now >= until else { return }
            pushStep = .probing(forFeed: false)
            output.actions.append(.push(.probe(epoch: epoch, at: marks.pushedSeq)))
            return
        }
        if settings.ownLane, marks.ownSentSeq < knownLastSeq {
            pushStep = .readingOwn
            output.actions.append(.readPage(PageRequest(after: marks.ownSentSeq, receiverHolds: marks.peerCoverage)))
            return
        }
        guard marks.pushedSeq < knownLastSeq else {
            forwardDueAt = nil
            return
        }
        let due = forwardDueAt ?? (now + settings.forwardDelay)
        forwardDueAt = due
        guard now >= due else { return }
        pushStep = .readingFeed(probed: false)
        output.actions.append(
            .readPage(PageRequest(after: marks.pushedSeq, receiverHolds: marks.peerCoverage)))
    }

    private mutating func handlePush(
        _ step: PushStep, _ result: PeerResult, now: Duration, epoch: String, into output: inout SessionOutput
    ) {
        pushStep = nil
        switch (step, result) {
        case (_, .failed(let failure)):
            if failure.asksForHello {
                if !greeted { output.notes.append(.greetingFailed) }
                greeted = false
                pushRetryAt = now + settings.backoff.base
                output.log(.info, "peer \(peer) asked to resynchronise: \(failure)")
            } else {
                fail(failure, now: now, into: &output)
            }
            return

        case (.hello(let request), .helloReplied(let reply)):
            guard reply.id == peer.rawValue else {
                fail(PeerFailure("the address of peer \(peer) answers as node \(reply.id); check --peer \(peer)=URL"), now: now, into: &output)
                return
            }
            pushStep = .notingEpoch(request, reply)
            output.actions.append(.notePeerEpoch(reply.epoch))
            return

        case (.notingEpoch(let request, let reply), .peerEpochNoted(let previous)):
            if let previous {
                output.log(.notice, "peer \(peer) has a new database (epoch \(previous.prefix(8))… → \(reply.epoch.prefix(8))…); exchanging the full feeds again")
                marks.pulledSeq = 0
            }
            marks.peerEpoch = reply.epoch
            pushStep = .checkingRestore(request, reply)
            output.actions.append(.readPosition)
            return

        case (.checkingRestore(let request, let reply), .positionRead(let position)):
            // Compared with the last seq read *after* the reply: writes committed while the hello
            // was in flight may already have reached the peer, and the last seq only grows, so
            // only a file that really ends below the peer's mark is taken for a restored copy.
            knownLastSeq = max(knownLastSeq, position.lastSeq)
            if position.epoch != request.epoch || reply.pulledSeq > position.lastSeq {
                // A hello restarts at most twice for an epoch change, as the node takes one.
                helloAttempts += 1
                guard helloAttempts <= 2 else {
                    helloAttempts = 0
                    fail(PeerFailure("the hello did not settle after an epoch change"), now: now, into: &output)
                    return
                }
            }
            if position.epoch == request.epoch, reply.pulledSeq > position.lastSeq {
                pushStep = .awaitingRenewal
                output.notes.append(
                    .renewEpoch(
                        observed: request.epoch,
                        reason: "peer \(peer) has consumed this node's feed up to seq \(reply.pulledSeq) but this file ends at \(position.lastSeq): it was restored from an older copy"))
                return
            }
            guard position.epoch == request.epoch else { break }  // renewed meanwhile: greet with the new one
            greeted = true
            helloAttempts = 0
            deferredUntil = nil
            marks.pushedSeq = reply.pulledSeq
            marks.ownSentSeq = reply.pulledSeq
            marks.ownAckedSeq = reply.pulledSeq
            marks.peerLastSeq = reply.seq
            marks.peerCoverage = []
            recordSuccess(now: now, into: &output)
            output.notes.append(.greeted)
            persist(now: now, into: &output)

        case (.readingOwn, .pageRead(let page)):
            knownLastSeq = max(knownLastSeq, page.lastSeq)
            let own = page.rows.filter { $0.record.version.origin == identity }
            let final = page.to >= page.lastSeq
            let request: PushRequest
            if own.isEmpty {
                // Nothing of ours the peer lacks: the feed lane moves the mark later.
                marks.ownSentSeq = max(marks.ownSentSeq, page.to)
                break
            } else if own.count == page.rows.count, marks.ownSentSeq == marks.pushedSeq {
                // Only our own writes in the range, from the peer's mark: a feed batch, which
                // moves the mark too (one writer's load never needs the feed lane).
                request = PushRequest(
                    lane: .feed, epoch: page.epoch, batch: FeedBatch(from: marks.pushedSeq, to: page.to, rows: own),
                    clock: final ? page.clock : nil, coverage: final ? page.coverage : [])
            } else {
                request = PushRequest(
                    lane: .own, epoch: page.epoch, batch: FeedBatch(from: marks.ownAckedSeq, to: page.to, rows: own),
                    clock: final ? page.clock : nil)
            }
            pushStep = .sendingOwn(request)
            output.actions.append(.push(request))
            return

        case (.sendingOwn(let request), .pushAnswered(.accepted(let reply))):
            recordSuccess(now: now, into: &output)
            guard takeDeferral(reply, now: now) else { break }
            marks.ownSentSeq = max(marks.ownSentSeq, request.batch.to)
            marks.ownAckedSeq = max(marks.ownAckedSeq, request.batch.to)
            health.rowsSent += request.batch.rows.count
            take(reply)
            if request.lane == .feed, now - lastPersistAt >= settings.persistInterval { persist(now: now, into: &output) }

        case (.readingFeed(let probed), .pageRead(let page)):
            knownLastSeq = max(knownLastSeq, page.lastSeq)
            guard page.to > marks.pushedSeq else {
                forwardDueAt = nil
                break
            }
            let probes = settings.ownLane ? !page.rows.isEmpty : page.rows.allSatisfy { $0.record.version.origin != identity }
            if !probed, !page.rows.isEmpty, probes {
                // The writers' own pushes may have reached the peer since its last reply: ask it
                // what it holds now, and read the page again without that.
                pushStep = .probing(forFeed: true)
                output.actions.append(.push(.probe(epoch: page.epoch, at: marks.pushedSeq)))
                return
            }
            let final = page.to >= page.lastSeq
            pushStep = .sendingFeed(page)
            output.actions.append(
                .push(
                    PushRequest(
                        lane: .feed, epoch: page.epoch,
                        batch: FeedBatch(from: marks.pushedSeq, to: page.to, rows: page.rows),
                        clock: final ? page.clock : nil, coverage: final ? page.coverage : [])))
            return

        case (.probing(let forFeed), .pushAnswered(.accepted(let reply))):
            recordSuccess(now: now, into: &output)
            guard takeDeferral(reply, now: now) else { break }
            take(reply)
            if forFeed {
                pushStep = .readingFeed(probed: true)
                output.actions.append(
                    .readPage(PageRequest(after: marks.pushedSeq, receiverHolds: marks.peerCoverage)))
                return
            }

        case (.sendingFeed(let page), .pushAnswered(.accepted(let reply))):
            recordSuccess(now: now, into: &output)
            guard takeDeferral(reply, now: now) else { break }
            health.rowsSent += page.rows.count
            take(reply)
            if now - lastPersistAt >= settings.persistInterval { persist(now: now, into: &output) }
            if page.to < page.lastSeq {
                pushStep = .readingFeed(probed: true)
                output.actions.append(
                    .readPage(PageRequest(after: marks.pushedSeq, receiverHolds: marks.peerCoverage)))
                return
            }
            forwardDueAt = nil

        case (_, .pushAnswered(.resynchronise(let detail))):
            // The peer's mark moved behind ours (its file changed) or it does not know our epoch:
            // greet again soon, which rewinds to its mark.
            greeted = false
            pushRetryAt = now + settings.backoff.base
            output.log(.info, "peer \(peer) asked to resynchronise: \(detail)")
            return

        default:
            fail(PeerFailure("internal: result \(result) does not answer \(step)"), now: now, into: &output)
            return
        }
        startPush(now: now, epoch: epoch, into: &output)
    }

    /// Takes a deferral from `reply`; false when the peer deferred (the push is to be retried).
    private mutating func takeDeferral(_ reply: PushReply, now: Duration) -> Bool {
        if reply.deferred == true {
            deferredUntil = now + settings.deferredPushPause
            return false
        }
        deferredUntil = nil
        return true
    }

    /// The peer's mark of our feed and what it holds, from a push reply.
    private mutating func take(_ reply: PushReply) {
        marks.pushedSeq = reply.pulledSeq
        marks.ownSentSeq = max(marks.ownSentSeq, reply.pulledSeq)
        marks.ownAckedSeq = max(marks.ownAckedSeq, reply.pulledSeq)
        marks.peerCoverage = (reply.covered ?? [:]).compactMap { id, lamport in
            (try? NodeID(id)).map { FeedExclusion(origin: $0, throughLamport: lamport) }
        }.sorted { $0.origin < $1.origin }
    }

    private mutating func persist(now: Duration, into output: inout SessionOutput) {
        lastPersistAt = now
        output.actions.append(.persistPushedSeq(marks.pushedSeq))
    }

    // MARK: The pull connection

    /// Starts pulling the peer's feed past this node's mark, until it is exhausted. Answered
    /// by a `.pullFinished` note; at once (as failed) when the link is not greeted or a pull runs.
    mutating func startPull(_ purpose: PullPurpose, now: Duration, into output: inout SessionOutput) {
        guard greeted, pull == nil else {
            output.notes.append(.pullFinished(purpose, rows: 0, succeeded: false))
            return
        }
        if purpose == .antiEntropy, settings.ownLane {
            // The peer's pushes moved this node's mark since the last round: its feed is
            // arriving, and a pull would only bring the rows in flight a second time.
            let moved = marks.pulledSeq > (markAtLastRound ?? -1)
            markAtLastRound = marks.pulledSeq
            if moved {
                output.notes.append(.pullFinished(purpose, rows: 0, succeeded: true))
                return
            }
        }
        pull = PullJob(purpose: purpose, started: now, fetching: marks.pulledSeq, lastProgress: now)
        output.actions.append(.fetchFeed(after: marks.pulledSeq, limit: settings.batchRows))
    }

    private mutating func handlePull(_ action: PeerAction, _ result: PeerResult, now: Duration, into output: inout SessionOutput) {
        guard var job = pull else { return }
        if job.abandoned {
            if case .fetchFeed = action { job.fetching = nil }
            if case .applyPulled = action { job.applying = nil }
            if case .pulledApplied(let applied) = result { marks.pulledSeq = max(marks.pulledSeq, applied.mark) }
            pull = job.fetching == nil && job.applying == nil ? nil : job
            return
        }
        switch (action, result) {
        case (.fetchFeed(let after, _), .feedFetched(let feed)):
            job.fetching = nil
            guard feed.epoch == marks.peerEpoch else {
                greeted = false
                finishPull(job, failure: PeerFailure("peer \(peer): the feed came from another epoch than the one greeted; greeting again"), now: now, into: &output)
                return
            }
            guard feed.batch.from == after else {
                finishPull(job, failure: PeerFailure("peer \(peer): asked for the feed after \(after), got a batch from \(feed.batch.from)"), now: now, into: &output)
                return
            }
            if job.applying == nil {
                // Apply it, and fetch the next page meanwhile.
                job.applying = feed
                output.actions.append(.applyPulled(feed, claim: feed.isLast))
                fetchAfter(feed, job: &job, into: &output)
            } else {
                // One page waits while another is applied; the next is fetched when it starts.
                job.fetched = feed
            }
            pull = job

        case (.applyPulled(let feed, _), .pulledApplied(let applied)):
            job.applying = nil
            marks.pulledSeq = max(marks.pulledSeq, applied.mark)
            job.rows += feed.batch.rows.count
            health.rowsReceived += feed.batch.rows.count
            noteRefused(applied.refused, into: &output)
            let toGo = max(0, feed.lastSeq - feed.batch.to)
            output.notes.append(.pullProgress(job.purpose, rowsDone: job.rows, toGo: toGo))
            if now - job.lastProgress >= settings.progressInterval {
                job.lastProgress = now
                output.log(.info, "pulling from \(peer): \(job.rows) rows so far, about \(toGo) to go")
            }
            if let next = job.fetched {
                job.fetched = nil
                job.applying = next
                output.actions.append(.applyPulled(next, claim: next.isLast))
                fetchAfter(next, job: &job, into: &output)
                pull = job
            } else if job.fetching == nil {
                recordSuccess(now: now, into: &output)
                finishPull(job, failure: nil, now: now, into: &output)
            } else {
                pull = job
            }

        case (_, .pulledGap):
            greeted = false
            finishPull(job, failure: PeerFailure("peer \(peer): a pulled page started past this node's mark; greeting again", asksForHello: true), now: now, into: &output)

        case (.fetchFeed, .failed(let failure)), (.applyPulled, .failed(let failure)):
            if failure.asksForHello { greeted = false }
            finishPull(job, failure: failure, now: now, into: &output)

        default:
            finishPull(job, failure: PeerFailure("internal: result \(result) does not answer \(action)"), now: now, into: &output)
        }
    }

    private func fetchAfter(_ feed: FetchedFeed, job: inout PullJob, into output: inout SessionOutput) {
        guard !feed.isLast else { return }
        job.fetching = feed.batch.to
        output.actions.append(.fetchFeed(after: feed.batch.to, limit: settings.batchRows))
    }

    /// Ends the pull: says so to the core at once; what is still in flight is awaited and dropped.
    private mutating func finishPull(_ job: PullJob, failure: PeerFailure?, now: Duration, into output: inout SessionOutput) {
        var job = job
        if let failure, !failure.asksForHello { recordFailure(failure, now: now, into: &output) }
        if failure != nil, job.fetching != nil || job.applying != nil {
            job.abandoned = true
            job.fetched = nil
            pull = job
        } else {
            pull = nil
        }
        if failure == nil, job.rows > 0 {
            let centiseconds = (now - job.started).inNanoseconds / 10_000_000
            let seconds = "\(centiseconds / 100).\(centiseconds % 100 < 10 ? "0" : "")\(centiseconds % 100)"
            output.log(.info, "\(job.purpose.rawValue) \(job.rows) rows from \(peer) in \(seconds) s")
        }
        output.notes.append(.pullFinished(job.purpose, rows: job.rows, succeeded: failure == nil))
    }

    // MARK: Digest repair

    /// Compares this node's digest with the peer's and pulls the buckets that differ and held
    /// still on the peer since the previous round (`DigestComparison`). Answered by `.repairFinished`.
    mutating func startRepair(own: DigestReply, into output: inout SessionOutput) {
        guard repair == nil else {
            output.notes.append(.repairFinished(applied: 0))
            return
        }
        repair = RepairJob(own: own)
        output.actions.append(.fetchDigest)
    }

    private mutating func handleRepair(_ result: PeerResult, now: Duration, into output: inout SessionOutput) {
        guard var job = repair else { return }
        switch result {
        case .digestFetched(let theirs):
            job.buckets = DigestComparison.bucketsToRepair(own: job.own, theirs: theirs, previous: previousPeerBuckets)
            previousPeerBuckets = theirs.buckets.map(\.hash)
        case .bucketFetched(let batch):
            health.rowsReceived += batch.rows.count
            repair = job
            output.actions.append(.applyRepair(batch))
            return
        case .repaired(let applied, _, let refused):
            job.applied += applied
            noteRefused(refused, into: &output)
        case .failed(let failure):
            repair = nil
            recordFailure(failure, now: now, into: &output)
            output.notes.append(.repairFinished(applied: job.applied))
            return
        default:
            return
        }
        if job.buckets.isEmpty {
            repair = nil
            if job.applied > 0 {
                output.log(.notice, "digest repair: \(job.applied) rows from \(peer) were missing or older here")
            }
            output.notes.append(.repairFinished(applied: job.applied))
            return
        }
        let bucket = job.buckets.removeFirst()
        repair = job
        output.actions.append(.fetchBucket(bucket))
    }

    // MARK: Results

    /// Takes the result of an action this session asked for.
    mutating func handle(
        _ result: PeerResult, of action: PeerAction, now: Duration, epoch: String, into output: inout SessionOutput
    ) {
        switch action {
        case .hello, .push, .notePeerEpoch, .readPosition, .readPage:
            guard let step = pushStep else { return }
            handlePush(step, result, now: now, epoch: epoch, into: &output)
        case .fetchFeed, .applyPulled:
            handlePull(action, result, now: now, into: &output)
        case .fetchDigest, .fetchBucket, .applyRepair:
            handleRepair(result, now: now, into: &output)
        case .persistPushedSeq:
            if case .failed(let failure) = result {
                output.log(.warning, "could not store peer \(peer)'s mark: \(failure)")
            }
        }
    }

    // MARK: Health

    private mutating func fail(_ failure: PeerFailure, now: Duration, into output: inout SessionOutput) {
        let failures = recordFailure(failure, now: now, into: &output)
        pushRetryAt = now + settings.backoff.delay(afterFailures: failures, using: &random)
        output.notes.append(.greetingFailed)
    }

    @discardableResult
    private mutating func recordFailure(_ failure: PeerFailure, now: Duration, into output: inout SessionOutput) -> Int {
        if health.reachable || health.since == nil {
            health.since = now
            output.log(.warning, "peer \(peer) unreachable: \(failure)")
        }
        health.reachable = false
        health.lastError = failure.description
        health.consecutiveFailures += 1
        greeted = false
        return health.consecutiveFailures
    }

    private mutating func recordSuccess(now: Duration, into output: inout SessionOutput) {
        if !health.reachable {
            if health.since != nil { output.log(.info, "peer \(peer) reachable again") }
            health.since = now
        }
        health.reachable = true
        health.consecutiveFailures = 0
    }

    private mutating func noteRefused(_ records: [Record], into output: inout SessionOutput) {
        guard let first = records.first else { return }
        health.rowsRefused += records.count
        output.log(.error, "refused \(records.count) row(s) from \(peer) stamped beyond the accepted clock range, e.g. key '\(first.key.prefix(64))' at lamport \(first.version.lamport); the rest of the batch was applied")
    }
}

/// The marks of one link, held by its `PeerSession` (DESIGN.md §3).
public struct PeerMarks: Sendable, Equatable {
    /// The peer's mark of this node's feed, as it last said (`peers.pushed_seq`).
    public var pushedSeq: Int64
    /// This node's mark of the peer's feed (`peers.pulled_seq`), at least this much.
    public var pulledSeq: Int64
    /// How far the own lane has read this node's feed for the peer, since the hello: every own
    /// write the peer lacked up to here has been sent.
    public var ownSentSeq: Int64
    /// How far the peer has acknowledged the own lane (or the feed): the next own batch starts
    /// here, so the peer can check it continues what it was sent.
    public var ownAckedSeq: Int64
    /// The peer's last seq as its last hello gave it: how much it has to offer.
    public var peerLastSeq: Int64
    /// The peer's epoch as last greeted.
    public var peerEpoch: String?
    /// What the peer said, in its last push reply, it holds of each node's writes.
    public var peerCoverage: [FeedExclusion]
}

/// What `/status` shows about the link to one peer. Times are the driver's session time.
public struct LinkHealth: Sendable, Equatable {
    public var reachable = false
    /// When `reachable` last changed; nil before the first exchange.
    public var since: Duration?
    public var lastError: String?
    public var consecutiveFailures = 0
    public var rowsSent = 0
    public var rowsReceived = 0
    public var rowsRefused = 0
}

/// What a session tells `ReplicationCore`.
public enum SessionNote: Sendable, Equatable {
    case log(LogLine)
    case greeted
    case greetingFailed
    case renewEpoch(observed: String, reason: String)
    case pullProgress(PeerSession.PullPurpose, rowsDone: Int, toGo: Int64)
    case pullFinished(PeerSession.PullPurpose, rows: Int, succeeded: Bool)
    case repairFinished(applied: Int)
}

/// A line for the node's log, in plain words.
public struct LogLine: Sendable, Equatable {
    public enum Level: Sendable, Equatable {
        case debug, info, notice, warning, error
    }

    public let level: Level
    public let message: String
}

/// Actions and notes produced by one step of a session.
struct SessionOutput: Sendable {
    var actions: [PeerAction] = []
    var notes: [SessionNote] = []

    mutating func log(_ level: LogLine.Level, _ message: String) {
        notes.append(.log(LogLine(level: level, message: message)))
    }
}

/// Which digest buckets to fetch from a peer.
public enum DigestComparison {
    /// The buckets whose hash differs from ours **and** held still on the peer since the
    /// previous round (a moving bucket is most likely replication in flight, which the feed
    /// delivers anyway), and that hold rows. None on the first round, or when the whole
    /// digests agree.
    public static func bucketsToRepair(own: DigestReply, theirs: DigestReply, previous: [String]?) -> [Int] {
        let hashes = theirs.buckets.map(\.hash)
        guard theirs.digest != own.digest, let previous, previous.count == hashes.count, own.buckets.count == hashes.count
        else { return [] }
        return theirs.buckets.indices.filter { index in
            let bucket = theirs.buckets[index]
            return bucket.hash != own.buckets[index].hash && bucket.hash == previous[index] && bucket.count > 0
        }
    }
}
