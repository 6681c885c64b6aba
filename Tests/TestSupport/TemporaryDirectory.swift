public import Foundation

/// Runs `body` with a fresh, empty directory that is removed afterwards on every path.
public func withTemporaryDirectory<T>(
    _ body: (URL) async throws -> T
) async throws -> T {
    let url = FileManager.default.temporaryDirectory
        .appendingPathComponent("converge-test-\(UUID().uuidString)", isDirectory: true)
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: url) }
    return try await body(url)
}
