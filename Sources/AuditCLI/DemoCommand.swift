import ArgumentParser
import AuditCore
import AuditEngine
import AuditStore
import Foundation
import GenesysClient
import GenesysSimulator

/// `rbacwatch demo`: the whole product on the embedded simulator, no account needed — a generated
/// contact centre, a first baseline, an administrator making changes in the background, and the
/// dashboard watching them arrive.
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run rbacwatch against the embedded Genesys Cloud simulator.",
        discussion: """
            Opens the dashboard on a generated organisation while simulated administrators change it. \
            --summary instead collects once and prints the summary (no terminal needed).
            """)

    @Option(help: "Number of users in the generated organisation.")
    var users = 2000

    @Option(help: "Seed of the generated organisation.")
    var seed: UInt64 = 1

    @Option(help: "How often the dashboard collects and compares: 5s, 30s, 1m.")
    var interval = Interval(argument: "10s")!

    @Option(help: "Changes the simulated administrators make per minute (0: none).")
    var activity = 12.0

    @Option(name: .customLong("extra-user"), help: "Add a user with this exact name (repeatable).")
    var extraUsers: [String] = []

    @Option(name: .customLong("state"), help: "State file (default: a temporary one, removed on exit).")
    var statePath: String?

    @OptionGroup var dashboard: DashboardOptions

    @OptionGroup var comparison: ComparisonOptions
    @OptionGroup var collection: CollectionOptions
    @OptionGroup var pushOptions: PushOptions

    @Flag(help: "Collect once and print the summary instead of opening the dashboard.")
    var summary = false

    @Option(name: .long, help: "With --summary: also write the canonical snapshot to this file.")
    var out: String?

    @Option(help: "With --summary: cross-check this many random users against authorization/subjects/{id}.")
    var verify = 25

    func validate() throws {
        try FlagCheck.range(users, FlagCheck.users, "--users")
        try interval.check("--interval", 1...86_400)
        try FlagCheck.activity(activity)
        try FlagCheck.range(verify, FlagCheck.verify, "--verify")
        if let out { try OutputFile.check(out) }
    }

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        try await CommandErrors.handle {
            if !summary { try DashboardApp.requireTerminal() }
            var configuration = SimulatorConfiguration()
            configuration.users = users
            configuration.seed = seed
            configuration.rateLimitPerMinute = 0  // the demo is about the product, not about waiting
            configuration.extraUserNames = extraUsers
            configuration.auditArrivalDelaySeconds = 2  // events reach the audit API a little late, as the real ones do
            let simulator = GenesysSimulator(configuration: configuration)
            if summary {
                try await runSummary(simulator)
            } else {
                try await runDashboard(simulator, environment: environment)
            }
        }
    }

    func runSummary(_ simulator: GenesysSimulator) async throws {
        let (userCount, seed, verify, out) = (users, seed, verify, out)
        let code = try await simulator.withRunning { endpoint in
            Console.out("Simulator listening at \(endpoint.apiBaseURL) with \(userCount) users (seed \(seed)).")
            var settings = SnapshotRunner.Settings()
            settings.collector.verifySample = verify
            let (snapshot, report) = try await SnapshotRunner.collect(
                Self.connection(endpoint), settings: settings, logger: CLILogging.logger(label: "rbacwatch.demo", level: "warning"),
                progress: ProgressLine(enabled: Console.stderrIsTerminal))
            var written: (String, Int, String)?
            if let out {
                let bytes = snapshot.canonicalJSON()
                try AtomicFile.write(bytes, to: out)
                written = (out, bytes.count, ContentHash.sha256Hex(bytes))
            }
            for line in SnapshotSummaryText.lines(snapshot, report, written: written) { Console.out(line) }
            return snapshot.isPartial ? RBACWatchExit.partial : RBACWatchExit.success
        }
        if code != 0 { throw ExitCode(code) }
    }

    func runDashboard(_ simulator: GenesysSimulator, environment: [String: String]) async throws {
        let temporary = statePath == nil ? FileManager.default.temporaryDirectory.appendingPathComponent("rbacwatch-demo-\(UUID().uuidString)").path : nil
        defer { if let temporary { try? FileManager.default.removeItem(atPath: temporary) } }
        let path = statePath ?? temporary! + "/state.sqlite"
        let (interval, activity, dashboard, seed) = (self.interval, self.activity, self.dashboard, self.seed)
        let options = try comparison.driftOptions()
        try await simulator.withRunning { endpoint in
            let store = try SQLiteAuditStore(path: path)
            let connection = Self.connection(endpoint)
            @Sendable func collect() async throws -> Snapshot {
                try await SnapshotRunner.collect(connection, settings: .init(), logger: CLILogging.silent, progress: ProgressLine(enabled: false)).0
            }
            if try await store.currentBaseline() == nil {
                let first = try await collect()
                _ = try await store.acceptBaseline(
                    snapshot: first, collectedAt: Date(), acceptedBy: "demo", note: "the demo's starting point", at: Date())
            }
            let admin = GenesysAPIClient(
                connection: GenesysConnection(
                    apiBaseURL: endpoint.apiBaseURL, loginBaseURL: endpoint.loginBaseURL, clientId: endpoint.adminClientId,
                    clientSecret: Secret(endpoint.adminClientSecret)),
                transport: AsyncHTTPClientTransport())
            let changes = Task {
                guard activity > 0 else { return }
                var activity = DemoActivity(
                    simulator: simulator, admin: admin, pause: Bounded.duration(seconds: 60 / activity, clampedTo: 0.01...6000), rng: SplitMix64(seed: seed &+ 7))
                await activity.run()
            }
            defer { changes.cancel() }
            // The audit feed, polled every few seconds so findings show while you watch.
            var settings = IngestionSettings()
            settings.pollInterval = 3
            settings.lag = 3
            settings.overlap = 10
            settings.initialLookback = 600
            // Findings and drift items go to simulated SIEM receivers: a Splunk HEC with indexer
            // acknowledgement and a signed webhook, served in-process (the header shows how delivery does).
            let ingestion = settings
            var receiverConfiguration = SIEMReceivers.Configuration()
            receiverConfiguration.hecAck = true
            let receivers = SIEMReceivers(configuration: receiverConfiguration)
            do {
                try await receivers.withRunning { endpoints in
                let destinations = Self.demoDestinations(endpoints)
                let secrets = [
                    "RBW_DEMO_HEC_TOKEN": receivers.configuration.hecToken, "RBW_DEMO_WEBHOOK_SECRET": receivers.configuration.webhookSecret,
                ]
                let deliverySetup = DeliverySetup(destinations)
                let deliveries = try await deliverySetup.services(store: store, environment: secrets)
                let truth = simulator.groundTruth()
                // A --state another rbacwatch follows the feed into is shown, not ingested twice.
                let engine = try EngineSetup(
                    connection: connection, store: store, statePath: path, driftInterval: interval.duration, options: options,
                    feed: .followOrShow(role: "the rbacwatch demo"), rules: .defaults(), ingestion: ingestion, delivery: deliverySetup.router,
                    organization: Organization(id: truth.organizationId, name: truth.organizationName), collection: collection.schedule,
                    push: !pushOptions.noPush)
                do {
                    try await engine.run {
                        try await DashboardApp(engine: engine, options: dashboard, environment: environment, deliveries: deliveries).run()
                    }
                } catch {
                    for service in deliveries { await service.shutdown() }
                    throw error
                }
                for service in deliveries { await service.shutdown() }
                }
            } catch {
                changes.cancel()
                await admin.shutdown()
                throw error
            }
            changes.cancel()
            _ = await changes.value
            await admin.shutdown()
        }
    }

    /// The demo's destinations: the simulated receivers, secrets from the demo's own environment.
    static func demoDestinations(_ endpoints: SIEMReceivers.Endpoints) -> [Destination] {
        var splunk = Destination(name: "splunk", kind: .splunkHEC)
        splunk.url = endpoints.hecURL
        splunk.secret = .environment("RBW_DEMO_HEC_TOKEN")
        splunk.acknowledgement = true
        splunk.index = "rbacwatch-demo"
        var webhook = Destination(name: "soc-webhook", kind: .webhook)
        webhook.url = endpoints.webhookURL
        webhook.secret = .environment("RBW_DEMO_WEBHOOK_SECRET")
        webhook.minimumSeverity = .high
        return [splunk, webhook]
    }

    static func connection(_ endpoint: SimulatorEndpoint) -> GenesysConnection {
        GenesysConnection(
            apiBaseURL: endpoint.apiBaseURL, loginBaseURL: endpoint.loginBaseURL, clientId: endpoint.clientId,
            clientSecret: Secret(endpoint.clientSecret))
    }
}
