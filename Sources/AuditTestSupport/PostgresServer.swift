import AuditStore
import Foundation

/// A real PostgreSQL server for tests. `RBACWATCH_TEST_POSTGRES` names one (a superuser's URL,
/// e.g. postgres://postgres@127.0.0.1:5432/postgres); otherwise the first test that needs it
/// starts one from the installed binaries (Debian's `postgresql`, which `.ci/run` installs):
/// `initdb` into a temporary directory (as the `postgres` account when running as root),
/// `pg_ctl -w start` on a free loopback port with fsync off. A watchdog stops it and removes the
/// directory when the test process exits. Each test gets a database of its own.
public enum PostgresServer {
    public struct Missing: Error, CustomStringConvertible {
        public var description: String
    }

    /// Where the server listens; its superuser is `postgres` (trust authentication on loopback).
    public struct Server: Sendable {
        public var host: String
        public var port: Int
        public var user: String
        public var binaries: String?
    }

    private static let shared = Task { try await start() }

    /// The server (started once per test process).
    public static func server() async throws -> Server {
        TimerWatch.start()
        return try await shared.value
    }

    /// A new, empty database on the server (the shared one by default).
    public static func createDatabase(prefix: String = "rbw", on chosen: Server? = nil) async throws -> PostgresLocation {
        let server: Server
        if let chosen { server = chosen } else { server = try await Self.server() }
        let name = "\(prefix)_\(UUID().uuidString.prefix(12).lowercased().replacingOccurrences(of: "-", with: ""))"
        let admin = try PostgresLocation(url: "postgres://\(server.user)@\(server.host):\(server.port)/postgres?sslmode=disable")
        let database = try await PostgresDatabase.openUnmigrated(admin, password: nil)
        defer { Task { await database.close() } }
        try await database.execute(unsafeSQL: "CREATE DATABASE \(name)")
        return try PostgresLocation(url: "postgres://\(server.user)@\(server.host):\(server.port)/\(name)?sslmode=disable")
    }

    /// A migrated database, opened.
    public static func open(prefix: String = "rbw") async throws -> PostgresDatabase {
        try await PostgresDatabase.open(try await createDatabase(prefix: prefix), password: nil)
    }

    static func binaries() -> String? {
        if let explicit = ProcessInfo.processInfo.environment["RBACWATCH_PG_BIN"] { return explicit }
        let root = "/usr/lib/postgresql"
        let versions = ((try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []).compactMap(Int.init).sorted(by: >)
        return versions.map { "\(root)/\($0)/bin" }.first { FileManager.default.isExecutableFile(atPath: "\($0)/initdb") }
    }

    static func start() async throws -> Server {
        if let url = ProcessInfo.processInfo.environment["RBACWATCH_TEST_POSTGRES"], !url.isEmpty {
            let location = try PostgresLocation(url: url)
            return Server(host: location.host, port: location.port, user: location.user, binaries: nil)
        }
        return try await launch()
    }

    /// Starts a server of its own (not the shared one), with extra server options (`-c name=value …`).
    public static func launch(options extra: String = "") async throws -> Server {
        guard let bin = binaries() else {
            throw Missing(
                description: "PostgreSQL is not installed (Debian package postgresql; .ci/run installs it), and RBACWATCH_TEST_POSTGRES names no server")
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("rbw-pg-\(UUID().uuidString.prefix(8))")
        let data = directory.appendingPathComponent("data").path
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let root = geteuid() == 0
        if root {
            // initdb refuses to run as root: the cluster belongs to the postgres account.
            chmod(directory.path, 0o777)
            chmod(FileManager.default.temporaryDirectory.path, 0o1777)
        }
        func command(_ arguments: [String]) -> [String] {
            root ? ["/usr/sbin/runuser", "-u", "postgres", "--"] + arguments : arguments
        }
        try await run(command(["\(bin)/initdb", "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"]), what: "initdb")
        let port = try SyslogNG.freePort()
        let options = "-p \(port) -k \(directory.path) -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300 \(extra)"
        try await run(
            command(["\(bin)/pg_ctl", "-D", data, "-o", options, "-l", directory.appendingPathComponent("server.log").path, "-w", "-t", "60", "start"]),
            what: "pg_ctl start")
        // Stops the server and removes its files once this process is gone (a child of ours
        // that inherits none of our descriptors).
        let stop = command(["\(bin)/pg_ctl", "-D", data, "-m", "immediate", "stop"]).joined(separator: " ")
        _ = try ChildProcess(
            name: "watchdog", executable: "/bin/sh",
            arguments: ["-c", "while kill -0 \(getpid()) 2>/dev/null; do sleep 1; done; \(stop) >/dev/null 2>&1; rm -rf \(directory.path)"],
            environment: ["PATH": "/usr/bin:/bin"], directory: directory)
        return Server(host: "127.0.0.1", port: port, user: "postgres", binaries: bin)
    }

    /// Runs one step (initdb, pg_ctl) to its end, bounded; its output is in the error if it fails.
    static func run(_ arguments: [String], what: String) async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("rbw-pg-step-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let step = try ChildProcess(
            name: "step", executable: arguments[0], arguments: Array(arguments.dropFirst()), environment: ProcessInfo.processInfo.environment,
            directory: directory)
        guard await step.waitForExit(within: .seconds(120)) else {
            await step.kill9()
            throw Missing(description: "\(what) did not finish within 120 s")
        }
        guard step.exitStatus == 0 else {
            throw Missing(description: "\(what) failed (status \(step.exitStatus.map(String.init) ?? "?")): \((step.output + step.log).suffix(600))")
        }
    }
}
