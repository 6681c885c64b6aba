public import NodeHTTP
import NIOSSL

/// The node's side of TLS: the certificate and key it serves with, and the CA bundle that a
/// client certificate, when one is presented, must chain to.
///
/// Every file is read and checked when this is made (missing, unreadable, not PEM, a key others
/// may read, a key that is not the certificate's), so a node with a bad TLS flag stops at
/// start-up with one line instead of failing every handshake later. With a CA file, a client
/// that presents a certificate from another CA is refused during the handshake; a client that
/// presents none (`kv`, a browser) is let through to HTTP, where tokens decide.
public struct ServerTLS: Sendable {
    public let certificateFile: String
    public let keyFile: String
    public let caFile: String?
    /// What every connection's `NIOSSLServerHandler` is made with.
    let context: NIOSSLContext

    public init(certificateFile: String, keyFile: String, caFile: String?) throws(TLSFileError) {
        let chain = try TLSFiles.certificates(at: certificateFile, role: .certificate)
        let key = try TLSFiles.privateKey(at: keyFile)
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(key))
        configuration.minimumTLSVersion = .tlsv12
        if let caFile {
            configuration.trustRoots = .certificates(try TLSFiles.certificates(at: caFile, role: .caFile))
            configuration.certificateVerification = .optionalVerification
        }
        // Building the context checks that the key is the certificate's.
        self.context = try TLSFiles.context(configuration, certificateFile: certificateFile, keyFile: keyFile, caFile: caFile)
        self.certificateFile = certificateFile
        self.keyFile = keyFile
        self.caFile = caFile
    }
}
