// swift-tools-version:6.2
import PackageDescription

// One settings array for every target (the Hummingbird package does the same).
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
]

let package = Package(
    name: "rbacwatch",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "rbacwatch", targets: ["rbacwatch"]),
        .executable(name: "rbacwatch-bench", targets: ["rbacwatch-bench"]),
        .executable(name: "rbacwatch-fuzz", targets: ["rbacwatch-fuzz"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-crypto", from: "3.12.3"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/groue/GRDB.swift", from: "7.10.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket", from: "2.8.1"),
    ],
    targets: [
        // Pure domain: model, effective access, canonical snapshot encoding. No I/O.
        .target(
            name: "AuditCore",
            dependencies: [.product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: swiftSettings
        ),
        // The Genesys Cloud Platform API client and the collector that maps it onto AuditCore.
        .target(
            name: "GenesysClient",
            dependencies: [
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                "AuditCore",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                // The Notifications API's WebSocket channels.
                .product(name: "HummingbirdWSClient", package: "hummingbird-websocket"),
            ],
            swiftSettings: swiftSettings
        ),
        // The SIEM receivers' API shapes: what Splunk HEC, Datadog, webhooks and a JSONL file are
        // sent, and how their answers read (DeliveryResult).
        .target(
            name: "SIEMClient",
            dependencies: [
                "AuditCore", "GenesysClient", "CZlib", .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOTLS", package: "swift-nio"), .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: swiftSettings),
        // The local simulator of the Platform API, and of the SIEM receivers rbacwatch delivers to
        // (Splunk HEC, Datadog, webhooks). It imports neither the client nor the core, so the two
        // sides cannot agree on a mistake.
        .target(
            name: "GenesysSimulator",
            dependencies: [
                "CZlib",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        // Where baselines, snapshots, lineage, approvals and findings live: a protocol with a
        // SQLite implementation (GRDB) and an in-memory one.
        .target(
            name: "AuditStore",
            dependencies: [
                "AuditCore", .product(name: "GRDB", package: "GRDB.swift"), .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"), .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ],
            swiftSettings: swiftSettings
        ),
        // The dashboard's looks, pure: state, reducer, renderer, keymap, themes. It renders the
        // rows the engine publishes (AuditEngine's DashboardFeed); it computes no risk and reads
        // no store.
        .target(name: "TerminalUI", dependencies: ["AuditCore", "AuditEngine"], swiftSettings: swiftSettings),
        // zlib (gzip for Datadog's intake, and the simulated receiver that reads it).
        .systemLibrary(name: "CZlib", path: "Sources/CZlib", providers: [.apt(["zlib1g-dev"])]),
        // ncursesw, through a shim for what Swift cannot import.
        .systemLibrary(name: "CNCurses", path: "Sources/CNCurses", providers: [.apt(["libncurses-dev"])]),
        // The only importer of CNCurses: a terminal thread that reads keys and draws frames.
        .target(name: "CursesDriver", dependencies: ["CNCurses", "TerminalUI"], swiftSettings: swiftSettings),
        // When things run and what is published: the drift check, the monitor, ingestion,
        // attribution, metrics and the status endpoint.
        .target(
            name: "AuditEngine",
            dependencies: [
                "AuditCore",
                "AuditStore",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "CoreMetrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings),
        // Commands, as a library the executable and the tests share.
        .target(
            name: "AuditCLI",
            dependencies: [
                "AuditCore",
                "AuditStore",
                "AuditEngine",
                "TerminalUI",
                "CursesDriver",
                "GenesysClient",
                "SIEMClient",
                "GenesysSimulator",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "rbacwatch",
            dependencies: ["AuditCLI"],
            swiftSettings: swiftSettings
        ),
        .executableTarget(
            name: "rbacwatch-bench",
            dependencies: [
                "AuditCore",
                "AuditEngine",
                "AuditStore",
                "GenesysClient",
                "GenesysSimulator",
                "SIEMClient",
                "TerminalUI",
                // The fleet bench starts its own PostgreSQL server and worker processes.
                "AuditTestSupport",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        // The hand-written readers under a mutation fuzzer (or libFuzzer: README "Fuzzing").
        .executableTarget(name: "rbacwatch-fuzz", dependencies: ["AuditCore", "TerminalUI"], swiftSettings: swiftSettings),
        // Shared by the test targets: simulator + client wiring, ground-truth comparison, a manual clock.
        .target(
            name: "AuditTestSupport",
            dependencies: [
                "AuditCore", "AuditStore", "GenesysClient", "GenesysSimulator", .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"), .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(name: "AuditCoreTests", dependencies: ["AuditCore"], swiftSettings: swiftSettings),
        .testTarget(
            name: "TerminalUITests", dependencies: ["TerminalUI", "AuditCore"], exclude: ["Snapshots"], swiftSettings: swiftSettings),
        .testTarget(
            name: "AuditStoreTests",
            dependencies: ["AuditStore", "AuditCore", "AuditTestSupport", .product(name: "GRDB", package: "GRDB.swift")],
            swiftSettings: swiftSettings),
        .testTarget(
            name: "GenesysClientTests",
            dependencies: ["GenesysClient", "GenesysSimulator", "AuditCore", "AuditTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "GenesysSimulatorTests",
            dependencies: [
                "GenesysSimulator",
                "AuditTestSupport",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "AuditEngineTests",
            dependencies: [
                "AuditEngine", "AuditCore", "AuditStore", "GenesysClient", "GenesysSimulator", "AuditTestSupport", "SIEMClient",
                .product(name: "Prometheus", package: "swift-prometheus"), .product(name: "GRDB", package: "GRDB.swift"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "EndToEndTests",
            dependencies: [
                "AuditCLI", "rbacwatch", "GenesysSimulator", "GenesysClient", "AuditCore", "AuditStore", "AuditTestSupport",
            ],
            swiftSettings: swiftSettings
        ),
    ]
)
