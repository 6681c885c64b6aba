// swift-tools-version:6.1
import PackageDescription

/// Every target: Swift 6 language mode (strict concurrency) and imports that are internal unless a
/// module says `public import`, so what a module exposes is a decision, not an accident.
let strictSettings: [SwiftSetting] = [
    .enableUpcomingFeature("InternalImportsByDefault"),
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "Converge",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "kvnode", targets: ["kvnode"]),
        .executable(name: "kv", targets: ["kv"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
    ],
    targets: [
        // The system libsqlite3, seen through a modulemap and a header.
        .systemLibrary(
            name: "CSQLite",
            pkgConfig: "sqlite3",
            providers: [.apt(["libsqlite3-dev"])]
        ),
        .target(name: "SQLite", dependencies: ["CSQLite"], swiftSettings: strictSettings),
        .target(name: "KVCore", swiftSettings: strictSettings),
        // The Redis protocol's codec: pure, no I/O, so it is unit-tested and fuzzed alone.
        .target(name: "RESP", swiftSettings: strictSettings),
        .executableTarget(name: "embed-migrations", swiftSettings: strictSettings),
        .plugin(
            name: "EmbedMigrations",
            capability: .buildTool(),
            dependencies: ["embed-migrations"]
        ),
        .target(
            name: "KVStore",
            dependencies: ["SQLite", "KVCore", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strictSettings,
            plugins: ["EmbedMigrations"]
        ),
        // Outgoing HTTP/1.1 to a node, and the TLS files: for kv, replication and the server alike.
        .target(
            name: "NodeHTTP",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "KVClient",
            dependencies: [
                "KVCore", "NodeHTTP",
                .product(name: "NIOHTTP1", package: "swift-nio"),  // reason phrases of statuses
            ],
            swiftSettings: strictSettings
        ),
        .target(
            name: "Replication",
            dependencies: ["KVStore", "KVCore", "NodeHTTP", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strictSettings
        ),
        .target(
            name: "KVServer",
            dependencies: [
                "KVStore", "KVCore", "Replication", "NodeHTTP", "RESP",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "kvnode",
            dependencies: [
                "KVServer", "KVStore", "KVCore", "NodeHTTP",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "kv",
            dependencies: [
                "KVClient", "KVCore", "NodeHTTP",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "codec-bench",
            dependencies: ["Replication", "KVStore", "KVCore"],
            path: "Benchmarks/codec-bench",
            swiftSettings: strictSettings
        ),
        .executableTarget(
            name: "kvsim",
            dependencies: ["ClusterSimulator", "Replication", .product(name: "ArgumentParser", package: "swift-argument-parser")],
            path: "Benchmarks/kvsim",
            swiftSettings: strictSettings
        ),
        .target(name: "TestSupport", dependencies: ["KVCore"], path: "Tests/TestSupport", swiftSettings: strictSettings),
        // The deterministic simulator of whole clusters (test support, and kvsim's engine).
        .target(
            name: "ClusterSimulator",
            dependencies: ["Replication", "KVStore", "KVCore", .product(name: "Logging", package: "swift-log")],
            path: "Tests/Simulator",
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "SimulationTests", dependencies: ["ClusterSimulator", "Replication", "TestSupport"],
            swiftSettings: strictSettings),
        .testTarget(name: "KVCoreTests", dependencies: ["KVCore", "TestSupport"], swiftSettings: strictSettings),
        .testTarget(name: "NodeHTTPTests", dependencies: ["NodeHTTP", "TestSupport"], swiftSettings: strictSettings),
        .testTarget(name: "RESPTests", dependencies: ["RESP", "TestSupport"], swiftSettings: strictSettings),
        .testTarget(name: "SQLiteTests", dependencies: ["SQLite", "TestSupport"], swiftSettings: strictSettings),
        .testTarget(
            name: "KVStoreTests",
            // Logging: the tests hand the store a logger that records what it says.
            dependencies: ["KVStore", "SQLite", "KVCore", "TestSupport", .product(name: "Logging", package: "swift-log")],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "KVServerTests",
            dependencies: [
                "KVServer", "KVClient", "KVStore", "KVCore", "TestSupport", "Replication", "NodeHTTP",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "ReplicationTests",
            dependencies: ["Replication", "KVStore", "KVCore", "TestSupport"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "ClusterTests",
            dependencies: ["KVClient", "KVCore", "NodeHTTP", "TestSupport", "kv", "kvnode"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "CLITests",
            dependencies: ["KVClient", "KVCore", "NodeHTTP", "TestSupport", "kv", "kvnode"],  // kv: @testable for kv bench's arithmetic
            swiftSettings: strictSettings
        ),
    ]
)
