import AuditCore
import AuditEngine
import AuditStore
import Foundation
import GenesysClient
import Logging

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
    private let lock: StateLock?

    /// - Parameter collected: called after each collection with its duration and report.
    init(
        connection: GenesysConnection, store: any AuditStore, statePath: String, driftInterval: Duration, options: DriftOptions,
        keepSnapshots: Int = 10, feed: FeedPolicy, rules: RuleSet?, ingestion: IngestionSettings = IngestionSettings(),
        logger: Logger = CLILogging.silent, delivery: DeliveryRouter? = nil, organization: Organization? = nil,
        collected: (@Sendable (Duration, CollectionReport) -> Void)? = nil
    ) throws {
        self.store = store
        monitor = DriftMonitor(store: store, interval: driftInterval, options: options, keepSnapshots: keepSnapshots, delivery: delivery) {
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
        } else {
            self.ingestor = nil
            self.client = nil
        }
    }

    /// What a dashboard shows: the monitor's drift and the audit feed — this process's
    /// ingestor's, another process's records, or none.
    func dashboardFeed(deliveries: [DeliveryService] = []) -> DashboardFeed {
        let source: DashboardFeed.Source =
            if let ingestor { .ingesting(ingestor) } else if rules != nil, let keptBy { .keptBy(keptBy) } else { .none }
        return DashboardFeed(monitor: monitor, source: source, store: store, rules: rules ?? RuleSet(rules: []), deliveries: deliveries)
    }

    /// Ends the client; the feed's lock goes when the last copy of this value does.
    func shutdown() async {
        await client?.shutdown()
        withExtendedLifetime(lock) {}
    }

    /// Runs `body` with the engine, then shuts it down whatever happens.
    func run<T>(_ body: () async throws -> T) async throws -> T {
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
