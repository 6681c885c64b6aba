/// Where a node listens, parsed from `http://HOST[:PORT]` at the edge so nothing later can meet a
/// malformed URL.
struct NodeAddress: Sendable, Hashable {
    /// The host as given, without IPv6 brackets.
    let host: String
    let port: Int
    /// The normalized URL, `http://HOST:PORT`, used in messages.
    let url: String

    /// Parses `text`; accepts `http://HOST` and `http://HOST:PORT` with an optional final `/`.
    /// Refuses every other scheme (naming `https` explicitly), user info, paths, queries and
    /// fragments, an empty host and a port outside 1–65535.
    init(parsing text: String) throws(KVClientError) {
        func refuse(_ reason: String) -> KVClientError { .invalidNodeURL(text, reason: reason) }

        guard let schemeEnd = text.firstRange(of: "://") else {
            throw refuse("expected http://HOST:PORT")
        }
        let scheme = text[..<schemeEnd.lowerBound].lowercased()
        if scheme == "https" {
            throw refuse("https is not supported; nodes serve plain http (use http://)")
        }
        guard scheme == "http" else { throw refuse("the scheme must be http, not \(scheme)") }

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
        var port = 80
        if let portPart {
            guard let parsed = Int(portPart), (1...65535).contains(parsed),
                portPart.allSatisfy(\.isASCII)
            else { throw refuse("the port must be a number from 1 to 65535") }
            port = parsed
        }
        self.host = String(hostPart)
        self.port = port
        let shownHost = hostPart.contains(":") ? "[\(hostPart)]" : String(hostPart)
        self.url = "http://\(shownHost):\(port)"
    }

    /// The value of the `Host` header.
    var hostHeader: String {
        String(url.dropFirst("http://".count))
    }
}
