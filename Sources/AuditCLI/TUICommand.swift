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
            let store = try await state.open(environment: environment)
            // One process follows the feed into a state file: if `watch` already does, the
            // dashboard shows what it records instead of ingesting a second time.
            let engine = try EngineSetup(
                connection: connection, store: store, statePath: state.resolvedPath(environment: environment), driftInterval: interval.duration,
                options: options, keepSnapshots: keepSnapshots, feed: noAudit ? .none : .followOrShow(role: "the rbacwatch dashboard"),
                rules: noAudit ? nil : try rules.load(environment: environment))
            try await engine.run {
                try await DashboardApp(engine: engine, options: dashboard, environment: environment).run()
            }
        }
    }
}

/// `rbacwatch keys`: the key bindings as a Markdown table (the README's is this output).
struct KeysCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "keys", abstract: "Print the dashboard's key bindings (Markdown).")

    func run() throws { Console.out(KeyMap.markdownTable()) }
}
