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

/// Who is acting: `--by`/`--approver`, else the login name.
enum Actor {
    static func name(_ explicit: String?, environment: [String: String]) -> String {
        if let explicit, !explicit.isEmpty { return explicit }
        return environment["USER"] ?? environment["LOGNAME"] ?? "unknown"
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
