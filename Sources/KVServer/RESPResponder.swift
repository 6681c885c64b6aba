import Foundation
import KVCore
import KVStore
import Logging
import RESP
import Replication
import Synchronization

/// What one RESP connection remembers between its commands.
struct RESPSession: Sendable {
    let id: Int64
    var version: RESPVersion = .resp2
    var authenticated: Bool
    var name: String?
    var libraryName: String?
    var libraryVersion: String?
    /// Set by QUIT: the connection closes once this command's answer is written.
    var closeAfterReply = false
}

/// Answers the Redis commands of docs/resp.md from the node's store: the same store
/// operations, key rules and value limit as the HTTP API, so a key written through one front end
/// reads the same through the other.
///
/// `execute` answers through `reply`, exactly once per command, on whichever thread the
/// answer is ready (the calling event loop for a read, the writer thread for a write, a task for
/// `INFO`, `KEYS`, `SCAN`, `WAIT`). Every failure is one `-ERR` line; nothing is thrown.
struct RESPResponder: Sendable {
    let store: KVStore
    let nodeID: NodeID
    let maxValueBytes: Int
    let clientToken: String?
    let metrics: NodeMetrics
    let replicator: Replicator
    let logger: Logger
    let startedAt = ContinuousClock.now
    /// Open RESP connections, for `INFO clients`.
    let connections = ConnectionCount()

    init(
        store: KVStore, nodeID: NodeID, maxValueBytes: Int, clientToken: String?, metrics: NodeMetrics,
        replicator: Replicator, logger: Logger
    ) {
        self.store = store
        self.nodeID = nodeID
        self.maxValueBytes = maxValueBytes
        self.clientToken = clientToken
        self.metrics = metrics
        self.replicator = replicator
        self.logger = logger
    }

    typealias Reply = @Sendable (RESPValue) -> Void

    /// How `arguments` waits for the commands before it (`RESPCommandSpec.Order`); unknown
    /// commands are answered at once.
    static func order(of arguments: [[UInt8]]) -> RESPCommandSpec.Order {
        RESPCommandSpec.all[commandName(arguments)]?.order ?? .connection
    }

    static func commandName(_ arguments: [[UInt8]]) -> String {
        String(decoding: arguments.first ?? [], as: UTF8.self).uppercased()
    }

    /// Runs one command. `session` changes at once (AUTH, HELLO, SELECT, CLIENT); `reply` gets
    /// the answer. Returns the task serving it when it runs as one, for the connection to
    /// cancel if it closes first.
    @discardableResult
    func execute(_ arguments: [[UInt8]], session: inout RESPSession, reply: @escaping Reply) -> Task<Void, Never>? {
        let name = Self.commandName(arguments)
        guard let spec = RESPCommandSpec.all[name] else {
            if let why = RESPCommandSpec.refusals[name] {
                reply(.error(RESPError.notOffered(name, why: why).line))
            } else {
                reply(.error(RESPError.unknown(String(decoding: arguments.first ?? [], as: UTF8.self), arguments: arguments.dropFirst()).line))
            }
            return nil
        }
        guard spec.accepts(argumentCount: arguments.count) else {
            reply(.error(RESPError.wrongArity(name).line))
            return nil
        }
        if !session.authenticated, !spec.flags.contains("no_auth") {
            reply(.error(RESPError.noAuth.line))
            return nil
        }
        do {
            return try dispatch(name, Array(arguments.dropFirst()), session: &session, reply: reply)
        } catch let error as RESPError {
            reply(.error(error.line))
        } catch let error as StoreError {
            reply(.error(RESPError.store(error).line))
        } catch {
            logger.error("RESP command \(name) failed: \(error)")
            reply(.error("ERR the node failed to serve \(name); its log has the cause"))
        }
        return nil
    }

