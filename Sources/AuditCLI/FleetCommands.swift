import ArgumentParser
import AuditCore
import AuditEngine
import AuditStore
import Foundation
import GenesysClient
import Logging
import Prometheus
import Synchronization

/// `--orgs FILE` (or `RBACWATCH_ORGS`): the organisations a fleet works.
struct OrganizationsOptions: ParsableArguments {
    @Option(name: .customLong("orgs"), help: "Organisations file (JSON; env: RBACWATCH_ORGS): watch every organisation in it, leased among the workers sharing --store.")
    var path: String?

    func resolvedPath(environment: [String: String]) -> String? {
        path ?? environment["RBACWATCH_ORGS"].flatMap { $0.isEmpty ? nil : $0 }
    }

    func load(environment: [String: String]) throws -> [OrganizationsFile.Entry] {
        guard let path = resolvedPath(environment: environment) else { throw ConfigurationError("no organisations file: pass --orgs FILE") }
        let bytes: [UInt8]
        do {
            bytes = try FileBytes.read(path, limit: FileBytes.configurationLimit)
        } catch {
            throw ConfigurationError("--orgs: \(error.description)")
        }
        do {
            return try OrganizationsFile.parse(bytes)
        } catch {
            throw ConfigurationError("\(path): \(error.description)")
        }
    }
}

/// One organisation of the fleet made ready to work: its connection (credentials read from the
/// environment or files, never logged), rules, destinations and intervals. A failure is one line
/// that names the organisation; the others carry on.
struct FleetOrganization {
    let config: OrganizationConfig
    let connection: GenesysConnection
    let rules: RuleSet
    let destinations: [Destination]

    static func credential(_ source: OrganizationConfig.Source, what: String, environment: [String: String]) throws -> String {
        switch source {
        case .literal(let value): return value
        case .environment(let name):
            guard let value = environment[name]?.trimmingCharacters(in: .whitespacesAndNewlines), !value.isEmpty else {
                throw ConfigurationError("\(what): the environment variable \(name) is not set")
            }
            return value
        case .file(let path):
            do {
                let text = String(decoding: try FileBytes.read(path, limit: 64 << 10), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
                guard !text.isEmpty else { throw ConfigurationError("\(what): the file \(path) is empty") }
                return text
            } catch let error as FileReadError {
                throw ConfigurationError("\(what): \(error.description)")
            }
        }
    }

    static func resolve(
        _ config: OrganizationConfig, environment: [String: String], fleetRules: RuleSet, fleetDestinations: [Destination], limits: GenesysConnection.Limits
    ) throws -> FleetOrganization {
        let clientId = try credential(config.clientId, what: "the client id", environment: environment)
        let secret = Secret(try credential(config.clientSecret, what: "the client secret", environment: environment))
        var api: String
        var login: String?
        if let url = config.apiURL {
            api = url.hasSuffix("/") ? String(url.dropLast()) : url
            login = config.loginURL
        } else if let region = config.region, let urls = GenesysRegion.baseURLs(for: region) {
            api = urls.api
            login = config.loginURL ?? urls.login
        } else {
            throw ConfigurationError("unknown region \(config.region ?? ""); known regions: \(GenesysRegion.apiHosts.keys.sorted().joined(separator: ", "))")
        }
        guard let parsed = URL(string: api), let scheme = parsed.scheme, ["http", "https"].contains(scheme), parsed.host != nil else {
            throw ConfigurationError("the API URL \(api) is not an http(s) URL")
        }
        let connection = GenesysConnection(
            apiBaseURL: api, loginBaseURL: login ?? api.replacingOccurrences(of: "//api.", with: "//login."), clientId: clientId, clientSecret: secret,
            limits: limits)
        var rules = fleetRules
        if let directory = config.rules {
            do {
                rules = try RuleFiles.load(directories: [directory], includeDefaults: true)
            } catch {
                throw ConfigurationError("rules \(directory): \(error)")
            }
        }
        var destinations = fleetDestinations
        if let names = config.destinations {
            let known = Set(fleetDestinations.map(\.name))
            if let unknown = names.first(where: { !known.contains($0) }) {
                throw ConfigurationError("destination \(unknown) is not in the destinations file (--destinations)")
            }
            destinations = fleetDestinations.filter { names.contains($0.name) }
        }
        return FleetOrganization(config: config, connection: connection, rules: rules, destinations: destinations)
    }
}

/// `watch --orgs FILE --store postgres://…`: this process is one worker of a fleet. It leases a
/// fair share of the organisations (at most --max-orgs) and each destination's queue it can,
/// and works what it holds until SIGTERM, when it finishes the cycles in progress and releases
/// its leases so another worker takes over at once.
struct FleetWatch {
    var entries: [OrganizationsFile.Entry]
    var database: PostgresDatabase
    /// How each organisation is worked.
    var work: OrganizationRun.Settings
    var deliverySettings: DeliverySettings
    var settings: FleetSettings
    var http: HTTPAddress?
    var logger: Logger

