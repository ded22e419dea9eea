import AuditCore
import AuditTestSupport
import Foundation
@testable import GenesysClient
import GenesysSimulator
import Testing

/// Incremental collection against full walks, over loopback: the simulator makes a seeded mix of
/// every kind of change through its audited write paths, the audit API's events say what to read
/// again, and the result must be the snapshot a full walk makes — byte for byte.
@Suite("Incremental collection")
struct IncrementalCollectionTests {
    @Test("after a seeded mix of every kind of change, the incremental snapshot is byte-identical to a full walk's", arguments: [UInt64(3), 17, 29, 190])  // 190: a deleted user who owned a group that includes its owners
    func randomMix(seed: UInt64) async throws {
        let round = try await IncrementalRound.run(seed: seed, users: 400, changes: 40)
        #expect(!round.partial)
        #expect(round.changedFromBase)
        #expect(round.changes.relevantEvents >= 20)
        #expect(round.differences == [], "seed \(seed): incremental differs from the full walk: \(round.differences.prefix(10))")
        #expect(round.identical)
        // Cheaper than walking everything again.
        #expect(round.incrementalRequests < round.fullRequests)
    }

    @Test("no events: the incremental snapshot is the base, read with one request (the organisation, to know the API answers)")
    func nothingChanged() async throws {
        let sim = TestSupport.simulator(users: 200, seed: 5)
        try await sim.withRunning { endpoint in
            try await TestSupport.withClient(endpoint) { client in
                let (base, _) = try await Collector(client: client).collect()
                let before = client.statistics.requests
                let (same, _) = try await Collector(client: client).refresh(base, changes: ChangedEntities())
                #expect(client.statistics.requests == before + 1)
                #expect(same.canonicalJSON() == base.canonicalJSON())
            }
        }
    }

    @Test("a user an event says was deleted who is still there: their grants are read again, neither dropped nor kept stale")
    func deletedUserStillThere() async throws {
        let sim = TestSupport.simulator(users: 200, seed: 7)
        try await sim.withRunning { endpoint in
            try await TestSupport.withClient(endpoint) { client in
                let (base, _) = try await Collector(client: client).collect()
                sim.apply(.grantRoleToUser, audited: false)
                let (full, _) = try await Collector(client: client).collect()
                let granted = try #require(DriftEngine.diff(baseline: base, current: full).items.first { $0.kind == .grantAdded })
                var changes = ChangedEntities()
                changes.removedUsers = [granted.subject.id]
                let (incremental, _) = try await Collector(client: client).refresh(base, changes: changes)
                #expect(incremental.users.contains { $0.id == granted.subject.id })
                #expect(incremental.canonicalJSON() == full.canonicalJSON())
            }
        }
    }

    @Test("a change behind the audit log's back is invisible to the incremental path and found by a full walk")
    func unauditedChange() async throws {
        let sim = TestSupport.simulator(users: 200, seed: 6)
        try await sim.withRunning { endpoint in
            try await TestSupport.withClient(endpoint) { client in
                let (base, _) = try await Collector(client: client).collect()
                let from = Date().addingTimeInterval(-2)
                let logged = sim.auditEventCount
                sim.apply(.grantRoleToUser, audited: false)
                #expect(sim.auditEventCount == logged)
                let changes = ChangedEntities(events: try await IncrementalRound.auditEvents(client, from: from))
                #expect(changes.isEmpty)
                let (incremental, _) = try await Collector(client: client).refresh(base, changes: changes)
                let (full, _) = try await Collector(client: client).collect()
                let items = DriftEngine.diff(baseline: incremental, current: full).items
                #expect(items.contains { $0.kind == .grantAdded })
            }
        }
    }
}
