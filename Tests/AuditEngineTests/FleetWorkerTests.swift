import AuditCore
import AuditEngine
import AuditStore
import AuditTestSupport
import Foundation
import Logging
import Testing

/// The worker's own part of a graceful stop, in process against a real PostgreSQL server: every
/// lease it holds is released, including one the database granted it without the worker knowing.
@Suite("Fleet worker shutdown")
struct FleetWorkerTests {
    static func settings(_ id: String) -> FleetSettings {
        var settings = FleetSettings(workerId: id, host: "test", pid: 1)
        // Long enough that no lease lapses while a loaded machine runs the test.
        settings.leaseTTL = .seconds(120)
        settings.settle = .zero
        return settings
    }

    static let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

    /// Runs until cancelled, as an organisation's runner does (the sleep ends with the task).
    static let idle: FleetWorker.OrganizationRunner = { _, _ in
        try? await Task.sleep(for: .seconds(3600))
    }

    @Test("a stop releases what the worker took and a lease granted under its name that it never learnt of; history records each end")
    func shutdownReleasesEverything() async throws {
        let database = try await PostgresServer.open(prefix: "fleetworker")
        defer { Task { await database.close() } }
        // An acquisition whose answer was lost: the database says w1 holds org:a, w1 does not know.
        let orphan = try #require(try await database.acquireLease("org:a", owner: "w1", ttl: .seconds(60)))
        let worker = FleetWorker(
            database: database, organizations: ["a", "b", "c"], settings: Self.settings("w1"), logger: Self.logger, runOrganization: Self.idle)
        await worker.step()
        let held = try await database.leases(prefix: "org:").filter { $0.owner == "w1" }
        #expect(Set(held.map(\.name)) == ["org:a", "org:b", "org:c"], "b and c taken; a still granted from before")
        #expect(Set(worker.health.organizations.keys) == ["b", "c"], "the worker knows only what it took")

        await worker.shutdown()
        let after = try await database.leases(prefix: "org:")
        #expect(after.count == 3)
        #expect(after.allSatisfy { !$0.held && $0.owner == nil }, "every lease released: \(after.filter(\.held).map(\.name))")
        let history = try await database.leaseHistory(prefix: "org:")
        #expect(history.count == 3)
        #expect(history.allSatisfy { $0.endedAt != nil }, "each grant's end recorded")
        #expect(history.contains { $0.name == "org:a" && $0.token == orphan.token })
        // Another worker takes them at once.
        #expect(try await database.acquireLease("org:a", owner: "w2", ttl: .seconds(60)) != nil)
    }

    @Test("cancelled while running, the worker stops its runners and releases every lease before run() returns")
    func cancelledRunReleases() async throws {
        let database = try await PostgresServer.open(prefix: "fleetworker")
        defer { Task { await database.close() } }
        let names = (1...8).map { "org\($0)" }
        let worker = FleetWorker(database: database, organizations: names, settings: Self.settings("w1"), logger: Self.logger, runOrganization: Self.idle)
        // Leased first, tick by tick (a loaded machine may fail one), so the stop is what is tested.
        for _ in 0..<10 where worker.health.organizations.count < names.count { await worker.step() }
        #expect(worker.health.organizations.count == names.count, "all eight leased")
        let before = worker.health.lastTick
        let run = Task { await worker.run() }
        // Running: its first tick (renewals, heartbeat) is done before the stop comes.
        let deadline = ContinuousClock.now + .seconds(60)
        while worker.health.lastTick == before, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        #expect(worker.health.lastTick != before, "run() ticked")
        run.cancel()
        await run.value
        let leases = try await database.leases(prefix: "org:")
        #expect(leases.count == names.count)
        #expect(leases.allSatisfy { !$0.held }, "held after the stop: \(leases.filter(\.held).map(\.name))")
        #expect(try await database.workers(window: .seconds(60)).first { $0.id == "w1" }?.stoppedAt != nil, "marked stopped")
    }
}
