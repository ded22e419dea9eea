import AuditCore
import Foundation

/// A snapshot kept in the store, identified by its root hash.
public struct StoredSnapshot: Sendable, Equatable {
    public var rootHash: String
    public var collectedAt: Date
    public var organizationName: String?
    public var users: Int
    public var partial: Bool
    public var byteCount: Int

    public init(rootHash: String, collectedAt: Date, organizationName: String?, users: Int, partial: Bool, byteCount: Int) {
        self.rootHash = rootHash
        self.collectedAt = collectedAt
        self.organizationName = organizationName
        self.users = users
        self.partial = partial
        self.byteCount = byteCount
    }
}

/// One accepted baseline. Versions only grow; the highest is the current one.
public struct Baseline: Sendable, Equatable {
    public var version: Int
    public var rootHash: String
    public var acceptedAt: Date
    public var acceptedBy: String
    public var note: String?

    public init(version: Int, rootHash: String, acceptedAt: Date, acceptedBy: String, note: String?) {
        self.version = version
        self.rootHash = rootHash
        self.acceptedAt = acceptedAt
        self.acceptedBy = acceptedBy
        self.note = note
    }
}

/// A drift item as the store remembers it across runs.
public struct Finding: Sendable, Equatable {
    public var fingerprint: String
    public var kind: String
    public var severity: Severity
    public var summary: String
    public var causeFingerprint: String?
    public var firstSeen: Date
    public var lastSeen: Date
    public var baselineVersion: Int?

    public init(
        fingerprint: String, kind: String, severity: Severity, summary: String, causeFingerprint: String?, firstSeen: Date,
        lastSeen: Date, baselineVersion: Int?
    ) {
        self.fingerprint = fingerprint
        self.kind = kind
        self.severity = severity
        self.summary = summary
        self.causeFingerprint = causeFingerprint
        self.firstSeen = firstSeen
        self.lastSeen = lastSeen
        self.baselineVersion = baselineVersion
    }
}

/// Where rbacwatch keeps its state, by concern: snapshots and baselines, role lineage, approvals
/// with the drift findings they apply to, the audit log (events, findings, quarantine) and the
/// feed's checkpoint and gaps, and the delivery outbox. A backend implements every part; each
/// part has contract tests run against every backend (Tests/AuditStoreTests): SQLite (the
/// default) and in-memory.
public typealias AuditStore = SnapshotStore & LineageStore & ApprovalStore & AuditLogStore & CheckpointStore & OutboxStore

/// Snapshots (content-addressed) and versioned baselines.
public protocol SnapshotStore: Sendable {
    /// Stores a snapshot under its root hash; storing the same content again changes nothing.
    /// `document` is the snapshot's canonical JSON (`snapshot.canonicalJSON()`), when the caller
    /// has it already (it is then not encoded twice).
    @discardableResult
    func storeSnapshot(_ snapshot: Snapshot, document: [UInt8]?, collectedAt: Date) async throws -> StoredSnapshot
    func snapshot(rootHash: String) async throws -> Snapshot?
    /// The stored snapshot's canonical document, undecoded: what a drift check compares.
    func snapshotDocument(rootHash: String) async throws -> [UInt8]?
    /// What a dashboard draws before the snapshot is decoded (stored with it); nil when there is
    /// none (a snapshot stored by an older rbacwatch) or it cannot be read.
    func snapshotPreview(rootHash: String) async throws -> SnapshotPreview?
    /// Newest first.
    func snapshots() async throws -> [StoredSnapshot]
    /// Deletes snapshots that no baseline refers to, except the `keepLatest` newest; returns how
    /// many were deleted.
    @discardableResult
    func pruneSnapshots(keepLatest: Int) async throws -> Int

    /// Accepts a stored snapshot as the new baseline.
    func acceptBaseline(rootHash: String, acceptedBy: String, note: String?, at: Date) async throws -> Baseline
    /// Stores a snapshot and accepts it, in one transaction: a crash leaves either both or neither.
    func acceptBaseline(snapshot: Snapshot, collectedAt: Date, acceptedBy: String, note: String?, at: Date) async throws -> Baseline
    func currentBaseline() async throws -> Baseline?
    /// Oldest first.
    func baselines() async throws -> [Baseline]
}

/// Role lineage: which role ids are one role deleted and recreated.
public protocol LineageStore: Sendable {
    func roleLineage() async throws -> RoleLineage
    /// Records `role id → lineage id` links (existing links are kept).
    func recordLineage(_ links: [String: String], at: Date) async throws
}

/// Approvals, and the drift findings (items seen) they apply to.
public protocol ApprovalStore: Sendable {
    func addApproval(_ approval: Approval) async throws
    /// Every approval ever made, revoked and expired ones included, oldest first.
    func approvals() async throws -> [Approval]
    /// Revokes the unrevoked approvals of a fingerprint; returns how many.
    func revokeApprovals(fingerprint: String, at: Date) async throws -> Int

    /// Remembers the items of a comparison (first and last seen), and queues `deliveries` (drift
    /// item payloads, by fingerprint) in the same transaction — each fingerprint once ever,
    /// whatever later checks and outbox pruning do.
    func recordFindings(_ items: [DriftItem], baselineVersion: Int?, at: Date, deliveries: [OutboxItem]) async throws
    /// Findings whose fingerprint starts with `prefix`.
    func findings(fingerprintPrefix prefix: String) async throws -> [Finding]
}

