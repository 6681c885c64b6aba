import Foundation
import Testing
import TestSupport

/// The tests' own process starter (`ChildProcess`), which every `kv` and `kvnode` a test runs
/// goes through: a crash or a leaked descriptor here fails or hangs tests anywhere in the suite.
@Suite("Starting programs from tests")
struct ChildProcessTests {
    @Test func aChildInheritsNoneOfTheManyDescriptorsTheTestProcessHolds() async throws {
        // About as many descriptors as the busy suite held when Foundation's Process crashed
        // listing them; each one left open in a child would be a pipe that never reaches its end.
        let held = (0..<1_500).map { _ in open("/dev/null", O_RDONLY) }
        defer { held.forEach { close($0) } }
        try #require(held.allSatisfy { $0 >= 0 })
        for _ in 0..<20 {
            let listing = try await runCommand(URL(fileURLWithPath: "/bin/ls"), ["/proc/self/fd"], timeout: .seconds(30))
            #expect(listing.status == 0, "\(listing.stderr)")
            // 0, 1, 2 and the descriptor ls reads its directory through.
            let descriptors = listing.stdoutText.split(separator: "\n").compactMap { Int($0) }
            #expect(descriptors.count <= 4, "the child inherited \(descriptors)")
        }
    }

    @Test func exitCodesAndSignalsAreReportedAsFoundationDid() async throws {
        #expect(try await runCommand(URL(fileURLWithPath: "/bin/sh"), ["-c", "exit 3"]).status == 3)
        let echoed = try await runCommand(URL(fileURLWithPath: "/bin/cat"), [], stdin: Data("round trip".utf8))
        #expect(echoed.status == 0 && echoed.stdoutText == "round trip")
        let sleeper = try ChildProcess.spawn("/bin/sleep", ["30"], stdout: .null, stderr: .null)
        #expect(sleeper.isRunning)
        sleeper.send(SIGKILL)
        #expect(sleeper.waitForExit(within: .seconds(10)))
        #expect(sleeper.terminationStatus == SIGKILL)
    }
}
