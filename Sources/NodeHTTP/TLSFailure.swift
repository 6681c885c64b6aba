import NIOCore
import NIOSSL
import Synchronization

/// The first TLS error seen on one connection, kept so that whatever way the failure reaches the
/// request (a read that throws, a write to a channel already closed) it is reported as the TLS
/// failure it is, in words that say what to do.
final class TLSFailureRecord: Sendable {
    private let reason = Mutex<String?>(nil)

    /// The failure in words, once one happened.
    var failure: String? { reason.withLock { $0 } }

    func note(_ error: any Error) {
        // A close without TLS's close_notify ends a connection like any other close: whatever
        // happens to a request on it is reported as for plain HTTP.
        if case NIOSSLError.uncleanShutdown = error { return }
        guard let words = tlsProblem(error) else { return }
        reason.withLock { if $0 == nil { $0 = words } }
    }

    /// A handler that notes TLS errors passing down the pipeline; placed right after the TLS handler.
    func handler() -> Recorder { Recorder(record: self) }

    final class Recorder: ChannelInboundHandler, RemovableChannelHandler {
        typealias InboundIn = NIOAny
        let record: TLSFailureRecord

        init(record: TLSFailureRecord) { self.record = record }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            record.note(error)
            context.fireErrorCaught(error)
        }
    }
}

/// A TLS error in words fit after "TLS with node at URL failed: ", naming the likely cause and
/// the fix; nil when `error` is not about TLS.
func tlsProblem(_ error: any Error) -> String? {
    if case NIOSSLError.uncleanShutdown = error { return nil }
    if let error = error as? NIOSSLExtraError {
        switch error {
        case .failedToValidateHostname:
            return "its certificate does not name the host of the URL in its subjectAltName (\(error)); use a host name or IP address the certificate lists, or reissue the certificate with it"
        default:
            return "\(error)"
        }
    }
    // A refusal that arrives after the handshake (TLS 1.3 checks a client's certificate only
    // then) comes as a bare BoringSSLError.
    guard error is NIOSSLError || error is BoringSSLError else { return nil }
    let text = "\(error)"
    if text.contains("CERTIFICATE_VERIFY_FAILED") {
        return "its certificate is not signed by a CA this side trusts (or has expired); give the CA certificate that signed it with --tls-ca-file"
    }
    if text.contains("WRONG_VERSION_NUMBER") || text.contains("PACKET_LENGTH_TOO_LONG") || text.contains("HTTP_REQUEST") {
        return "the node does not speak TLS on that port; if it serves plain HTTP, use an http:// URL"
    }
    if text.contains("ALERT_UNKNOWN_CA") || text.contains("ALERT_BAD_CERTIFICATE")
        || text.contains("ALERT_CERTIFICATE_UNKNOWN") || text.contains("ALERT_DECRYPT_ERROR")
    {
        return "the node refused the certificate this side presented; it must be signed by a CA in the node's --tls-ca-file"
    }
    if text.contains("ALERT_CERTIFICATE_REQUIRED") {
        return "the node requires a client certificate"
    }
    switch error as? NIOSSLError {
    case .handshakeFailed(let inner):
        return "the TLS handshake failed (\(inner))"
    default:
        return "TLS failed (\(text))"
    }
}
