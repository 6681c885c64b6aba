import KVCore
import KVStore

/// A command refused with one `-ERR`-style line: what went wrong and, where a user can act,
/// how to fix it. `line` is the whole reply line after `-` (it starts with the error's code:
/// `ERR`, `NOAUTH`, `WRONGPASS`, `NOPROTO`).
struct RESPError: Error, Sendable, Equatable {
    let line: String

    static func wrongArity(_ name: String) -> RESPError {
        RESPError(line: "ERR wrong number of arguments for '\(name.lowercased())' command")
    }

    static let syntax = RESPError(line: "ERR syntax error")

    static let notAnInteger = RESPError(line: "ERR value is not an integer or out of range")

    static func invalidKey(_ error: KeyError) -> RESPError {
        RESPError(line: "ERR invalid key: \(error.description) (the same rule as the HTTP API)")
    }

    static func valueTooLarge(_ size: Int, limit: Int) -> RESPError {
        RESPError(line: "ERR the value is \(size) bytes; this node's limit is \(limit) bytes (kvnode --max-value-bytes)")
    }

    static let noAuth = RESPError(line: "NOAUTH Authentication required.")

    static let wrongPass = RESPError(line: "WRONGPASS invalid username-password pair or user is disabled.")

    static func store(_ error: StoreError) -> RESPError {
        switch error {
        case .invalidKey(_, let reason): return .invalidKey(reason)
        case .diskFull: return RESPError(line: "ERR \(error.description) (reads go on)")
        case .closed: return RESPError(line: "ERR the node is shutting down; retry on another node")
        default: return RESPError(line: "ERR \(error.description)")
        }
    }

    /// A command Redis has and Converge does not offer; `why` says what Converge stores and why.
    static func notOffered(_ name: String, why: String) -> RESPError {
        RESPError(line: "ERR \(name.uppercased()) is not offered by Converge: \(why)")
    }

    static func unknown(_ name: String, arguments: ArraySlice<[UInt8]>) -> RESPError {
        let shown = arguments.prefix(3).map { "'\(String(decoding: $0.prefix(64), as: UTF8.self))'" }.joined(separator: " ")
        return RESPError(
            line: "ERR unknown command '\(String(name.prefix(64)))', with args beginning with: \(shown) (COMMAND lists what Converge serves)")
    }
}
