import AuditCore
import Foundation

/// A store that lives as long as the process: for tests of code above the store, and for runs
/// that must leave nothing behind. Same contract as `SQLiteAuditStore`.
public actor InMemoryAuditStore: AuditStore {
    private var stored: [String: (info: StoredSnapshot, snapshot: Snapshot, order: Int)] = [:]
    private var baselineList: [Baseline] = []
    private var links: [String: String] = [:]
    private var approvalList: [Approval] = []
    private var findingsByFingerprint: [String: Finding] = [:]
    private var counter = 0
    private var checkpoint: IngestionCheckpoint?
    private var events: [String: AuditEvent] = [:]
    private var auditFindingList: [AuditFinding] = []
    private var findingKeys = Set<String>()
    private var gaps: [IngestionGap] = []
    private var quarantine: [QuarantinedRecord] = []
    // The outbox (InMemoryAuditStore+Outbox.swift).
    var outbox: [Int64: OutboxEntry] = [:]
    var outboxPosition: [Int64: Int64] = [:]
    var outboxKeys: [String: Int64] = [:]
    var outboxCounter: Int64 = 0
    var destinationHealth: [String: (paused: String?, lastError: String?, lastSuccess: Date?)] = [:]
    var queuedDriftFingerprints = Set<String>()

    public init() {}

    @discardableResult
    public func storeSnapshot(_ snapshot: Snapshot, document: [UInt8]?, collectedAt: Date) async throws -> StoredSnapshot {
        let root = SnapshotDigest.root(of: snapshot)
        if let existing = stored[root] { return existing.info }
        let info = StoredSnapshot(
            rootHash: root, collectedAt: collectedAt.storePrecision, organizationName: snapshot.organization?.name, users: snapshot.users.count,
            partial: snapshot.isPartial, byteCount: (document ?? snapshot.canonicalJSON()).count)
        counter += 1
        stored[root] = (info, snapshot, counter)
        return info
    }

    public func snapshot(rootHash: String) async throws -> Snapshot? { stored[rootHash]?.snapshot }

    public func snapshotDocument(rootHash: String) async throws -> [UInt8]? { stored[rootHash]?.snapshot.canonicalJSON() }

    public func snapshotPreview(rootHash: String) async throws -> SnapshotPreview? { stored[rootHash].map { SnapshotPreview($0.snapshot) } }

    public func snapshots() async throws -> [StoredSnapshot] {
        stored.values.sorted { ($0.info.collectedAt, $0.order) > ($1.info.collectedAt, $1.order) }.map(\.info)
    }

    @discardableResult
    public func pruneSnapshots(keepLatest: Int) async throws -> Int {
        let kept = Set(try await snapshots().prefix(max(0, keepLatest)).map(\.rootHash)).union(baselineList.map(\.rootHash))
        let doomed = stored.keys.filter { !kept.contains($0) }
        for root in doomed { stored[root] = nil }
        return doomed.count
    }

    public func acceptBaseline(rootHash: String, acceptedBy: String, note: String?, at date: Date) async throws -> Baseline {
        guard stored[rootHash] != nil else { throw StoreError(.notFound, "the store holds no snapshot \(rootHash)") }
        let baseline = Baseline(
            version: (baselineList.last?.version ?? 0) + 1, rootHash: rootHash, acceptedAt: date.storePrecision,
            acceptedBy: acceptedBy, note: note)
        baselineList.append(baseline)
        return baseline
    }

    public func acceptBaseline(
        snapshot: Snapshot, collectedAt: Date, acceptedBy: String, note: String?, at date: Date
    ) async throws -> Baseline {
        let info = try await storeSnapshot(snapshot, collectedAt: collectedAt)
        return try await acceptBaseline(rootHash: info.rootHash, acceptedBy: acceptedBy, note: note, at: date)
    }

    public func currentBaseline() async throws -> Baseline? { baselineList.last }
    public func baselines() async throws -> [Baseline] { baselineList }

    public func roleLineage() async throws -> RoleLineage { RoleLineage(links: links) }

    public func recordLineage(_ newLinks: [String: String], at date: Date) async throws {
        for (role, lineage) in newLinks where links[role] == nil { links[role] = lineage }
    }

    public func addApproval(_ approval: Approval) async throws { approvalList.append(approval.storePrecision) }
    public func approvals() async throws -> [Approval] { approvalList }

    public func revokeApprovals(fingerprint: String, at date: Date) async throws -> Int {
        var count = 0
        for index in approvalList.indices where approvalList[index].fingerprint == fingerprint && approvalList[index].revokedAt == nil {
            approvalList[index].revokedAt = date.storePrecision
            count += 1
        }
        return count
    }

    public func recordFindings(_ items: [DriftItem], baselineVersion: Int?, at date: Date, deliveries: [OutboxItem]) async throws {
        let due = deliveries.filter { !queuedDriftFingerprints.contains($0.payload.id) }
        queueItems(due, at: date)
        for item in due { queuedDriftFingerprints.insert(item.payload.id) }
        let date = date.storePrecision
        for item in items {
            let firstSeen = findingsByFingerprint[item.fingerprint]?.firstSeen ?? date
            findingsByFingerprint[item.fingerprint] = Finding(
                fingerprint: item.fingerprint, kind: item.kind.rawValue, severity: item.severity, summary: item.summary,
                causeFingerprint: item.causeFingerprint, firstSeen: firstSeen, lastSeen: date, baselineVersion: baselineVersion)
        }
    }

    public func findings(fingerprintPrefix prefix: String) async throws -> [Finding] {
        findingsByFingerprint.values.filter { $0.fingerprint.hasPrefix(prefix) }.sorted { $0.fingerprint < $1.fingerprint }
    }

    // MARK: The audit feed

    public func ingestionCheckpoint() async throws -> IngestionCheckpoint? { checkpoint }

    public func recordedAuditEvents(ids: [String], datedFrom from: Date, to: Date) async throws -> [String: AuditEvent] {
        var found: [String: AuditEvent] = [:]
        for id in ids { if let event = events[id], event.date >= from, event.date < to { found[id] = event } }
        return found
    }

    @discardableResult
    public func recordAudit(_ batch: AuditBatch) async throws -> Int {
        var fresh = Set<String>()
        for event in batch.events where events[event.id] == nil {
            var stored = event
            stored.date = stored.date.storePrecision
            events[event.id] = stored
            fresh.insert(event.id)
        }
        for finding in batch.findings {
            guard let trigger = finding.eventIds.last, fresh.contains(trigger), findingKeys.insert(finding.ruleId + "\u{1}" + trigger).inserted else { continue }
            var stored = finding
            stored.date = stored.date.storePrecision
            auditFindingList.append(stored)
        }
        for event in batch.replacing where events[event.id]?.date == event.date.storePrecision {
            var stored = event
            stored.date = stored.date.storePrecision
            events[event.id] = stored
        }
        if !batch.keepsCheckpoint {
            var point = batch.checkpoint
            point.highWater = point.highWater.storePrecision
            point.criticalHighWater = point.criticalHighWater?.storePrecision
            point.updatedAt = point.updatedAt.storePrecision
            checkpoint = point
        }
        // The same span again (a retried batch) is the same gap.
        if let gap = batch.gap, !gaps.contains(where: { $0.start == gap.start && $0.end == gap.end }) { gaps.append(gap) }
        for record in batch.quarantined where !quarantine.contains(where: { $0.digest == record.digest }) {
            var stored = record
            stored.receivedAt = stored.receivedAt.storePrecision
            quarantine.append(stored)
        }
        if quarantine.count > quarantineLimit { quarantine.removeFirst(quarantine.count - quarantineLimit) }
        queueItems(batch.deliveries.filter { item in item.trigger.map { fresh.contains($0) } ?? true }, at: batch.checkpoint.updatedAt)
        return fresh.count
    }

    public func quarantinedRecords(limit: Int) async throws -> [QuarantinedRecord] {
        Array(quarantine.reversed().prefix(max(0, limit)))
    }

    public func quarantineCount() async throws -> Int { quarantine.count }

    public func auditEvents(from: Date, to: Date) async throws -> [AuditEvent] {
        events.values.filter { $0.date >= from && $0.date < to }.sorted { ($0.date, $0.id) < ($1.date, $1.id) }
    }

    public func auditEvents(from: Date, to: Date, entityIds: Set<String>) async throws -> [AuditEvent] {
        try await auditEvents(from: from, to: to).filter { entityIds.contains($0.entityId) }
    }

    public func auditFindings(_ query: FindingQuery) async throws -> [AuditFinding] {
        Array(
            auditFindingList.filter { ($0.date >= (query.since ?? .distantPast)) && $0.severity >= query.minimumSeverity }
                .sorted { ($0.date, $1.ruleId) > ($1.date, $0.ruleId) }.prefix(query.limit))
    }

    public func ingestionGaps() async throws -> [IngestionGap] { gaps }
}
