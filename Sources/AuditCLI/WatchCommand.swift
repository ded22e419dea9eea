import ArgumentParser
import AuditCore
import AuditEngine
import AuditStore
import Foundation
import GenesysClient
import Logging
import Prometheus
import ServiceLifecycle
import Synchronization

/// `rbacwatch watch`: ingestion, rules and periodic drift checks headless, until SIGTERM;
/// `--once` for cron.
struct WatchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "watch",
        abstract: "Ingest the audit feed, judge it by the rules and check drift, headless, until SIGTERM (--once: one cycle, for cron).",
        discussion: """
            Polls the audit API every --poll-interval on a sliding window (--overlap, default 65 s) and \
            holds events for --lag (default 60 s) so late ones are judged in order. Restarts resume from \
            the high-water mark in the state file; longer pauses are backfilled. Every --drift-interval \
            it also collects the organisation and compares it with the accepted baseline. Findings \
            (schema rbacwatch.finding/1) and new unapproved drift items with their attribution (schema \
            rbacwatch.drift-item/1) are printed as JSON lines on stdout and kept in the state file; logs \
            go to stderr or --log-file. Exit codes: 0 ok, 1 failure, 2 usage, 3 (with --once) a finding \
            or unapproved drift item at or above --fail-on, 4 (with --once) a partial collection.
            """)

    @OptionGroup var connection: ConnectionOptions
    @OptionGroup var state: StateOptions
    @OptionGroup var rules: RuleOptions
    @OptionGroup var comparison: ComparisonOptions
    @OptionGroup var collection: CollectionOptions
    @OptionGroup var pushOptions: PushOptions
    @OptionGroup var delivery: DeliveryOptions
    @OptionGroup var orgs: OrganizationsOptions

    @Option(name: .customLong("max-orgs"), help: "With --orgs: organisations this worker holds at most (1-1000).")
    var maxOrgs = 50

    @Option(name: .customLong("lease-ttl"), help: "With --orgs: how long a lease lasts unrenewed (renewed every third of it); a dead worker's organisations move after it.")
    var leaseTTL = Interval(argument: "30s")!

    @Option(name: .customLong("worker-id"), help: "With --orgs: this worker's name in the store (default: host, pid and a random part).")
    var workerId: String?

    @Flag(help: "Run one cycle (a poll and a drift check) and exit.")
    var once = false

    @Option(name: .customLong("poll-interval"), help: "Time between polls: 30s, 1m.")
    var pollInterval = Interval(argument: "60s")!

    @Option(help: "How far each window reaches back before the high-water mark.")
    var overlap = Interval(argument: "65s")!

    @Option(help: "How long events wait for late ones before they are judged.")
    var lag = Interval(argument: "60s")!

    @Option(help: "On the first run, start this far back.")
    var lookback = Interval(argument: "1h")!

    @Option(name: .customLong("drift-interval"), help: "Time between drift checks (collect and compare with the baseline).")
    var driftInterval = Interval(argument: "15m")!

    @Flag(name: .customLong("no-drift"), help: "Follow the audit feed only; no drift checks.")
    var noDrift = false

    @Option(name: .customLong("keep-snapshots"), help: "Snapshots kept in the store besides the baselines' (older ones are pruned).")
    var keepSnapshots = 10

    @Option(name: .customLong("fail-on"), help: "With --once: exit 3 when a finding or unapproved drift item is at least this severe.")
    var failOn: String?

    @Option(name: .customLong("log-file"), help: "Append logs here instead of stderr.")
    var logFile: String?

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning, error.")
    var logLevel = "info"

    @Option(name: .customLong("http"), help: "Serve /metrics, /healthz and /readyz on HOST:PORT (a bare PORT is 127.0.0.1:PORT; 0 picks a free port). Off by default.")
    var http: HTTPAddress?

    func validate() throws {
        if let failOn, Severity(name: failOn) == nil { throw ValidationError("--fail-on is low, medium, high or critical.") }
        try FlagCheck.logLevel(logLevel)
        try pollInterval.check("--poll-interval", 1...3600)
        try overlap.check("--overlap", 1...86_400)
        try lag.check("--lag", 1...3600)
        try lookback.check("--lookback", 1...(366 * 86_400))
        try driftInterval.check("--drift-interval", 1...(7 * 86_400))
        try FlagCheck.range(keepSnapshots, FlagCheck.keepSnapshots, "--keep-snapshots")
        if http != nil && once { throw ValidationError("--http serves while watch runs; it does not go with --once.") }
        try FlagCheck.range(maxOrgs, 1...1000, "--max-orgs")
        try leaseTTL.check("--lease-ttl", 3...600)
        if let workerId, workerId.isEmpty || workerId.utf8.count > 128 || workerId.contains(where: { $0.isNewline }) {
            throw ValidationError("--worker-id is a name of at most 128 characters on one line.")
        }
    }

    /// `--orgs`: this process is one worker of a fleet sharing a PostgreSQL store.
    func runFleet(environment: [String: String]) async throws {
        guard state.isPostgres(environment: environment) else {
            throw ConfigurationError("--orgs needs a PostgreSQL store shared by the workers: pass --store postgres://USER@HOST/DB (or set RBACWATCH_STORE)")
        }
        if once { throw ConfigurationError("--once works one organisation; a fleet (--orgs) runs until SIGTERM") }
        let entries = try orgs.load(environment: environment)
        let logger = try WatchLogging.logger(file: logFile, level: logLevel)
        // A worker paused mid-write holds its lease row's lock until the server ends its open
        // transaction: well inside the TTL, so a takeover is never held up past it.
        let database = try await state.openDatabase(environment: environment, idleTransactionTimeout: leaseTTL.duration / 3)
        var ingestion = IngestionSettings()
        ingestion.pollInterval = pollInterval.seconds
        ingestion.overlap = overlap.seconds
        ingestion.lag = lag.seconds
        ingestion.initialLookback = lookback.seconds
        var limits = GenesysConnection.Limits()
        limits.request = connection.requestTimeout.duration
        limits.collection = connection.collectionTimeout.duration
        let host = DeliverySetup.hostName()
        let pid = Int(getpid())
        var settings = FleetSettings(workerId: workerId ?? FleetSettings.defaultWorkerId(host: host, pid: pid), host: host, pid: pid)
        settings.leaseTTL = leaseTTL.duration
        settings.maxOrganizations = maxOrgs
        let work = OrganizationRun.Settings(
            fleetRules: try rules.load(environment: environment), destinations: try delivery.load(environment: environment), ingestion: ingestion,
            driftInterval: driftInterval.duration, options: try comparison.driftOptions(), keepSnapshots: keepSnapshots, limits: limits, noDrift: noDrift,
            environment: environment, collection: collection.schedule)
        let fleet = FleetWatch(
            entries: entries, database: database, work: work, deliverySettings: delivery.settings, settings: settings, http: http, logger: logger)
        try await fleet.run()
        await database.close()
    }

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        try await CommandErrors.handle {
            if orgs.resolvedPath(environment: environment) != nil {
                try await runFleet(environment: environment)
                return
            }
            if state.isPostgres(environment: environment) {
                throw ConfigurationError("watch on a PostgreSQL store works the organisations of a file: pass --orgs FILE (one organisation is a file of one)")
            }
            let resolved = try connection.resolve(environment: environment)
            let ruleSet = try rules.load(environment: environment)
            let options = try comparison.driftOptions()
            let store = try await state.open(environment: environment)
            let logger = try WatchLogging.logger(file: logFile, level: logLevel)
            var settings = IngestionSettings()
            settings.pollInterval = pollInterval.seconds
            settings.overlap = overlap.seconds
            settings.lag = lag.seconds
            settings.initialLookback = lookback.seconds
            let registry = http.map { _ in PrometheusCollectorRegistry() }
            let metrics = registry.map { EngineMetrics(registry: $0) }
            // Destinations: read and their secrets resolved before anything runs (one line if not).
            let destinations = try delivery.load(environment: environment)
            let deliverySetup = destinations.isEmpty ? nil : DeliverySetup(destinations)
            let deliveryServices = try await deliverySetup?.services(store: store, environment: environment, settings: delivery.settings) ?? []
            var organization: Organization?
            if deliverySetup != nil {
                // Every payload names its organisation.
                let probe = AuditFeedSetup.auditClient(resolved, logger: logger)
                do {
                    organization = try await probe.organization()
                } catch {
                    await probe.shutdown()
                    for service in deliveryServices { await service.shutdown() }
                    throw OperationError("cannot read the organisation (GET /api/v2/organizations/me), which every delivered payload names: \(error)")
                }
                await probe.shutdown()
            }
            // One process follows the feed into a state file; a second is told who does.
            let engine = try EngineSetup(
                connection: resolved, store: store, statePath: state.resolvedPath(environment: environment), driftInterval: driftInterval.duration,
                options: options, keepSnapshots: keepSnapshots, feed: .follow(role: "rbacwatch watch"), rules: ruleSet, ingestion: settings,
                logger: logger, delivery: deliverySetup?.router, organization: organization, collection: collection.schedule,
                collected: { duration, report in metrics?.observeCollection(duration: duration, requests: report.statistics.requests) },
                push: !pushOptions.noPush && !once)
            guard let ingestor = engine.ingestor, let client = engine.client else { throw OperationError("the audit feed could not be set up") }
            let drift = noDrift ? nil : DriftWatch(store: store, options: options, logger: logger, metrics: metrics, monitor: engine.monitor)
            let threshold = failOn.flatMap(Severity.init(name:))
            var worst: Severity?
            var partial = false
            do {
                try await client.authenticate()
                if once {
                    let before = await ingestor.health
                    let outcome = await ingestor.poll()
                    for note in IngestionNote.notes(outcome: outcome, health: await ingestor.health, previous: before) { logger.log(note) }
                    for finding in outcome.findings {
                        Console.jsonLine(FindingJSON.encode(finding))
                        if finding.status == .open { worst = max(worst ?? finding.severity, finding.severity) }
                    }
                    let health = await ingestor.health
                    logger.info(
                        "audit cycle done",
                        metadata: ["fetched": "\(outcome.fetched)", "judged": "\(outcome.judged)", "findings": "\(outcome.findings.count)", "health": "\(health.summary)"])
                    if let failed = outcome.failed { throw OperationError("audit poll failed: \(failed)") }
                    if outcome.rateLimited { throw OperationError("the audit API is rate limiting us; nothing was lost, run again later") }
                    if let drift {
                        switch try await drift.checkOnce() {
                        case .noBaseline:
                            logger.notice("no baseline yet: drift not checked (accept one with rbacwatch baseline accept)")
                        case .partial(let why):
                            logger.warning("partial collection: drift not compared", metadata: ["problems": "\(why)"])
                            partial = true
                        case .items(let items):
                            for (reviewed, attribution) in items {
                                Console.jsonLine(DriftReport.itemLine(reviewed, attribution: attribution))
                                worst = max(worst ?? reviewed.item.severity, reviewed.item.severity)
                            }
                            logger.info("drift check done", metadata: ["unapproved": "\(items.count)"])
                        }
                    }
                    for service in deliveryServices { await Self.deliverOnce(service, store: store, logger: logger) }
                } else {
                    var status: StatusEndpoint?
                    if let http, let registry {
                        status = Self.statusEndpoint(
                            http, registry: registry, ingestor: ingestor, drift: drift, settings: settings,
                            driftInterval: driftInterval.seconds, deliveries: deliveryServices, logger: logger, push: engine.push)
                    }
                    await engine.connectPush()
                    if drift == nil, engine.push != nil { Task { await engine.pushFromStoredSnapshot() } }
                    try await Self.runUntilSignalled(
                        ingestor, drift: drift, metrics: metrics, status: status, deliveries: deliveryServices, store: store, logger: logger,
                        push: engine.push)
                }
            } catch {
                await engine.shutdown()
                for service in deliveryServices { await service.shutdown() }
                throw error
            }
            await engine.shutdown()
            for service in deliveryServices { await service.shutdown() }
            if let threshold, let worst, worst >= threshold { throw ExitCode(RBACWatchExit.driftFound) }
            if partial { throw ExitCode(RBACWatchExit.partial) }
        }
    }

    /// Polls (and checks drift) until SIGTERM, SIGINT or SIGHUP; the cycle in progress finishes
    /// (its window is recorded or not at all) before the process exits.
    static func runUntilSignalled(
        _ ingestor: AuditIngestor, drift: DriftWatch?, metrics: EngineMetrics?, status: StatusEndpoint?, deliveries: [DeliveryService] = [],
        store: any AuditStore, logger: Logger, push: AuditPushFeed? = nil
    ) async throws {
        // One ServiceGroup: shut down in reverse order — the loops first (the cycle in progress
        // finishes or is not recorded at all), then the printers drain what the loops published,
        // and the endpoint goes last, so /readyz answers until the end. A service that fails
        // (the endpoint's port taken, say) stops the group, and watch exits with one line.
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        if let status { services.append(.init(service: status)) }
        if let drift {
            services.append(.init(service: EngineService.drain("the drift printer") { await drift.printNewItems() }, successTerminationBehavior: .ignore))
        }
        services.append(
            .init(
                service: EngineService.drain("the finding printer") {
                    var previous: IngestionHealth?
                    for await update in ingestor.updates {
                        if update.pushed.isEmpty {
                            for note in IngestionNote.notes(outcome: update.outcome, health: update.health, previous: previous) { logger.log(note) }
                        }
                        // The feed's first successful poll: from then on the store covers the span.
                        let firstSuccess = previous?.lastSuccess == nil && update.health.lastSuccess != nil
                        previous = update.health
                        metrics?.observe(update)
                        for finding in update.findings { Console.jsonLine(FindingJSON.encode(finding)) }
                        // New events may explain drift items still waiting for them; so may the first poll.
                        if update.judged > 0 || firstSuccess, let drift { await drift.monitor.reattribute() }
                    }
                }, successTerminationBehavior: .ignore))
        // Delivery stops after the loops that queue (their last batches are sent if they can be).
        for delivery in deliveries {
            services.append(.init(service: EngineService.loop("delivery to \(delivery.destination.name)") { await delivery.run() }, successTerminationBehavior: .ignore))
        }
        if !deliveries.isEmpty {
            services.append(
                .init(
                    service: EngineService.loop("the delivery log") { await Self.followDeliveries(deliveries, store: store, metrics: metrics, logger: logger) },
                    successTerminationBehavior: .ignore))
        }
        if let drift { services.append(.init(service: EngineService.loop("the drift monitor") { await drift.monitor.run() }, successTerminationBehavior: .ignore)) }
        if let push {
            services.append(
                .init(
                    service: EngineService.drain("the push log") {
                        var last: PushHealth.State?
                        for await health in push.updates {
                            metrics?.observe(health)
                            guard health.state != last else { continue }
                            last = health.state
                            switch health.state {
                            case .live: logger.notice("audit push live", metadata: ["channels": "\(health.channels)", "topics": "\(health.subscriptions)"])
                            case .idle: break
                            case .pollingOnly, .off: logger.warning("\(health.summary(now: Date()))")
                            }
                        }
                    }, successTerminationBehavior: .ignore))
        }
        services.append(.init(service: EngineService.loop("the audit feed") { await ingestor.run() }, successTerminationBehavior: .ignore))
        if let push { services.append(.init(service: EngineService.loop("audit push") { await push.run() }, successTerminationBehavior: .ignore)) }
        let group = ServiceGroup(
            configuration: .init(services: services, gracefulShutdownSignals: [], logger: Logger(label: "rbacwatch.services", factory: { _ in SwiftLogNoOpLogHandler() })))
        let signals = SignalWatch { number in
            logger.notice("signal \(number): finishing the current cycle and stopping")
            Task { await group.triggerGracefulShutdown() }
        }
        defer { signals.cancel() }
        logger.notice("watching the audit feed\(drift == nil ? "" : " and checking drift")")
        do {
            try await group.run()
        } catch let error as StatusEndpointError {
            throw OperationError("--http: \(error)")
        } catch {
            throw OperationError("a service stopped: \(error)")
        }
        logger.notice("stopped")
    }

    static func healths(_ deliveries: [DeliveryService]) async -> [DeliveryHealth] {
        var out: [DeliveryHealth] = []
        for service in deliveries { out.append(await service.health) }
        return out
    }

    /// Sends what is queued for a destination now (`--once`), stopping at the first wait (a
    /// receiver down or refusing): what is left stays queued for the next run.
    static func deliverOnce(_ service: DeliveryService, store: any AuditStore, logger: Logger) async {
        let name = service.destination.name
        for _ in 0..<100_000 {
            guard let queued = try? await store.queuedDeliveries(destination: name, limit: 1), !queued.isEmpty else { break }
            if let wait = await service.step(), wait > 0 { break }
        }
        let health = await service.health
        let left = (try? await store.destinationStatuses().first { $0.destination == name }?.queued) ?? 0
        if let paused = health.paused {
            logger.error("delivery to \(name) is paused: \(paused)", metadata: ["queued": "\(left)"])
        } else if left > 0 {
            logger.warning("delivery to \(name) stopped with \(left) queued: \(health.lastError ?? "retrying later")")
        } else {
            logger.info("delivered to \(name)", metadata: ["sent": "\(health.sent)"])
        }
    }

    /// Logs each destination's changes of health (paused, resumed, dead letters) and keeps the
    /// delivery metrics current.
    static func followDeliveries(_ deliveries: [DeliveryService], store: any AuditStore, metrics: EngineMetrics?, logger: Logger) async {
        var last: [String: DeliveryHealth] = [:]
        while !Task.isCancelled {
            let statuses = (try? await store.destinationStatuses()) ?? []
            for service in deliveries {
                let name = service.destination.name
                let health = await service.health
                let before = last[name] ?? DeliveryHealth(destination: name)
                if health.paused != nil, before.paused == nil {
                    logger.error("delivery to \(name) paused: \(health.paused ?? "")")
                } else if health.paused == nil, before.paused != nil {
                    logger.notice("delivery to \(name) resumed")
                }
                if health.deadLettered > before.deadLettered {
                    logger.error("delivery to \(name): \(health.deadLettered - before.deadLettered) payload(s) dead-lettered: \(health.lastError ?? "")")
                }
                last[name] = health
                if let status = statuses.first(where: { $0.destination == name }) ?? .some(DestinationStatus(destination: name)) {
                    metrics?.observe(delivery: status, health: health, now: Date())
                }
            }
            try? await Task.sleep(for: .seconds(5))
        }
    }

    /// `/metrics`, `/healthz` and `/readyz` for `watch --http`.
    static func statusEndpoint(
        _ address: HTTPAddress, registry: PrometheusCollectorRegistry, ingestor: AuditIngestor, drift: DriftWatch?,
        settings: IngestionSettings, driftInterval: TimeInterval, deliveries: [DeliveryService] = [], logger: Logger, push: AuditPushFeed? = nil
    ) -> StatusEndpoint {
        let startedAt = Date()
        return StatusEndpoint(
            host: address.host, port: address.port, registry: registry, logger: logger,
            readiness: {
                Readiness.evaluate(
                    loggedIn: true, health: await ingestor.health, drift: drift?.latest.value, pollInterval: settings.pollInterval,
                    driftInterval: driftInterval, startedAt: startedAt, now: Date(), deliveries: await Self.healths(deliveries),
                    push: await push?.health)
            },
            onListening: { port in
                logger.notice("serving /metrics, /healthz and /readyz on http://\(address.host):\(port)")
            })
    }
}

