import AuditCore
import AuditStore
import Foundation

/// Attributes drift items to audit events: those `watch` (or the dashboard) has ingested into the
/// store, plus — when a source is given — those the audit API returns for the span now.
public enum DriftAttributor {
    /// What attribution found, or why there was none.
    public struct Outcome: Sendable {
        public var attribution: [String: ItemAttribution]?
        public var coverage: AttributionCoverage?
        /// Why attribution is missing or partial (one line), if it is.
        public var note: String?
    }

    /// - Parameters:
    ///   - baselineAt: when the baseline was collected (nil: unknown).
    ///   - currentAt: when the current state was collected.
    ///   - source: the audit API, to fetch the span live (nil: the store only).
    ///   - realtimeReach: how far back the realtime query reaches; older spans use the async one.
    public static func attribute(
        _ items: [DriftItem], store: any AuditStore, baselineAt: Date?, currentAt: Date, source: (any AuditSource)? = nil,
        now: Date = Date(), realtimeReach: TimeInterval = IngestionSettings().realtimeReach
    ) async -> Outcome {
        let (from, to) = Attribution.window(baselineAt: baselineAt, currentAt: currentAt)
        var events: [String: AuditEvent] = [:]
        var sources: [String] = []
        var problems: [String] = []

        if let source {
            do {
                let until = min(to, now)
                let reach = now.addingTimeInterval(-realtimeReach)
                for (service, entityType) in Attribution.auditedTypes {
                    // The realtime query for what it reaches, the async one for anything older.
                    var fetches: [AuditFetch] = []
                    if from < reach {
                        fetches.append(try await source.fetch(from: from, to: min(reach, until), service: service, entityType: entityType, realtime: false))
                    }
                    if until > max(from, reach) {
                        fetches.append(try await source.fetch(from: max(from, reach), to: until, service: service, entityType: entityType, realtime: true))
                    }
                    for fetch in fetches {
                        for event in fetch.events { events[event.id] = event }
                        if let truncation = fetch.truncation {
                            problems.append("the audit API's \(entityType) events stopped early (\(truncation.reason))")
                        }
                    }
                }
                sources.append("the audit API")
            } catch {
                problems.append("the audit API could not be read (\(error))")
            }
        }

        var stored = false
        var coveredUntil: Date? = sources.isEmpty ? nil : now
        do {
            if let checkpoint = try await store.ingestionCheckpoint() {
                stored = true
                for event in try await store.auditEvents(from: from, to: to, entityIds: Attribution.entityIds(items)) { events[event.id] = event }
                sources.append("the state store")
                coveredUntil = max(coveredUntil ?? checkpoint.highWater, checkpoint.highWater)
                if coveredUntil! < currentAt {
                    problems.append(
                        "the audit feed reaches only \(ISOTimestamp.string(coveredUntil!)): later changes are pending until rbacwatch watch catches up")
                }
            }
        } catch {
            problems.append("the store's audit events could not be read (\(error))")
        }

        guard source != nil && sources.contains("the audit API") || stored else {
            return Outcome(
                attribution: nil, coverage: nil,
                note: problems.first ?? "no audit events: run rbacwatch watch to ingest the audit feed, or compare against the organisation directly")
        }
        let list = Array(events.values)
        return Outcome(
            attribution: Attribution.attribute(items, events: list, from: from, to: to, coveredUntil: coveredUntil),
            coverage: AttributionCoverage(from: from, to: to, events: list.filter { $0.date >= from && $0.date <= to }.count, source: sources.joined(separator: " and ")),
            note: problems.isEmpty ? nil : problems.joined(separator: "; "))
    }

    /// When the snapshot with `rootHash` was collected, if the store has it.
    public static func collectedAt(rootHash: String, store: any AuditStore) async -> Date? {
        try? await store.snapshots().first { $0.rootHash == rootHash }?.collectedAt
    }
}
