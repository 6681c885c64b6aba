/// Last-writer-wins merge: the rules that decide which of two rows for one key survives.
///
/// `merge` is commutative, associative and idempotent, so replicas that receive the same rows
/// in any order, any number of times, end in the same state. The tests in `KVCoreTests` check
/// these laws on random histories.
public enum Merge {
    /// Whether `incoming` must replace `stored`: only a strictly greater version does.
    ///
    /// An equal version is the same write seen again (versions are unique per write), so
    /// applying it changes nothing.
    public static func shouldReplace(stored: Version?, with incoming: Version) -> Bool {
        guard let stored else { return true }
        return incoming > stored
    }

    /// The surviving row of two rows for the same key.
    ///
    /// Equal versions should carry equal contents; if a faulty peer sent different ones, the
    /// tie is still broken the same way everywhere (tombstone first, then bytes), so the law
    /// holds for any input.
    public static func winner(_ lhs: Record, _ rhs: Record) -> Record {
        precondition(lhs.key == rhs.key, "merge of rows for different keys")
        if lhs.version != rhs.version { return lhs.version > rhs.version ? lhs : rhs }
        switch (lhs.value, rhs.value) {
        case (nil, _): return rhs
        case (_, nil): return lhs
        case (let left?, let right?):
            return left.lexicographicallyPrecedes(right) ? rhs : lhs
        }
    }

    /// Merges `incoming` into a replica state held as a dictionary keyed by row key.
    public static func apply(_ incoming: Record, to state: inout [String: Record]) {
        if let stored = state[incoming.key] {
            state[incoming.key] = winner(stored, incoming)
        } else {
            state[incoming.key] = incoming
        }
    }

    /// Merges two whole replica states.
    public static func merge(_ lhs: [String: Record], _ rhs: [String: Record]) -> [String: Record] {
        var result = lhs
        for record in rhs.values { apply(record, to: &result) }
        return result
    }
}
