import ArgumentParser
import AuditCore
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
        guard verify >= 0 else { throw ValidationError("--verify cannot be negative.") }
        guard (1...500).contains(pageSize), (1...500).contains(userPageSize) else {
            throw ValidationError("page sizes must be between 1 and 500.")
        }
        guard (1...64).contains(concurrency) else { throw ValidationError("--concurrency must be between 1 and 64.") }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("unknown --log-level \(logLevel).") }
    }

    func run() async throws {
        let logger = CLILogging.logger(label: "rbacwatch.snapshot", level: logLevel)
        do {
            let resolved = try connection.resolve(environment: ProcessInfo.processInfo.environment)
            var settings = SnapshotRunner.Settings()
            settings.collector.pageSize = pageSize
            settings.collector.userPageSize = userPageSize
            settings.collector.verifySample = verify
            settings.collector.verifySeed = UInt64.random(in: 0...UInt64.max)
            settings.concurrency = concurrency
            let (snapshot, report) = try await SnapshotRunner.collect(
                resolved, settings: settings, logger: logger, progress: ProgressLine(enabled: Console.stderrIsTerminal))
            try emit(snapshot, report)
        } catch let failure as ReportedFailure {
            throw ExitCode(failure.code)
        } catch {
            let (message, code) = SnapshotRunner.explain(error)
            Console.fail(message)
            throw ExitCode(code)
        }
    }

    /// Writes the file (if asked) and the summary; exits 4 when the snapshot is partial.
    func emit(_ snapshot: Snapshot, _ report: CollectionReport) throws {
        var written: (String, Int, String)?
        let bytes = snapshot.canonicalJSON()
        if let out {
            if out == "-" {
                FileHandle.standardOutput.write(Data(bytes))
            } else {
                try AtomicFile.write(bytes, to: out)
                written = (out, bytes.count, ContentHash.sha256Hex(bytes))
            }
        }
        let lines = SnapshotSummaryText.lines(snapshot, report, written: written)
        for line in lines {
            if out == "-" { Console.err(line) } else { Console.out(line) }
        }
        if snapshot.isPartial { throw ReportedFailure(code: RBACWatchExit.partial) }
    }
}
