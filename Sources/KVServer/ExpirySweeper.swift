import KVStore
import Logging
import ServiceLifecycle

/// Reclaims the space of expired keys: every `interval`, turns the rows whose expiry has
/// passed into tombstones of the same version (`KVStore.tombstoneExpired`), a thousand per
/// transaction, until none is due. Readers already treat those rows as absent; the tombstones
/// are then purged like any other, once every peer has acknowledged them and the grace has
/// passed. Runs in the node's service group and stops on graceful shutdown.
struct ExpirySweeper: Service {
    let store: KVStore
    let interval: Duration
    let logger: Logger

    func run() async throws {
        await cancelWhenGracefulShutdown {
            while !Task.isCancelled {
                do {
                    var total = 0
                    while true {
                        let turned = try await store.tombstoneExpired(limit: 1000)
                        total += turned
                        if turned < 1000 || Task.isCancelled { break }
                    }
                    if total > 0 { logger.debug("expired \(total) keys", metadata: ["keys": "\(total)"]) }
                } catch StoreError.closed {
                    return
                } catch {
                    logger.warning("expiry sweep failed; retrying in \(interval): \(error)")
                }
                try? await Task.sleep(for: interval)
            }
        }
    }
}