/// Drift checks for `watch`: new unapproved items, with who made them happen, as JSON lines.
struct DriftWatch {
    let store: any AuditStore
    let options: DriftOptions
    let logger: Logger
    let metrics: EngineMetrics?
    let monitor: DriftMonitor
    /// The monitor's last update (for `/readyz`).
    let latest = LatestUpdate()
    /// How long an item waits for an audit event to explain it before it is printed anyway.
    static let attributionWait: TimeInterval = 300

    enum Outcome {
        case noBaseline
        case partial(String)
        case items([(ReviewedItem, ItemAttribution?)])
    }

    /// One comparison now (through the monitor, so it is stored and lineage is kept).
    func checkOnce() async throws -> Outcome {
        // Without a baseline there is nothing to compare with: no collection either.
        guard try await store.currentBaseline() != nil else { return .noBaseline }
        let update = await monitor.checkNow()
        switch update.status {
        case .ready:
            let items = (update.review?.items ?? []).filter { !$0.state.isApproved }
            return .items(items.map { ($0, update.attribution?[$0.item.fingerprint]) })
        case .refused(.noBaseline):
            return .noBaseline
        case .refused(let refusal):
            return .partial(refusal.description)
        case .failed(let message):
            throw OperationError("drift check failed: \(message)")
        case .starting, .collecting:
            throw OperationError("the drift check ended without a result")
        }
    }

