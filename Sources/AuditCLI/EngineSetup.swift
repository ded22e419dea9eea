import ArgumentParser
import AuditCore
import AuditEngine
import AuditStore
import Foundation
import GenesysClient
import Logging

/// `--full-walk-every`, `--no-incremental`: how drift checks collect.
struct CollectionOptions: ParsableArguments {
    @Option(
        name: .customLong("full-walk-every"),
        help: "Walk the whole organisation at least this often (default 24h); checks in between re-read only what the audit feed names.")
    var fullWalkEvery = Interval(argument: "24h")!

    @Flag(name: .customLong("no-incremental"), help: "Walk the whole organisation on every drift check.")
    var noIncremental = false

    func validate() throws {
        try fullWalkEvery.check("--full-walk-every", 1...(30 * 86_400))
    }

    var schedule: CollectionSchedule {
        CollectionSchedule(incrementalEnabled: !noIncremental, fullEvery: fullWalkEvery.duration)
    }
}

/// `--no-push`: audit events polled only, no notification channels.
struct PushOptions: ParsableArguments {
    @Flag(
        name: .customLong("no-push"),
        help: "Poll the audit feed only: open no notification channels (by default pushed audit events are judged within seconds, polling still the source of truth).")
    var noPush = false
}

/// When drift checks walk the whole organisation and when they re-read only what the audit feed
/// names (`--full-walk-every`, `--no-incremental`).
struct CollectionSchedule: Sendable {
    var incrementalEnabled = true
    var fullEvery: Duration = .seconds(86_400)

    func incremental(
        _ connection: GenesysConnection, logger: Logger, collected: (@Sendable (Duration, CollectionReport) -> Void)?
    ) -> IncrementalCollection? {
        guard incrementalEnabled else { return nil }
        return IncrementalCollection(fullEvery: fullEvery) { base, changes in
            let started = ContinuousClock.now
            let (snapshot, report) = try await SnapshotRunner.refresh(connection, base: base, changes: changes, settings: .init(), logger: logger)
            collected?(ContinuousClock.now - started, report)
            logger.info("incremental collection", metadata: ["read": "\(changes.summary)", "requests": "\(report.statistics.requests)"])
            return snapshot
        }
    }
}

/// The engine a command runs against one organisation, wired in one place for `watch`, `tui`
/// and `demo`: the drift monitor (collecting through the client) and the audit feed — followed
/// by this process, or, when another process follows it into the same state file, read from
/// what that process records.
struct EngineSetup {
    /// How this process takes the audit feed's lock on the state file.
    enum FeedPolicy {
        /// No audit feed.
        case none
        /// Follow it or fail with one line naming who does (`watch`).
        case follow(role: String)
        /// Follow it if nobody else does; otherwise show theirs (the dashboards).
        case followOrShow(role: String)
        /// Show what another process records (a fleet worker holds the organisation's lease).
        case show(StateLock.Holder)
    }

    let monitor: DriftMonitor
    /// The feed's ingestor when this process follows it.
    let ingestor: AuditIngestor?
    /// The audit client the ingestor uses (shut down by `shutdown`).
    let client: GenesysAPIClient?
    /// Who follows the feed instead of this process.
    let keptBy: StateLock.Holder?
    let rules: RuleSet?
    let store: any AuditStore
    /// Audit events pushed over notification channels, when this process follows the feed and
    /// push is on (`--no-push` turns it off).
    let push: AuditPushFeed?
    private let lock: StateLock?

