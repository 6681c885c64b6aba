public import Foundation

/// A certificate authority made by a test with the `openssl` command, in a directory the test
/// owns, and the certificates it signs.
///
/// Keys are P-256 and written mode 600, as `kvnode` demands; certificates are valid for two
/// days. Nothing is cached: every test makes its own CA, so no test trusts another's.
public struct TestCertificateAuthority: Sendable {
    /// The CA's certificate (PEM): what `--tls-ca-file` is given.
    public let certificate: String
    private let key: String
    private let directory: URL

    /// A new CA named `name`, its files `NAME-ca.pem` and `NAME-ca.key` in `directory`.
    public static func make(_ name: String, in directory: URL) async throws -> TestCertificateAuthority {
        let certificate = directory.appendingPathComponent("\(name)-ca.pem").path
        let key = directory.appendingPathComponent("\(name)-ca.key").path
        try await openssl([
            "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", key, "-out", certificate, "-days", "2", "-subj", "/CN=\(name) test CA",
            "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign",
        ])
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: key)
        return TestCertificateAuthority(certificate: certificate, key: key, directory: directory)
    }

    /// A certificate for `name` signed by this CA, with the subjectAltNames `names` (openssl
    /// syntax: `IP:127.0.0.1`, `DNS:localhost`), usable by a server and a client. Returns the
    /// paths of its PEM certificate and its key (mode 600).
    public func issue(
        _ name: String, names: [String] = ["IP:127.0.0.1", "DNS:localhost"]
    ) async throws -> (certificate: String, key: String) {
        let certificate = directory.appendingPathComponent("\(name).pem").path
        let key = directory.appendingPathComponent("\(name).key").path
        let request = directory.appendingPathComponent("\(name).csr").path
        let extensions = directory.appendingPathComponent("\(name).ext")
        try Data("""
            basicConstraints=CA:FALSE
            keyUsage=critical,digitalSignature
            extendedKeyUsage=serverAuth,clientAuth
            subjectAltName=\(names.joined(separator: ","))

            """.utf8).write(to: extensions)
        try await Self.openssl([
            "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
            "-keyout", key, "-out", request, "-subj", "/CN=\(name)",
        ])
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: key)
        try await Self.openssl([
            "x509", "-req", "-in", request, "-CA", self.certificate, "-CAkey", self.key, "-CAcreateserial",
            "-out", certificate, "-days", "2", "-extfile", extensions.path,
        ])
        return (certificate, key)
    }

    private static func openssl(_ arguments: [String]) async throws {
        let result = try await runCommand(URL(fileURLWithPath: "/usr/bin/openssl"), arguments, timeout: .seconds(60))
        guard result.status == 0 else {
            throw CertificateError(description: "openssl \(arguments.prefix(2).joined(separator: " ")) failed: \(result.stderr)")
        }
    }
}

/// `openssl` failed while a test made its certificates.
public struct CertificateError: Error, CustomStringConvertible {
    public let description: String
}