    func run() async throws {
        let registry = http.map { _ in PrometheusCollectorRegistry() }
        let fleetMetrics = registry.map { FleetMetrics(registry: $0, worker: settings.workerId) }
        let active = entries.filter { if case .valid(let config) = $0 { !config.disabled } else { true } }
        for entry in entries {
            if case .invalid(let name, let reason) = entry {
                logger.error("organisation misconfigured: it is reported and the others carry on", metadata: ["organization": "\(name)", "problem": "\(reason)"])
            }
        }
        let byName = Dictionary(active.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        let runner = OrganizationRun(database: database, worker: settings.workerId, registry: registry, logger: logger, settings: work)
        let senders = work.destinations
        let environment = work.environment
        let deliverySettings = self.deliverySettings
        let logger = self.logger
        let worker = FleetWorker(
            database: database, organizations: active.map(\.name).sorted(), destinations: senders.map(\.name), settings: settings, logger: logger,
            runOrganization: { name, store in
                guard let entry = byName[name] else { return }
                await runner.run(entry, store: store)
            },
            runDestination: { name, outbox in
                guard let destination = senders.first(where: { $0.name == name }) else { return }
                do {
                    let service = DeliveryService(
                        destination: destination, sender: try DeliverySetup.sender(destination, environment: environment), store: outbox, settings: deliverySettings)
                    await service.run()
                    await service.shutdown()
                } catch {
                    logger.error("destination cannot be set up", metadata: ["destination": "\(name)", "error": "\(error)"])
                    while !Task.isCancelled { try? await Task.sleep(for: .seconds(60)) }
                }
            })
        let workerTask = Task { await worker.run() }
        // The worker's own series follow its health (what it holds, leases lost, takeovers).
        let observer = Task {
            while !Task.isCancelled {
                fleetMetrics?.observe(worker.health)
                try? await Task.sleep(for: settings.tick)
            }
        }
        defer { observer.cancel() }
        let startedAt = Date()
        var endpointTask: Task<Void, any Error>?
        if let http, let registry {
            let endpoint = StatusEndpoint(
                host: http.host, port: http.port, registry: registry, logger: logger,
                readiness: { FleetReadiness.evaluate(worker.health, tick: settings.tick, startedAt: startedAt, now: Date()) },
                onListening: { port in logger.notice("serving /metrics, /healthz and /readyz on http://\(http.host):\(port)") })
            endpointTask = Task { try await endpoint.run() }
        }
        let stop = Mutex<CheckedContinuation<Void, Never>?>(nil)
        let signals = SignalWatch { number in
            logger.notice("signal \(number): finishing the cycles in progress, releasing leases and stopping")
            stop.withLock { $0?.resume(); $0 = nil }
        }
        defer { signals.cancel() }
        logger.notice(
            "fleet worker started", metadata: ["worker": "\(settings.workerId)", "organizations": "\(active.count)", "max-orgs": "\(settings.maxOrganizations)"])
        await withCheckedContinuation { continuation in stop.withLock { $0 = continuation } }
        workerTask.cancel()
        await workerTask.value
        endpointTask?.cancel()
        _ = await endpointTask?.result
        logger.notice("stopped")
    }
}

/// Works one organisation while its lease is held: resolves its configuration (a problem is
/// reported in the store and retried every minute), reads the organisation, takes its first
/// complete collection as the baseline when it has none, then follows the audit feed and checks
/// drift until cancelled.
struct OrganizationRun: Sendable {
    /// What every organisation of the fleet shares (each may override intervals, rules and destinations).
    struct Settings: Sendable {
        var fleetRules: RuleSet
        var destinations: [Destination]
        var ingestion: IngestionSettings
        var driftInterval: Duration
        var options: DriftOptions
        var keepSnapshots: Int
        var limits: GenesysConnection.Limits
        var noDrift: Bool
        var environment: [String: String]
        var collection = CollectionSchedule()
    }

    let database: PostgresDatabase
    let worker: String
    let registry: PrometheusCollectorRegistry?
    let logger: Logger
    let settings: Settings

