import ArgumentParser
import AuditCore
import AuditStore
import Foundation
import GenesysClient
import Logging

/// `rbacwatch snapshot`: collect an organisation, print a summary, optionally write the
/// canonical snapshot file.
struct SnapshotCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "snapshot",
        abstract: "Collect the organisation's access control and print a summary.",
        discussion: """
            Exit codes: 0 complete, 1 failed (login refused, host unreachable, malformed reply), \
            2 usage or configuration error, 4 written but partial (missing permissions or unreadable references).
            """)

    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var state: StateOptions

    @Flag(name: .customLong("no-store"), help: "Do not keep the snapshot in the state store.")
    var noStore = false

    @Option(name: .customLong("keep-snapshots"), help: "Snapshots kept in the store besides the baselines' (older ones are pruned).")
    var keepSnapshots = 10

    @Option(name: .long, help: "Write the canonical snapshot (JSON) to this file; '-' for stdout.")
    var out: String?

    @Option(help: "Cross-check this many random users against authorization/subjects/{id}.")
    var verify = 0

    @Option(name: .customLong("page-size"), help: "Page size for lists other than users.")
    var pageSize = 100

    @Option(name: .customLong("user-page-size"), help: "Page size for the users list.")
    var userPageSize = 500

    @Option(help: "Requests in flight at once.")
    var concurrency = 8

    @Option(name: .customLong("log-level"), help: "Log level on stderr: trace, debug, info, warning, error.")
    var logLevel = "warning"

    func validate() throws {
        try FlagCheck.range(verify, FlagCheck.verify, "--verify")
        try FlagCheck.range(keepSnapshots, FlagCheck.keepSnapshots, "--keep-snapshots")
        if let out { try OutputFile.check(out) }
        guard (1...500).contains(pageSize), (1...500).contains(userPageSize) else {
            throw ValidationError("page sizes must be between 1 and 500.")
        }
        guard (1...64).contains(concurrency) else { throw ValidationError("--concurrency must be between 1 and 64.") }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("unknown --log-level \(logLevel).") }
    }

    func run() async throws {
        let logger = CLILogging.logger(label: "rbacwatch.snapshot", level: logLevel)
        try await CommandErrors.handle {
            let resolved = try connection.resolve(environment: ProcessInfo.processInfo.environment)
            var settings = SnapshotRunner.Settings()
            settings.collector.pageSize = pageSize
            settings.collector.userPageSize = userPageSize
            settings.collector.verifySample = verify
            settings.collector.verifySeed = UInt64.random(in: 0...UInt64.max)
            settings.concurrency = concurrency
            let environment = ProcessInfo.processInfo.environment
            // Open the store first: a bad state file should stop us before the collection.
            let store = noStore ? nil : try await state.open(environment: environment)
            let (snapshot, report) = try await SnapshotRunner.collect(
                resolved, settings: settings, logger: logger, progress: ProgressLine(enabled: Console.stderrIsTerminal))
            let stored = try await store?.storeSnapshot(snapshot, collectedAt: Date())
            try await store?.pruneSnapshots(keepLatest: keepSnapshots)
            try emit(snapshot, report, stored: stored.map { ($0.rootHash, state.resolvedPath(environment: environment)) })
        }
    }

    /// Writes the file (if asked) and the summary; exits 4 when the snapshot is partial.
    func emit(_ snapshot: Snapshot, _ report: CollectionReport, stored: (root: String, path: String)?) throws {
        var written: (String, Int, String)?
        if let out {
            let bytes = snapshot.canonicalJSON()
            if out == "-" {
                Console.output(bytes, json: true)
            } else {
                try AtomicFile.write(bytes, to: out)
                written = (out, bytes.count, ContentHash.sha256Hex(bytes))
            }
        }
        var lines = SnapshotSummaryText.lines(snapshot, report, written: written)
        if let stored { lines.append(TerminalSafe.sanitize("Stored as \(stored.root.prefix(12)) in \(stored.path)")) }
        // When the snapshot itself goes to stdout, the summary goes to stderr.
        let toStdout = out == "-" || out.map(Console.isStdout) == true
        for line in lines {
            if toStdout { Console.err(line) } else { Console.out(line) }
        }
        if snapshot.isPartial { throw ReportedFailure(code: RBACWatchExit.partial) }
    }
}
