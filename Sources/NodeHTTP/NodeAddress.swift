/// Where a node listens, parsed from `http://HOST[:PORT]` or `https://HOST[:PORT]` at the edge so
/// nothing later can meet a malformed URL.
struct NodeAddress: Sendable, Hashable {
    /// The host as given, without IPv6 brackets.
    let host: String
    let port: Int
    /// Whether the node is reached over TLS (`https`).
    let isSecure: Bool
    /// The normalized URL, `http://HOST:PORT` or `https://HOST:PORT`, used in messages.
    let url: String

    /// Parses `text`; accepts `http://HOST[:PORT]` and `https://HOST[:PORT]` (ports 80 and 443 by
    /// default) with an optional final `/`. Refuses every other scheme, user info, paths, queries
    /// and fragments, an empty host and a port outside 1–65535.
    init(parsing text: String) throws(NodeHTTPError) {
        func refuse(_ reason: String) -> NodeHTTPError { .invalidNodeURL(text, reason: reason) }

        guard let schemeEnd = text.firstRange(of: "://") else {
            throw refuse("expected http://HOST:PORT or https://HOST:PORT")
        }
        let scheme = text[..<schemeEnd.lowerBound].lowercased()
        guard scheme == "http" || scheme == "https" else {
            throw refuse("the scheme must be http or https, not \(scheme)")
        }
        let isSecure = scheme == "https"

        var authority = text[schemeEnd.upperBound...]
        if authority.hasSuffix("/") { authority = authority.dropLast() }
        if authority.contains(where: { "/?#".contains($0) }) {
            throw refuse("a node URL has no path, query or fragment")
        }
        if authority.contains("@") { throw refuse("a node URL has no user name or password") }

        let hostPart: Substring
        let portPart: Substring?
        if authority.hasPrefix("[") {  // IPv6 literal: [::1]:8000
            guard let close = authority.firstIndex(of: "]") else {
                throw refuse("unterminated IPv6 address")
            }
            hostPart = authority[authority.index(after: authority.startIndex)..<close]
            let rest = authority[authority.index(after: close)...]
            if rest.isEmpty {
                portPart = nil
            } else if rest.hasPrefix(":") {
                portPart = rest.dropFirst()
            } else {
                throw refuse("unexpected text after the IPv6 address")
            }
        } else if let colon = authority.lastIndex(of: ":") {
            hostPart = authority[..<colon]
            portPart = authority[authority.index(after: colon)...]
        } else {
            hostPart = authority
            portPart = nil
        }

        guard !hostPart.isEmpty else { throw refuse("the host is missing") }
        var port = isSecure ? 443 : 80
        if let portPart {
            guard let parsed = Int(portPart), (1...65535).contains(parsed),
                portPart.allSatisfy(\.isASCII)
            else { throw refuse("the port must be a number from 1 to 65535") }
            port = parsed
        }
        self.host = String(hostPart)
        self.port = port
        self.isSecure = isSecure
        let shownHost = hostPart.contains(":") ? "[\(hostPart)]" : String(hostPart)
        self.hostHeader = "\(shownHost):\(port)"
        self.url = "\(scheme)://\(hostHeader)"
    }

    /// The value of the `Host` header: `HOST:PORT`.
    let hostHeader: String
}
