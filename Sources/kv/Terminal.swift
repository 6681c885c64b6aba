#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Raw, byte-exact standard streams. `print` would do for text, but a value is bytes and must
/// reach stdout unchanged.
enum Terminal {
    /// Writes `bytes` to standard output as they are.
    static func write(_ bytes: [UInt8]) {
        writeAll(bytes, to: STDOUT_FILENO)
    }

    /// Writes `line` and a newline to standard output.
    static func line(_ line: String) {
        write(Array((line + "\n").utf8))
    }

    /// Writes `kv: MESSAGE` as one line to standard error.
    static func error(_ message: String) {
        let oneLine = message.split(whereSeparator: \.isNewline).joined(separator: " ")
        writeAll(Array("kv: \(oneLine)\n".utf8), to: STDERR_FILENO)
    }

    /// Writes `line` and a newline to standard error, without the `kv:` prefix.
    static func note(_ line: String) {
        writeAll(Array((line + "\n").utf8), to: STDERR_FILENO)
    }

    static var stdoutIsTerminal: Bool { isatty(STDOUT_FILENO) == 1 }

    /// All of standard input, as bytes.
    static func readStandardInput() throws(Failure) -> [UInt8] {
        var data: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(STDIN_FILENO, $0.baseAddress, $0.count) }
            if count == 0 { return data }
            if count < 0 {
                let code = errno
                if code == EINTR { continue }
                throw Failure(
                    message: "cannot read standard input: \(String(cString: strerror(code)))",
                    status: ExitStatus.usage)
            }
            data.append(contentsOf: chunk[0..<count])
        }
    }

    static func exit(_ status: Int32) -> Never {
        #if canImport(Glibc)
            Glibc.exit(status)
        #else
            Darwin.exit(status)
        #endif
    }

    private static func writeAll(_ bytes: [UInt8], to descriptor: Int32) {
        bytes.withUnsafeBytes { buffer in
            guard let base = buffer.baseAddress else { return }  // nothing to write
            var offset = 0
            while offset < buffer.count {
                #if canImport(Glibc)
                    let written = Glibc.write(descriptor, base + offset, buffer.count - offset)
                #else
                    let written = Darwin.write(descriptor, base + offset, buffer.count - offset)
                #endif
                if written < 0 {
                    if errno == EINTR { continue }
                    return  // stdout or stderr is gone: nowhere left to report it
                }
                offset += written
            }
        }
    }
}
