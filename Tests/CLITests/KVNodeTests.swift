import Foundation
import KVClient
import Testing
import TestSupport

/// `kvnode` as an operator meets it: refusals at start-up are one line and a non-zero exit,
/// and SIGTERM stops it cleanly.
@Suite("kvnode start-up and shutdown")
struct KVNodeTests {
    private func kvnode(_ arguments: [String]) async throws -> CommandResult {
        try await runCommand(Products.executable("kvnode"), arguments)
    }

    private func expectOneLine(_ result: CommandResult, status: Int32, containing text: String) {
        #expect(result.status == status, "exit status; stderr: \(result.stderr)")
        let lines = result.stderr.split(separator: "\n")
        #expect(lines.count == 1, "one line on stderr, got: \(result.stderr)")
        #expect(result.stderr.contains(text), "stderr: \(result.stderr)")
        #expect(result.stdout.isEmpty)
    }

    @Test("invalid flags end with one line and the usage exit status", arguments: [
        (["--id", "A"], "--db"),
        (["--id", "a b", "--db", "/tmp/x.db"], "--id"),
        (["--id", "A", "--db", "/tmp/x.db", "--port", "70000"], "--port"),
        (["--id", "A", "--db", "/tmp/x.db", "--peer", "B"], "ID=URL"),
        (["--id", "A", "--db", "/tmp/x.db", "--peer", "A=http://127.0.0.1:1"], "names this node itself"),
        (["--id", "A", "--db", "/tmp/x.db", "--peer", "B=ftp://x"], "http://HOST:PORT"),
        (["--id", "A", "--db", "/tmp/x.db", "--sync", "sometimes"], "sync"),
        (["--id", "A", "--db", "/tmp/x.db", "--no-such-flag"], "no-such-flag"),
    ])
    func invalidFlags(arguments: [String], mentions: String) async throws {
        expectOneLine(try await kvnode(arguments), status: 64, containing: mentions)
    }

