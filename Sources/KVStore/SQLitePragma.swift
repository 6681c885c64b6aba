/// One `PRAGMA name = value` for `StoreConfiguration.extraPragmas`. The name is letters and
/// `_`, the value an integer or a word (letters, digits, `_`, `-`), so nothing else can be
/// smuggled into the statement.
public struct SQLitePragma: Sendable, Equatable, CustomStringConvertible {
    public let name: String
    public let value: String

    /// Parses `name=value`; nil when it is not of that form.
    public init?(_ text: String) {
        let parts = text.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2 else { return nil }
        let name = parts[0].trimmingSpaces, value = parts[1].trimmingSpaces
        let isLetter: (UInt8) -> Bool = { (0x61...0x7A).contains($0 | 0x20) }
        let isDigit: (UInt8) -> Bool = { (0x30...0x39).contains($0) }
        guard !name.isEmpty, name.utf8.allSatisfy({ isLetter($0) || $0 == UInt8(ascii: "_") }),
            !value.isEmpty,
            value.utf8.allSatisfy({ isLetter($0) || isDigit($0) || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: "-") })
        else { return nil }
        self.name = name
        self.value = value
    }

    /// Parses a `;`-separated list (empty entries are skipped); nil names the first bad entry.
    public static func list(_ text: String) -> Result<[SQLitePragma], PragmaListError> {
        var pragmas: [SQLitePragma] = []
        for entry in text.split(separator: ";") where !entry.trimmingSpaces.isEmpty {
            guard let pragma = SQLitePragma(String(entry)) else { return .failure(PragmaListError(entry: String(entry))) }
            pragmas.append(pragma)
        }
        return .success(pragmas)
    }

    public var description: String { "\(name)=\(value)" }
    var statement: String { "PRAGMA \(name) = \(value)" }
}

/// An entry of a pragma list that is not `name=value`.
public struct PragmaListError: Error, CustomStringConvertible {
    public let entry: String
    public var description: String {
        "'\(entry)' is not name=value (a pragma name of letters and _, a value of letters, digits, _ or -)"
    }
}

extension Substring {
    fileprivate var trimmingSpaces: String {
        String(drop(while: { $0 == " " }).reversed().drop(while: { $0 == " " }).reversed())
    }
}