    private func dispatch(
        _ name: String, _ arguments: [[UInt8]], session: inout RESPSession, reply: @escaping Reply
    ) throws -> Task<Void, Never>? {
        switch name {
        // MARK: Connection
        case "PING":
            reply(arguments.isEmpty ? .simpleString("PONG") : .bulkString(arguments[0]))
        case "ECHO":
            reply(.bulkString(arguments[0]))
        case "QUIT":
            session.closeAfterReply = true
            reply(.ok)
        case "SELECT":
            guard Self.text(arguments[0]) == "0" else {
                throw RESPError(line: "ERR DB index is out of range: Converge has one keyspace, database 0")
            }
            reply(.ok)
        case "AUTH":
            try authenticate(arguments, session: &session)
            reply(.ok)
        case "HELLO":
            reply(try hello(arguments, session: &session))
        case "CLIENT":
            reply(try client(arguments, session: &session))
        case "COMMAND":
            reply(try command(arguments))
        case "TIME":
            let now = Date().timeIntervalSince1970
            let seconds = Int64(now)
            let micros = Int64((now - Double(seconds)) * 1_000_000)
            reply(.array([.bulk(String(seconds)), .bulk(String(micros))]))

        // MARK: Reads
        case "GET":
            let key = try Self.key(arguments[0])
            store.get(key: key) { result in
                reply(Self.answer(result) { Self.live($0).map(RESPValue.bulkString) ?? .null })
            }
        case "STRLEN":
            let key = try Self.key(arguments[0])
            store.get(key: key) { result in
                reply(Self.answer(result) { .integer(Int64(Self.live($0)?.count ?? 0)) })
            }
        case "TYPE":
            let key = try Self.key(arguments[0])
            store.get(key: key) { result in
                reply(Self.answer(result) { .simpleString(Self.live($0) == nil ? "none" : "string") })
            }
        case "GETRANGE":
            let key = try Self.key(arguments[0])
            let start = try Self.integer(arguments[1])
            let end = try Self.integer(arguments[2])
            store.get(key: key) { result in
                reply(Self.answer(result) { .bulkString(Self.range(of: Self.live($0) ?? [], start: start, end: end)) })
            }
        case "MGET", "EXISTS":
            // A key that breaks the rules cannot be stored: it reads as absent, as in Redis.
            let keys = arguments.map { try? Self.key($0) }
            var values: [RESPValue] = []
            var live: Int64 = 0
            for key in keys {
                guard let key else {
                    values.append(.null)
                    continue
                }
                let stored = try readNow(key)
                if let value = Self.live(stored) {
                    values.append(.bulkString(value))
                    live += 1
                } else {
                    values.append(.null)
                }
            }
            reply(name == "MGET" ? .array(values) : .integer(live))
        case "DBSIZE":
            return task(reply) { .integer(try await store.liveKeyCount()) }
        case "TTL", "PTTL", "EXPIRETIME", "PEXPIRETIME":
            let key = try Self.key(arguments[0])
            store.get(key: key) { result in
                reply(Self.answer(result) { stored in
                    let now = ExpiryClock.nowMilliseconds()
                    guard let stored, stored.record.value(at: now) != nil else { return .integer(-2) }
                    guard let expiresAt = stored.record.expiresAt else { return .integer(-1) }
                    switch name {
                    case "TTL": return .integer((expiresAt - now + 500) / 1000)
                    case "PTTL": return .integer(expiresAt - now)
                    case "EXPIRETIME": return .integer(expiresAt / 1000)
                    default: return .integer(expiresAt)
                    }
                })
            }
        case "KEYS":
            let pattern = arguments[0]
            return task(reply) { .array(try await keys(matching: pattern).map { .bulk($0) }) }
        case "SCAN":
            let (cursor, pattern, count, type) = try Self.scanOptions(arguments)
            return task(reply) {
                let page = try await store.scan(after: cursor, count: count)
                let keys = type.map { $0 == "string" } == false ? [] : page.keys.filter { key in
                    pattern.map { RESPGlob.matches($0, Array(key.utf8)) } ?? true
                }
                return .array([.bulk(String(page.cursor)), .array(keys.map { .bulk($0) })])
            }
        case "INFO":
            let sections = Set(arguments.map { Self.text($0).lowercased() })
            let clients = connections.value
            return task(reply) { .bulk(try await info(sections: sections, clients: clients)) }
        case "WAIT":
            let wanted = try Self.integer(arguments[0])
            let timeout = try Self.integer(arguments[1])
            guard timeout >= 0 else { throw RESPError(line: "ERR timeout is negative") }
            return task(reply) { .integer(try await waitForPeers(wanted, timeoutMilliseconds: timeout)) }

        // MARK: Writes
        case "SET":
            let key = try Self.key(arguments[0])
            let value = try value(arguments[1])
            let options = try SetOptions(arguments.dropFirst(2), now: ExpiryClock.nowMilliseconds())
            if options.condition == .always, !options.returnOld, !options.keepTTL {
                // A plain SET reads nothing: the store's put, as PUT /kv/{key} does.
                let metrics = metrics
                store.put(key: key, value: value, expiresAt: options.expiresAt) { result in
                    switch result {
                    case .success:
                        metrics.countClientWrite()
                        reply(.ok)
                    case .failure(let error):
                        reply(.error(RESPError.store(error).line))
                    }
                }
                return nil
            }
            write(reply) { transaction in
                let row = try Self.liveRecord(transaction, key)
                let old: RESPValue = row?.value.map(RESPValue.bulkString) ?? .null
                switch options.condition {
                case .ifAbsent where row != nil, .ifPresent where row == nil:
                    return (options.returnOld ? old : .null, false)
                default:
                    let expiresAt = options.keepTTL ? row?.expiresAt : options.expiresAt
                    try transaction.put(key: key, value: value, expiresAt: expiresAt)
                    return (options.returnOld ? old : .ok, true)
                }
            }
        case "SETEX", "PSETEX":
            let key = try Self.key(arguments[0])
            let amount = try Self.integer(arguments[1])
            let value = try value(arguments[2])
            let expiresAt = try Self.expiry(
                amount, unit: name == "SETEX" ? .seconds : .milliseconds, now: ExpiryClock.nowMilliseconds(), command: name)
            write(reply) { transaction in
                try transaction.put(key: key, value: value, expiresAt: expiresAt)
                return (.ok, true)
            }
        case "GETEX":
            let key = try Self.key(arguments[0])
            let change = try Self.getExOption(arguments.dropFirst(), now: ExpiryClock.nowMilliseconds())
            write(reply) { transaction in
                guard let row = try Self.liveRecord(transaction, key), let value = row.value else { return (.null, false) }
                switch change {
                case .none:
                    return (.bulkString(value), false)
                case .some(nil) where row.expiresAt == nil:
                    return (.bulkString(value), false)
                case .some(let expiresAt):
                    try transaction.put(key: key, value: value, expiresAt: expiresAt)
                    return (.bulkString(value), true)
                }
            }
        case "EXPIRE", "PEXPIRE", "EXPIREAT", "PEXPIREAT":
            let key = try Self.key(arguments[0])
            let amount = try Self.integer(arguments[1])
            let condition = try ExpireCondition(arguments.dropFirst(2))
            let now = ExpiryClock.nowMilliseconds()
            let expiresAt = try Self.expiryTime(amount, command: name, now: now)
            write(reply) { transaction in
                guard let row = try Self.liveRecord(transaction, key), let value = row.value else { return (.integer(0), false) }
                guard condition.allows(current: row.expiresAt, new: expiresAt) else { return (.integer(0), false) }
                if expiresAt <= now {
                    // A time already past deletes the key, as in Redis: a tombstone that replicates.
                    try transaction.delete(key: key)
                } else {
                    try transaction.put(key: key, value: value, expiresAt: expiresAt)
                }
                return (.integer(1), true)
            }
        case "PERSIST":
            let key = try Self.key(arguments[0])
            write(reply) { transaction in
                guard let row = try Self.liveRecord(transaction, key), let value = row.value, row.expiresAt != nil else {
                    return (.integer(0), false)
                }
                try transaction.put(key: key, value: value, expiresAt: nil)
                return (.integer(1), true)
            }
        case "SETNX":
            let key = try Self.key(arguments[0])
            let value = try value(arguments[1])
            write(reply) { transaction in
                guard try Self.liveRecord(transaction, key) == nil else { return (.integer(0), false) }
                try transaction.put(key: key, value: value)
                return (.integer(1), true)
            }
        case "GETSET":
            let key = try Self.key(arguments[0])
            let value = try value(arguments[1])
            write(reply) { transaction in
                let old = try Self.liveRecord(transaction, key)?.value
                try transaction.put(key: key, value: value)
                return (old.map(RESPValue.bulkString) ?? .null, true)
            }
        case "GETDEL":
            let key = try Self.key(arguments[0])
            write(reply) { transaction in
                guard let old = try Self.liveRecord(transaction, key)?.value else { return (.null, false) }
                try transaction.delete(key: key)
                return (.bulkString(old), true)
            }
        case "MSET":
            guard arguments.count % 2 == 0 else { throw RESPError.wrongArity(name) }
            var pairs: [(String, [UInt8])] = []
            for index in stride(from: 0, to: arguments.count, by: 2) {
                pairs.append((try Self.key(arguments[index]), try value(arguments[index + 1])))
            }
            let sendable = pairs.map { KeyValue(key: $0.0, value: $0.1) }
            write(reply, writesOnce: sendable.count == 1) { transaction in
                for pair in sendable { try transaction.put(key: pair.key, value: pair.value) }
                return (.ok, true)
            }
        case "DEL", "UNLINK":
            let keys = try arguments.map(Self.key)
            write(reply, writesOnce: keys.count == 1) { transaction in
                // Like HTTP DELETE, a tombstone for every key named, live here or not: the delete
                // must win over a put this node has not received yet. The count is of live keys.
                var live: Int64 = 0
                for key in keys {
                    if try Self.liveRecord(transaction, key) != nil { live += 1 }
                    try transaction.delete(key: key)
                }
                return (.integer(live), true)
            }
        default:
            throw RESPError(line: "ERR \(name) is listed by COMMAND but not served; report this as a bug")
        }
        return nil
    }

