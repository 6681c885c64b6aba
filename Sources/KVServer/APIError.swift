import Foundation
import KVCore
import NIOCore
import NIOHTTP1
import KVStore
import Replication

/// An error the API reports to the client: an HTTP status, a stable code and one sentence.
///
/// Every failure of a request ends as one of these, so every error reply has the body
/// `{"error": code, "detail": sentence}` (DESIGN.md §4).
struct APIError: Error, Sendable {
    let status: HTTPResponseStatus
    let code: String
    let detail: String
    var headers: HTTPHeaders = [:]

    static func invalidKey(_ error: KeyError) -> APIError {
        APIError(status: .badRequest, code: "invalid_key", detail: error.description)
    }

    static func invalidParameter(_ detail: String) -> APIError {
        APIError(status: .badRequest, code: "invalid_parameter", detail: detail)
    }

    static func valueTooLarge(limit: Int) -> APIError {
        APIError(
            status: .payloadTooLarge, code: "value_too_large",
            detail: "the value is larger than this node's limit of \(limit) bytes (--max-value-bytes)")
    }

    static func notFound(key: String, node: NodeID) -> APIError {
        APIError(status: .notFound, code: "not_found", detail: "key '\(key)' does not exist on node \(node)")
    }

    /// A peer route reached over TLS without a client certificate, on a node that verifies them.
    static let peerCertificateRequired = APIError(
        status: .unauthorized, code: "client_certificate_required",
        detail: "peer requests must come with a client certificate signed by this node's --tls-ca-file; start the sending node with --tls-cert and --tls-key")

    static func noSuchRoute(_ path: String) -> APIError {
        APIError(
            status: .notFound, code: "no_such_route",
            detail: "no route \(path); the API serves /kv, /kv/{key}, /status, /health, /metrics, /digest and /watch")
    }

    /// 401 with `WWW-Authenticate: Bearer`: the node wants its client token.
    static func unauthorized(tokenSent: Bool) -> APIError {
        var error = APIError(
            status: .unauthorized, code: "unauthorized",
            detail: tokenSent
                ? "wrong client token; pass the token of this node's --client-token-file (kv: --token-file PATH or KV_TOKEN)"
                : "this node requires a client token (Authorization: Bearer TOKEN; kv: --token-file PATH or KV_TOKEN)")
        error.headers.add(name: "www-authenticate", value: "Bearer")
        return error
    }

    static func methodNotAllowed(_ method: HTTPMethod, path: String, allowed: [HTTPMethod]) -> APIError {
        let list = allowed.map(\.rawValue).joined(separator: ", ")
        var error = APIError(
            status: .methodNotAllowed, code: "method_not_allowed",
            detail: "\(method.rawValue) is not allowed on \(path); use \(list)")
        error.headers.add(name: "allow", value: list)
        return error
    }

    /// Maps any error thrown while serving to what the client sees. Store errors are the
    /// node's fault (5xx); the log gets the full error.
    static func from(_ error: any Error) -> APIError? {
        switch error {
        case let error as APIError:
            return error
        case let error as KeyError:
            return .invalidKey(error)
        case let error as PeerRequestError:
            switch error {
            case .unauthorized: return APIError(status: .unauthorized, code: "unauthorized", detail: error.description)
            case .unknownSender: return APIError(status: .forbidden, code: "unknown_sender", detail: error.description)
            case .removedMember: return APIError(status: .forbidden, code: "removed_member", detail: error.description)
            case .malformed: return APIError(status: .badRequest, code: "malformed_batch", detail: error.description)
            case .notGreeted: return APIError(status: .conflict, code: "hello_first", detail: error.description)
            case .gap: return APIError(status: .conflict, code: "feed_gap", detail: error.description)
            }
        case let error as RemovalRefused:
            return APIError(status: .conflict, code: "ask_another_member", detail: error.description)
        case let error as StoreError:
            if case .diskFull = error {
                return APIError(status: .insufficientStorage, code: "insufficient_storage", detail: error.description)
            }
            return APIError(status: .serviceUnavailable, code: "storage_error", detail: error.description)
        default:
            return nil
        }
    }

    func response() -> ServerResponse {
        var buffer = ByteBuffer()
        buffer.writeStaticString(#"{"detail":"#)
        FastJSON.appendString(detail, to: &buffer)
        buffer.writeStaticString(#","error":"#)
        FastJSON.appendString(code, to: &buffer)
        buffer.writeStaticString("}")
        var response = ServerResponse(status: status, contentType: "application/json", bytes: buffer)
        for (name, value) in headers { response.headers.add(name: name, value: value) }
        return response
    }
}
