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
        try await shared.value
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

    static func run(_ arguments: [String], what: String) async throws {
        let (status, output) = try await TestSupport.onDedicatedThread { () -> (Int32, String) in
            // Output to a file, not a pipe: the server pg_ctl starts would hold a pipe open.
            // posix_spawn and waitpid, not Foundation's Process, whose exit notification rides
            // on a dispatch queue the test process may be starving.
            let log = FileManager.default.temporaryDirectory.appendingPathComponent("rbw-pg-\(UUID().uuidString.prefix(8)).out")
            defer { try? FileManager.default.removeItem(at: log) }
            let status = try spawnAndWait(arguments, output: log.path)
            return (status, (try? String(contentsOf: log, encoding: .utf8)) ?? "")
        }
        guard status == 0 else {
            throw Missing(description: "\(what) failed (status \(status)): \(output.suffix(600))")
        }
    }

    /// Runs a program to its end, its output and errors appended to `output`; returns its exit status.
    public static func spawnAndWait(_ arguments: [String], output: String) throws -> Int32 {
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        // Nothing else of this process's leaks into the child: a server it starts would otherwise
        // hold open the pipes of every other test's child, and their readers never see the end.
        ChildProcess.closeInheritedDescriptors(&actions)
        var pid: pid_t = 0
        let argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        let spawned = posix_spawn(&pid, arguments[0], &actions, nil, argv, environ)
        guard spawned == 0 else { throw Missing(description: "cannot run \(arguments[0]): \(String(cString: strerror(spawned)))") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        // WIFEXITED / WEXITSTATUS.
        return (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    }
}