    // MARK: Expiry

    /// The row of `key` if it holds a value that has not expired.
    private static func liveRecord(_ transaction: LocalTransaction, _ key: String) throws -> Record? {
        guard let record = try transaction.record(forKey: key)?.record,
            record.value(at: ExpiryClock.nowMilliseconds()) != nil
        else { return nil }
        return record
    }

    /// The value a reader sees now: nil for an absent, deleted or expired key.
    private static func live(_ stored: StoredRecord?) -> [UInt8]? {
        stored?.record.value(at: ExpiryClock.nowMilliseconds())
    }

    enum ExpiryUnit { case seconds, milliseconds }

    /// `amount` from now as an expiry time; a non-positive or overflowing amount is refused as
    /// Redis refuses it.
    static func expiry(_ amount: Int64, unit: ExpiryUnit, now: Int64, command: String) throws -> Int64 {
        let milliseconds = unit == .seconds ? amount.multipliedReportingOverflow(by: 1000) : (amount, false)
        let sum = milliseconds.0.addingReportingOverflow(now)
        guard amount > 0, !milliseconds.1, !sum.overflow else {
            throw RESPError(line: "ERR invalid expire time in '\(command.lowercased())' command")
        }
        return sum.partialValue
    }

    /// An absolute expiry time in milliseconds from `EXAT`/`PXAT` seconds or milliseconds.
    static func absoluteExpiry(_ amount: Int64, unit: ExpiryUnit, command: String) throws -> Int64 {
        let milliseconds = unit == .seconds ? amount.multipliedReportingOverflow(by: 1000) : (amount, false)
        guard amount > 0, !milliseconds.1 else {
            throw RESPError(line: "ERR invalid expire time in '\(command.lowercased())' command")
        }
        return milliseconds.0
    }

