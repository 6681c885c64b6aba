public import KVCore
import NodeHTTP
import Foundation

/// The joining side of `POST /internal/join` (`kvnode --join URL`): asks the given members in
/// turn, with backoff, until one adds this node, and returns the members it listed.
public enum MemberJoin {
    /// Why a join did not succeed.
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    /// Tries `urls` in turn until one answers 200 or `deadline` passes. A refusal that retrying
    /// cannot cure (401 wrong token, 403 removed, 400) ends at once with its reason.
    public static func join(
        _ request: JoinRequest, urls: [String], configuration: ReplicationConfiguration, deadline: Duration,
        log: @Sendable (String) -> Void
    ) async throws -> MembersReply {
        let clock = ContinuousClock()
        let end = clock.now + deadline
        var random = SystemRandomNumberGenerator()
        var attempt = 0
        var lastProblem = "no --join URL was given"
        let body = Array(try JSONEncoder().encode(request))
        while true {
            for url in urls {
                let reply: HTTPReply
                do {
                    let client = try NodeHTTPClient(node: url, timeout: configuration.requestTimeout, tls: configuration.peerTLS)
                    defer { Task { await client.close() } }
                    var headers = [(PeerProtocol.nodeHeader, request.id), ("Content-Type", "application/json")]
                    if let token = configuration.clusterToken { headers.append(("Authorization", BearerToken.header(for: token))) }
                    reply = try await client.send("POST", PeerProtocol.joinPath, body: body, headers: headers)
                } catch {
                    lastProblem = "\(url): \(error)"
                    log("cannot join through \(url) yet: \(error)")
                    continue
                }
                let detail = (try? JSONDecoder().decode(ErrorBody.self, from: Data(reply.body))).map { "\($0.error): \($0.detail)" }
                    ?? String(decoding: reply.body.prefix(200), as: UTF8.self)
                switch reply.status {
                case 200:
                    do {
                        return try JSONDecoder().decode(MembersReply.self, from: Data(reply.body))
                    } catch {
                        throw Failure(description: "\(url) answered the join with an unexpected body: \(error)")
                    }
                case 400, 401, 403:
                    throw Failure(description: "\(url) refused the join: \(reply.status) \(detail)")
                default:
                    lastProblem = "\(url): \(reply.status) \(detail)"
                    log("cannot join through \(url) yet: \(reply.status) \(detail)")
                }
            }
            let pause = configuration.backoff.delay(afterFailures: attempt + 1, using: &random)
            attempt += 1
            guard clock.now + pause < end else {
                throw Failure(description: "no member answered the join within \(deadline) (last: \(lastProblem)); is a --join URL right and its node up?")
            }
            try await Task.sleep(for: pause)
        }
    }
}