    /// Prints each unapproved item once while it lasts (again if it goes and comes back); an
    /// item whose audit event has not arrived yet waits for it, up to `attributionWait`.
    func printNewItems() async {
        var printed = Set<String>()
        var waitingSince: [String: Date] = [:]
        var reported = Set<String>()
        var loggedCheck = 0
        for await update in monitor.updates {
            latest.value = update
            metrics?.observe(update)
            // Once per check: approvals and new attribution republish the same check.
            if update.check != loggedCheck, update.status.problem != nil || update.status == .ready {
                loggedCheck = update.check
                if let problem = update.status.problem { logger.warning("drift check failed", metadata: ["error": "\(problem)"]) }
                if update.status == .ready, let mode = update.collection { logger.info("drift check", metadata: ["collection": "\(mode.summary)"]) }
            }
            // Changes a full walk found that the audit log never showed: one warning and one JSON line each.
            for change in update.unaudited where reported.insert("\(change.item.fingerprint)@\(change.walkedAt.timeIntervalSince1970)").inserted {
                logger.warning("unaudited change: a full walk found it and no audit event explains it", metadata: ["item": "\(change.item.summary)"])
                Console.jsonLine(DriftReport.unauditedLine(change))
            }
            guard update.status == .ready, let review = update.review else { continue }
            let now = Date()
            let current = Set(review.items.map(\.item.fingerprint))
            printed.formIntersection(current)
            waitingSince = waitingSince.filter { current.contains($0.key) }
            for reviewed in review.items where !reviewed.state.isApproved && !printed.contains(reviewed.item.fingerprint) {
                let fingerprint = reviewed.item.fingerprint
                let attribution = update.attribution?[fingerprint]
                // Pending, or no attribution yet because the feed has not made its first poll
                // (watch always follows the feed): wait for the events that explain it.
                if attribution?.status == .pending || update.attribution == nil {
                    let since = waitingSince[fingerprint] ?? now
                    waitingSince[fingerprint] = since
                    if now.timeIntervalSince(since) < Self.attributionWait { continue }
                }
                Console.jsonLine(DriftReport.itemLine(reviewed, attribution: attribution))
                printed.insert(fingerprint)
            }
        }
    }
}

