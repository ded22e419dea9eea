import AuditCore
import AuditEngine
import AuditStore
import AuditTestSupport
import Foundation
import Synchronization
import Testing

/// The drift monitor on a manual clock: when it collects, what it coalesces, how it fails and
/// recovers, and what it refuses — no sleeping, no network.
@Suite("Drift monitor on a manual clock")
struct DriftMonitorTests {
    /// A small organisation; `granted` adds a grant of Security Admin to Ben (one drift item).
    static func snapshot(granted: Bool = false, problems: [CollectionProblem] = []) -> Snapshot {
        let roles = [
            Role(id: "r-agent", name: "Agent", policies: [PermissionPolicy(domain: "routing", entityName: "queue", actions: ["join"])]),
            Role(id: "r-sec", name: "Security Admin", policies: [PermissionPolicy(domain: "authorization", entityName: "grant", actions: ["add"])]),
        ]
        var grants = [Grant(subjectId: "u1", subjectKind: .user, roleId: "r-agent", divisionId: "d1")]
        if granted { grants.append(Grant(subjectId: "u2", subjectKind: .user, roleId: "r-sec", divisionId: "d1")) }
        return Snapshot.resolving(
            organization: Organization(id: "o", name: "Acme"), divisions: [Division(id: "d1", name: "Support", isHome: true)], roles: roles,
            users: [User(id: "u1", name: "Ana", state: "active", divisionId: "d1"), User(id: "u2", name: "Ben", state: "active", divisionId: "d1")],
            groups: [], teams: [], oauthClients: [], grants: grants, problems: problems)
    }

    /// What the collector hands the monitor next, how often it was asked, and a gate that can
    /// hold a collection open.
    final class Source: Sendable {
        let next = Mutex<Result<Snapshot, CollectFailure>>(.success(DriftMonitorTests.snapshot()))
        let calls = Atomic<Int>(0)
        let holding = Mutex<[CheckedContinuation<Void, Never>]>([])
        let hold = Atomic<Bool>(false)

        func collect() async throws -> Snapshot {
            calls.add(1, ordering: .relaxed)
            if hold.load(ordering: .relaxed) {
                await withCheckedContinuation { continuation in holding.withLock { $0.append(continuation) } }
            }
            return try next.withLock { $0 }.get()
        }

        var held: Int { holding.withLock { $0.count } }

        func release() {
            hold.store(false, ordering: .relaxed)
            for continuation in holding.withLock({ list in defer { list = [] }; return list }) { continuation.resume() }
        }
    }

    struct CollectFailure: Error, CustomStringConvertible {
        var description: String
    }

    /// Runs a monitor over a store holding the baseline; `body` reads updates through `await`.
    static func withMonitor(
        baseline: Bool = true, _ body: (DriftMonitor, Source, ManualClock, Updates) async throws -> Void
    ) async throws {
        let clock = ManualClock()
        let store = InMemoryAuditStore()
        if baseline {
            _ = try await store.acceptBaseline(snapshot: snapshot(), collectedAt: clock.date(), acceptedBy: "tester", note: nil, at: clock.date())
        }
        let source = Source()
        let monitor = DriftMonitor(store: store, interval: .seconds(60), clock: ManualWallClock(clock)) { try await source.collect() }
        let running = Task { await monitor.run() }
        let updates = Updates(monitor.updates)
        do {
            try await body(monitor, source, clock, updates)
        } catch {
            source.release()
            running.cancel()
            await running.value
            throw error
        }
        source.release()
        running.cancel()
        await running.value
    }

    /// The monitor's updates, read one consumer's way.
    final class Updates: @unchecked Sendable {
        private var iterator: AsyncStream<MonitorUpdate>.Iterator
        init(_ stream: AsyncStream<MonitorUpdate>) { iterator = stream.makeAsyncIterator() }

        /// The next update that satisfies `predicate` (a hang catcher ends a wait that never ends).
        func next(_ what: String, where predicate: (MonitorUpdate) -> Bool) async throws -> MonitorUpdate {
            while let update = await iterator.next() {
                if predicate(update) { return update }
            }
            throw CollectFailure(description: "the monitor stopped before \(what)")
        }
    }

    /// Waits (bounded, without the manual clock moving) until `condition` holds.
    static func eventually(_ what: String, _ condition: () async -> Bool) async throws {
        let deadline = ContinuousClock.now + .seconds(60)
        while !(await condition()) {
            guard ContinuousClock.now < deadline else { throw CollectFailure(description: "timed out waiting for \(what)") }
            try await Task.sleep(for: .milliseconds(2))
        }
    }