    /// EXPIRE's family: the time asked for, which may be in the past (the key is then deleted).
    private static func expiryTime(_ amount: Int64, command: String, now: Int64) throws -> Int64 {
        let inSeconds = command == "EXPIRE" || command == "EXPIREAT"
        let milliseconds = inSeconds ? amount.multipliedReportingOverflow(by: 1000) : (amount, false)
        let relative = command == "EXPIRE" || command == "PEXPIRE"
        let sum = relative ? milliseconds.0.addingReportingOverflow(now) : (milliseconds.0, false)
        guard !milliseconds.1, !sum.1 else {
            throw RESPError(line: "ERR invalid expire time in '\(command.lowercased())' command")
        }
        return sum.0
    }

    /// GETEX's option: nil for none (no change), `.some(nil)` for PERSIST, else the new time.
    private static func getExOption(_ options: ArraySlice<[UInt8]>, now: Int64) throws -> Int64?? {
        guard let first = options.first else { return nil }
        let word = text(first).uppercased()
        if word == "PERSIST" {
            guard options.count == 1 else { throw RESPError.syntax }
            return .some(nil)
        }
        guard options.count == 2 else { throw RESPError.syntax }
        let amount = try integer(options[options.startIndex + 1])
        switch word {
        case "EX": return try expiry(amount, unit: .seconds, now: now, command: "getex")
        case "PX": return try expiry(amount, unit: .milliseconds, now: now, command: "getex")
        case "EXAT": return try absoluteExpiry(amount, unit: .seconds, command: "getex")
        case "PXAT": return try absoluteExpiry(amount, unit: .milliseconds, command: "getex")
        default: throw RESPError.syntax
        }
    }