/// `--http HOST:PORT`, or a bare `PORT` on 127.0.0.1.
struct HTTPAddress: ExpressibleByArgument, Sendable {
    var host: String
    var port: Int

    init?(argument: String) {
        let hostPart: Substring
        let portPart: Substring
        if let colon = argument.lastIndex(of: ":") {
            hostPart = argument[..<colon]
            portPart = argument[argument.index(after: colon)...]
        } else {
            hostPart = "127.0.0.1"
            portPart = Substring(argument)
        }
        let host = hostPart.hasPrefix("[") && hostPart.hasSuffix("]") ? String(hostPart.dropFirst().dropLast()) : String(hostPart)
        guard let port = Int(portPart), (0...65_535).contains(port), !host.isEmpty, host.utf8.count <= 253,
            host.allSatisfy({ $0.isLetter || $0.isNumber || $0 == "." || $0 == "-" || $0 == ":" })
        else { return nil }
        self.host = host
        self.port = port
    }

    static var defaultCompletionKind: CompletionKind { .default }
}

/// The drift monitor's last update, shared with the endpoint.
final class LatestUpdate: Sendable {
    private let update = Mutex<MonitorUpdate?>(nil)
    var value: MonitorUpdate? {
        get { update.withLock { $0 } }
        set { update.withLock { $0 = newValue } }
    }
}