    @Test func aMissingDirectoryStopsStartUpWithTheFix() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory.appendingPathComponent("nope/A.db").path
            let result = try await kvnode(["--id", "A", "--db", path, "--port", "0"])
            expectOneLine(result, status: 1, containing: "its directory does not exist")
            #expect(!FileManager.default.fileExists(atPath: path))
        }
    }

    @Test func aReadOnlyDirectoryStopsStartUpWithOneLine() async throws {
        try await withTemporaryDirectory { directory in
            let locked = directory.appendingPathComponent("locked")
            try FileManager.default.createDirectory(at: locked, withIntermediateDirectories: false)
            // chattr +i makes the directory unwritable even for root, who ignores permission bits.
            let lock = try await runCommand(URL(fileURLWithPath: "/usr/bin/chattr"), ["+i", locked.path])
            try #require(lock.status == 0, "chattr +i failed: \(lock.stderr)")
            defer {
                let unlock = try? ChildProcess.spawn("/usr/bin/chattr", ["-i", locked.path], stdout: .null, stderr: .null)
                _ = unlock?.waitForExit(within: .seconds(10))
            }
            let result = try await kvnode(["--id", "A", "--db", locked.appendingPathComponent("A.db").path, "--port", "0"])
            expectOneLine(result, status: 1, containing: "cannot")
            #expect(!FileManager.default.fileExists(atPath: locked.appendingPathComponent("A.db").path))
        }
    }

    @Test func aFileThatIsNotADatabaseIsRefusedAndLeftAlone() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory.appendingPathComponent("A.db").path
            let original = Data("these are not the bytes of a database, and they must stay".utf8)
            #expect(FileManager.default.createFile(atPath: path, contents: original))
            let result = try await kvnode(["--id", "A", "--db", path, "--port", "0"])
            expectOneLine(result, status: 1, containing: "is not an SQLite database")
            #expect(FileManager.default.contents(atPath: path) == original)
        }
    }

    @Test func anotherNodesFileIsRefused() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory.appendingPathComponent("A.db").path
            let node = try await NodeProcess.start(
                ["--id", "A", "--db", path, "--port", "0"], logFile: directory.appendingPathComponent("A.log"))
            #expect(node.stop() == 0)
            let result = try await kvnode(["--id", "B", "--db", path, "--port", "0"])
            expectOneLine(result, status: 1, containing: "belongs to node A, not B")
        }
    }

    @Test func aBusyPortIsOneLine() async throws {
        try await withTemporaryDirectory { directory in
            let first = try await NodeProcess.start(
                ["--id", "A", "--db", directory.appendingPathComponent("A.db").path, "--port", "0"],
                logFile: directory.appendingPathComponent("A.log"))
            defer { first.kill() }
            let port = String(try #require(first.url.split(separator: ":").last))
            let result = try await kvnode(["--id", "B", "--db", directory.appendingPathComponent("B.db").path, "--port", port])
            #expect(result.status == 1)
            #expect(result.stderr.contains("cannot start: cannot listen on 127.0.0.1:\(port)"), "\(result.stderr)")
            #expect(result.stderr.contains("(choose another with --port)"), "\(result.stderr)")
        }
    }

    @Test func aBusyRESPPortNamesItsFlag() async throws {
        try await withTemporaryDirectory { directory in
            let first = try await NodeProcess.start(
                ["--id", "A", "--db", directory.appendingPathComponent("A.db").path, "--port", "0", "--resp-port", "0"],
                logFile: directory.appendingPathComponent("A.log"))
            defer { first.kill() }
            let resp = try #require(first.respPort)
            let result = try await kvnode([
                "--id", "B", "--db", directory.appendingPathComponent("B.db").path, "--port", "0", "--resp-port", String(resp),
            ])
            #expect(result.status == 1)
            #expect(result.stderr.contains("cannot start: cannot listen on 127.0.0.1:\(resp)"), "\(result.stderr)")
            #expect(result.stderr.contains("(choose another with --resp-port)"), "\(result.stderr)")
        }
    }

    @Test func jsonLogsAreOneObjectPerLine() async throws {
        try await withTemporaryDirectory { directory in
            let node = try await NodeProcess.start(
                ["--id", "A", "--db", directory.appendingPathComponent("A.db").path, "--port", "0", "--log-format", "json"],
                logFile: directory.appendingPathComponent("A.log"))
            #expect(node.stop() == 0)
            let lines = node.log().split(separator: "\n")
            #expect(lines.count >= 3)
            for line in lines {
                let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
                #expect(object?["node"] as? String == "A", "\(line)")
                #expect(object?["message"] is String && object?["level"] is String && object?["time"] is String)
            }
            #expect(lines.contains { $0.contains("listening on http://127.0.0.1:") })
        }
    }

    @Test func sigtermStopsCleanlyAndTheDataStays() async throws {
        try await withTemporaryDirectory { directory in
            let path = directory.appendingPathComponent("A.db").path
            let node = try await NodeProcess.start(
                ["--id", "A", "--db", path, "--port", "0"], logFile: directory.appendingPathComponent("A.log"))
            let client = try KVClient(node: node.url)
            _ = try await client.put("kept", value: Array("yes".utf8))
            await client.close()
            #expect(node.stop() == 0, "SIGTERM ends with status 0")
            #expect(node.log().contains("database closed"))
            // A clean close checkpoints the WAL into the main file and removes it.
            #expect(!FileManager.default.fileExists(atPath: path + "-wal"))
            let rows = try await runCommand(URL(fileURLWithPath: "/usr/bin/sqlite3"), [path, "SELECT key, value FROM kv"])
            #expect(rows.stdoutText == "kept|yes\n")
        }
    }
}

@Suite("kvnode cluster token file")
struct TokenFileTests {
    @Test func aTokenFileOthersCanReadIsRefusedAndAPrivateOneIsTaken() async throws {
        try await withTemporaryDirectory { directory in
            let token = directory.appendingPathComponent("token")
            #expect(FileManager.default.createFile(atPath: token.path, contents: Data("sekrit\n".utf8), attributes: [.posixPermissions: 0o644]))
            let arguments = ["--id", "A", "--db", directory.appendingPathComponent("A.db").path, "--port", "0",
                             "--peer", "B=http://127.0.0.1:1", "--cluster-token-file", token.path]
            let refused = try await runCommand(Products.executable("kvnode"), arguments)
            #expect(refused.status == 1)
            #expect(refused.stderr.contains("can be read by others (mode 644); run chmod 600"), "\(refused.stderr)")
            #expect(refused.stderr.split(separator: "\n").count == 1)

            try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: token.path)
            let node = try await NodeProcess.start(arguments, logFile: directory.appendingPathComponent("A.log"))
            #expect(!node.log().contains("no --cluster-token-file"))
            #expect(node.stop() == 0)

            let open = try await NodeProcess.start(
                ["--id", "A", "--db", directory.appendingPathComponent("A.db").path, "--port", "0", "--peer", "B=http://127.0.0.1:1"],
                logFile: directory.appendingPathComponent("open.log"))
            #expect(open.log().contains("no --cluster-token-file"), "an open cluster is warned about")
            #expect(open.stop() == 0)
        }
    }
}
