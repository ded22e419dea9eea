import ArgumentParser
import AuditCore
import AuditStore
import Foundation

/// `--state PATH`: the state file (default `$XDG_DATA_HOME/rbacwatch/state.sqlite`, or
/// `RBACWATCH_STATE`).
struct StateOptions: ParsableArguments {
    @Option(name: .customLong("state"), help: "State file (default: $XDG_DATA_HOME/rbacwatch/state.sqlite; env: RBACWATCH_STATE).")
    var path: String?

    func resolvedPath(environment: [String: String]) -> String {
        StatePaths.stateFile(explicit: path, environment: environment)
    }

    /// Opens (or creates) the store. `RBACWATCH_FAULT_WRITE_PAUSE_MS` makes every write pause
    /// inside its transaction — the crash tests kill the process there.
    func open(environment: [String: String]) throws -> SQLiteAuditStore {
        var pause: SQLiteAuditStore.WritePause?
        if let text = environment["RBACWATCH_FAULT_WRITE_PAUSE_MS"], let ms = Int(text), ms > 0 {
            pause = .init(duration: .milliseconds(ms)) {
                Console.err("rbacwatch: fault injection: pausing \(ms) ms inside a state write")
            }
        }
        return try SQLiteAuditStore(path: resolvedPath(environment: environment), writePause: pause)
    }
}

extension StateOptions {
    /// Runs a command's body with the store open, its errors as one line and an exit code.
    func withStore(_ body: (SQLiteAuditStore) async throws -> Void) async throws {
        let environment = ProcessInfo.processInfo.environment
        try await CommandErrors.handle {
            try await body(try open(environment: environment))
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
