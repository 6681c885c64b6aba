import Foundation
import KVCore
import KVStore
import NIOCore
import NIOHTTP1
import Replication

/// `GET /digest` and `GET /watch`: the read-only views an operator uses to compare nodes and to
/// follow changes (DESIGN.md §4).
extension KVResponder {
    /// Rows a watcher may fall further behind the head of the feed than it was when it started,
    /// before it is dropped with an `overflow` event naming where to resume (a watch from an old
    /// seq reads the history at its own pace and is not dropped for it). Memory does not grow
    /// with the lag: a watch reads the feed a page at a time.
    static let watchMaxLag: Int64 = 100_000
    /// A comment line is sent this often so proxies and clients see the stream is alive.
    static let watchKeepAlive: Duration = .seconds(15)

    func digest(_ queryText: Substring?) async throws -> ServerResponse {
        let query = try QueryParameters(queryText)
        if let text = query["bucket"] {
            guard text.utf8.count == 2, text.allSatisfy(\.isHexDigit), let bucket = Int(text, radix: 16) else {
                throw APIError.invalidParameter("bucket must be two hex digits, 00 to ff, got '\(text)'")
            }
            let rows = try await store.digestRows(inBucket: bucket).map {
                DigestBucketReply.Row(
                    key: $0.key, lamport: $0.lamport, origin: $0.origin, deleted: $0.deleted,
                    valueHash: RowDigest.hex($0.valueHash))
            }
            return try json(DigestBucketReply(bucket: text.lowercased(), rows: rows))
        }
        return try json(await Replicator.digestReply(of: store))
    }

    func watch(_ queryText: Substring?) async throws -> ServerResponse {
        let query = try QueryParameters(queryText)
        let prefix = query["prefix"] ?? ""
        var start: Int64?
        if let text = query["after"] {
            guard let value = Int64(text), value >= 0 else {
                throw APIError.invalidParameter("after must be a seq (a whole number ≥ 0), got '\(text)'")
            }
            start = value
        }
        let store = self.store
        let shutdown = self.shutdown
        // Subscribe before reading the position, so no commit falls between the two.
        let commits = store.commits()
        var position = start ?? 0
        if start == nil { position = try await store.feedPosition().lastSeq }
        let from = position
        return ServerResponse(
            status: .ok,
            headers: ["content-type": "text/event-stream", "cache-control": "no-cache"],
            body: .stream { writer in
                try await Self.stream(store: store, prefix: prefix, after: from, commits: commits, shutdown: shutdown, to: writer)
            })
    }

    private static func stream(
        store: KVStore, prefix: String, after start: Int64, commits: AsyncStream<Int64>,
        shutdown: ShutdownSignal, to writer: ResponseStreamWriter
    ) async throws {
        // One stream of wake-ups: every commit, a tick for the keep-alive, and shutdown (which
        // ends it).
        let (wakeUps, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        let forwarder = Task {
            for await _ in commits { wake.yield() }
            wake.finish()
        }
        let ticker = Task {
            while !Task.isCancelled {
                try? await Task.sleep(for: watchKeepAlive)
                wake.yield()
            }
        }
        let stopper = Task {
            for await _ in shutdown.stream() { wake.finish() }
        }
        defer {
            forwarder.cancel()
            ticker.cancel()
            stopper.cancel()
        }
        var lastSent = ContinuousClock.now
        var allowance: Int64?
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var position = start
        var iterator = wakeUps.makeAsyncIterator()
        while !Task.isCancelled {
            let page = try await store.feed(after: position, maxRows: 1_000, maxBytes: 1 << 20)
            var text = ""
            let now = ExpiryClock.nowMilliseconds()
            for row in page.rows where row.record.key.hasPrefix(prefix) && MemberRow.id(ofKey: row.record.key) == nil {
                let record = row.record
                // A row already expired is shown as what readers see: deleted.
                let value = record.value(at: now)
                let event = WatchEvent(
                    key: record.key, value: value.map { Data($0).base64EncodedString() },
                    deleted: value == nil, lamport: record.version.lamport,
                    origin: record.version.origin.rawValue, seq: row.seq)
                text += "id: \(row.seq)\ndata: \(String(decoding: try encoder.encode(event), as: UTF8.self))\n\n"
            }
            if !text.isEmpty {
                try await writer.write(ByteBuffer(string: text))
                lastSent = ContinuousClock.now
            }
            position = max(position, page.to)
            let lag = page.lastSeq - position
            if allowance == nil { allowance = lag + watchMaxLag }
            if lag > (allowance ?? watchMaxLag) {
                let overflow = WatchOverflow(resumeAfter: position)
                let data = String(decoding: try encoder.encode(overflow), as: UTF8.self)
                try await writer.write(ByteBuffer(string: "event: overflow\ndata: \(data)\n\n"))
                break
            }
            if page.to < page.lastSeq, !shutdown.hasFired { continue }  // more is waiting: read on
            // Wait for a commit or a tick; the stream ends when the node shuts down.
            guard await iterator.next() != nil, !shutdown.hasFired else { break }
            if ContinuousClock.now - lastSent >= watchKeepAlive {
                try await writer.write(ByteBuffer(string: ": ping\n\n"))
                lastSent = ContinuousClock.now
            }
        }
    }
}
