import ArgumentParser
import AuditCore
import AuditStore
import Foundation

/// Where state lives: `--state PATH`, an SQLite file (the default for one analyst:
/// `$XDG_DATA_HOME/rbacwatch/state.sqlite`, or `RBACWATCH_STATE`), or `--store
/// postgres://USER@HOST/DB` (or `RBACWATCH_STORE`), a PostgreSQL database shared by a fleet of
/// workers and many organisations — one of them chosen with `--org NAME` when it holds several.
struct StateOptions: ParsableArguments {
    @Option(name: .customLong("state"), help: "State file (default: $XDG_DATA_HOME/rbacwatch/state.sqlite; env: RBACWATCH_STATE).")
    var path: String?

    @Option(name: .customLong("store"), help: "A PostgreSQL store instead of the state file: postgres://USER@HOST:PORT/DB[?sslmode=…] (env: RBACWATCH_STORE; password: PGPASSWORD or --store-password-file).")
    var store: String?

    @Option(name: .customLong("store-password-file"), help: "File holding the PostgreSQL password (env: RBACWATCH_STORE_PASSWORD_FILE; else PGPASSWORD).")
    var storePasswordFile: String?

    @Option(name: .customLong("org"), help: "The organisation, when the store holds several (env: RBACWATCH_ORG).")
    var organization: String?

    func validate() throws {
        if let organization, !OrganizationsFile.isValidName(organization) {
            throw ValidationError("--org is a name of letters, digits, - _ . (at most 64).")
        }
        if store != nil && path != nil { throw ValidationError("--state (an SQLite file) or --store (PostgreSQL), not both.") }
        if let store, !PostgresLocation.isPostgresURL(store) { throw ValidationError("--store takes a postgres:// URL (an SQLite file is --state).") }
    }

    func resolvedPath(environment: [String: String]) -> String {
        StatePaths.stateFile(explicit: path, environment: environment)
    }

    /// The PostgreSQL URL, when the store is PostgreSQL.
    func postgresURL(environment: [String: String]) -> String? {
        if path != nil { return nil }
        return store ?? environment["RBACWATCH_STORE"].flatMap { $0.isEmpty ? nil : $0 }
    }

    func isPostgres(environment: [String: String]) -> Bool { postgresURL(environment: environment) != nil }

    /// Opens (or creates) the SQLite store. `RBACWATCH_FAULT_WRITE_PAUSE_MS` makes every write
    /// pause inside its transaction — the crash tests kill the process there.
    func openSQLite(environment: [String: String]) throws -> SQLiteAuditStore {
        var pause: SQLiteAuditStore.WritePause?
        if let text = environment["RBACWATCH_FAULT_WRITE_PAUSE_MS"], let ms = Int(text), ms > 0 {
            pause = .init(duration: .milliseconds(ms)) {
                Console.err("rbacwatch: fault injection: pausing \(ms) ms inside a state write")
            }
        }
        return try SQLiteAuditStore(path: resolvedPath(environment: environment), writePause: pause)
    }

    /// Connects to the PostgreSQL store (migrating it); the password from the file or PGPASSWORD.
    func openDatabase(environment: [String: String], idleTransactionTimeout: Duration = .seconds(15)) async throws -> PostgresDatabase {
        guard let url = postgresURL(environment: environment) else { throw ConfigurationError("no PostgreSQL store: pass --store postgres://…") }
        let location = try PostgresLocation(url: url, defaultUser: environment["PGUSER"] ?? Actor.name(nil, environment: environment))
        var password = environment["PGPASSWORD"].flatMap { $0.isEmpty ? nil : $0 }
        if let file = storePasswordFile ?? environment["RBACWATCH_STORE_PASSWORD_FILE"].flatMap({ $0.isEmpty ? nil : $0 }) {
            do {
                password = String(decoding: try FileBytes.read(file, limit: 64 << 10), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            } catch {
                throw ConfigurationError("--store-password-file: \(error.description)")
            }
        }
        return try await PostgresDatabase.open(location, password: password, idleTransactionTimeout: idleTransactionTimeout)
    }

    /// The organisation a command works on in a PostgreSQL store: `--org`, else the only one it
    /// holds (or `default` in an empty one); several without `--org` is one line listing them.
    func organization(in database: PostgresDatabase, environment: [String: String]) async throws -> String {
        if let name = organization ?? environment["RBACWATCH_ORG"].flatMap({ $0.isEmpty ? nil : $0 }) {
            guard OrganizationsFile.isValidName(name) else { throw ConfigurationError("RBACWATCH_ORG is not a valid organisation name") }
            return name
        }
        let names = try await database.organizations().map(\.name)
        switch names.count {
        case 0: return "default"
        case 1: return names[0]
        default:
            throw ConfigurationError(
                "\(database.location) holds \(names.count) organisations (\(names.prefix(8).joined(separator: ", "))\(names.count > 8 ? ", …" : "")): pick one with --org NAME")
        }
    }

    /// Opens the store: the SQLite file, or one organisation's part of the PostgreSQL store.
    func open(environment: [String: String]) async throws -> any AuditStore {
        guard isPostgres(environment: environment) else { return try openSQLite(environment: environment) }
        let database = try await openDatabase(environment: environment)
        return database.store(organization: try await organization(in: database, environment: environment))
    }
}

extension StateOptions {
    /// Runs a command's body with the store open, its errors as one line and an exit code.
    func withStore(_ body: (any AuditStore) async throws -> Void) async throws {
        let environment = ProcessInfo.processInfo.environment
        try await CommandErrors.handle {
            try await body(try await open(environment: environment))
        }
    }

