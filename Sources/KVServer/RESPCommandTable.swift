import RESP

/// The commands the RESP port serves, described once: what `COMMAND`, `COMMAND COUNT`,
/// `COMMAND INFO` and `COMMAND DOCS` answer, and how the connection orders each command
/// against the ones pipelined before it.
struct RESPCommandSpec: Sendable {
    /// How a command waits for those before it on the same connection.
    enum Order: Sendable {
        /// Reads or changes only the connection: runs at once.
        case connection
        /// Goes to the store's writer, whose queue keeps the connection's order: may start
        /// while earlier writes are still committing.
        case write
        /// Reads the store: starts once every earlier command of the connection has its
        /// answer, so a pipelined `SET k v` then `GET k` reads `v`.
        case read
    }

    let name: String
    /// Redis's arity: N exactly N arguments with the name, -N at least N.
    let arity: Int
    let flags: [String]
    let firstKey: Int
    let lastKey: Int
    let keyStep: Int
    let group: String
    let summary: String
    /// Argument names for `COMMAND DOCS`: `?x` optional, `x...` repeated; a key is named `key`.
    let arguments: [String]
    let order: Order

    func accepts(argumentCount count: Int) -> Bool {
        arity >= 0 ? count == arity : count >= -arity
    }

    /// The `COMMAND INFO` entry.
    var info: RESPValue {
        .array([
            .bulk(name.lowercased()), .integer(Int64(arity)), .array(flags.map { .simpleString($0) }),
            .integer(Int64(firstKey)), .integer(Int64(lastKey)), .integer(Int64(keyStep)),
            .array([.simpleString("@\(group)")]), .array([]), .array([]), .array([]),
        ])
    }

    /// The `COMMAND DOCS` entry (a map).
    var docs: RESPValue {
        .map([
            .bulk("summary"), .bulk(summary), .bulk("since"), .bulk("1.0.0"), .bulk("group"), .bulk(group),
            .bulk("complexity"), .bulk("O(1)"),
            .bulk("arguments"),
            .array(arguments.map { argument in
                var name = argument
                var flags: [RESPValue] = []
                if name.hasPrefix("?") {
                    name.removeFirst()
                    flags.append(.simpleString("optional"))
                }
                if name.hasSuffix("...") {
                    name.removeLast(3)
                    flags.append(.simpleString("multiple"))
                }
                var fields: [RESPValue] = [
                    .bulk("name"), .bulk(name), .bulk("type"), .bulk(name == "key" ? "key" : "string"),
                ]
                if !flags.isEmpty { fields += [.bulk("flags"), .array(flags)] }
                return .map(fields)
            }),
        ])
    }
}

extension RESPCommandSpec {
    private static func spec(
        _ name: String, _ arity: Int, _ flags: [String], keys: (Int, Int, Int) = (0, 0, 0), _ group: String,
        _ summary: String, _ arguments: [String], _ order: Order
    ) -> RESPCommandSpec {
        RESPCommandSpec(
            name: name, arity: arity, flags: flags, firstKey: keys.0, lastKey: keys.1, keyStep: keys.2, group: group,
            summary: summary, arguments: arguments, order: order)
    }

