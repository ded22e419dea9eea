import AuditCore
import AuditStore
import Foundation

/// What one monitoring cycle found, pushed to whoever watches (the dashboard, a daemon).
public struct MonitorUpdate: Sendable {
    public enum Status: Sendable, Equatable {
        case starting
        case collecting
        case ready
        /// The check did not compare: a partial collection, or no baseline yet.
        case refused(DriftCheckRefusal)
        /// The collection or the store failed.
        case failed(String)

        /// What went wrong, in one line, if something did.
        public var problem: String? {
            switch self {
            case .refused(let refusal): refusal.description
            case .failed(let message): message
            case .starting, .collecting, .ready: nil
            }
        }
    }

    public var status: Status
    public var snapshot: Snapshot?
    public var review: DriftReview?
    public var baselineVersion: Int?
    public var lineage: RoleLineage
    /// When each current drift item was first seen in this run.
    public var firstSeen: [String: Date]
    /// Items that appeared after the first collection, and when (for "new" highlights).
    public var appeared: [String: Date]
    public var collectedAt: Date?
    public var nextRefresh: Date?
    /// Collections that failed in this run, oldest first (the last 50 distinct ones).
    public var failures: [CollectionFailure] = []
    /// Who made each item happen, from the audit events in the store (nil: no audit feed).
    public var attribution: [String: ItemAttribution]?
    /// Risk rolled up once for `snapshot` (roles, permissions, what each principal holds).
    public var risk: RiskRollup?

    public init(
        status: Status, snapshot: Snapshot? = nil, review: DriftReview? = nil, baselineVersion: Int? = nil, lineage: RoleLineage = RoleLineage(),
        firstSeen: [String: Date] = [:], appeared: [String: Date] = [:], collectedAt: Date? = nil, nextRefresh: Date? = nil,
        failures: [CollectionFailure] = [], attribution: [String: ItemAttribution]? = nil, risk: RiskRollup? = nil
    ) {
        self.status = status
        self.snapshot = snapshot
        self.review = review
        self.baselineVersion = baselineVersion
        self.lineage = lineage
        self.firstSeen = firstSeen
        self.appeared = appeared
        self.collectedAt = collectedAt
        self.nextRefresh = nextRefresh
        self.failures = failures
        self.attribution = attribution
        self.risk = risk
    }
}