    // MARK: Helpers

    private struct KeyValue: Sendable {
        let key: String
        let value: [UInt8]
    }

    /// Runs `body` in one transaction of the writer and answers what it returns; `body` also
    /// says whether it wrote (to count client writes).
    ///
    /// `writesOnce`: `body` writes at most once, as its last step (see `KVStore.transact`).
    private func write(
        _ reply: @escaping Reply, writesOnce: Bool = true,
        _ body: @escaping @Sendable (LocalTransaction) throws -> (RESPValue, Bool)
    ) {
        let metrics = metrics
        store.transact(writesOnce: writesOnce, body) { result in
            switch result {
            case .success(let (value, wrote)):
                if wrote { metrics.countClientWrite() }
                reply(value)
            case .failure(let error):
                reply(.error(RESPError.store(error).line))
            }
        }
    }

    private func task(_ reply: @escaping Reply, _ body: @escaping @Sendable () async throws -> RESPValue) -> Task<Void, Never> {
        let logger = logger
        return Task {
            do {
                reply(try await body())
            } catch let error as RESPError {
                reply(.error(error.line))
            } catch let error as StoreError {
                reply(.error(RESPError.store(error).line))
            } catch is CancellationError {
                reply(.error("ERR cancelled: the node is shutting down or the connection closed"))
            } catch {
                logger.error("RESP command failed: \(error)")
                reply(.error("ERR the node failed to serve the command; its log has the cause"))
            }
        }
    }

    private func readNow(_ key: String) throws -> StoredRecord? {
        let result = Mutex<Result<StoredRecord?, StoreError>?>(nil)
        store.get(key: key) { outcome in result.withLock { $0 = outcome } }
        guard let outcome = result.withLock({ $0 }) else {
            // Reads queue behind the writer (--read-connections 0): not served by MGET here.
            throw RESPError(line: "ERR MGET and EXISTS need the read pool; start the node with --read-connections 1 or more")
        }
        return try outcome.get()
    }

    private static func answer(_ result: Result<StoredRecord?, StoreError>, _ make: (StoredRecord?) -> RESPValue) -> RESPValue {
        switch result {
        case .success(let stored): return make(stored)
        case .failure(let error): return .error(RESPError.store(error).line)
        }
    }

    static func key(_ bytes: [UInt8]) throws -> String {
        do {
            return try KeyRules.validate(utf8: bytes)
        } catch {
            throw RESPError.invalidKey(error)
        }
    }

    private func value(_ bytes: [UInt8]) throws -> [UInt8] {
        guard bytes.count <= maxValueBytes else { throw RESPError.valueTooLarge(bytes.count, limit: maxValueBytes) }
        return bytes
    }

    static func text(_ bytes: [UInt8]) -> String { String(decoding: bytes, as: UTF8.self) }

    static func integer(_ bytes: [UInt8]) throws -> Int64 {
        guard let value = Int64(text(bytes)) else { throw RESPError.notAnInteger }
        return value
    }

    /// Redis's GETRANGE: inclusive, negative indices count from the end.
    static func range(of value: [UInt8], start: Int64, end: Int64) -> [UInt8] {
        let count = Int64(value.count)
        guard count > 0 else { return [] }
        var from = start < 0 ? max(0, count + start) : start
        var to = end < 0 ? count + end : min(end, count - 1)
        if to < 0 || from > to || from >= count { return [] }
        from = max(0, from)
        to = min(to, count - 1)
        return Array(value[Int(from)...Int(to)])
    }

