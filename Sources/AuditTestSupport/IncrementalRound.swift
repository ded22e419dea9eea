import AuditCore
import Foundation
import GenesysClient
import GenesysSimulator

/// One check of incremental collection against a full walk, as `swift test` and
/// `rbacwatch-bench incremental` run it: collect, make a seeded mix of changes through the
/// simulator's audited write paths, read the audit API's events since, refresh the snapshot from
/// them, walk the organisation in full, compare.
public struct IncrementalRound: Sendable {
    public var identical: Bool
    /// Drift between the full walk and the incremental snapshot (`kind subject role`): empty when they agree.
    public var differences: [String]
    public var changes: ChangedEntities
    public var incrementalRequests: Int
    public var fullRequests: Int
    public var partial: Bool
    /// Whether the mix changed the organisation at all.
    public var changedFromBase: Bool
    public var incremental: Snapshot

    /// Every event the audit API holds since `from` for the services whose entities a snapshot holds.
    public static func auditEvents(_ client: GenesysAPIClient, from: Date) async throws -> [AuditEvent] {
        let source = GenesysAuditSource(client: client)
        var all: [AuditEvent] = []
        for service in ["PeoplePermissions", "Directory", "Groups"] {
            let fetch = try await source.fetch(from: from, to: Date().addingTimeInterval(60), service: service, entityType: nil, realtime: true)
            if let truncation = fetch.truncation { throw OperationFailure("the audit query stopped early: \(truncation.reason)") }
            all += fetch.events
        }
        return all
    }

    public struct OperationFailure: Error, CustomStringConvertible {
        public var description: String
        init(_ description: String) { self.description = description }
    }

    /// Refreshes `base` from the events since `from`, then walks in full; both measured in requests.
    public static func check(
        client: GenesysAPIClient, base: Snapshot, eventsFrom from: Date, afterRefresh: @Sendable () -> Void = {}
    ) async throws -> IncrementalRound {
        let changes = ChangedEntities(events: try await auditEvents(client, from: from))
        let before = client.statistics.requests
        let (incremental, _) = try await Collector(client: client).refresh(base, changes: changes)
        let middle = client.statistics.requests
        afterRefresh()
        let (full, _) = try await Collector(client: client).collect()
        let after = client.statistics.requests
        let differences = DriftEngine.diff(baseline: full, current: incremental).items.map { "\($0.kind) \($0.subject.id) \($0.role?.id ?? "")" }
        let fullBytes = full.canonicalJSON()
        return IncrementalRound(
            identical: incremental.canonicalJSON() == fullBytes, differences: differences, changes: changes,
            incrementalRequests: middle - before, fullRequests: after - middle, partial: incremental.isPartial || full.isPartial,
            changedFromBase: fullBytes != base.canonicalJSON(), incremental: incremental)
    }

    /// A fresh simulated organisation: collect, apply `randomMix(seed:count:)`, check.
    public static func run(seed: UInt64, users: Int, changes count: Int) async throws -> IncrementalRound {
        let sim = TestSupport.simulator(users: users, seed: seed)
        return try await sim.withRunning { endpoint in
            try await TestSupport.withClient(endpoint) { client in
                let (base, _) = try await Collector(client: client).collect()
                let from = Date().addingTimeInterval(-2)
                sim.apply(.randomMix(seed: seed &* 31 &+ 5, count: count))
                return try await check(client: client, base: base, eventsFrom: from)
            }
        }
    }
}
