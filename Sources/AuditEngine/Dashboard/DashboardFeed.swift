import AuditCore
import AuditStore
import Foundation

/// What the dashboard shows, built off the UI loop and published as display-ready values.
///
/// Drift: each monitor update becomes `DashboardData` once — risk as the monitor rolled it up,
/// approvals as its review applied them, attribution attached. The audit feed is held here and
/// grown from each ingestion update's findings (judged with the approvals of the moment): the
/// store is read for the first page, for the event behind each new finding, and for the
/// approvals after each drift check or approval — re-applied to the held findings only when
/// they changed. When another process keeps the feed in the same store, what it records is
/// read every few seconds instead. New findings never touch the user, role or group rows.
public actor DashboardFeed {
    public enum Update: Sendable {
        case drift(DashboardData)
        case audit(AuditFeed)
    }

    /// Where the audit findings come from.
    public enum Source: Sendable {
        /// No audit feed.
        case none
        /// This process ingests.
        case ingesting(AuditIngestor)
        /// Another process does, into the same store.
        case keptBy(StateLock.Holder)
    }

    private let monitor: DriftMonitor
    private let source: Source
    private let store: any AuditStore
    private let rules: [String: AuditRule]
    /// Findings held at most (newest first).
    private let limit: Int
    private let clock: any WallClock
    /// How often another process's records are read.
    private let followEvery: Duration
    private var findings: [AuditFinding] = []
    private var details: [String: FindingDetail] = [:]
    private var appeared: [String: Date] = [:]
    private var approvals: [Approval]?
    private var health: IngestionHealth?
    private var problem: String?
    private var loaded = false
    /// The other process's checkpoint, read with its records.
    private var checkpoint: IngestionCheckpoint?
    /// Delivery to SIEMs, run here beside the monitor and the ingestor.
    private let deliveries: [DeliveryService]
    private var delivery: DeliveryView?
    /// Audit pushes, when this process follows the feed with push on.
    private let push: AuditPushFeed?
    private var pushHealth: PushHealth?
    private let continuation: AsyncStream<Update>.Continuation
    public nonisolated let updates: AsyncStream<Update>

    public init(
        monitor: DriftMonitor, source: Source, store: any AuditStore, rules: RuleSet, limit: Int = 500, clock: any WallClock = SystemWallClock(),
        followEvery: Duration = .seconds(5), deliveries: [DeliveryService] = [], push: AuditPushFeed? = nil
    ) {
        self.push = push
        self.monitor = monitor
        self.deliveries = deliveries
        self.source = source
        self.store = store
        self.rules = Dictionary(rules.rules.map { ($0.id, $0) }, uniquingKeysWith: { _, last in last })
        self.limit = max(1, limit)
        self.clock = clock
        self.followEvery = followEvery
        (updates, continuation) = AsyncStream.makeStream(of: Update.self, bufferingPolicy: .bufferingNewest(8))
    }

    /// Runs the monitor, the ingestor (when this process ingests) and the feed until cancelled.
    public func run() async {
        let monitor = self.monitor
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await monitor.run() }
            group.addTask {
                for await update in monitor.updates { await self.drift(update) }
            }
            for service in deliveries { group.addTask { await service.run() } }
            if !deliveries.isEmpty {
                group.addTask {
                    while !Task.isCancelled {
                        await self.refreshDelivery()
                        guard (try? await self.clock.sleep(for: .seconds(2))) != nil else { break }
                    }
                }
            }
            switch source {
            case .none:
                break
            case .ingesting(let ingestor):
                group.addTask { await ingestor.run() }
                if let push {
                    group.addTask { await push.run() }
                    group.addTask {
                        for await health in push.updates { await self.pushed(health) }
                    }
                    group.addTask {
                        // The header's "2m ago" moves on while push stays down.
                        while !Task.isCancelled {
                            guard (try? await self.clock.sleep(for: .seconds(15))) != nil else { break }
                            await self.publishAudit()
                        }
                    }
                }
                group.addTask {
                    await self.reload()
                    for await update in ingestor.updates { await self.ingested(update) }
                }
            case .keptBy:
                group.addTask {
                    while !Task.isCancelled {
                        await self.reload()
                        await monitor.reattribute()
                        guard (try? await self.clock.sleep(for: self.followEvery)) != nil else { break }
                    }
                }
            }
            await group.waitForAll()
        }
        continuation.finish()
    }

    /// Records an approval (the same record as `rbacwatch approve`) and shows it at once in
    /// both feeds.
    public func approve(fingerprint: String, ticket: String?, note: String?, lifetime: TimeInterval, approver: String) async throws -> Approval {
        let approval = try await monitor.approve(fingerprint: fingerprint, ticket: ticket, note: note, lifetime: lifetime, approver: approver)
        if hasAudit { await refreshApprovals() }
        return approval
    }

    // MARK: - Drift

    private func drift(_ update: MonitorUpdate) async {
        continuation.yield(.drift(Self.dashboard(update)))
        // Approvals may have changed elsewhere (`rbacwatch approve`): the findings follow.
        if update.status == .ready, hasAudit { await refreshApprovals() }
    }

    /// The rows for one monitor update.
    public static func dashboard(_ update: MonitorUpdate) -> DashboardData {
        guard let snapshot = update.snapshot else {
            var data = DashboardData.empty
            data.status = update.status
            data.feed = update.failures.map(DashboardBuilder.failureRow).reversed()
            if let preview = update.preview {
                data.organization = preview.organization
                data.users = preview.users.map { UserRow($0, risk: nil, drift: 0) }
                data.reading = .init(roles: preview.roles, inheritance: preview.groups + preview.teams)
                data.collectedAt = update.collectedAt
                data.fromStore = update.fromStore
            }
            return data
        }
        var data = DashboardBuilder.build(
            snapshot: snapshot, review: update.review, baselineVersion: update.baselineVersion, lineage: update.lineage,
            firstSeen: update.firstSeen, appeared: update.appeared, failures: update.failures, risk: update.risk ?? RiskRollup(),
            status: update.status, collectedAt: update.collectedAt, nextRefresh: update.nextRefresh, attribution: update.attribution ?? [:])
        data.fromStore = update.fromStore
        data.unaudited = update.unaudited.count
        data.collection = update.collection?.summary
        if !update.unaudited.isEmpty {
            data.feed += update.unaudited.map(DashboardBuilder.unauditedRow)
            data.feed.sort(by: newestFirst)
        }
        return data
    }

    // MARK: - Audit findings

    /// One ingestion poll: its findings join the held ones, and its health replaces the last.
    private func ingested(_ update: IngestionUpdate) async {
        health = update.health
        if !update.findings.isEmpty { await add(update.findings, markNew: true) }
        publishAudit()
        // New events may explain drift items that were pending.
        if update.judged > 0 { await monitor.reattribute() }
    }

    /// The newest findings from the store, with the approvals in force.
    private func reload() async {
        do {
            let approvals = try await store.approvals()
            self.approvals = approvals
            let stored = RuleEngine.applyApprovals(try await store.auditFindings(FindingQuery(limit: limit)), approvals: approvals, now: clock.now())
            let known = Set(findings.map(\.id))
            findings = []
            await add(stored, markNew: loaded, except: known)
            if case .keptBy = source { checkpoint = try await store.ingestionCheckpoint() }
            problem = nil
        } catch {
            problem = "findings could not be read: \(error)"
        }
        loaded = true
        publishAudit()
    }

    /// Adds findings not held yet (newest first, at most `limit`), with the event behind each.
    private func add(_ new: [AuditFinding], markNew: Bool, except known: Set<String> = []) async {
        let now = clock.now()
        var held = Dictionary(findings.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        for finding in new {
            if held[finding.id] == nil, markNew, !known.contains(finding.id), appeared[finding.id] == nil { appeared[finding.id] = now }
            held[finding.id] = finding
        }
        findings = held.values.sorted { ($0.date, $0.id) > ($1.date, $1.id) }
        if findings.count > limit { findings.removeLast(findings.count - limit) }
        let ids = Set(findings.map(\.id))
        appeared = appeared.filter { ids.contains($0.key) }
        details = details.filter { ids.contains($0.key) }
        for finding in findings {
            let eventId = finding.eventIds.last ?? ""
            if let detail = details[finding.id], detail.event != nil || eventId.isEmpty {
                details[finding.id] = FindingDetail(finding: finding, event: detail.event, rule: rules[finding.ruleId])
                continue
            }
            let event = try? await store.auditEvent(id: eventId, near: finding.date)
            details[finding.id] = FindingDetail(finding: finding, event: event, rule: rules[finding.ruleId])
        }
    }

    /// Reads the approvals; when they changed, applies them to the held findings.
    private func refreshApprovals() async {
        guard let current = try? await store.approvals(), current != approvals else { return }
        approvals = current
        findings = RuleEngine.applyApprovals(findings, approvals: current, now: clock.now())
        for finding in findings { details[finding.id]?.finding = finding }
        publishAudit()
    }

    /// The destinations' queues and pauses, published when they changed.
    private func refreshDelivery() async {
        guard let statuses = try? await store.destinationStatuses() else { return }
        let view = DeliveryView(statuses, destinations: deliveries.map(\.destination.name))
        guard view != delivery else { return }
        delivery = view
        publishAudit()
    }

    private func pushed(_ health: PushHealth) {
        pushHealth = health
        publishAudit()
    }

    private func publishAudit() {
        let now = clock.now()
        var view = IngestionView(health, problem: problem, now: now)
        if let pushHealth {
            view.push = pushHealth.pollingReason(now: now).map { .pollingOnly($0) } ?? .live
        } else if push != nil {
            view.push = .pollingOnly("push starting")
        }
        if case .keptBy(let holder) = source {
            view = IngestionView(keptBy: holder, checkpoint: checkpoint, problem: problem, now: now)
        }
        var feed = AuditFeed(rows: AuditFeed.rows(findings, appeared: appeared), details: details, health: view)
        feed.delivery = delivery
        continuation.yield(.audit(feed))
    }

    private var hasAudit: Bool {
        if case .none = source { false } else { true }
    }
}