    /// Takes the audit feed's lock on this state file: one process ingests into a file at a
    /// time. Otherwise one line names who holds it.
    func lockFeed(environment: [String: String], role: String) throws -> StateLock {
        try FeedLock.take(statePath: resolvedPath(environment: environment), role: role)
    }

    /// The feed's lock if it is free; otherwise who holds it.
    func tryLockFeed(environment: [String: String], role: String) throws -> (lock: StateLock?, holder: StateLock.Holder?) {
        try FeedLock.attempt(statePath: resolvedPath(environment: environment), role: role)
    }
}

/// The lock of whoever follows the audit feed into a state file (`watch`, the dashboard).
enum FeedLock {
    static func take(statePath: String, role: String) throws -> StateLock {
        switch try StateLock.attempt(StateLock.watchPath(statePath), role: role) {
        case .acquired(let lock): return lock
        case .held(let holder):
            throw OperationError(
                "another rbacwatch\(holder.map { " (\($0))" } ?? "") is watching this state file (\(statePath)); "
                    + "stop it first, or give this one another --state")
        }
    }

    /// The lock if it is free; otherwise who holds it (the dashboard then shows the feed that
    /// process keeps, instead of ingesting a second time).
    static func attempt(statePath: String, role: String) throws -> (lock: StateLock?, holder: StateLock.Holder?) {
        switch try StateLock.attempt(StateLock.watchPath(statePath), role: role) {
        case .acquired(let lock): return (lock, nil)
        case .held(let holder): return (nil, holder ?? StateLock.Holder(pid: 0, role: "another rbacwatch"))
        }
    }
}

/// Who is acting: `--by`/`--approver`, else the login name: `$USER`, `$LOGNAME`, then the
/// account the process runs as (a service or a container may set neither variable).
enum Actor {
    static func name(_ explicit: String?, environment: [String: String]) -> String {
        if let explicit, !explicit.isEmpty { return explicit }
        for key in ["USER", "LOGNAME"] {
            if let value = environment[key], !value.isEmpty { return value }
        }
        return accountName() ?? "uid \(geteuid())"
    }

    /// The name of the account the process runs as, from the password database.
    static func accountName() -> String? {
        var record = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 4096)
        guard getpwuid_r(geteuid(), &record, &buffer, buffer.count, &result) == 0, result != nil, let name = record.pw_name else { return nil }
        let text = String(cString: name)
        return text.isEmpty ? nil : text
    }
}

/// Reading snapshot files given on the command line.
enum SnapshotFiles {
    /// A snapshot file as its canonical document: decoded to check it (and re-encoded, so a file
    /// written by another tool compares by its content), then let go.
    static func document(_ path: String) throws -> [UInt8] {
        try load(path).canonicalJSON()
    }

    static func load(_ path: String) throws -> Snapshot {
        let bytes: [UInt8]
        do {
            bytes = try FileBytes.read(path, limit: FileBytes.dataLimit)
        } catch {
            throw OperationError(error.description)
        }
        do {
            return try Snapshot(canonicalBytes: bytes)
        } catch {
            throw SnapshotFileError(kind: error.kind, detail: "\(path): \(error.detail)")
        }
    }
}
