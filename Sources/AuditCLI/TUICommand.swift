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
    @OptionGroup var collection: CollectionOptions
    @OptionGroup var pushOptions: PushOptions

    @Option(help: "How often to collect and compare: 30s, 5m, 1h.")
    var interval = Interval(argument: "5m")!

    @Option(name: .customLong("keep-snapshots"), help: "Snapshots kept in the store besides the baselines' (older ones are pruned).")
    var keepSnapshots = 10

    @OptionGroup var rules: RuleOptions
    @OptionGroup var orgs: OrganizationsOptions

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
            let options = try comparison.driftOptions()
            let store = try await state.open(environment: environment)
            var connection: GenesysConnection
            var feed: EngineSetup.FeedPolicy = noAudit ? .none : .followOrShow(role: "the rbacwatch dashboard")
            if let fleetStore = store as? PostgresAuditStore {
                // One organisation of a fleet: its connection from the organisations file (or the
                // usual flags), its audit feed as the fleet's worker records it.
                connection = try Self.fleetConnection(orgs: orgs, name: fleetStore.organization, fallback: self.connection, environment: environment)
                if !noAudit { feed = .show(try await Self.fleetHolder(fleetStore)) }
            } else {
                connection = try self.connection.resolve(environment: environment)
            }
            // One process follows the feed into a state file: if `watch` already does, the
            // dashboard shows what it records instead of ingesting a second time.
            let engine = try EngineSetup(
                connection: connection, store: store, statePath: state.resolvedPath(environment: environment), driftInterval: interval.duration,
                options: options, keepSnapshots: keepSnapshots, feed: feed, rules: noAudit ? nil : try rules.load(environment: environment),
                collection: collection.schedule, push: !pushOptions.noPush)
            try await engine.run {
                try await DashboardApp(engine: engine, options: dashboard, environment: environment).run()
            }
        }
    }
}

extension TUICommand {
    /// The organisation's connection: its entry in the organisations file when one is given,
    /// otherwise the connection flags and environment.
    static func fleetConnection(
        orgs: OrganizationsOptions, name: String, fallback: ConnectionOptions, environment: [String: String]
    ) throws -> GenesysConnection {
        guard orgs.resolvedPath(environment: environment) != nil else { return try fallback.resolve(environment: environment) }
        guard let entry = try orgs.load(environment: environment).first(where: { $0.name == name }) else {
            throw ConfigurationError("organisation \(name) is not in the organisations file")
        }
        switch entry {
        case .invalid(_, let reason): throw ConfigurationError("organisation \(name) is misconfigured: \(reason)")
        case .valid(let config):
            var limits = GenesysConnection.Limits()
            limits.request = fallback.requestTimeout.duration
            limits.collection = fallback.collectionTimeout.duration
            return try FleetOrganization.resolve(config, environment: environment, fleetRules: RuleSet(rules: []), fleetDestinations: [], limits: limits).connection
        }
    }

    /// Who records the organisation's audit feed: the fleet worker holding its lease.
    static func fleetHolder(_ store: PostgresAuditStore) async throws -> StateLock.Holder {
        let lease = try await store.database.leases(prefix: "org:\(store.organization)").first { $0.name == "org:\(store.organization)" }
        if let lease, lease.held, let owner = lease.owner { return StateLock.Holder(pid: 0, role: "fleet worker \(owner)") }
        return StateLock.Holder(pid: 0, role: "no fleet worker holds \(store.organization) now (start rbacwatch watch --orgs)")
    }
}

/// `rbacwatch keys`: the key bindings as a Markdown table (the README's is this output).
struct KeysCommand: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "keys", abstract: "Print the dashboard's key bindings (Markdown).")

    func run() throws { Console.out(KeyMap.markdownTable()) }
}