    /// - Parameter collected: called after each collection with its duration and report.
    init(
        connection: GenesysConnection, store: any AuditStore, statePath: String, driftInterval: Duration, options: DriftOptions,
        keepSnapshots: Int = 10, feed: FeedPolicy, rules: RuleSet?, ingestion: IngestionSettings = IngestionSettings(),
        logger: Logger = CLILogging.silent, delivery: DeliveryRouter? = nil, organization: Organization? = nil,
        collection: CollectionSchedule = CollectionSchedule(), collected: (@Sendable (Duration, CollectionReport) -> Void)? = nil,
        push: Bool = true
    ) throws {
        self.store = store
        // Incremental checks need the audit feed: this process's or another's, in the same store.
        var hasFeed = false
        if case .none = feed {} else { hasFeed = true }
        let incremental = hasFeed ? collection.incremental(connection, logger: logger, collected: collected) : nil
        monitor = DriftMonitor(
            store: store, interval: driftInterval, options: options, keepSnapshots: keepSnapshots, delivery: delivery, incremental: incremental
        ) {
            let started = ContinuousClock.now
            let (snapshot, report) = try await SnapshotRunner.collect(connection, settings: .init(), logger: logger, progress: ProgressLine(enabled: false))
            collected?(ContinuousClock.now - started, report)
            return snapshot
        }
        var lock: StateLock?
        var keptBy: StateLock.Holder?
        switch feed {
        case .none:
            break
        case .follow(let role):
            lock = try FeedLock.take(statePath: statePath, role: role)
        case .followOrShow(let role):
            (lock, keptBy) = try FeedLock.attempt(statePath: statePath, role: role)
        case .show(let holder):
            keptBy = holder
        }
        self.lock = lock
        self.keptBy = keptBy
        if case .none = feed {
            self.rules = nil
        } else {
            self.rules = rules ?? .defaults()
        }
        if lock != nil, let rules = self.rules {
            let (ingestor, client) = AuditFeedSetup.ingestor(
                connection, store: store, rules: rules, settings: ingestion, logger: logger, delivery: delivery, organization: organization)
            self.ingestor = ingestor
            self.client = client
            let monitor = self.monitor
            self.push =
                push
                ? AuditPushFeed(source: GenesysPushSource(client: client), ingestor: ingestor, logger: logger) { events in
                    // A pushed change to access: check drift now (incremental: the entities it names).
                    if events.contains(where: AuditPushFeed.movesAccess) { await monitor.refresh() }
                } : nil
        } else {
            self.ingestor = nil
            self.client = nil
            self.push = nil
        }
    }

    /// Connects the push feed to what names its entities: each snapshot the monitor collects or
    /// shows, and each entity a poll sees created. Call before running the services.
    func connectPush() async {
        guard let push, let ingestor else { return }
        await monitor.observeSnapshots { snapshot in await push.want(AuditPushFeed.topics(for: snapshot)) }
        await ingestor.observeCreations { events in await push.noticed(events) }
        // (The monitor shows the newest stored snapshot first, so its entities come before any
        // collection, without holding up the first frame.)
    }

    /// Without drift checks (`watch --no-drift`) nothing collects: the push feed takes the
    /// newest stored snapshot's entities (read in the background, once).
    func pushFromStoredSnapshot() async {
        guard let push, let newest = try? await store.snapshots().first, let snapshot = try? await store.snapshot(rootHash: newest.rootHash) else { return }
        await push.want(AuditPushFeed.topics(for: snapshot))
    }

    /// What a dashboard shows: the monitor's drift and the audit feed — this process's
    /// ingestor's, another process's records, or none.
    func dashboardFeed(deliveries: [DeliveryService] = []) -> DashboardFeed {
        let source: DashboardFeed.Source =
            if let ingestor { .ingesting(ingestor) } else if rules != nil, let keptBy { .keptBy(keptBy) } else { .none }
        return DashboardFeed(monitor: monitor, source: source, store: store, rules: rules ?? RuleSet(rules: []), deliveries: deliveries, push: push)
    }

    /// Ends the client; the feed's lock goes when the last copy of this value does.
    func shutdown() async {
        await client?.shutdown()
        withExtendedLifetime(lock) {}
    }

    /// Runs `body` with the engine, then shuts it down whatever happens.
    func run<T>(_ body: () async throws -> T) async throws -> T {
        await connectPush()
        do {
            let result = try await body()
            await shutdown()
            return result
        } catch {
            await shutdown()
            throw error
        }
    }
}
