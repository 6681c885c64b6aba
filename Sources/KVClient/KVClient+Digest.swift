public import KVCore

extension KVClient {
    /// The node's 256 bucket hashes, its whole-data digest and its key and row counts
    /// (`GET /digest`).
    public func digest() async throws(KVClientError) -> DigestReply {
        let reply = try await send("GET", "/digest")
        return try decode(DigestReply.self, from: successful(reply), request: "GET /digest")
    }

    /// The rows of one bucket (`bucket` is two lowercase hex digits, "00" to "ff"), sorted by
    /// key (`GET /digest?bucket=XX`).
    public func digest(bucket: String) async throws(KVClientError) -> DigestBucketReply {
        let reply = try await send("GET", "/digest?bucket=" + KeyPath.encode(bucket))
        return try decode(DigestBucketReply.self, from: successful(reply), request: "GET /digest?bucket=")
    }
}
