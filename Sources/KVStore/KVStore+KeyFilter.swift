import Foundation
import Logging
import SQLite

extension KVStore {
    /// Scans the file's keys into `filter` on a thread of its own, after the writer began
    /// adding keys (`KeyFilter`): a million keys take about a second, and reads of absent keys
    /// go to SQLite meanwhile. A thread, not a task: the scan blocks for its whole length.
    static func buildKeyFilter(_ filter: KeyFilter, readers: ReadPool, path: String, logger: Logger) {
        let thread = Thread {
            Thread.current.name = "converge-keys"  // at most 15 bytes, as Linux wants
            let began = ContinuousClock.now
            var scanned = 0
            let rows = (try? readers.read { connection in
                try connection.firstRow("SELECT live + tombstones FROM kv_counts") { Int($0.int64(at: 0)) }
            }) ?? nil
            let built = filter.build(expectedKeys: (rows ?? 0) + 1024) { add in
                try readers.read { connection in
                    try connection.withStatement("SELECT key FROM kv") { statement in
                        while try statement.step() {
                            add(statement.text(at: 0))
                            scanned += 1
                        }
                    }
                }
            }
            if built {
                logger.debug(
                    "key filter built", metadata: ["path": "\(path)", "keys": "\(scanned)", "took": "\(ContinuousClock.now - began)"])
            } else {
                logger.warning(
                    "could not read the keys for the key filter; reads of absent keys go to SQLite",
                    metadata: ["path": "\(path)"])
            }
        }
        thread.start()
    }
}
