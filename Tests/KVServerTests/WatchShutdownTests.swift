import Foundation
import KVClient
import KVCore
import KVServer
import Testing
import TestSupport

@Suite("A watch and the node's shutdown")
struct WatchShutdownTests {
    /// A graceful stop waits for requests in flight; a watch never finishes on its own, so the
    /// node must end it: the stop completes and the watcher sees its stream end.
    @Test func stoppingANodeEndsItsWatches() async throws {
        try await withTemporaryDirectoryForNode { configuration in
            let node = try await ConvergeNode.start(configuration, logger: testLogger)
            let client = try KVClient(node: node.url)
            _ = try await client.put("w/1", value: [1])
            await client.close()
            let watcher = try KVClient(node: node.url)
            let (firstEvent, signal) = AsyncStream.makeStream(of: Void.self)
            let received = Task {
                var count = 0
                do {
                    for try await _ in watcher.watch(prefix: "w/", after: 0) {
                        count += 1
                        signal.yield()
                    }
                } catch {}
                signal.finish()
                return count
            }
            var events = firstEvent.makeAsyncIterator()
            _ = await events.next()

            let stoppedInTime = await withTaskGroup(of: Bool.self) { group in
                group.addTask {
                    await node.stop()
                    return true
                }
                group.addTask {
                    try? await Task.sleep(for: .seconds(20))
                    return false
                }
                let first = await group.next() ?? false
                group.cancelAll()
                return first
            }
            #expect(stoppedInTime, "the node stopped with a watch open (it waited on the watch before)")
            #expect(await received.value == 1, "the watcher got the event, then its stream ended")
            await watcher.close()
        }
    }
}