    /// Every command served, by upper-case name.
    static let all: [String: RESPCommandSpec] = {
        let list: [RESPCommandSpec] = [
            spec("PING", -1, ["fast"], "connection", "Answers PONG, or the message given", ["?message"], .connection),
            spec("ECHO", 2, ["fast"], "connection", "Answers the message given", ["message"], .connection),
            spec("HELLO", -1, ["fast", "no_auth"], "connection", "Chooses RESP2 or RESP3, authenticates, names the connection", ["?protover", "?AUTH", "?username", "?password", "?SETNAME", "?clientname"], .connection),
            spec("AUTH", -2, ["fast", "no_auth"], "connection", "Authenticates with the node's client token (kvnode --client-token-file)", ["?username", "password"], .connection),
            spec("SELECT", 2, ["fast"], "connection", "Selects database 0, the only one", ["index"], .connection),
            spec("QUIT", -1, ["fast", "no_auth"], "connection", "Answers OK and closes the connection", [], .connection),
            spec("CLIENT", -2, ["fast"], "connection", "SETNAME, GETNAME, ID or SETINFO of this connection", ["subcommand", "?arg..."], .connection),
            spec("COMMAND", -1, ["loading"], "server", "Describes the commands this node serves", ["?subcommand", "?command-name..."], .connection),
            spec("INFO", -1, ["loading"], "server", "Server, clients, keyspace and replication (peers and their lag)", ["?section..."], .read),
            spec("DBSIZE", 1, ["readonly", "fast"], "server", "The number of live keys", [], .read),
            spec("TIME", 1, ["fast"], "server", "This node's clock: seconds and microseconds", [], .connection),
            spec("WAIT", 3, [], "generic", "Waits until N peers acknowledged this node's writes so far, or the timeout (ms)", ["numreplicas", "timeout"], .read),
            spec("GET", 2, ["readonly", "fast"], keys: (1, 1, 1), "string", "The value of a key", ["key"], .read),
            spec("SET", -3, ["write"], keys: (1, 1, 1), "string", "Stores a value, optionally only if absent (NX) or present (XX), returning the old one (GET), with an expiry", ["key", "value", "?condition", "?GET", "?expiration"], .write),
            spec("SETNX", 3, ["write", "fast"], keys: (1, 1, 1), "string", "Stores a value if the key is absent on this node", ["key", "value"], .write),
            spec("SETEX", 4, ["write"], keys: (1, 1, 1), "string", "Stores a value that expires in N seconds", ["key", "seconds", "value"], .write),
            spec("PSETEX", 4, ["write"], keys: (1, 1, 1), "string", "Stores a value that expires in N milliseconds", ["key", "milliseconds", "value"], .write),
            spec("GETSET", 3, ["write", "fast"], keys: (1, 1, 1), "string", "Stores a value and returns the old one", ["key", "value"], .write),
            spec("GETDEL", 2, ["write", "fast"], keys: (1, 1, 1), "string", "Returns a value and deletes the key", ["key"], .write),
            spec("GETEX", -2, ["write", "fast"], keys: (1, 1, 1), "string", "Returns a value and sets or removes its expiry", ["key", "?expiration"], .write),
            spec("MGET", -2, ["readonly", "fast"], keys: (1, -1, 1), "string", "The values of several keys", ["key..."], .read),
            spec("MSET", -3, ["write"], keys: (1, -1, 2), "string", "Stores several values in one transaction", ["key", "value", "?key-value..."], .write),
            spec("DEL", -2, ["write"], keys: (1, -1, 1), "generic", "Deletes keys (tombstones that replicate); counts those that were live", ["key..."], .write),
            spec("UNLINK", -2, ["write", "fast"], keys: (1, -1, 1), "generic", "The same as DEL", ["key..."], .write),
            spec("EXISTS", -2, ["readonly", "fast"], keys: (1, -1, 1), "generic", "Counts the keys given that are live", ["key..."], .read),
            spec("STRLEN", 2, ["readonly", "fast"], keys: (1, 1, 1), "string", "The length of a value", ["key"], .read),
            spec("GETRANGE", 4, ["readonly"], keys: (1, 1, 1), "string", "A byte range of a value", ["key", "start", "end"], .read),
            spec("TYPE", 2, ["readonly", "fast"], keys: (1, 1, 1), "generic", "string for a live key, none otherwise", ["key"], .read),
            spec("KEYS", 2, ["readonly"], "generic", "Every live key matching a glob pattern", ["pattern"], .read),
            spec("SCAN", -2, ["readonly"], "generic", "Walks the live keys with a cursor", ["cursor", "?MATCH", "?pattern", "?COUNT", "?count", "?TYPE", "?type"], .read),
            spec("EXPIRE", -3, ["write", "fast"], keys: (1, 1, 1), "generic", "Expires a key in N seconds (a new version of the key)", ["key", "seconds", "?condition"], .write),
            spec("PEXPIRE", -3, ["write", "fast"], keys: (1, 1, 1), "generic", "Expires a key in N milliseconds", ["key", "milliseconds", "?condition"], .write),
            spec("EXPIREAT", -3, ["write", "fast"], keys: (1, 1, 1), "generic", "Expires a key at a Unix time in seconds", ["key", "unix-time-seconds", "?condition"], .write),
            spec("PEXPIREAT", -3, ["write", "fast"], keys: (1, 1, 1), "generic", "Expires a key at a Unix time in milliseconds", ["key", "unix-time-milliseconds", "?condition"], .write),
            spec("TTL", 2, ["readonly", "fast"], keys: (1, 1, 1), "generic", "Seconds left before a key expires (-1 none, -2 absent)", ["key"], .read),
            spec("PTTL", 2, ["readonly", "fast"], keys: (1, 1, 1), "generic", "Milliseconds left before a key expires", ["key"], .read),
            spec("EXPIRETIME", 2, ["readonly", "fast"], keys: (1, 1, 1), "generic", "The Unix time in seconds at which a key expires", ["key"], .read),
            spec("PEXPIRETIME", 2, ["readonly", "fast"], keys: (1, 1, 1), "generic", "The Unix time in milliseconds at which a key expires", ["key"], .read),
            spec("PERSIST", 2, ["write", "fast"], keys: (1, 1, 1), "generic", "Removes a key's expiry (a new version of the key)", ["key"], .write),
        ]
        return Dictionary(uniqueKeysWithValues: list.map { ($0.name, $0) })
    }()

