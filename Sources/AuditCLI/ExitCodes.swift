import ArgumentParser
import AuditCore

/// Exit codes of every command, documented in README.md.
public enum RBACWatchExit {
    /// Success: the snapshot is complete.
    public static let success: Int32 = 0
    /// Failure: the command could not do its work (login refused, host unreachable, malformed reply…).
    public static let failure: Int32 = 1
    /// Usage or configuration error (ArgumentParser's own code for usage errors).
    public static let usage: Int32 = 2
    /// `diff --fail-on`: unapproved drift at or above the threshold.
    public static let driftFound: Int32 = 3
    /// The work was done but the snapshot is partial (missing permissions, unreadable references).
    public static let partial: Int32 = 4
}

/// An error already explained to the user on stderr; the command exits with `code`.
struct ReportedFailure: Error {
    var code: Int32
}

/// The command cannot do its work in this state (no baseline yet, a partial snapshot, an
/// unreadable file): exit 1 with this one line.
struct OperationError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }

    /// Refusing a partial snapshot, naming its first problem.
    static func partial(_ snapshot: Snapshot, _ what: String, why: String) -> OperationError {
        let count = snapshot.problems.count
        let first = snapshot.problems.first.map { ": \($0.code) \($0.endpoint) — \($0.message)" } ?? ""
        return OperationError(
            "\(what) is partial (\(count) problem\(count == 1 ? "" : "s")\(first)); \(why) — fix the client's permissions or pass --allow-partial")
    }
}