    // MARK: Connection commands

    private func authenticate(_ arguments: [[UInt8]], session: inout RESPSession) throws {
        guard arguments.count <= 2 else { throw RESPError.syntax }
        guard let clientToken else {
            throw RESPError(line: "ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct? (this node has no --client-token-file)")
        }
        let user = arguments.count == 2 ? Self.text(arguments[0]) : "default"
        let password = Self.text(arguments[arguments.count - 1])
        guard user == "default", BearerToken.admits(BearerToken.header(for: password), token: clientToken) else {
            throw RESPError.wrongPass
        }
        session.authenticated = true
    }

    private func hello(_ arguments: [[UInt8]], session: inout RESPSession) throws -> RESPValue {
        var version = session.version
        var rest = arguments[...]
        if let first = rest.first {
            guard let number = Int(Self.text(first)), let chosen = RESPVersion(rawValue: number) else {
                throw RESPError(line: "NOPROTO unsupported protocol version (Converge speaks RESP2 and RESP3)")
            }
            version = chosen
            rest = rest.dropFirst()
        }
        var name: String?
        while let option = rest.first {
            switch Self.text(option).uppercased() {
            case "AUTH":
                guard rest.count >= 3 else { throw RESPError.syntax }
                let credentials = Array(rest.dropFirst().prefix(2))
                try authenticate(credentials, session: &session)
                rest = rest.dropFirst(3)
            case "SETNAME":
                guard rest.count >= 2 else { throw RESPError.syntax }
                name = try Self.clientName(rest[rest.startIndex + 1])
                rest = rest.dropFirst(2)
            default:
                throw RESPError(line: "ERR syntax error in HELLO option '\(Self.text(option).prefix(64))'")
            }
        }
        guard session.authenticated else {
            throw RESPError(line: "NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time")
        }
        session.version = version
        if let name { session.name = name }
        return .map([
            .bulk("server"), .bulk("redis"), .bulk("version"), .bulk(Self.redisVersion),
            .bulk("proto"), .integer(Int64(version.rawValue)), .bulk("id"), .integer(session.id),
            .bulk("mode"), .bulk("standalone"), .bulk("role"), .bulk("master"), .bulk("modules"), .array([]),
        ])
    }

    /// The Redis version whose commands and replies Converge follows, as HELLO and INFO report it.
    static let redisVersion = "7.2.0"

