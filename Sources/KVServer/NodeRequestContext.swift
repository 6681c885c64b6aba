import Hummingbird
import NIOCore
import NIOSSL

/// What the node knows about a request besides the request itself: Hummingbird's core storage,
/// and the connection it came on, so a peer route can ask whether the sender showed a
/// certificate during the TLS handshake.
struct NodeRequestContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    private let channel: any Channel

    init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }

    /// Whether the connection is TLS and the client presented a certificate. The server verifies
    /// a presented certificate against its CA file during the handshake, so one that is here has
    /// passed; on a plain connection there is none.
    func presentedClientCertificate() async -> Bool {
        (try? await channel.nioSSL_peerCertificate().get()) != nil
    }
}
