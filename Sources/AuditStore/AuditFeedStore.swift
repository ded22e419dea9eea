import AuditCore
import Foundation

/// How far ingestion has come. Every event dated before `highWater` that the API had made
/// visible by the poll that set it has been judged and recorded.
public struct IngestionCheckpoint: Sendable, Equatable {
    public var highWater: Date
    /// While the circuit breaker narrows polling to the critical services: how far those have
    /// come (`highWater` then stays where full coverage ended).
    public var criticalHighWater: Date?
    public var updatedAt: Date

    public init(highWater: Date, criticalHighWater: Date? = nil, updatedAt: Date) {
        self.highWater = highWater
        self.criticalHighWater = criticalHighWater
        self.updatedAt = updatedAt
    }
}

/// A span ingestion did not watch live (a restart, a pause) and backfilled.
public struct IngestionGap: Sendable, Equatable {
    public var start: Date
    public var end: Date
    public var detectedAt: Date
    public var seconds: Double { end.timeIntervalSince(start) }

    public init(start: Date, end: Date, detectedAt: Date) {
        self.start = start
        self.end = end
        self.detectedAt = detectedAt
    }
}

/// One batch of judged audit events: written in one transaction, or not at all.
public struct AuditBatch: Sendable {
    public var events: [AuditEvent]
    public var findings: [AuditFinding]
    public var checkpoint: IngestionCheckpoint
    public var gap: IngestionGap?
    /// Records set aside in this window (kept once each, by digest).
    public var quarantined: [QuarantinedRecord]
    /// The findings' payloads for each destination that wants them (queued in the same
    /// transaction, each only if its trigger event is new).
    public var deliveries: [OutboxItem]
    /// Stored events whose content this batch replaces, each keyed by its (date, id): a pushed
    /// event's copy from the poll, which carries what the push does not (status, transaction).
    public var replacing: [AuditEvent]
    /// Pushed events are recorded between polls: the checkpoint stays where the polls put it
    /// (`checkpoint.updatedAt` still dates the deliveries).
    public var keepsCheckpoint: Bool

    public init(
        events: [AuditEvent], findings: [AuditFinding], checkpoint: IngestionCheckpoint, gap: IngestionGap? = nil,
        quarantined: [QuarantinedRecord] = [], deliveries: [OutboxItem] = [], replacing: [AuditEvent] = [], keepsCheckpoint: Bool = false
    ) {
        self.events = events
        self.findings = findings
        self.checkpoint = checkpoint
        self.gap = gap
        self.quarantined = quarantined
        self.deliveries = deliveries
        self.replacing = replacing
        self.keepsCheckpoint = keepsCheckpoint
    }
}

/// What a finding query selects.
public struct FindingQuery: Sendable {
    public var since: Date?
    public var minimumSeverity: Severity = .low
    public var limit = 1000
    public init(since: Date? = nil, minimumSeverity: Severity = .low, limit: Int = 1000) {
        self.since = since
        self.minimumSeverity = minimumSeverity
        self.limit = limit
    }
}

/// Findings as the store writes them: JSON arrays for the list columns.
enum FindingColumns {
    static func list(_ values: [String]) -> String {
        var w = CanonicalJSONWriter(reservingCapacity: 64)
        w.value(values)
        return String(decoding: w.bytes, as: UTF8.self)
    }

    static func unlist(_ text: String?) -> [String] {
        guard let text, let data = text.data(using: .utf8), let list = try? JSONSerialization.jsonObject(with: data) as? [String] else { return [] }
        return list
    }
}

extension AuditEvent {
    /// An event as a store kept it (its canonical JSON); unreadable is a damaged store.
    static func stored(_ content: Data) throws -> AuditEvent {
        do {
            return try AuditEvent.parse(Array(content))
        } catch {
            throw StoreError(.corrupt, "a recorded audit event cannot be read back (\(error.description))")
        }
    }
}