    private static func clientName(_ bytes: [UInt8]) throws -> String? {
        guard !bytes.isEmpty else { return nil }
        guard bytes.allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
            throw RESPError(line: "ERR Client names cannot contain spaces, newlines or special characters.")
        }
        return text(bytes)
    }

    private func client(_ arguments: [[UInt8]], session: inout RESPSession) throws -> RESPValue {
        let sub = Self.text(arguments[0]).uppercased()
        switch (sub, arguments.count) {
        case ("SETNAME", 2):
            session.name = try Self.clientName(arguments[1])
            return .ok
        case ("GETNAME", 1):
            return session.name.map { .bulk($0) } ?? .null
        case ("ID", 1):
            return .integer(session.id)
        case ("SETINFO", 3):
            let attribute = Self.text(arguments[1]).uppercased()
            guard attribute == "LIB-NAME" || attribute == "LIB-VER" else {
                throw RESPError(line: "ERR Unrecognized option '\(Self.text(arguments[1]).prefix(64))'")
            }
            guard arguments[2].allSatisfy({ $0 > 0x20 && $0 < 0x7F }) else {
                throw RESPError(line: "ERR \(attribute) cannot contain spaces, newlines or special characters.")
            }
            if attribute == "LIB-NAME" { session.libraryName = Self.text(arguments[2]) } else { session.libraryVersion = Self.text(arguments[2]) }
            return .ok
        case ("SETNAME", _), ("GETNAME", _), ("ID", _), ("SETINFO", _):
            throw RESPError(line: "ERR wrong number of arguments for 'client|\(sub.lowercased())' command")
        default:
            throw RESPError(line: "ERR unknown subcommand '\(sub.prefix(64))'. Converge serves CLIENT SETNAME, GETNAME, ID and SETINFO.")
        }
    }

    private func command(_ arguments: [[UInt8]]) throws -> RESPValue {
        let specs = RESPCommandSpec.all.values.sorted { $0.name < $1.name }
        guard let first = arguments.first else { return .array(specs.map(\.info)) }
        let names = arguments.dropFirst().map { Self.text($0).uppercased() }
        switch Self.text(first).uppercased() {
        case "COUNT":
            return .integer(Int64(specs.count))
        case "INFO":
            if names.isEmpty { return .array(specs.map(\.info)) }
            return .array(names.map { RESPCommandSpec.all[$0]?.info ?? .null })
        case "DOCS":
            let chosen = names.isEmpty ? specs : names.compactMap { RESPCommandSpec.all[$0] }
            return .map(chosen.flatMap { [RESPValue.bulk($0.name.lowercased()), $0.docs] })
        case "LIST":
            return .array(specs.map { .bulk($0.name.lowercased()) })
        default:
            throw RESPError(line: "ERR unknown subcommand '\(Self.text(first).prefix(64))'. Converge serves COMMAND, COMMAND COUNT, COMMAND INFO, COMMAND DOCS and COMMAND LIST.")
        }
    }

    // MARK: Store-wide reads

    private func keys(matching pattern: [UInt8]) async throws -> [String] {
        let prefixBytes = RESPGlob.literalPrefix(pattern)
        // A prefix that is not a valid key bound (cut UTF-8): scan everything and match.
        let prefix = String(validating: prefixBytes, as: UTF8.self) ?? ""
        var found: [String] = []
        var after: String?
        while true {
            let page = try await store.list(prefix: prefix, after: after, limit: 1000)
            for entry in page where RESPGlob.matches(pattern, Array(entry.key.utf8)) { found.append(entry.key) }
            guard page.count == 1000, let last = page.last else { return found }
            after = last.key
        }
    }

    private static func scanOptions(_ arguments: [[UInt8]]) throws -> (Int64, [UInt8]?, Int, String?) {
        guard let cursor = Int64(text(arguments[0])), cursor >= 0 else {
            throw RESPError(line: "ERR invalid cursor")
        }
        var pattern: [UInt8]?
        var count = 10
        var type: String?
        var index = 1
        while index < arguments.count {
            guard index + 1 < arguments.count else { throw RESPError.syntax }
            let value = arguments[index + 1]
            switch text(arguments[index]).uppercased() {
            case "MATCH": pattern = value
            case "COUNT":
                guard let number = Int(text(value)), number >= 1 else { throw RESPError.syntax }
                count = min(number, 100_000)
            case "TYPE": type = text(value).lowercased()
            default: throw RESPError.syntax
            }
            index += 2
        }
        return (cursor, pattern, count, type)
    }

    /// How many peers hold this node's own writes so far, waiting until `wanted` do or the
    /// timeout passes (0: no timeout): the same wait as `?w=` on HTTP writes
    /// (`Replicator.waitUntilHeld`).
    private func waitForPeers(_ wanted: Int64, timeoutMilliseconds: Int64) async throws -> Int64 {
        let target = try await store.feedPosition().lastSeq
        // No peers at all: nothing can ever acknowledge, so there is nothing to wait for.
        guard !replicator.membership.activePeers.isEmpty else { return 0 }
        let timeout: Duration = timeoutMilliseconds == 0 ? .seconds(86_400 * 365) : .milliseconds(timeoutMilliseconds)
        let held = await replicator.waitUntilHeld(through: target, byPeers: Int(min(wanted, Int64(Int.max))), timeout: timeout)
        try Task.checkCancellation()
        return Int64(held.count)
    }

    private func info(sections: Set<String>, clients: Int) async throws -> String {
        let all = sections.isEmpty || sections.contains("all") || sections.contains("everything") || sections.contains("default")
        var lines: [String] = []
        if all || sections.contains("server") {
            let uptime = Int((ContinuousClock.now - startedAt).components.seconds)
            lines += [
                "# Server", "redis_version:\(Self.redisVersion)", "redis_mode:standalone", "converge_node:\(nodeID)",
                "process_id:\(ProcessInfo.processInfo.processIdentifier)", "uptime_in_seconds:\(uptime)", "",
            ]
        }
        if all || sections.contains("clients") {
            lines += ["# Clients", "connected_clients:\(clients)", ""]
        }
        if all || sections.contains("keyspace") {
            let state = try await store.state()
            lines += ["# Keyspace"]
            let counts = try await store.expiryCounts()
            let keys = state.liveKeys - counts.expired
            if keys > 0 { lines.append("db0:keys=\(keys),expires=\(counts.expiring),avg_ttl=0") }
            lines.append("")
        }
        if all || sections.contains("replication") {
            let reports = try await replicator.peerReports()
            let position = try await store.feedPosition()
            lines += [
                "# Replication", "role:master", "converge_replication:multi-master, last-writer-wins",
                "converge_last_seq:\(position.lastSeq)", "connected_peers:\(reports.filter(\.reachable).count)",
                "peers:\(reports.count)",
            ]
            for (index, peer) in reports.enumerated() {
                lines.append(
                    "peer\(index):id=\(peer.id),url=\(peer.url),state=\(peer.reachable ? "online" : "unreachable"),pushed_seq=\(peer.pushedSeq),pulled_seq=\(peer.pulledSeq),lag_rows=\(peer.toPush)")
            }
            lines.append("")
        }
        return lines.joined(separator: "\r\n")
    }
}

