import NodeHTTP

/// Why a request to a node failed.
///
/// Every error describes itself in one line fit for a user (`kv` prints it after `kv: `). It
/// wraps a private enum so cases can be added later without breaking callers; test the case with
/// `==` against the static constructors, or read `kind`.
public struct KVClientError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The broad class of a failure, for callers that choose an exit status or a retry by it.
    public enum Kind: Sendable, Hashable {
        /// The node URL given to `KVClient.init` cannot be used.
        case invalidNodeURL
        /// No connection could be made, or it broke before a whole reply arrived.
        case unreachable
        /// The node did not answer within the request timeout.
        case timedOut
        /// The node answered with a non-2xx status.
        case server
        /// The node answered something that is not what the API promises.
        case badResponse
        /// A watch ended because it fell behind the changes; `resumeAfter` says where to resume.
        case fellBehind
        /// TLS with the node failed: its certificate is not trusted or does not fit the URL, it
        /// refused ours, or it does not speak TLS.
        case tls
    }

    enum Base: Sendable, Equatable {
        /// No whole reply: the URL, the connection, TLS or the bytes failed. NodeHTTP's error is
        /// kept as it is, so its one-line description is the user's, word for word.
        case transport(NodeHTTPError)
        case server(status: Int, error: String, detail: String)
        case fellBehind(url: String, resumeAfter: Int64)
    }

    let base: Base

    /// The same failure as `NodeHTTPClient` reported it: same case, same words.
    init(_ error: NodeHTTPError) {
        self.base = .transport(error)
    }

    private init(base: Base) {
        self.base = base
    }

    /// `url` cannot name a node; `reason` says what is wrong with it.
    public static func invalidNodeURL(_ url: String, reason: String) -> Self {
        Self(base: .transport(.invalidNodeURL(url, reason: reason)))
    }

    /// The node at `url` could not be reached; `reason` is the system's word for it
    /// (`connection refused`, …).
    public static func unreachable(url: String, reason: String) -> Self {
        Self(base: .transport(.unreachable(url: url, reason: reason)))
    }

    /// The node at `url` did not reply within the client's timeout.
    public static func timedOut(url: String) -> Self {
        Self(base: .transport(.timedOut(url: url)))
    }

    /// The node refused the request with `status` and the JSON error body `{"error","detail"}`
    /// (both empty strings when the body was not that JSON).
    public static func server(status: Int, error: String, detail: String) -> Self {
        Self(base: .server(status: status, error: error, detail: detail))
    }

    /// The reply broke the API's promises; the text says how.
    public static func badResponse(_ what: String) -> Self {
        Self(base: .transport(.badResponse(what)))
    }

    /// A watch on the node at `url` was ended because its reader fell behind the changes (the
    /// node dropped it, or the client's own buffer filled); every change up to and including
    /// seq `resumeAfter` was delivered, so watching again after it misses nothing.
    public static func fellBehind(url: String, resumeAfter: Int64) -> Self {
        Self(base: .fellBehind(url: url, resumeAfter: resumeAfter))
    }

    /// TLS with the node at `url` failed; `reason` names the cause and the fix.
    public static func tls(url: String, reason: String) -> Self {
        Self(base: .transport(.tls(url: url, reason: reason)))
    }

    public var kind: Kind {
        switch base {
        case .transport(.invalidNodeURL): .invalidNodeURL
        case .transport(.unreachable): .unreachable
        case .transport(.timedOut): .timedOut
        case .transport(.badResponse): .badResponse
        case .transport(.tls): .tls
        case .server: .server
        case .fellBehind: .fellBehind
        }
    }

    /// The HTTP status of a `.server` error, else nil.
    public var status: Int? {
        if case .server(let status, _, _) = base { return status }
        return nil
    }

    /// The seq to resume a watch after, for a `.fellBehind` error; else nil.
    public var resumeAfter: Int64? {
        if case .fellBehind(_, let resumeAfter) = base { return resumeAfter }
        return nil
    }

    /// The stable error code of a `.server` error (`invalid_key`, …), else nil.
    public var errorCode: String? {
        if case .server(_, let error, _) = base { return error }
        return nil
    }

    public var description: String {
        switch base {
        case .transport(let error):
            return error.description
        case .server(let status, let error, let detail):
            let parts = [String(status), error.isEmpty ? nil : error + ":", detail.isEmpty ? nil : detail]
            let text = parts.compactMap { $0 }.joined(separator: " ")
            return "node refused the request: "
                + (text.hasSuffix(":") ? String(text.dropLast()) : text)
        case .fellBehind(let url, let resumeAfter):
            return "the watch on \(url) fell behind the changes; resume after seq \(resumeAfter)"
        }
    }
}
