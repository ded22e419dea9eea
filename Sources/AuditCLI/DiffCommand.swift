import ArgumentParser
import AuditCore
import AuditEngine
import AuditStore
import Foundation
import GenesysClient

extension Severity: ExpressibleByArgument {
    public init?(argument: String) { self.init(name: argument) }
    public static var allValueStrings: [String] { Severity.allCases.map(\.name) }
}

extension DriftReport.Format: ExpressibleByArgument {}

/// `rbacwatch diff`: what changed since the approved baseline, how dangerous it is, and — with
/// `--fail-on` — whether a pipeline should stop.
struct DiffCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "diff",
        abstract: "Compare the organisation (or a snapshot file) with the accepted baseline.",
        discussion: """
            Exit codes: 0 nothing unapproved at or above --fail-on (or no --fail-on), 3 something is, \
            1 error (no baseline, unreadable file, collection failed), 2 usage.
            """)

    @OptionGroup var state: StateOptions
    @OptionGroup var connection: ConnectionOptions

    @Option(help: "Compare this snapshot file instead of collecting the organisation now.")
    var current: String?

    @Option(help: "Compare against this snapshot file instead of the accepted baseline.")
    var baseline: String?

    @Option(help: "Output format: table, json, csv or ocsf.")
    var format: DriftReport.Format = .table

    @Option(name: .customLong("fail-on"), help: "Exit 3 when an unapproved change is at least this severe: low, medium, high, critical.")
    var failOn: Severity?

    @OptionGroup var comparison: ComparisonOptions

    @Flag(help: "In the table, list every principal's change instead of folding them under their cause.")
    var expand = false

    @Option(name: .long, help: "Write the report to this file (mode 0600) instead of stdout.")
    var out: String?

    @Flag(name: .customLong("allow-partial"), help: "Compare even when the current snapshot is partial.")
    var allowPartial = false

    @Flag(name: .customLong("no-attribution"), help: "Do not link changes to the audit events that explain them.")
    var noAttribution = false

    @Option(name: .customLong("keep-snapshots"), help: "Snapshots kept in the store besides the baselines' (older ones are pruned).")
    var keepSnapshots = 10

    func validate() throws {
        try FlagCheck.range(keepSnapshots, FlagCheck.keepSnapshots, "--keep-snapshots")
        if let out { try OutputFile.check(out) }
    }

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        try await CommandErrors.handle {
            let options = try comparison.driftOptions()
            let store = try await state.open(environment: environment)

            // The baseline: a file, or the accepted one (read by the check).
            let against: DriftCheck.Against
            if let baseline {
                against = .document(try SnapshotFiles.document(baseline))
            } else {
                guard try await store.currentBaseline() != nil else {
                    throw OperationError("no baseline yet: accept one with rbacwatch baseline accept (or pass --baseline FILE)")
                }
                against = .accepted
            }

            var settings = DriftCheck.Settings()
            settings.options = options
            settings.allowPartial = allowPartial
            settings.keepSnapshot = current == nil
            settings.keepSnapshots = keepSnapshots
            settings.attribute = !noAttribution

            // The current state: a file, or the organisation now (kept in the store). Only its
            // document leaves this block: the decoded snapshot is let go before the baseline is read.
            var live: GenesysConnection?
            let kept: DriftCheck.Current
            do {
                let currentSnapshot: Snapshot
                var currentAt = Date()
                if let current {
                    currentSnapshot = try SnapshotFiles.load(current)
                    // A file was collected no later than it was written.
                    if let written = try? FileManager.default.attributesOfItem(atPath: current)[.modificationDate] as? Date { currentAt = min(currentAt, written) }
                } else {
                    let connection = try connection.resolve(environment: environment)
                    live = connection
                    currentSnapshot = try await SnapshotRunner.collect(
                        connection, settings: .init(), logger: CLILogging.logger(label: "rbacwatch.diff", level: "warning"),
                        progress: ProgressLine(enabled: Console.stderrIsTerminal)
                    ).0
                    currentAt = Date()
                }
                if DriftCheck.refusal(for: currentSnapshot, allowPartial: allowPartial) != nil {
                    throw OperationError.partial(currentSnapshot, "the current snapshot", why: "a partial snapshot would show false removals")
                }
                kept = try await DriftCheck.keep(currentSnapshot, collectedAt: currentAt, settings: settings, store: store)
            }
            ProcessMemory.releaseFreed()

            let client = noAttribution ? nil : live.map { AuditFeedSetup.auditClient($0) }
            let outcome: DriftCheck.Outcome
            do {
                outcome = try await DriftCheck.compare(kept, against: against, settings: settings, store: store, source: client.map { GenesysAuditSource(client: $0) })
            } catch {
                await client?.shutdown()
                throw error
            }
            await client?.shutdown()
            let info: DriftReport.BaselineInfo =
                if let accepted = outcome.baseline {
                    .init(version: accepted.version, rootHash: accepted.rootHash, acceptedAt: accepted.acceptedAt, acceptedBy: accepted.acceptedBy)
                } else {
                    .init(version: nil, rootHash: outcome.result.baselineRoot, acceptedAt: nil, acceptedBy: nil)
                }
            var report = DriftReport(baseline: info, review: outcome.review, failOn: failOn)
            if let attribution = outcome.attribution {
                report.attribution = attribution.attribution
                report.coverage = attribution.coverage
                report.attributionNote = attribution.note
            }
            let bytes = report.render(format, expand: expand)
            if let out {
                try AtomicFile.write(bytes, to: out)
            } else {
                Console.output(bytes, json: format == .json || format == .ocsf)
            }
            if !report.failing.isEmpty { throw ExitCode(RBACWatchExit.driftFound) }
        }
    }
}

/// How drift is judged, wherever it is computed (`diff`, `tui`, `demo`).
struct ComparisonOptions: ParsableArguments {
    @Option(help: "Risk policy file (JSON) instead of the built-in one (rbacwatch risk default prints it).")
    var risk: String?

    @Option(help: "Jaccard similarity of permissions above which a deleted and a created role are one role recreated.")
    var similarity = 0.8

    func validate() throws {
        guard (0.0...1.0).contains(similarity) else { throw ValidationError("--similarity is between 0 and 1.") }
    }

    func driftOptions() throws -> DriftOptions {
        var options = DriftOptions()
        options.recreateSimilarity = similarity
        if let risk {
            let data: Data
            do {
                data = Data(try FileBytes.read(risk, limit: FileBytes.configurationLimit))
            } catch {
                throw ConfigurationError("the risk policy: \(error.description)")
            }
            do throws(RiskPolicyError) {
                options.policy = try RiskPolicy(json: data)
            } catch {
                throw RiskPolicyError(description: "\(risk): \(error.description)")
            }
        }
        return options
    }
}
