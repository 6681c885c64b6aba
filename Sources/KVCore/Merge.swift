/// Last-writer-wins merge: the rules that decide which of two rows for one key survives.
///
/// `merge` is commutative, associative and idempotent over histories in which a version names
/// one write (as every node makes them), so replicas that receive the same rows in any order,
/// any number of times, end in the same state. The tests in `KVCoreTests` check these laws on
/// random histories.
public enum Merge {
    /// Whether `incoming` must replace `stored`: only a strictly greater version does.
    ///
    /// An equal version is the same write seen again (versions are unique per write), so
    /// applying it changes nothing.
    public static func shouldReplace(stored: Version?, with incoming: Version) -> Bool {
        guard let stored else { return true }
        return incoming > stored
    }

    /// The surviving row when `incoming` meets `stored` (rows of the same key): `incoming` if
    /// its version is greater (`shouldReplace`), else `stored`. This is the one rule: the store's
    /// upsert evaluates exactly it in SQL (`ApplyTests` ties the two together), and the
    /// simulator checks that nodes end with what it makes of every write.
    ///
    /// An equal version is the same write seen again (versions are unique per write), so the
    /// row held stays, whatever an equal-versioned copy carries: a faulty peer that sent other
    /// contents under a version cannot overwrite a stored row.
    public static func winner(_ stored: Record, _ incoming: Record) -> Record {
        precondition(stored.key == incoming.key, "merge of rows for different keys")
        return shouldReplace(stored: stored.version, with: incoming.version) ? incoming : stored
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
