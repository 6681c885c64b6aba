public import NIOSSL

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

#if canImport(FoundationEssentials)
    import FoundationEssentials
#else
    import Foundation
#endif

/// Reads the PEM files TLS is configured with, turning every way they can be wrong into a
/// `TLSFileError` that names the flag, the file and the fix.
///
/// The files are read here, not by BoringSSL, so "missing", "unreadable" and "not PEM" are told
/// apart. Shared by the client (`ClientTLS`) and the node's server side (`ServerTLS`), so the
/// same file is judged by the same words on both sides.
public enum TLSFiles {
    /// Every certificate in the PEM file at `path`, in order; at least one.
    public static func certificates(at path: String, role: TLSFileError.Role) throws(TLSFileError) -> [NIOSSLCertificate] {
        let bytes = try contents(of: path, role: role)
        let certificates: [NIOSSLCertificate]
        do {
            certificates = try NIOSSLCertificate.fromPEMBytes(bytes)
        } catch {
            throw TLSFileError(role: role, path: path, problem: .notPEMCertificate)
        }
        guard !certificates.isEmpty else { throw TLSFileError(role: role, path: path, problem: .notPEMCertificate) }
        return certificates
    }

    /// The unencrypted PEM private key at `path`. Like ssh with a key, a file any group or other
    /// user may read or write (mode & 077) is refused.
    public static func privateKey(at path: String) throws(TLSFileError) -> NIOSSLPrivateKey {
        var status = stat()
        if stat(path, &status) == 0, status.st_mode & 0o077 != 0 {
            throw TLSFileError(role: .key, path: path, problem: .readableByOthers(mode: Int(status.st_mode & 0o777)))
        }
        let bytes = try contents(of: path, role: .key)
        do {
            return try NIOSSLPrivateKey(bytes: bytes, format: .pem)
        } catch {
            throw TLSFileError(role: .key, path: path, problem: .notPEMKey)
        }
    }

    /// The context for `configuration`, whose files were read with the functions above;
    /// BoringSSL's refusal becomes a `TLSFileError` about the file it concerns (a key that is not
    /// the certificate's, else the certificate or CA file). `ClientTLS` and the node's
    /// `ServerTLS` both build theirs here.
    public static func context(
        _ configuration: TLSConfiguration, certificateFile: String?, keyFile: String?, caFile: String?
    ) throws(TLSFileError) -> NIOSSLContext {
        do {
            return try NIOSSLContext(configuration: configuration)
        } catch {
            // The key was parsed already; BoringSSL refuses it now only when it is not the
            // certificate's (SSL_CTX_use_PrivateKey checks the pair).
            if let keyFile, case NIOSSLError.failedToLoadPrivateKey = error {
                throw TLSFileError(role: .key, path: keyFile, problem: .keyDoesNotMatchCertificate)
            }
            let reason = "\(error)"
            let role: TLSFileError.Role = certificateFile != nil ? .certificate : .caFile
            let path = certificateFile ?? caFile ?? "(system trust store)"
            throw TLSFileError(role: role, path: path, problem: .refused(reason))
        }
    }

    private static func contents(of path: String, role: TLSFileError.Role) throws(TLSFileError) -> [UInt8] {
        guard FileManager.default.fileExists(atPath: path) else {
            throw TLSFileError(role: role, path: path, problem: .missing)
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw TLSFileError(role: role, path: path, problem: .unreadable)
        }
        return Array(data)
    }
}

/// A TLS file (certificate, key or CA bundle) that cannot be used; describes itself in one line
/// that names the flag, the file, what is wrong and what to do.
public struct TLSFileError: Error, CustomStringConvertible, Sendable, Equatable {
    /// What the file is for; each role has its own flag.
    public enum Role: Sendable, Hashable {
        /// The node's certificate chain (`--tls-cert`).
        case certificate
        /// The node's private key (`--tls-key`).
        case key
        /// The CA bundle that peers' and nodes' certificates are verified against (`--tls-ca-file`).
        case caFile

        public var flag: String {
            switch self {
            case .certificate: "--tls-cert"
            case .key: "--tls-key"
            case .caFile: "--tls-ca-file"
            }
        }
    }

    /// What is wrong with the file; `description` turns it into the line a user reads.
    public enum Problem: Sendable, Hashable {
        case missing
        case unreadable
        case notPEMCertificate
        case notPEMKey
        case readableByOthers(mode: Int)
        /// The key is not the private half of the certificate's public key.
        case keyDoesNotMatchCertificate
        /// BoringSSL refused the files for a reason of its own.
        case refused(String)
    }

    public let role: Role
    public let path: String
    public let problem: Problem

    public init(role: Role, path: String, problem: Problem) {
        self.role = role
        self.path = path
        self.problem = problem
    }

    public var description: String {
        let subject = "\(role.flag) \(path)"
        switch problem {
        case .missing:
            return "\(subject): no such file"
        case .unreadable:
            return "\(subject): cannot read it; can this user read the file?"
        case .notPEMCertificate:
            return "\(subject) holds no PEM certificate (expected -----BEGIN CERTIFICATE-----)"
        case .notPEMKey:
            return "\(subject) is not an unencrypted PEM private key (expected -----BEGIN PRIVATE KEY-----; remove a passphrase with openssl pkey)"
        case .readableByOthers(let mode):
            return "\(subject) can be read by others (mode \(String(mode, radix: 8))); run chmod 600 \(path)"
        case .keyDoesNotMatchCertificate:
            return "\(subject) is not the key of the certificate given with --tls-cert"
        case .refused(let reason):
            return "\(subject) cannot be used: \(reason)"
        }
    }
}
