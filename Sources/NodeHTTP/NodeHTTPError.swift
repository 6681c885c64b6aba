/// Why a request to a node got no whole reply.
///
/// Every case describes itself in one line fit for a user or a log ("cannot reach node at URL:
/// connection refused"); `KVClientError` and a peer's last error in `/status` show the same
/// words. A reply with any status, 4xx and 5xx included, is not an error here: what a status
/// means is for the caller to decide.
///
/// An `Equatable` enum, like NIO's `ChannelError`: the modules that map it (`KVClient`) switch
/// over every case, so a new case is a compile error there rather than a message lost.
public enum NodeHTTPError: Error, CustomStringConvertible, Sendable, Equatable {
    /// `url` cannot name a node; `reason` says what is wrong with it.
    case invalidNodeURL(String, reason: String)
    /// No connection could be made to the node at `url`, or it broke before a whole reply
    /// arrived; `reason` is the system's word for it (`connection refused`, …).
    case unreachable(url: String, reason: String)
    /// The node at `url` did not reply within the client's timeout.
    case timedOut(url: String)
    /// What arrived is not the HTTP/1.1 (or event stream) it should be; the text says how.
    case badResponse(String)
    /// TLS with the node at `url` failed; `reason` names the cause and the fix.
    case tls(url: String, reason: String)

    public var description: String {
        switch self {
        case .invalidNodeURL(let url, let reason):
            return "invalid node URL '\(url)': \(reason)"
        case .unreachable(let url, let reason):
            return "cannot reach node at \(url): \(reason)"
        case .timedOut(let url):
            return "node at \(url) did not reply in time"
        case .badResponse(let what):
            return "bad response from node: \(what)"
        case .tls(let url, let reason):
            return "TLS with node at \(url) failed: \(reason)"
        }
    }
}
