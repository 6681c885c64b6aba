public import KVCore
import NodeHTTP

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// One change a watch delivered.
public struct WatchedChange: Sendable, Hashable {
    public let event: WatchEvent
    /// The event's `data:` exactly as the node sent it (the JSON of `event`).
    public let data: String
}

extension KVClient {
    /// Changes to keys starting with `prefix` (all keys when nil), in the node's `seq` order,
    /// from just after seq `after` (from now when nil), as the node streams them on
    /// `GET /watch` over a connection of its own.
    ///
    /// The stream goes on until the consumer stops iterating (the connection is then closed) or
    /// it throws: `.fellBehind` with the seq to resume after, when the node dropped this watcher
    /// for being slow or when more than `buffer` changes wait unread here; `.unreachable`,
    /// `.timedOut`, `.server` or `.badResponse` as for any request. Connecting and the reply's
    /// head have the client's `timeout`; after that, a node silent for `idleLimit` (it sends a
    /// keep-alive every 15 s) counts as unreachable.
    public func watch(
        prefix: String? = nil, after: Int64? = nil, buffer: Int = 4096, idleLimit: Duration = .seconds(45)
    ) -> AsyncThrowingStream<WatchedChange, any Error> {
        var query: [String] = []
        if let prefix { query.append("prefix=" + KeyPath.encode(prefix)) }
        if let after { query.append("after=\(after)") }
        let path = query.isEmpty ? "/watch" : "/watch?" + query.joined(separator: "&")
        let (stream, continuation) = AsyncThrowingStream.makeStream(
            of: WatchedChange.self, throwing: (any Error).self, bufferingPolicy: .bufferingOldest(max(1, buffer)))
        let connection = self.connection
        let url = connection.url
        let headers = authorization.map { [("Authorization", $0)] } ?? []
        let task = Task {
            var delivered = after ?? 0
            do {
                let refusal = try await connection.eventStream(path, headers: headers, idleLimit: idleLimit) { message in
                    switch message.type {
                    case "message":
                        let event: WatchEvent
                        do {
                            event = try JSONDecoder().decode(WatchEvent.self, from: Data(message.data.utf8))
                        } catch {
                            throw KVClientError.badResponse("a GET /watch event is not the expected JSON: \(message.data.prefix(200))")
                        }
                        switch continuation.yield(WatchedChange(event: event, data: message.data)) {
                        case .enqueued: delivered = event.seq
                        case .dropped: throw KVClientError.fellBehind(url: url, resumeAfter: delivered)
                        case .terminated: throw CancellationError()
                        @unknown default: throw CancellationError()
                        }
                    case "overflow":
                        guard let overflow = try? JSONDecoder().decode(WatchOverflow.self, from: Data(message.data.utf8))
                        else {
                            throw KVClientError.badResponse("a GET /watch overflow event is not the expected JSON: \(message.data.prefix(200))")
                        }
                        throw KVClientError.fellBehind(url: url, resumeAfter: overflow.resumeAfter)
                    default:
                        break  // an event type this client does not know: not for it
                    }
                }
                if let refusal { throw Self.serverError(refusal) }
                continuation.finish(
                    throwing: Task.isCancelled
                        ? nil : KVClientError.unreachable(url: url, reason: "the node ended the watch"))
            } catch is CancellationError {
                continuation.finish()
            } catch let error as NodeHTTPError {
                continuation.finish(throwing: KVClientError(error))
            } catch {
                continuation.finish(throwing: error)
            }
        }
        continuation.onTermination = { _ in task.cancel() }
        return stream
    }
}
