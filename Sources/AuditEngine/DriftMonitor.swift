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
    /// How the last snapshot was collected (nil before the first).
    public var collection: CollectionMode?
    /// When the last full walk finished.
    public var lastFullWalk: Date?
    /// Changes full walks found that no audit event explains, newest last (the last 100).
    public var unaudited: [UnauditedChange] = []
    /// The snapshot was read from the store at start, not collected in this run (the dashboard
    /// shows it, marked with its age, until the first collection replaces it).
    public var fromStore = false
    /// Before `snapshot`: the stored snapshot's preview, so the users pane draws while the
    /// snapshot itself is read.
    public var preview: SnapshotPreview?
    /// The drift check this update reports (1 for the first): an update republished for an
    /// approval or new attribution keeps its check's number, so counts and logs take each
    /// check once.
    public var check = 0

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

/// How a monitor brings its snapshot up to date between full walks: re-reading what the audit
/// events since the last collection name (`ChangedEntities`).
public struct IncrementalCollection: Sendable {
    public typealias Refresh = @Sendable (Snapshot, ChangedEntities) async throws -> Snapshot
    public var refresh: Refresh
    /// A full walk runs at least this often (and at start, after an ingestion gap, after a
    /// partial read, when asked for, and when the audit feed is too far behind).
    public var fullEvery: Duration
    /// Events this long before the last collection's audit mark are read again (late arrivals).
    public var overlap: TimeInterval
    /// The audit feed's high-water mark may be at most this far behind for an incremental check.
    public var maxFeedLag: TimeInterval
    /// More events than this since the last collection: a full walk is cheaper.
    public var maxEvents: Int

    public init(
        fullEvery: Duration = .seconds(86_400), overlap: TimeInterval = 300, maxFeedLag: TimeInterval = 900, maxEvents: Int = 20_000,
        refresh: @escaping Refresh
    ) {
        self.refresh = refresh
        self.fullEvery = fullEvery
        self.overlap = overlap
        self.maxFeedLag = maxFeedLag
        self.maxEvents = maxEvents
    }
}

