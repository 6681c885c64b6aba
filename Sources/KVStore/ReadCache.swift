import KVCore
import Synchronization

/// Rows recently read by key, or written by this node's clients, in front of the read pool: a point read that hits skips SQLite's
/// read transaction, its file locks and its page reads (docs/performance.md, "A read cache").
///
/// What it promises: once a write is answered, no read returns the row it replaced. The writer
/// calls `apply` with every key its transaction changed — keeping the rows clients wrote on
/// this node, forgetting the others — or `invalidateAll` when a statement changed rows it
/// cannot name, such as a purge of tombstones, after the commit and before it answers any
/// request of the transaction. A read fills the cache only if no
/// invalidation reached its key's stripe since before its SQLite read began (`ticket(for:)`),
/// so a read that raced a commit cannot put back the row that commit replaced; the commit's own
/// invalidation removes a fill made before it.
///
/// Bounded by `capacityBytes`, counted as key and value bytes plus a fixed overhead per entry,
/// split evenly over the stripes; a stripe that would overflow is emptied first (no LRU
/// bookkeeping on the read path). Rows whose value is larger than a sixteenth of a stripe are
/// not kept. Absent keys are not cached.
final class ReadCache: Sendable {
    /// What a reader holds between taking a ticket and filling: the stripe's generation then.
    struct Ticket: Sendable {
        fileprivate let stripe: Int
        fileprivate let generation: UInt64
    }

    /// A row without its key, which is the dictionary's.
    private struct Entry {
        let value: [UInt8]?
        let version: Version
        let seq: Int64
        let expiresAt: Int64?
    }

    private struct Stripe {
        var generation: UInt64 = 0
        var entries: [String: Entry] = [:]
        var bytes = 0
    }

    private final class StripeBox: Sendable {
        let state = Mutex(Stripe())
    }

    /// Bytes counted per entry beyond its key and value: the dictionary slot, the array and
    /// string headers, the allocator's rounding.
    static let entryOverhead = 192
    static let stripeCount = 64

    let capacityBytes: Int
    /// Which keys have rows at all, for reads of keys the cache does not hold.
    let keys = KeyFilter()
    private let stripeBudget: Int
    private let stripes: [StripeBox]
    /// Set by `close()`: reads go to the read pool, which refuses them.
    private let closed = Atomic(false)

    /// A cache of at most `capacityBytes` (counted as above); 0 or less keeps nothing.
    init(capacityBytes: Int) {
        self.capacityBytes = max(0, capacityBytes)
        stripeBudget = self.capacityBytes / Self.stripeCount
        stripes = (0..<Self.stripeCount).map { _ in StripeBox() }
    }

    var isEnabled: Bool { stripeBudget > 0 }

    private func stripeIndex(_ key: String) -> Int {
        key.hashValue & (Self.stripeCount - 1)
    }

    /// The cached row of `key`, or nil when it is not cached.
    func row(_ key: String) -> StoredRecord? {
        guard isEnabled, !closed.load(ordering: .relaxed) else { return nil }
        let entry = stripes[stripeIndex(key)].state.withLock { $0.entries[key] }
        guard let entry else { return nil }
        return StoredRecord(
            record: Record(key: key, value: entry.value, version: entry.version, expiresAt: entry.expiresAt),
            seq: entry.seq)
    }

    /// To take before the SQLite read whose row `fill` may keep.
    func ticket(for key: String) -> Ticket {
        let stripe = stripeIndex(key)
        return Ticket(stripe: stripe, generation: stripes[stripe].state.withLock { $0.generation })
    }

    /// Keeps `row`, read after `ticket` was taken, unless an invalidation reached its stripe since.
    func fill(_ row: StoredRecord, ticket: Ticket) {
        guard isEnabled else { return }
        stripes[ticket.stripe].state.withLock { stripe in
            guard stripe.generation == ticket.generation, stripe.entries[row.record.key] == nil else { return }
            keep(row, in: &stripe)
        }
    }

    private static func cost(key: String, valueBytes: Int) -> Int {
        key.utf8.count + valueBytes + entryOverhead
    }

    /// Adds `row` (its key not in `stripe`), emptying the stripe first if it would overflow;
    /// a row larger than a sixteenth of a stripe is not kept.
    private func keep(_ row: StoredRecord, in stripe: inout Stripe) {
        let cost = Self.cost(key: row.record.key, valueBytes: row.record.value?.count ?? 0)
        guard cost <= stripeBudget / 16 else { return }
        if stripe.bytes + cost > stripeBudget {
            stripe.entries.removeAll(keepingCapacity: true)
            stripe.bytes = 0
        }
        stripe.entries[row.record.key] = Entry(
            value: row.record.value, version: row.record.version, seq: row.seq, expiresAt: row.record.expiresAt)
        stripe.bytes += cost
    }

    /// A key a transaction wrote: the row now stored under it, or nil when the cache must
    /// forget the key.
    struct Change: Sendable {
        let key: String
        let row: StoredRecord?
    }

    /// Applies a committed transaction's changes in order (the last change of a key wins),
    /// and makes every read of their stripes that began before this call leave the cache alone.
    func apply(_ changes: [Change]) {
        guard isEnabled else { return }
        for change in changes {
            stripes[stripeIndex(change.key)].state.withLock { stripe in
                stripe.generation &+= 1
                if let removed = stripe.entries.removeValue(forKey: change.key) {
                    stripe.bytes -= Self.cost(key: change.key, valueBytes: removed.value?.count ?? 0)
                }
                if let row = change.row { keep(row, in: &stripe) }
            }
        }
    }


    /// Forgets everything, as `invalidate` does for every key.
    func invalidateAll() {
        guard isEnabled else { return }
        for box in stripes {
            box.state.withLock { stripe in
                stripe.generation &+= 1
                stripe.entries.removeAll()
                stripe.bytes = 0
            }
        }
    }

    /// From now on nothing is answered from memory, so every read reaches the (closed) pool.
    func close() {
        closed.store(true, ordering: .relaxed)
        keys.abandon()
        invalidateAll()
    }

    /// Entries kept now, for tests and metrics.
    var count: Int {
        stripes.reduce(0) { total, box in total + box.state.withLock { $0.entries.count } }
    }
}
