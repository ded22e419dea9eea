import AuditCore
import AuditStore
import Foundation
import Logging

/// What an operator should hear about one poll of the audit feed. The ingestor reports; it logs
/// at debug only. The edge — `watch`, the dashboard — turns these into log lines at their level.
public struct IngestionNote: Sendable, Equatable {
    public var level: Logger.Level
    public var message: String
    public var metadata: [String: String]

    public init(_ level: Logger.Level, _ message: String, _ metadata: [String: String] = [:]) {
        self.level = level
        self.message = message
        self.metadata = metadata
    }

    /// Pure: the notes for a poll that produced `outcome` and left `health`, after `previous`
    /// (the health before it; nil for the first poll).
    public static func notes(outcome: PollOutcome, health: IngestionHealth, previous: IngestionHealth?) -> [IngestionNote] {
        var notes: [IngestionNote] = []
        if let gap = outcome.gap {
            notes.append(.init(.warning, "audit gap backfilled", ["from": ISOTimestamp.string(gap.start), "seconds": "\(Int(gap.seconds))"]))
        }
        if let first = outcome.quarantined.first {
            notes.append(.init(.warning, "audit records quarantined", ["count": "\(outcome.quarantined.count)", "first": first.reason]))
        }
        if let truncated = health.truncated {
            notes.append(.init(.warning, "audit query stopped early", ["reason": truncated]))
        }
        switch (previous?.mode ?? .normal, health.mode) {
        case (.normal, .criticalOnly):
            let since = health.throttledSince.flatMap { start in health.lastPoll.map { Int($0.timeIntervalSince(start)) } }
            notes.append(
                .init(
                    .warning, "audit API throttled\(since.map { " for \($0) s" } ?? ""): circuit open, polling only the critical services",
                    ["services": health.services.joined(separator: ",")]))
        case (.criticalOnly, .normal):
            notes.append(.init(.notice, "audit API healthy again: polling every service, backfilling what narrowed polling skipped"))
        default:
            break
        }
        if let failed = outcome.failed, failed != "cancelled" {
            notes.append(.init(.error, "audit poll failed: \(failed)"))
        }
        return notes
    }
}

extension Logger {
    /// Logs an ingestion note at its level.
    public func log(_ note: IngestionNote) {
        log(level: note.level, "\(note.message)", metadata: note.metadata.isEmpty ? nil : note.metadata.mapValues { .string($0) })
    }
}