/// How many connections are open, shared by every copy of a responder.
final class ConnectionCount: Sendable {
    private let count = Atomic<Int>(0)

    func add(_ delta: Int) { count.add(delta, ordering: .relaxed) }

    var value: Int { count.load(ordering: .relaxed) }
}

/// The options of `SET key value …`.
struct SetOptions {
    enum Condition { case always, ifAbsent, ifPresent }
    var condition = Condition.always
    var returnOld = false
    /// The new row's expiry; nil: none (a SET without an expiry option removes the old one).
    var expiresAt: Int64?
    /// KEEPTTL: the new row keeps the old row's expiry.
    var keepTTL = false

    init(_ options: ArraySlice<[UInt8]>, now: Int64) throws {
        var index = options.startIndex
        var expirySet = false
        while index < options.endIndex {
            let word = RESPResponder.text(options[index]).uppercased()
            switch word {
            case "NX" where condition == .always: condition = .ifAbsent
            case "XX" where condition == .always: condition = .ifPresent
            case "GET" where !returnOld: returnOld = true
            case "KEEPTTL" where !expirySet:
                keepTTL = true
                expirySet = true
            case "EX", "PX", "EXAT", "PXAT":
                guard !expirySet, index + 1 < options.endIndex else { throw RESPError.syntax }
                let amount = try RESPResponder.integer(options[index + 1])
                switch word {
                case "EX": expiresAt = try RESPResponder.expiry(amount, unit: .seconds, now: now, command: "set")
                case "PX": expiresAt = try RESPResponder.expiry(amount, unit: .milliseconds, now: now, command: "set")
                case "EXAT": expiresAt = try RESPResponder.absoluteExpiry(amount, unit: .seconds, command: "set")
                default: expiresAt = try RESPResponder.absoluteExpiry(amount, unit: .milliseconds, command: "set")
                }
                expirySet = true
                index += 1
            default: throw RESPError.syntax
            }
            index += 1
        }
    }
}

/// EXPIRE's NX | XX | GT | LT. No expiry counts as an infinite one, as in Redis.
struct ExpireCondition {
    private var word: String?

    init(_ options: ArraySlice<[UInt8]>) throws {
        guard options.count <= 1 else { throw RESPError(line: "ERR NX and XX, GT or LT options at the same time are not compatible") }
        if let option = options.first {
            let text = RESPResponder.text(option).uppercased()
            guard ["NX", "XX", "GT", "LT"].contains(text) else { throw RESPError(line: "ERR Unsupported option \(text.prefix(32))") }
            word = text
        }
    }

    func allows(current: Int64?, new: Int64) -> Bool {
        switch word {
        case "NX": return current == nil
        case "XX": return current != nil
        case "GT": return current.map { new > $0 } ?? false
        case "LT": return current.map { new < $0 } ?? true
        default: return true
        }
    }
}