extension IngestionView {
    /// The header's view of this process's ingestion.
    public init(_ health: IngestionHealth?, problem: String?, now: Date) {
        guard let health, health.lastPoll != nil else {
            self.init(mode: .starting, lagSeconds: nil, lastEvent: nil, message: problem)
            return
        }
        let failing = health.lastError != nil && (health.lastSuccess.map { now.timeIntervalSince($0) > 300 } ?? true)
        let mode: Mode = health.mode == .criticalOnly ? .criticalOnly : health.throttledSince != nil ? .throttled : failing ? .failing : .normal
        let quarantined =
            health.quarantined > 0
            ? "\(health.quarantined) audit record\(health.quarantined == 1 ? "" : "s") quarantined (rbacwatch findings quarantine)" : nil
        self.init(mode: mode, lagSeconds: health.lagSeconds, lastEvent: health.lastEvent, message: problem ?? health.lastError ?? quarantined)
    }

    /// The feed another process keeps: its lag from the store's checkpoint, and who keeps it.
    public init(keptBy holder: StateLock.Holder, checkpoint: IngestionCheckpoint?, problem: String?, now: Date) {
        let kept = "the audit feed is kept by \(holder)"
        guard let checkpoint else {
            self.init(mode: .starting, lagSeconds: nil, lastEvent: nil, message: problem ?? kept)
            return
        }
        let stale = now.timeIntervalSince(checkpoint.updatedAt) > 600
        self.init(
            mode: stale ? .failing : .normal, lagSeconds: now.timeIntervalSince(checkpoint.highWater), lastEvent: nil,
            message: problem ?? (stale ? "\(kept), which has recorded nothing for \(Int(now.timeIntervalSince(checkpoint.updatedAt) / 60)) min" : kept))
    }
}
