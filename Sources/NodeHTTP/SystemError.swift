#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// The system's text for `code`, starting lower-case ("connection refused").
func systemMessage(errno code: CInt) -> String {
    guard let cString = strerror(code) else { return "system error \(code)" }
    let text = String(cString: cString)
    guard let first = text.first else { return "system error \(code)" }
    return first.lowercased() + text.dropFirst()
}