/// Collects the organisation and compares it with the accepted baseline (`DriftCheck`) on an
/// interval, in the background. With an `IncrementalCollection`, checks between full walks
/// re-read only what the audit events name; each scheduled or requested full walk is compared
/// with the incremental snapshot of the same moment, and any difference no audit event explains
/// is reported as an `UnauditedChange`. Cycles never overlap: a refresh asked for during a cycle runs
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

    /// The newest update published.
    public private(set) var latest: MonitorUpdate
    private var arrivals = DriftArrivals()
    private var wakeUp: CheckedContinuation<Void, Never>?
    private var refreshRequested = false
    /// Cycles run so far.
    public private(set) var cycles = 0
    private var baselineCollectedAt: Date?

    private let incremental: IncrementalCollection?
    /// The last snapshot an incremental check may start from, and the audit mark it is good to.
    private struct Base {
        var snapshot: Snapshot
        var mark: Date
        /// When the full walk under it started: a change dated before then is in it.
        var walkedFrom: Date?
        /// Events whose entities incremental checks have read since they were stored, by id
        /// (with their dates, to forget those the next window no longer reaches).
        var applied: [String: Date] = [:]

        /// Whether the snapshot already reflects `event`: it was applied, or made before the
        /// full walk underneath began (the walk read the entity after it).
        func reflects(_ event: AuditEvent) -> Bool {
            applied[event.id] != nil || walkedFrom.map { event.date < $0 } ?? false
        }

        /// Records the events this snapshot reflects; forgets those before the next window.
        mutating func remember(_ events: [AuditEvent], overlap: TimeInterval) {
            let horizon = mark.addingTimeInterval(-overlap)
            applied = applied.filter { $0.value >= horizon }
            for event in events where event.date >= horizon { applied[event.id] = event.date }
        }
    }
    private var base: Base?
    private var lastFullWalk: Date?
    private var fullRequested = false
    /// Differences between a full walk and its incremental twin, waiting for the audit feed to
    /// cover the walk before they are judged.
    private struct Suspect {
        var items: [DriftItem]
        var from: Date
        var to: Date
    }
    private var suspects: [Suspect] = []
    private var unaudited: [UnauditedChange] = []
    /// Told each snapshot collected (or shown from the store): a push feed's entities.
    private var snapshotObservers: [@Sendable (Snapshot) async -> Void] = []

    /// Calls `observer` with every snapshot from now on (and the current one, if any).
    public func observeSnapshots(_ observer: @escaping @Sendable (Snapshot) async -> Void) async {
        snapshotObservers.append(observer)
        if let snapshot = latest.snapshot { await observer(snapshot) }
    }

    private func tellObservers(_ snapshot: Snapshot) async {
        for observer in snapshotObservers { await observer(snapshot) }
    }

    public init(
        store: any AuditStore, interval: Duration, options: DriftOptions = DriftOptions(), keepSnapshots: Int = 10,
        clock: any WallClock = SystemWallClock(), delivery: DeliveryRouter? = nil, incremental: IncrementalCollection? = nil,
        collect: @escaping Collect
    ) {
        self.store = store
        self.collect = collect
        self.incremental = incremental
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

    /// Runs cycles until the task is cancelled. The newest stored snapshot is shown first (with
    /// its comparison), while the first collection runs.
    public func run() async {
        continuation.yield(latest)
        await showStored()
        while !Task.isCancelled {
            await cycle()
            await waitForNextCycle()
        }
        continuation.finish()
    }

    /// Publishes the newest snapshot in the store, if there is one, before any collection: at
    /// once on its own (the panes can draw), then with its comparison against the baseline.
    /// Nothing is recorded; the first collection replaces it.
    public func showStored() async {
        guard cycles == 0, latest.snapshot == nil else { return }
        do {
            guard let newest = try await store.snapshots().first else { return }
            // Its preview first (a few megabytes where the snapshot is a hundred): the users
            // pane draws while the snapshot is read and decoded.
            if let preview = try? await store.snapshotPreview(rootHash: newest.rootHash), latest.snapshot == nil, cycles == 0 {
                latest.status = .collecting
                latest.preview = preview
                latest.collectedAt = newest.collectedAt
                latest.fromStore = true
                continuation.yield(latest)
            }
            let stored = try await store.snapshot(rootHash: newest.rootHash)
            latest.preview = nil
            guard let snapshot = stored else { return }
            guard latest.snapshot == nil, cycles == 0 else { return }
            latest.status = .collecting
            latest.snapshot = snapshot
            latest.collectedAt = newest.collectedAt
            latest.fromStore = true
            // The panes first; risk and the comparison follow (a second update).
            latest.risk = nil
            continuation.yield(latest)
            await tellObservers(snapshot)
            guard let outcome = try await DriftCheck.preview(current: snapshot, collectedAt: newest.collectedAt, settings: settings, store: store, now: clock.now()),
                latest.fromStore
            else {
                if latest.fromStore {
                    latest.risk = RiskRollup(snapshot: snapshot, policy: settings.options.policy)
                    continuation.yield(latest)
                }
                return
            }
            latest.review = outcome.review
            latest.baselineVersion = outcome.baseline?.version
            latest.lineage = outcome.lineage
            latest.attribution = outcome.attribution?.attribution
            latest.risk = RiskRollup(
                snapshot: snapshot, policy: settings.options.policy,
                extraPermissions: outcome.result.items.flatMap { $0.permissionsAdded + $0.permissionsRemoved })
            continuation.yield(latest)
        } catch {
            // No stored view: the first collection shows the organisation.
            latest.preview = nil
        }
    }

    /// One cycle now, outside `run` (`watch --once`): its update, also pushed to `updates`.
    public func checkNow() async -> MonitorUpdate {
        await cycle()
        return latest
    }

    /// Starts a cycle with a full walk now (or right after the running one).
    public func refreshFull() {
        fullRequested = true
        refresh()
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
        latest.check = cycles
        latest.status = .collecting
        continuation.yield(latest)
        var collected: (snapshot: Snapshot, at: Date)?
        await settleSuspects()
        do {
            let (snapshot, mode) = try await collectSnapshot()
            let now = clock.now()
            collected = (snapshot, now)
            await tellObservers(snapshot)
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
            latest.collection = mode
            latest.lastFullWalk = lastFullWalk
            latest.unaudited = unaudited
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
        // (The ready update above is built afresh: it takes the check's number here.)
        latest.check = cycles
        continuation.yield(latest)
    }

    /// A full walk, or the last snapshot with what the audit events since name read again.
    private func collectSnapshot() async throws -> (Snapshot, CollectionMode) {
        let started = clock.now()
        guard let incremental else { return (try await collect(), .full(reason: "no audit feed")) }
        let checkpoint = try? await store.ingestionCheckpoint()
        var reason = await fullWalkReason(at: started, checkpoint: checkpoint, settings: incremental)
        var expected: Snapshot?
        if let base, let checkpoint, reason == nil || reason == Self.scheduled || reason == Self.requested {
            // The incremental snapshot of this moment: the check's result, or what the full walk
            // is compared with.
            let events = try await store.auditEvents(from: base.mark.addingTimeInterval(-incremental.overlap), to: .distantFuture)
            if events.count > incremental.maxEvents {
                reason = reason ?? "\(events.count) audit events since the last collection"
            } else {
                // The overlap brings back events the snapshot already reflects: only those it
                // does not are read again.
                let changes = ChangedEntities(events: events.filter { !base.reflects($0) })
                let refreshed = try await incremental.refresh(base.snapshot, changes)
                if reason == nil {
                    if !refreshed.isPartial {
                        var next = Base(snapshot: refreshed, mark: min(checkpoint.highWater, started), walkedFrom: base.walkedFrom)
                        next.remember(events, overlap: incremental.overlap)
                        self.base = next
                    }
                    return (refreshed, changes.isEmpty ? .unchanged : .incremental(changes))
                }
                expected = refreshed
            }
        }
        let snapshot = try await collect()
        let finished = clock.now()
        lastFullWalk = finished
        fullRequested = false
        base = snapshot.isPartial ? nil : Base(snapshot: snapshot, mark: min(checkpoint?.highWater ?? started, started), walkedFrom: started)
        if let expected, !expected.isPartial, !snapshot.isPartial {
            let items = DriftEngine.diff(baseline: expected, current: snapshot, options: settings.options).items
            if !items.isEmpty { suspects.append(Suspect(items: items, from: started, to: finished)) }
        }
        return (snapshot, .full(reason: reason ?? "scheduled"))
    }

    static let scheduled = "scheduled"
    static let requested = "asked for"

    /// Why this check must walk the whole organisation, or nil when an incremental check will do.
    private func fullWalkReason(at now: Date, checkpoint: IngestionCheckpoint?, settings: IncrementalCollection) async -> String? {
        guard let base else { return "first collection" }
        if fullRequested { return Self.requested }
        guard let lastFullWalk, now.timeIntervalSince(lastFullWalk) < Self.seconds(settings.fullEvery) else { return Self.scheduled }
        guard let checkpoint else { return "the audit feed has no checkpoint yet" }
        if now.timeIntervalSince(checkpoint.highWater) > settings.maxFeedLag {
            return "the audit feed is \(IngestionHealth.duration(now.timeIntervalSince(checkpoint.highWater))) behind"
        }
        if checkpoint.criticalHighWater != nil { return "the audit feed is narrowed to the critical services" }
        let gaps = (try? await store.ingestionGaps()) ?? []
        if gaps.contains(where: { $0.end >= base.mark.addingTimeInterval(-settings.overlap) }) { return "an ingestion gap" }
        return nil
    }

    /// Judges the differences full walks found once the audit feed covers their walks: explained
    /// by an event (made while walking) or not (unaudited, reported).
    private func settleSuspects() async {
        guard !suspects.isEmpty else { return }
        let now = clock.now()
        var keep: [Suspect] = []
        for suspect in suspects {
            // A consequence (a member's gain through a group's grant) goes with its cause.
            let fingerprints = Set(suspect.items.map(\.fingerprint))
            let causes = suspect.items.filter { item in item.causeFingerprint.map { !fingerprints.contains($0) } ?? true }
            let outcome = await DriftAttributor.attribute(suspect.items, store: store, baselineAt: suspect.from, currentAt: suspect.to, now: now)
            var pending: [DriftItem] = []
            for item in causes {
                switch outcome.attribution?[item.fingerprint]?.status {
                case .explained?: continue
                case .unexplained?: unaudited.append(UnauditedChange(item: item, walkedAt: suspect.to, confirmedAt: now))
                case .pending?, nil:
                    // The feed has not covered the walk yet; after a day it never will.
                    if now.timeIntervalSince(suspect.to) > 86_400 {
                        unaudited.append(UnauditedChange(item: item, walkedAt: suspect.to, confirmedAt: now))
                    } else {
                        pending.append(item)
                    }
                }
            }
            if !pending.isEmpty { keep.append(Suspect(items: pending, from: suspect.from, to: suspect.to)) }
        }
        suspects = Array(keep.suffix(100))
        unaudited = Array(unaudited.suffix(100))
    }

    static func seconds(_ duration: Duration) -> TimeInterval {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }
}
