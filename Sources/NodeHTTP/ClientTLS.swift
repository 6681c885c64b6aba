import NIOCore
import NIOSSL

/// How a client checks the nodes it reaches with `https://`, and the certificate it shows them.
///
/// A node's certificate must chain to a CA of the `--tls-ca-file` bundle (or, without one, to the
/// system's trust store, as curl does) and name the URL's host in its subjectAltName: a DNS name
/// for a host name, an IP address for an IP literal. A node that talks to its peers also shows
/// its own certificate, so a peer started with a CA file can refuse one from a foreign CA.
///
/// Built once from the files (each read and checked here, so a bad file is one clear line at
/// start-up, not a failed handshake later) and shared by every connection of every
/// `NodeHTTPClient` it is given to: `kv`'s, and a node's to its peers.
public struct ClientTLS: Sendable {
    /// The CA bundle the nodes' certificates are verified against; nil for the system's store.
    public let caFile: String?
    let context: NIOSSLContext

    /// Trusts the CAs in `caFile` (PEM, one or more certificates), or the system's trust store
    /// when nil; with `certificateFile` and `keyFile` (both or neither), presents that
    /// certificate when a node asks for one.
    public init(caFile: String? = nil, certificateFile: String? = nil, keyFile: String? = nil) throws(TLSFileError) {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        configuration.certificateVerification = .fullVerification
        if let caFile {
            configuration.trustRoots = .certificates(try TLSFiles.certificates(at: caFile, role: .caFile))
        }
        if let certificateFile, let keyFile {
            let chain = try TLSFiles.certificates(at: certificateFile, role: .certificate)
            let key = try TLSFiles.privateKey(at: keyFile)
            configuration.certificateChain = chain.map { .certificate($0) }
            configuration.privateKey = .privateKey(key)
        }
        self.caFile = caFile
        self.context = try TLSFiles.context(
            configuration, certificateFile: certificateFile, keyFile: keyFile, caFile: caFile)
    }

    /// The handler that wraps a connection to `address` in TLS. An IP literal is checked against
    /// the certificate's IP addresses (SNI cannot carry one); a name is sent as SNI and checked
    /// against its DNS names.
    func handler(for address: NodeAddress) throws -> NIOSSLClientHandler {
        try NIOSSLClientHandler(context: context, serverHostname: address.hostIsIPLiteral ? nil : address.host)
    }
}

extension NodeAddress {
    /// Whether `host` is an IPv4 or IPv6 literal rather than a name.
    var hostIsIPLiteral: Bool {
        (try? SocketAddress(ipAddress: host, port: 0)) != nil
    }
}