    func report(_ name: String, _ health: String, _ detail: String?, id: String? = nil, displayName: String? = nil) async {
        try? await database.reportOrganization(name, health: health, detail: detail, worker: worker, organizationId: id, displayName: displayName)
    }

    func run(_ entry: OrganizationsFile.Entry, store: PostgresAuditStore) async {
        let name = entry.name
        var logger = self.logger
        logger[metadataKey: "organization"] = "\(name)"
        var backoff: Double = 15
        while !Task.isCancelled {
            let organization: FleetOrganization
            switch entry {
            case .invalid(_, let reason):
                await report(name, "misconfigured", reason)
                try? await Task.sleep(for: .seconds(300))
                continue
            case .valid(let config):
                do {
                    organization = try FleetOrganization.resolve(
                        config, environment: settings.environment, fleetRules: settings.fleetRules, fleetDestinations: settings.destinations, limits: settings.limits)
                } catch {
                    logger.error("organisation misconfigured", metadata: ["problem": "\(error)"])
                    await report(name, "misconfigured", "\(error)")
                    try? await Task.sleep(for: .seconds(60))
                    continue
                }
            }
            let client = AuditFeedSetup.auditClient(organization.connection, logger: logger)
            let identity: Organization
            do {
                identity = try await client.organization()
            } catch {
                await client.shutdown()
                if Task.isCancelled { break }
                logger.warning("cannot read the organisation; retrying", metadata: ["error": "\(error)", "retry-in": "\(Int(backoff))s"])
                await report(name, "unreachable", "\(error)")
                try? await Task.sleep(for: .seconds(backoff))
                backoff = min(300, backoff * 2)
                continue
            }
            backoff = 15
            await report(name, "starting", nil, id: identity.id, displayName: identity.name)
            await work(organization, identity: identity, client: client, store: store, logger: logger)
            await client.shutdown()
        }
    }