    @Test("it collects at once, then every interval of the injected clock; r runs a cycle now")
    func interval() async throws {
        try await Self.withMonitor { monitor, source, clock, updates in
            let first = try await updates.next("the first check") { $0.status == .ready }
            #expect(first.review?.items.isEmpty == true)
            #expect(source.calls.load(ordering: .relaxed) == 1)
            // Asleep on the manual clock until the interval is over.
            try await Self.eventually("the monitor to sleep") { clock.sleeping == 1 }
            clock.advance(by: .seconds(59))
            #expect(source.calls.load(ordering: .relaxed) == 1)
            source.next.withLock { $0 = .success(Self.snapshot(granted: true)) }
            clock.advance(by: .seconds(1))
            let second = try await updates.next("the second check") { $0.status == .ready && $0.review?.items.isEmpty == false }
            #expect(await monitor.cycles == 2)
            #expect(second.collectedAt == clock.date())
            #expect(second.nextRefresh == clock.date().addingTimeInterval(60))
            // The new item arrived after the first check: it is "new" from now.
            let fingerprint = try #require(second.review?.items.first?.item.fingerprint)
            #expect(second.appeared[fingerprint] == clock.date())
            // r: a cycle now, without the clock moving.
            try await Self.eventually("the monitor to sleep again") { clock.sleeping == 1 }
            await monitor.refresh()
            try await Self.eventually("the third cycle") { await monitor.cycles == 3 }
            #expect(source.calls.load(ordering: .relaxed) == 3)
        }
    }

    @Test("refreshes asked for during a cycle are one more cycle, never overlapping ones")
    func coalesced() async throws {
        try await Self.withMonitor { monitor, source, clock, updates in
            _ = try await updates.next("the first check") { $0.status == .ready }
            try await Self.eventually("the monitor to sleep") { clock.sleeping == 1 }
            source.hold.store(true, ordering: .relaxed)
            await monitor.refresh()
            try await Self.eventually("the second collection to start") { source.held == 1 }
            for _ in 0..<5 { await monitor.refresh() }
            #expect(source.held == 1, "cycles never overlap")
            source.release()
            try await Self.eventually("the coalesced cycle") { await monitor.cycles == 3 }
            // …and then it sleeps on the clock: five requests were one cycle.
            try await Self.eventually("the monitor to sleep") { clock.sleeping == 1 }
            #expect(await monitor.cycles == 3)
            #expect(source.calls.load(ordering: .relaxed) == 3)
        }
    }

    @Test("the same failure repeating is one entry with a count; the monitor recovers and keeps the record")
    func failureCollapsed() async throws {
        try await Self.withMonitor { monitor, source, clock, updates in
            _ = try await updates.next("the first check") { $0.status == .ready }
            source.next.withLock { $0 = .failure(CollectFailure(description: "GET /api/v2/users answered 503")) }
            for cycle in 2...4 {
                try await Self.eventually("the monitor to sleep") { clock.sleeping == 1 }
                clock.advance(by: .seconds(60))
                try await Self.eventually("cycle \(cycle)") { await monitor.cycles == cycle }
            }
            let failed = try await updates.next("the failures") { $0.failures.first?.count == 3 }
            #expect(failed.status == .failed("GET /api/v2/users answered 503"))
            #expect(failed.failures.count == 1)
            #expect(failed.failures[0].at.timeIntervalSince(failed.failures[0].first) == 120)
            // The last good comparison is still there to browse.
            #expect(failed.review != nil)
            source.next.withLock { $0 = .success(Self.snapshot()) }
            await monitor.refresh()
            let recovered = try await updates.next("the recovery") { $0.status == .ready }
            #expect(recovered.failures.count == 1 && recovered.failures[0].count == 3)
        }
    }

    @Test("a partial collection and a missing baseline are refused as typed cases; without a baseline the organisation still shows")
    func refusals() async throws {
        let problem = CollectionProblem(code: "missing.permissions", endpoint: "GET /api/v2/oauth/clients", permissions: ["oauth:client:view"], message: "denied")
        try await Self.withMonitor { monitor, source, clock, updates in
            source.next.withLock { $0 = .success(Self.snapshot(granted: true, problems: [problem])) }
            let partial = try await updates.next("the refusal") { $0.status != .starting && $0.status != .collecting }
            #expect(partial.status == .refused(.partialCollection(problems: [problem])))
            #expect(partial.status.problem?.hasPrefix("partial collection (1 problem: missing.permissions GET /api/v2/oauth/clients)") == true)
            // A partial snapshot is never compared: what shows is the stored one, with its review.
            #expect(partial.snapshot?.isPartial == false)
            #expect(partial.review == nil || partial.fromStore)
        }
        try await Self.withMonitor(baseline: false) { monitor, source, clock, updates in
            let refused = try await updates.next("the refusal") { $0.status != .starting && $0.status != .collecting }
            #expect(refused.status == .refused(.noBaseline))
            #expect(refused.snapshot?.users.count == 2)
            #expect(refused.collectedAt == clock.date())
        }
    }

    @Test("arrivals: the first check's items are not new; later ones are, from the check that saw them; gone ones are forgotten")
    func arrivals() {
        var arrivals = DriftArrivals()
        let t0 = Date(timeIntervalSince1970: 1_000)
        arrivals.update(fingerprints: ["a"], at: t0)
        #expect(arrivals.firstSeen == ["a": t0] && arrivals.appeared.isEmpty)
        arrivals.update(fingerprints: ["a", "b"], at: t0 + 60)
        #expect(arrivals.firstSeen == ["a": t0, "b": t0 + 60] && arrivals.appeared == ["b": t0 + 60])
        arrivals.update(fingerprints: ["b"], at: t0 + 120)
        #expect(arrivals.firstSeen == ["b": t0 + 60] && arrivals.appeared == ["b": t0 + 60])
        arrivals.update(fingerprints: ["a", "b"], at: t0 + 180)
        #expect(arrivals.appeared == ["a": t0 + 180, "b": t0 + 60], "an item that went and came back is new again")
    }
}
