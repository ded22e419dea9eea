import ArgumentParser
import AuditCore
import AuditEngine
import AuditStore
import Foundation
import GenesysClient
import TerminalUI

/// Options the dashboard takes wherever it runs (`tui`, `demo`).
struct DashboardOptions: ParsableArguments {
    @Flag(name: .customLong("read-only"), help: "Disable approvals in the dashboard.")
    var readOnly = false

    @Option(help: "Theme: default, light, high-contrast, monochrome, or a theme file (NO_COLOR is honoured).")
    var theme: String?

    @Option(help: "Who approves from the dashboard (default: the login name).")
    var approver: String?
}

/// `rbacwatch` / `rbacwatch tui`: the dashboard against the configured organisation.
struct TUICommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tui",
        abstract: "Open the dashboard: who can do what, what changed, live (the default command).",
        discussion: "Keys: run rbacwatch keys, or press ? in the dashboard.")

    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var state: StateOptions
    @OptionGroup var dashboard: DashboardOptions

    @OptionGroup var comparison: ComparisonOptions

    @Option(help: "How often to collect and compare: 30s, 5m, 1h.")
    var interval = Interval(argument: "5m")!

    @Option(name: .customLong("keep-snapshots"), help: "Snapshots kept in the store besides the baselines' (older ones are pruned).")
    var keepSnapshots = 10

    @OptionGroup var rules: RuleOptions

    @Flag(name: .customLong("no-audit"), help: "Do not follow the audit feed (drift only).")
    var noAudit = false

    func validate() throws {
        try interval.check("--interval", 1...86_400)
        try FlagCheck.range(keepSnapshots, FlagCheck.keepSnapshots, "--keep-snapshots")
    }

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        try await CommandErrors.handle {
            try DashboardApp.requireTerminal()
            let connection = try connection.resolve(environment: environment)
            let options = try comparison.driftOptions()
            let store = try state.open(environment: environment)
            let monitor = DriftMonitor(store: store, interval: interval.duration, options: options, keepSnapshots: keepSnapshots) {
                try await SnapshotRunner.collect(connection, settings: .init(), logger: CLILogging.silent, progress: ProgressLine(enabled: false)).0
            }
            var audit: (AuditFeedLoader, GenesysAPIClient?)?
            var feedLock: StateLock?
            if !noAudit {
                let ruleSet = try rules.load(environment: environment)
                // One process follows the feed into a state file: if `watch` already does, the
                // dashboard shows what it records instead of ingesting a second time.
                let (lock, holder) = try state.tryLockFeed(environment: environment, role: "the rbacwatch dashboard")
                if let lock {
                    feedLock = lock
                    let (ingestor, client) = AuditFeedSetup.ingestor(connection, store: store, rules: ruleSet)
                    audit = (AuditFeedLoader(ingestor: ingestor, store: store, rules: ruleSet), client)
                } else {
                    audit = (AuditFeedLoader(ingestor: nil, keptBy: holder, store: store, rules: ruleSet), nil)
                }
            }
            defer { withExtendedLifetime(feedLock) {} }
            do {
                try await DashboardApp(
                    monitor: monitor, readOnly: dashboard.readOnly, themeName: dashboard.theme,
                    approver: Actor.name(dashboard.approver, environment: environment), environment: environment, policy: options.policy,
                    audit: audit?.0
                ).run()
            } catch {
                await audit?.1?.shutdown()
                throw error
            }
            await audit?.1?.shutdown()
        }
    }
}

/// `rbacwatch keys`: the key bindings as a Markdown table (the README's is this output).
struct KeysCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "keys", abstract: "Print the dashboard's key bindings (Markdown).")

    func run() throws { Console.out(KeyMap.markdownTable()) }
}