    private func work(_ organization: FleetOrganization, identity: Organization, client: GenesysAPIClient, store: PostgresAuditStore, logger: Logger) async {
        let name = organization.config.name
        let connection = organization.connection
        let router = organization.destinations.isEmpty ? nil : DeliveryRouter(destinations: organization.destinations)
        var ingestion = settings.ingestion
        if let seconds = organization.config.pollInterval { ingestion.pollInterval = seconds }
        let interval = organization.config.driftInterval.map { Duration.milliseconds(Int64($0 * 1000)) } ?? settings.driftInterval
        let metrics = registry.map { EngineMetrics(registry: $0, labels: [("organization", name)]) }
        let ingestor = AuditIngestor(
            source: GenesysAuditSource(client: client), store: store, rules: organization.rules, settings: ingestion, logger: logger, delivery: router,
            organization: identity)
        let collect: DriftMonitor.Collect = {
            let started = ContinuousClock.now
            let (snapshot, report) = try await SnapshotRunner.collect(connection, settings: .init(), logger: logger, progress: ProgressLine(enabled: false))
            metrics?.observeCollection(duration: ContinuousClock.now - started, requests: report.statistics.requests)
            return snapshot
        }
        // The worker follows this organisation's audit feed: drift checks between full walks
        // re-read only what it names.
        let incremental = settings.collection.incremental(connection, logger: logger) { duration, report in
            metrics?.observeCollection(duration: duration, requests: report.statistics.requests)
        }
        let monitor = DriftMonitor(
            store: store, interval: interval, options: settings.options, keepSnapshots: settings.keepSnapshots, delivery: router, incremental: incremental,
            collect: collect)
        let reporter = self
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await ingestor.run() }
            group.addTask {
                for await update in ingestor.updates {
                    metrics?.observe(update)
                    for finding in update.findings {
                        logger.notice("finding", metadata: ["rule": "\(finding.ruleId)", "severity": "\(finding.severity.name)", "entity": "\(finding.entityName)"])
                    }
                    if let failed = update.outcome.failed {
                        await reporter.report(name, "degraded", "audit poll failed: \(failed)")
                    } else {
                        await reporter.report(name, "ok", update.health.summary)
                    }
                }
            }
            if !settings.noDrift {
                group.addTask {
                    // A new organisation's first complete collection is its baseline.
                    if (try? await store.currentBaseline()) == nil {
                        for attempt in 0..<5 where !Task.isCancelled {
                            do {
                                let snapshot = try await collect()
                                if snapshot.isPartial { throw OperationError("the first collection was partial") }
                                _ = try await store.acceptBaseline(
                                    snapshot: snapshot, collectedAt: Date(), acceptedBy: "rbacwatch fleet (first collection)", note: "worker \(worker)",
                                    at: Date())
                                logger.notice("first collection accepted as the baseline", metadata: ["users": "\(snapshot.users.count)"])
                                break
                            } catch {
                                logger.warning("first collection failed", metadata: ["error": "\(error)", "attempt": "\(attempt + 1)"])
                                try? await Task.sleep(for: .seconds(30))
                            }
                        }
                    }
                    await withTaskGroup(of: Void.self) { inner in
                        inner.addTask { await monitor.run() }
                        inner.addTask {
                            for await update in monitor.updates {
                                metrics?.observe(update)
                                if let problem = update.status.problem { logger.warning("drift check failed", metadata: ["error": "\(problem)"]) }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// `/readyz` of a fleet worker: its ticks are current and its last tick reached the database.
enum FleetReadiness {
    static func evaluate(_ health: FleetHealth, tick: Duration, startedAt: Date, now: Date) -> Readiness {
        let tickSeconds = Double(tick.components.seconds) + Double(tick.components.attoseconds) / 1e18
        var reasons: [String] = []
        if let last = health.lastTick {
            if now.timeIntervalSince(last) > 3 * tickSeconds + 5 { reasons.append("no fleet tick for \(Int(now.timeIntervalSince(last)))s") }
        } else if now.timeIntervalSince(startedAt) > 3 * tickSeconds + 5 {
            reasons.append("the fleet worker has not ticked yet")
        }
        if let error = health.lastError { reasons.append("fleet: \(error)") }
        return Readiness(ready: reasons.isEmpty, reasons: reasons)
    }
}

/// `rbacwatch orgs list`: the organisations of a fleet with their lease, last poll, last
/// collection and health.
struct OrgsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "orgs", abstract: "The organisations of a fleet (a PostgreSQL store): leases, last poll, last collection, health.",
        subcommands: [List.self], defaultSubcommand: List.self)

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the organisations: file entries and what the store knows of them.")

        @OptionGroup var state: StateOptions
        @OptionGroup var orgs: OrganizationsOptions

        @Flag(help: "Also list the fleet's workers.")
        var workers = false

        func run() async throws {
            let environment = ProcessInfo.processInfo.environment
            try await CommandErrors.handle {
                guard state.isPostgres(environment: environment) else {
                    throw ConfigurationError("orgs list reads a fleet's PostgreSQL store: pass --store postgres://… (or set RBACWATCH_STORE)")
                }
                var entries: [OrganizationsFile.Entry] = []
                if orgs.resolvedPath(environment: environment) != nil { entries = try orgs.load(environment: environment) }
                let database = try await state.openDatabase(environment: environment)
                let statuses = Dictionary(try await database.organizations().map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
                let names = Set(statuses.keys).union(entries.map(\.name)).sorted()
                let now = Date()
                func age(_ date: Date?) -> String { date.map { IngestionHealth.duration(now.timeIntervalSince($0)) + " ago" } ?? "never" }
                var rows = [["ORGANIZATION", "WORKER", "TOKEN", "LAST POLL", "LAST COLLECTION", "HEALTH"]]
                for name in names {
                    let status = statuses[name]
                    let entry = entries.first { $0.name == name }
                    var health = status?.health ?? "-"
                    if case .invalid(_, let reason)? = entry { health = "misconfigured: \(reason)" } else if let detail = status?.detail { health += ": \(detail)" }
                    if case .valid(let config)? = entry, config.disabled { health = "disabled" }
                    let lease = status?.lease
                    let worker = lease.map { $0.held ? ($0.owner ?? "-") : $0.owner == nil ? "(released)" : "(expired)" } ?? "-"
                    rows.append([
                        TerminalSafe.sanitize(name), TerminalSafe.sanitize(worker), lease.map { "\($0.token)" } ?? "-", age(status?.lastPoll),
                        age(status?.lastCollection), TerminalSafe.sanitize(health),
                    ])
                }
                Console.out(TextTable.render(rows))
                if workers {
                    let list = try await database.workers(window: .seconds(60))
                    var table = [["WORKER", "HOST", "PID", "LAST SEEN", "MAX ORGS", "STATE"]]
                    for worker in list {
                        table.append([
                            TerminalSafe.sanitize(worker.id), TerminalSafe.sanitize(worker.host), "\(worker.pid)", age(worker.lastSeen), "\(worker.maxOrganizations)",
                            worker.stoppedAt != nil ? "stopped" : worker.live ? "live" : "silent",
                        ])
                    }
                    Console.out("")
                    Console.out(TextTable.render(table))
                }
                await database.close()
            }
        }
    }
}