    /// Redis commands Converge refuses, each with the reason a user needs.
    static let refusals: [String: String] = {
        var reasons: [String: String] = [:]
        func refuse(_ names: String, _ why: String) {
            for name in names.split(separator: " ") { reasons[String(name)] = why }
        }
        refuse(
            "INCR DECR INCRBY DECRBY INCRBYFLOAT",
            "concurrent writes resolve by last-writer-wins, so two nodes incrementing one key at once would each store their own sum and one increment would be lost; GET, compute and SET, or keep one key per writer and add them up")
        refuse(
            "APPEND SETRANGE MSETNX GETBIT SETBIT BITCOUNT BITOP BITPOS BITFIELD",
            "it edits a value in place, and under last-writer-wins an edit made on another node at the same time would be lost; GET, change and SET the whole value")
        refuse(
            "LPUSH RPUSH LPOP RPOP LRANGE LLEN LINDEX LSET LREM LTRIM LINSERT LPOS LMOVE BLPOP BRPOP BLMOVE RPOPLPUSH HSET HGET HGETALL HDEL HMSET HMGET HINCRBY HKEYS HVALS HLEN HEXISTS HSETNX SADD SREM SMEMBERS SISMEMBER SCARD SPOP SRANDMEMBER SINTER SUNION SDIFF ZADD ZRANGE ZREM ZSCORE ZCARD ZINCRBY ZRANK ZRANGEBYSCORE XADD XREAD XRANGE XLEN PFADD PFCOUNT PFMERGE GEOADD GEODIST GEOSEARCH",
            "Converge stores strings only, one value per key, replicated last-writer-wins; store an encoded value under one key, or one key per field and read them with SCAN MATCH prefix:*")
        refuse(
            "MULTI EXEC DISCARD WATCH UNWATCH",
            "transactions across commands are not offered; each command is atomic on its node, MSET stores several keys in one transaction, and other nodes may write the same keys at the same time (last-writer-wins)")
        refuse(
            "SUBSCRIBE PSUBSCRIBE SSUBSCRIBE UNSUBSCRIBE PUNSUBSCRIBE PUBLISH SPUBLISH PUBSUB",
            "pub/sub is not offered; follow changes to keys with the HTTP API's GET /watch (Server-Sent Events)")
        refuse(
            "FLUSHDB FLUSHALL SWAPDB MOVE",
            "Converge has one keyspace, replicated; DEL the keys (SCAN finds them) so the deletes replicate as tombstones")
        refuse(
            "RENAME RENAMENX COPY",
            "a rename is a delete and a put that writes on other nodes may interleave with; GET, SET the new key and DEL the old one")
        refuse(
            "EVAL EVALSHA EVAL_RO EVALSHA_RO SCRIPT FUNCTION FCALL FCALL_RO",
            "scripts assume one node sees every write in order, which a multi-master store cannot promise")
        refuse("CONFIG", "configuration is given as kvnode flags at start-up (kvnode --help)")
        refuse("CLUSTER READONLY READWRITE ASKING", "Converge is not a Redis Cluster: every node holds every key; connect to any node")
        refuse("REPLICAOF SLAVEOF SYNC PSYNC ROLE", "nodes replicate to each other as peers (kvnode --peer), all accepting writes; INFO replication shows them")
        refuse("SAVE BGSAVE BGREWRITEAOF LASTSAVE", "every write is committed to SQLite before its reply; back up with sqlite3 .backup (docs/operations.md)")
        refuse("SHUTDOWN", "stop the node with SIGTERM (kv cluster stop)")
        refuse("OBJECT DUMP RESTORE SORT SORT_RO RANDOMKEY TOUCH LCS SUBSTR", "Converge serves the string commands COMMAND lists")
        return reasons
    }()
}