/// Collects the organisation and compares it with the accepted baseline (`DriftCheck`) on an
/// interval, in the background. Cycles never overlap: a refresh asked for during a cycle runs
/// right after it, and several asked for at once are one. Every result — or failure — is pushed
/// as an immutable `MonitorUpdate`, newest only. Time comes from an injected clock.
public actor DriftMonitor {
    public typealias Collect = @Sendable () async throws -> Snapshot

    private let store: any AuditStore
    private let collect: Collect
    private let interval: Duration
    private let settings: DriftCheck.Settings
    private let clock: any WallClock
    private let continuation: AsyncStream<MonitorUpdate>.Continuation
    public nonisolated let updates: AsyncStream<MonitorUpdate>

    private var latest: MonitorUpdate
    private var arrivals = DriftArrivals()
    private var wakeUp: CheckedContinuation<Void, Never>?
    private var refreshRequested = false
    /// Cycles run so far.
    public private(set) var cycles = 0
    private var baselineCollectedAt: Date?

    public init(
        store: any AuditStore, interval: Duration, options: DriftOptions = DriftOptions(), keepSnapshots: Int = 10,
        clock: any WallClock = SystemWallClock(), delivery: DeliveryRouter? = nil, collect: @escaping Collect
    ) {
        self.store = store
        self.collect = collect
        self.interval = interval
        var settings = DriftCheck.Settings()
        settings.options = options
        settings.keepSnapshots = keepSnapshots
        settings.delivery = delivery
        self.settings = settings
        self.clock = clock
        (updates, continuation) = AsyncStream.makeStream(of: MonitorUpdate.self, bufferingPolicy: .bufferingNewest(1))
        latest = MonitorUpdate(
            status: .starting, snapshot: nil, review: nil, baselineVersion: nil, lineage: RoleLineage(), firstSeen: [:],
            appeared: [:], collectedAt: nil, nextRefresh: nil)
    }

    /// Runs cycles until the task is cancelled.
    public func run() async {
        continuation.yield(latest)
        while !Task.isCancelled {
            await cycle()
            await waitForNextCycle()
        }
        continuation.finish()
    }

    /// One cycle now, outside `run` (`watch --once`): its update, also pushed to `updates`.
    public func checkNow() async -> MonitorUpdate {
        await cycle()
        return latest
    }

    /// Starts a cycle now (or right after the running one).
    public func refresh() {
        refreshRequested = true
        wakeUp?.resume()
        wakeUp = nil
    }

    /// Approves an item in the store, then re-applies approvals to the last comparison without
    /// collecting again.
    public func approve(fingerprint: String, ticket: String?, note: String?, lifetime: TimeInterval, approver: String) async throws -> Approval {
        let now = clock.now()
        let approval = Approval(
            fingerprint: fingerprint, ticket: ticket, note: note, approver: approver, createdAt: now, expiresAt: now.addingTimeInterval(lifetime))
        try await store.addApproval(approval)
        if let result = latest.review?.result {
            latest.review = DriftReview(result: result, approvals: try await store.approvals(), now: clock.now())
            continuation.yield(latest)
        }
        return approval
    }

    /// Links the last comparison's items to the audit events in the store again (the audit feed
    /// moved on), without collecting.
    public func reattribute() async {
        guard let result = latest.review?.result, let collectedAt = latest.collectedAt else { return }
        let outcome = await DriftAttributor.attribute(
            result.items, store: store, baselineAt: baselineCollectedAt, currentAt: collectedAt, now: clock.now())
        guard outcome.attribution != latest.attribution else { return }
        latest.attribution = outcome.attribution
        continuation.yield(latest)
    }

    private func waitForNextCycle() async {
        if refreshRequested {
            refreshRequested = false
            return
        }
        let timer = Task { [weak self, clock, interval] in
            guard (try? await clock.sleep(for: interval)) != nil else { return }
            await self?.refresh()
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                if refreshRequested {
                    continuation.resume()
                } else {
                    wakeUp = continuation
                }
            }
        } onCancel: {
            Task { await self.refresh() }
        }
        refreshRequested = false
        timer.cancel()
    }

    private func cycle() async {
        cycles += 1
        latest.status = .collecting
        continuation.yield(latest)
        var collected: (snapshot: Snapshot, at: Date)?
        do {
            let snapshot = try await collect()
            let now = clock.now()
            collected = (snapshot, now)
            let outcome = try await DriftCheck.run(current: snapshot, collectedAt: now, settings: settings, store: store, now: now)
            arrivals.update(fingerprints: outcome.result.items.map(\.fingerprint), at: now)
            baselineCollectedAt = outcome.baselineCollectedAt
            latest = MonitorUpdate(
                status: .ready, snapshot: snapshot, review: outcome.review, baselineVersion: outcome.baseline?.version,
                lineage: outcome.lineage, firstSeen: arrivals.firstSeen, appeared: arrivals.appeared, collectedAt: now,
                nextRefresh: now.addingTimeInterval(Self.seconds(interval)), failures: latest.failures,
                attribution: outcome.attribution?.attribution,
                risk: RiskRollup(
                    snapshot: snapshot, policy: settings.options.policy,
                    extraPermissions: outcome.result.items.flatMap { $0.permissionsAdded + $0.permissionsRemoved }))
        } catch let refusal as DriftCheckRefusal {
            let now = clock.now()
            if refusal == .noBaseline, let collected {
                // Nothing to compare with, but the organisation is there to browse.
                latest.snapshot = collected.snapshot
                latest.collectedAt = collected.at
                latest.risk = RiskRollup(snapshot: collected.snapshot, policy: settings.options.policy)
            }
            latest.status = .refused(refusal)
            latest.failures.record(refusal.description, at: now)
            latest.nextRefresh = now.addingTimeInterval(Self.seconds(interval))
        } catch {
            let now = clock.now()
            let message = String(describing: error)
            latest.status = .failed(message)
            latest.failures.record(message, at: now)
            latest.nextRefresh = now.addingTimeInterval(Self.seconds(interval))
        }
        continuation.yield(latest)
    }

    static func seconds(_ duration: Duration) -> TimeInterval {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}
