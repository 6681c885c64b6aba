/// A value read with `GET /kv/{key}` and the version that wrote it.
public struct StoredValue: Sendable, Hashable {
    public let value: [UInt8]
    public let lamport: Int64
    public let origin: String

    public init(value: [UInt8], lamport: Int64, origin: String) {
        self.value = value
        self.lamport = lamport
        self.origin = origin
    }
}
