import ArgumentParser
import AuditCore
import AuditStore
import Foundation
import GenesysClient

/// `rbacwatch baseline accept|list|show`.
struct BaselineCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "baseline", abstract: "Accept, list and show approved baselines.",
        subcommands: [Accept.self, List.self, Show.self])

    struct Accept: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Accept a snapshot as the approved baseline.",
            discussion: "Without --snapshot or --latest, collects the organisation now and accepts that.")

        @OptionGroup var state: StateOptions
        @OptionGroup var connection: ConnectionOptions

        @Option(help: "Accept this snapshot file (written by rbacwatch snapshot --out).")
        var snapshot: String?

        @Flag(help: "Accept the most recent snapshot in the state store.")
        var latest = false

        @Option(help: "Why this baseline is being accepted.")
        var note: String?

        @Option(help: "Who accepts it (default: the login name).")
        var by: String?

        @Flag(name: .customLong("allow-partial"), help: "Accept a partial snapshot.")
        var allowPartial = false

        func validate() throws {
            if snapshot != nil && latest { throw ValidationError("--snapshot and --latest cannot be used together.") }
        }

        func run() async throws {
            let environment = ProcessInfo.processInfo.environment
            try await CommandErrors.handle {
                let store = try await state.open(environment: environment)
                let who = Actor.name(by, environment: environment)
                let now = Date()
                let accepted: Baseline
                let content: Snapshot
                if latest {
                    guard let newest = try await store.snapshots().first else {
                        throw OperationError("the state store holds no snapshot yet: run rbacwatch snapshot first")
                    }
                    guard let stored = try await store.snapshot(rootHash: newest.rootHash) else {
                        throw StoreError(.corrupt, "snapshot \(newest.rootHash) is listed but cannot be read")
                    }
                    content = stored
                    try refusePartial(content)
                    accepted = try await store.acceptBaseline(rootHash: newest.rootHash, acceptedBy: who, note: note, at: now)
                } else {
                    if let snapshot {
                        content = try SnapshotFiles.load(snapshot)
                    } else {
                        let connection = try connection.resolve(environment: environment)
                        content = try await SnapshotRunner.collect(
                            connection, settings: .init(), logger: CLILogging.logger(label: "rbacwatch.baseline", level: "warning"),
                            progress: ProgressLine(enabled: Console.stderrIsTerminal)
                        ).0
                    }
                    try refusePartial(content)
                    accepted = try await store.acceptBaseline(snapshot: content, collectedAt: now, acceptedBy: who, note: note, at: now)
                }
                Console.out(
                    TerminalSafe.sanitize(
                        "Accepted baseline v\(accepted.version): \(accepted.rootHash) (\(content.users.count) users"
                            + (content.organization.map { ", \($0.name)" } ?? "") + ") by \(accepted.acceptedBy)"))
            }
        }

        func refusePartial(_ snapshot: Snapshot) throws {
            guard snapshot.isPartial, !allowPartial else { return }
            throw OperationError.partial(snapshot, "the snapshot", why: "a partial baseline would hide access it could not read")
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List accepted baselines, newest last.")

        @OptionGroup var state: StateOptions

        func run() async throws {
            try await CommandErrors.handle {
                let store = try await state.open(environment: ProcessInfo.processInfo.environment)
                let baselines = try await store.baselines()
                guard !baselines.isEmpty else {
                    Console.out("No baseline yet: accept one with rbacwatch baseline accept.")
                    return
                }
                let snapshots = Dictionary(try await store.snapshots().map { ($0.rootHash, $0) }, uniquingKeysWith: { a, _ in a })
                Console.out("VERSION  ACCEPTED                 BY              USERS  ROOT          NOTE")
                for baseline in baselines {
                    let marker = baseline == baselines.last ? "*" : " "
                    let users = snapshots[baseline.rootHash].map { String($0.users) } ?? "?"
                    let accepted = DriftReport.timestamp(baseline.acceptedAt).prefix(19).replacingOccurrences(of: "T", with: " ") + "Z"
                    var line = "\(marker)v\(baseline.version)".padding(toLength: 9, withPad: " ", startingAt: 0)
                    line += accepted + "    "
                    line += baseline.acceptedBy.padding(toLength: 16, withPad: " ", startingAt: 0)
                    line += String(repeating: " ", count: max(0, 5 - users.count)) + users + "  "
                    line += String(baseline.rootHash.prefix(12)) + "  " + (baseline.note ?? "")
                    Console.out(TerminalSafe.sanitize(line))
                }
            }
        }
    }

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Describe a baseline (the current one by default).")

        @OptionGroup var state: StateOptions

        @Option(help: "Baseline version to show.")
        var version: Int?

        func run() async throws {
            try await CommandErrors.handle {
                let store = try await state.open(environment: ProcessInfo.processInfo.environment)
                let baselines = try await store.baselines()
                guard let baseline = version.map({ v in baselines.first { $0.version == v } }) ?? baselines.last else {
                    throw OperationError(version.map { "there is no baseline v\($0)" } ?? "no baseline yet: accept one with rbacwatch baseline accept")
                }
                guard let snapshot = try await store.snapshot(rootHash: baseline.rootHash) else {
                    throw StoreError(.corrupt, "baseline v\(baseline.version) refers to a snapshot the store does not hold")
                }
                Console.out(
                    TerminalSafe.sanitize(
                        "Baseline v\(baseline.version), accepted \(DriftReport.timestamp(baseline.acceptedAt)) by \(baseline.acceptedBy)"
                            + (baseline.note.map { ": \($0)" } ?? "")))
                Console.out("Root hash \(baseline.rootHash)")
                for line in SnapshotSummaryText.lines(snapshot, nil, written: nil) { Console.out(line) }
            }
        }
    }
}

/// Runs a command body; any error becomes one line on stderr and its exit code.
enum CommandErrors {
    static func handle(_ body: () async throws -> Void) async throws {
        do {
            try await body()
        } catch let exit as ExitCode {
            throw exit
        } catch let failure as ReportedFailure {
            throw ExitCode(failure.code)
        } catch {
            let (message, code) = SnapshotRunner.explain(error)
            Console.fail(message)
            throw ExitCode(code)
        }
    }
}