/// The audit log: judged events, their findings, and records set aside in quarantine.
public protocol AuditLogStore: Sendable {
    /// The events among `ids` already recorded with a date in `[from, to)`, by id (to tell a
    /// duplicate from an event id that came back with different content). The span is part of
    /// the key: an event fetched again keeps its date, so the SQLite store indexes events by
    /// `(date, id)` — at a window's right edge — and keeps no index of random ids.
    func recordedAuditEvents(ids: [String], datedFrom from: Date, to: Date) async throws -> [String: AuditEvent]
    /// Records judged events, their findings, the checkpoint, a backfilled gap and quarantined
    /// records in one transaction. An event already recorded (its id is the key) is skipped
    /// with its findings, so a retry or an overlapping window never duplicates; returns how many
    /// events were new.
    @discardableResult
    func recordAudit(_ batch: AuditBatch) async throws -> Int
    /// Recorded events dated in `[from, to)`, oldest first.
    func auditEvents(from: Date, to: Date) async throws -> [AuditEvent]
    /// Events about these entities dated in `[from, to)`, oldest first.
    func auditEvents(from: Date, to: Date, entityIds: Set<String>) async throws -> [AuditEvent]
    /// Audit findings, newest first.
    func auditFindings(_ query: FindingQuery) async throws -> [AuditFinding]
    /// Quarantined audit records, newest first, at most `limit`.
    func quarantinedRecords(limit: Int) async throws -> [QuarantinedRecord]
    /// How many quarantined records the store keeps (at most `quarantineLimit`, the newest).
    func quarantineCount() async throws -> Int
}

/// Where the audit feed stands: its high-water marks and the gaps it backfilled (written by
/// `AuditLogStore.recordAudit`, in the same transaction as the events).
public protocol CheckpointStore: Sendable {
    func ingestionCheckpoint() async throws -> IngestionCheckpoint?
    /// Oldest first.
    func ingestionGaps() async throws -> [IngestionGap]
}

/// Quarantined records kept, the newest: a source that sends nothing but garbage fills this
/// and no more.
public let quarantineLimit = 10_000

extension ApprovalStore {
    /// Remembers the items of a comparison, queueing nothing.
    public func recordFindings(_ items: [DriftItem], baselineVersion: Int?, at date: Date) async throws {
        try await recordFindings(items, baselineVersion: baselineVersion, at: date, deliveries: [])
    }
}

extension SnapshotStore {
    @discardableResult
    public func storeSnapshot(_ snapshot: Snapshot, collectedAt: Date) async throws -> StoredSnapshot {
        try await storeSnapshot(snapshot, document: nil, collectedAt: collectedAt)
    }

    /// The current baseline and its snapshot's canonical document, undecoded.
    public func baselineDocument() async throws -> (Baseline, [UInt8])? {
        try await currentBaseline(read: snapshotDocument(rootHash:))
    }

    /// The snapshot of the current baseline.
    public func baselineSnapshot() async throws -> (Baseline, Snapshot)? {
        try await currentBaseline(read: snapshot(rootHash:))
    }

    /// The current baseline with its snapshot read by `read`; a baseline whose snapshot is missing
    /// is a damaged store.
    private func currentBaseline<Content>(read: (String) async throws -> Content?) async throws -> (Baseline, Content)? {
        guard let baseline = try await currentBaseline() else { return nil }
        guard let content = try await read(baseline.rootHash) else {
            throw StoreError(.corrupt, "baseline \(baseline.version) refers to snapshot \(baseline.rootHash), which the store does not hold")
        }
        return (baseline, content)
    }
}

/// Why the store cannot be used; the description is one line that says what to do.
public struct StoreError: Error, CustomStringConvertible, Equatable {
    public enum Kind: Sendable, Equatable {
        /// The file is not an rbacwatch state file (another program's, or not SQLite at all).
        case foreign
        /// The file is damaged.
        case corrupt
        /// Written by a newer rbacwatch.
        case newerSchema
        /// Cannot be opened, created or written (permissions, disk).
        case unavailable
        /// A request names something the store does not have.
        case notFound
        /// The writer's lease was taken over (a fencing token no longer current): nothing was written.
        case fenced
    }

    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}

extension Date {
    /// Times are kept to the millisecond by every store (years 0001 to 9999), so what is read
    /// back equals what was written whatever the backend.
    var storePrecision: Date {
        Date(timeIntervalSince1970: Double(Bounded.epochMilliseconds(self)) / 1000)
    }
}

extension Approval {
    var storePrecision: Approval {
        var copy = self
        copy.createdAt = createdAt.storePrecision
        copy.expiresAt = expiresAt.storePrecision
        copy.revokedAt = revokedAt?.storePrecision
        return copy
    }
}

extension AuditLogStore {
    /// The recorded event with this id dated within a second of `date` (a finding's date is its
    /// trigger event's; the second absorbs the stores' millisecond precision).
    public func auditEvent(id: String, near date: Date) async throws -> AuditEvent? {
        try await recordedAuditEvents(ids: [id], datedFrom: date.addingTimeInterval(-1), to: date.addingTimeInterval(1))[id]
    }
}
