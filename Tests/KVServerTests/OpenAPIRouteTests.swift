import Foundation
import KVClient
import KVCore
import KVStore
@testable import KVServer
import NodeHTTP
import Testing

/// Keeps `docs/openapi.yaml` true: it lists exactly the node's public routes and methods, and
/// every operation it lists, sent to a real node over HTTP, answers a status it documents.
@Suite("docs/openapi.yaml matches the node")
struct OpenAPIRouteTests {
    static let description = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("docs/openapi.yaml")

    private func operations() throws -> [OpenAPIOperation] {
        let operations = OpenAPIOperation.parse(try String(contentsOf: Self.description, encoding: .utf8))
        try #require(!operations.isEmpty, "no operation found in \(Self.description.path)")
        return operations
    }

    @Test func itListsExactlyTheServersPublicRoutesAndMethods() throws {
        var listed: [String: Set<String>] = [:]
        for operation in try operations() { listed[operation.path, default: []].insert(operation.method) }
        #expect(listed == Route.publicOperations, "docs/openapi.yaml against Route.publicRoutes")
        for operation in try operations() {
            #expect(!operation.path.hasPrefix("/internal/"), "peer routes belong in docs/protocol.md")
            #expect(!operation.statuses.isEmpty, "\(operation) lists no response")
        }
    }

    @Test func everyOperationAnswersAStatusItListsAndOtherMethodsAre405() async throws {
        let operations = try operations()
        // A peer named like the probe key, at an address nothing listens on: the member that
        // `DELETE /members/{id}` removes.
        try await withNode(configure: { $0.peers = [PeerConfig(id: try! NodeID("openapi-probe"), url: "http://127.0.0.1:9")] }) { _, client in
            // PUT first, so the GET and the watch find the key and the DELETE comes last.
            let order = ["PUT", "GET", "DELETE"]
            let rank = { (operation: OpenAPIOperation) in order.firstIndex(of: operation.method) ?? 1 }
            for operation in operations.sorted(by: { rank($0) < rank($1) }) {
                let status = try await Self.send(operation, to: client)
                #expect(operation.statuses.contains(status), "\(operation) answered \(status), not one of \(operation.statuses.sorted())")
                #expect((200..<300).contains(status), "\(operation) with a valid request answered \(status)")
            }
            let methodsByPath = Dictionary(grouping: operations, by: \.path).mapValues { Set($0.map(\.method)) }
            for (path, methods) in methodsByPath {
                let target = Self.concrete(path)
                for method in ["GET", "PUT", "POST", "DELETE", "PATCH", "HEAD", "OPTIONS"] where !methods.contains(method) {
                    let reply = try await client.send(method, target)
                    #expect(reply.status == 405, "\(method) \(path)")
                    let allow = Set((reply.header("Allow") ?? "").split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) })
                    #expect(allow == methods, "Allow of \(path) against the methods listed for it")
                    if method != "HEAD" { #expect(try reply.errorBody().error == "method_not_allowed") }
                }
            }
        }
    }

    @Test func withAClientTokenEveryOperationButHealthIs401AndSaysSo() async throws {
        let operations = try operations()
        try await withNode(configure: { $0.clientToken = "client-secret" }) { _, client in
            for operation in operations {
                let status = try await Self.send(operation, to: client)
                if operation.isOpen {
                    #expect(status == 200, "\(operation) is open, yet answered \(status)")
                } else {
                    #expect(status == 401, "\(operation) without the token answered \(status)")
                    #expect(operation.statuses.contains(401), "\(operation) can answer 401 but does not list it")
                }
            }
        }
    }

    /// `{key}` filled in with a key.
    private static func concrete(_ path: String) -> String {
        path.replacingOccurrences(of: "{key}", with: "openapi-probe").replacingOccurrences(of: "{id}", with: "openapi-probe")
    }

    /// Sends a valid request for `operation` and returns the status. A watch is an endless
    /// stream: its status is known from its first event (the key the PUT stored) or its error.
    private static func send(_ operation: OpenAPIOperation, to client: KVClient) async throws -> Int {
        if operation.path == "/watch" {
            do {
                for try await _ in client.watch(after: 0) { return 200 }
                Issue.record("the watch ended without an event")
                return 0
            } catch let error as KVClientError {
                return try #require(error.status, "\(error)")
            }
        }
        let body: [UInt8] = operation.method == "PUT" ? Array("a value".utf8) : []
        return try await client.send(operation.method, concrete(operation.path), body: body).status
    }
}

/// One operation of an OpenAPI document: a path, a method, the statuses it lists, and whether
/// it opts out of the document's security (`security: []`).
///
/// Read by lines from a document written the way `docs/openapi.yaml` is (two-space indents:
/// paths at 2, methods at 4, `responses:` at 6, quoted statuses at 8), which is enough here and
/// needs no YAML library.
struct OpenAPIOperation: CustomStringConvertible {
    let path: String
    let method: String
    var statuses: Set<Int> = []
    var isOpen = false

    var description: String { "\(method) \(path)" }

    static func parse(_ text: String) -> [OpenAPIOperation] {
        let methods: Set<String> = ["get", "put", "post", "delete", "patch", "head", "options", "trace"]
        var operations: [OpenAPIOperation] = []
        var inPaths = false
        var path: String?
        var inResponses = false
        for raw in text.split(separator: "\n", omittingEmptySubsequences: false) {
            let line = String(raw)
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            let indent = line.prefix { $0 == " " }.count
            if indent == 0 {
                inPaths = trimmed == "paths:"
                continue
            }
            guard inPaths else { continue }
            switch indent {
            case 2 where trimmed.hasPrefix("/") && trimmed.hasSuffix(":"):
                path = String(trimmed.dropLast())
                inResponses = false
            case 4:
                let name = trimmed.hasSuffix(":") ? String(trimmed.dropLast()) : ""
                if let path, methods.contains(name) {
                    operations.append(OpenAPIOperation(path: path, method: name.uppercased()))
                }
                inResponses = false
            case 6:
                inResponses = trimmed == "responses:"
                if trimmed == "security: []", !operations.isEmpty { operations[operations.count - 1].isOpen = true }
            case 8 where inResponses:
                let code = trimmed.trimmingCharacters(in: CharacterSet(charactersIn: "'\":"))
                if let status = Int(code), !operations.isEmpty { operations[operations.count - 1].statuses.insert(status) }
            default:
                break
            }
        }
        return operations
    }
}
