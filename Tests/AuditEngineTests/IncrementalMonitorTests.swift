import AuditCore
import AuditEngine
import AuditStore
import AuditTestSupport
import Foundation
import Synchronization
import Testing

/// When the monitor walks the whole organisation and when it re-reads only what the audit feed
/// names; how a full walk's differences from the incremental snapshot become unaudited changes;
/// the stored snapshot shown at start. Manual clock, in-memory store; the collector's two paths
/// are closures (the collector itself is tested over loopback in GenesysClientTests).
@Suite("Incremental drift checks on a manual clock")
struct IncrementalMonitorTests {
    typealias Fixture = DriftMonitorTests

    final class Paths: Sendable {
        let full = Mutex<Snapshot>(Fixture.snapshot())
        let refreshed = Mutex<Snapshot>(Fixture.snapshot())
        let fullCalls = Atomic<Int>(0)
        let refreshes = Mutex<[ChangedEntities]>([])
        let hold = Atomic<Bool>(false)
        let holding = Mutex<[CheckedContinuation<Void, Never>]>([])

        func collect() async throws -> Snapshot {
            fullCalls.add(1, ordering: .relaxed)
            // Checked and queued under one lock, so a release between the two cannot be missed.
            await withCheckedContinuation { continuation in
                let now = holding.withLock { list -> Bool in
                    guard hold.load(ordering: .relaxed) else { return true }
                    list.append(continuation)
                    return false
                }
                if now { continuation.resume() }
            }
            return full.withLock { $0 }
        }

        func refresh(_ base: Snapshot, _ changes: ChangedEntities) async throws -> Snapshot {
            refreshes.withLock { $0.append(changes) }
            return refreshed.withLock { $0 }
        }

        func release() {
            let waiting = holding.withLock { list in
                hold.store(false, ordering: .relaxed)
                defer { list = [] }
                return list
            }
            for continuation in waiting { continuation.resume() }
        }
    }

    /// Records a checkpoint at `highWater` with `events`, as the ingestor would.
    static func feed(_ store: InMemoryAuditStore, highWater: Date, events: [AuditEvent] = []) async throws {
        _ = try await store.recordAudit(AuditBatch(events: events, findings: [], checkpoint: IngestionCheckpoint(highWater: highWater, updatedAt: highWater)))
    }

    /// The grant of Security Admin to Ben as the audit log records it.
    static func grantEvent(at date: Date) -> AuditEvent {
        AuditEvent(
            id: UUID().uuidString, date: date, serviceName: "PeoplePermissions", entityType: "Role", action: "MemberAdd", entityId: "r-sec",
            entityName: "Security Admin",
            changes: [.init(property: "subjectId", newValues: ["u2"]), .init(property: "divisionId", newValues: ["d1"]), .init(property: "subjectType", newValues: ["PC_USER"])])
    }

    static func withMonitor(
        fullEvery: Duration = .seconds(3600), overlap: TimeInterval = 30, stored: Snapshot? = nil, holdFirstCollection: Bool = false,
        _ body: (DriftMonitor, Paths, ManualClock, InMemoryAuditStore, DriftMonitorTests.Updates) async throws -> Void
    ) async throws {
        let clock = ManualClock()
        let store = InMemoryAuditStore()
        _ = try await store.acceptBaseline(snapshot: Fixture.snapshot(), collectedAt: clock.date().addingTimeInterval(-7200), acceptedBy: "tester", note: nil, at: clock.date())
        if let stored { try await store.storeSnapshot(stored, collectedAt: clock.date().addingTimeInterval(-3600)) }
        try await feed(store, highWater: clock.date().addingTimeInterval(-30))
        let paths = Paths()
        paths.hold.store(holdFirstCollection, ordering: .relaxed)
        let incremental = IncrementalCollection(fullEvery: fullEvery, overlap: overlap, maxFeedLag: 600) { try await paths.refresh($0, $1) }
        let monitor = DriftMonitor(store: store, interval: .seconds(60), clock: ManualWallClock(clock), incremental: incremental) {
            try await paths.collect()
        }
        let running = Task { await monitor.run() }
        let updates = DriftMonitorTests.Updates(monitor.updates)
        defer {
            paths.release()
            running.cancel()
        }
        try await body(monitor, paths, clock, store, updates)
        paths.release()
        running.cancel()
        await running.value
    }

    @Test("after a full walk at start, checks re-read only what new audit events name; nothing named, nothing read; a full walk on schedule")
    func schedule() async throws {
        try await Self.withMonitor(fullEvery: .seconds(300)) { monitor, paths, clock, store, updates in
            let first = try await updates.next("the first check") { $0.status == .ready }
            #expect(first.collection == .full(reason: "first collection"))
            #expect(paths.fullCalls.load(ordering: .relaxed) == 1)
            #expect(first.lastFullWalk == clock.date())

            // A grant, audited; the feed records it.
            try await DriftMonitorTests.eventually("the monitor to sleep") { clock.sleeping == 1 }
            let granted = clock.date().addingTimeInterval(10)
            paths.refreshed.withLock { $0 = Fixture.snapshot(granted: true) }
            try await Self.feed(store, highWater: clock.date().addingTimeInterval(50), events: [Self.grantEvent(at: granted)])
            clock.advance(by: .seconds(60))
            let second = try await updates.next("the incremental check") { $0.status == .ready && $0.collection?.isFull == false }
            guard case .incremental(let changes) = second.collection else { Issue.record("expected an incremental check, got \(String(describing: second.collection))"); return }
            #expect(changes.roleSubjects["r-sec"] == ["u2"])
            #expect(paths.fullCalls.load(ordering: .relaxed) == 1, "no full walk")
            #expect(second.review?.items.contains { $0.item.kind == .grantAdded } == true)
            #expect(second.snapshot == Fixture.snapshot(granted: true))

            // The feed moves on with nothing new: the event is behind the mark (less the overlap).
            try await DriftMonitorTests.eventually("the monitor to sleep") { clock.sleeping == 1 }
            try await Self.feed(store, highWater: clock.date().addingTimeInterval(50))
            clock.advance(by: .seconds(60))
            let third = try await updates.next("the third check") { $0.status == .ready && $0.collection == .unchanged }
            #expect(paths.refreshes.withLock { $0.map(\.isEmpty) } == [false, true], "nothing named: the organisation read only")
            #expect(third.snapshot == Fixture.snapshot(granted: true), "the last snapshot still holds")

            // Past fullEvery: a full walk.
            for _ in 0..<3 {
                try await DriftMonitorTests.eventually("the monitor to sleep") { clock.sleeping == 1 }
                try await Self.feed(store, highWater: clock.date().addingTimeInterval(50))
                clock.advance(by: .seconds(60))
                _ = try await updates.next("a check") { $0.status == .ready }
            }
            #expect(paths.fullCalls.load(ordering: .relaxed) == 2)
            #expect(await monitor.cycles == 6)
        }
    }

    @Test("an event the last check read for is not read for again while the overlap still reaches it; a new one is")
    func overlapReadOnce() async throws {
        try await Self.withMonitor(overlap: 600) { monitor, paths, clock, store, updates in
            _ = try await updates.next("the first check") { $0.status == .ready }
            try await DriftMonitorTests.eventually("the monitor to sleep") { clock.sleeping == 1 }
            let granted = clock.date().addingTimeInterval(10)
            paths.refreshed.withLock { $0 = Fixture.snapshot(granted: true) }
            try await Self.feed(store, highWater: clock.date().addingTimeInterval(50), events: [Self.grantEvent(at: granted)])
            clock.advance(by: .seconds(60))
            let second = try await updates.next("the incremental check") { $0.status == .ready && $0.check == 2 }
            #expect(second.collection?.isFull == false && second.collection != .unchanged)
            // Still inside the overlap (ten minutes), and already read for: not again.
            try await DriftMonitorTests.eventually("the monitor to sleep") { clock.sleeping == 1 }
            try await Self.feed(store, highWater: clock.date().addingTimeInterval(50))
            clock.advance(by: .seconds(60))
            let third = try await updates.next("the third check") { $0.status == .ready && $0.check == 3 }
            #expect(third.collection == .unchanged, "\(String(describing: third.collection))")
            // A later grant (a new event) is read for.
            try await DriftMonitorTests.eventually("the monitor to sleep") { clock.sleeping == 1 }
            try await Self.feed(store, highWater: clock.date().addingTimeInterval(50), events: [Self.grantEvent(at: clock.date().addingTimeInterval(5))])
            clock.advance(by: .seconds(60))
            let fourth = try await updates.next("the fourth check") { $0.status == .ready && $0.check == 4 }
            guard case .incremental(let changes) = fourth.collection else { Issue.record("expected an incremental check: \(String(describing: fourth.collection))"); return }
            #expect(changes.roleSubjects["r-sec"] == ["u2"])
            #expect(paths.refreshes.withLock { $0.map(\.isEmpty) } == [false, true, false])
            #expect(await monitor.cycles == 4)
        }
    }

    @Test("a full walk is forced by R, by a feed too far behind, and by an ingestion gap")
    func forcedFullWalks() async throws {
        try await Self.withMonitor { monitor, paths, clock, store, updates in
            _ = try await updates.next("the first check") { $0.status == .ready }
            try await DriftMonitorTests.eventually("the monitor to sleep") { clock.sleeping == 1 }
            await monitor.refreshFull()
            let asked = try await updates.next("the full walk asked for") { $0.status == .ready && $0.collection?.isFull == true }
            #expect(asked.collection == .full(reason: "asked for"))
            // The feed stalls: more than maxFeedLag behind.
            try await DriftMonitorTests.eventually("the monitor to sleep") { clock.sleeping == 1 }
            clock.advance(by: .seconds(660))
            let stale = try await updates.next("the check on a stale feed") { $0.status == .ready && $0.collection?.isFull == true }
            #expect(stale.collection?.summary.contains("behind") == true)
            // The feed catches up but records a gap after the last collection.
            try await DriftMonitorTests.eventually("the monitor to sleep") { clock.sleeping == 1 }
            _ = try await store.recordAudit(
                AuditBatch(
                    events: [], findings: [], checkpoint: IngestionCheckpoint(highWater: clock.date().addingTimeInterval(50), updatedAt: clock.date()),
                    gap: IngestionGap(start: clock.date(), end: clock.date().addingTimeInterval(40), detectedAt: clock.date())))
            clock.advance(by: .seconds(60))
            let gap = try await updates.next("the check after a gap") { $0.status == .ready }
            #expect(gap.collection == .full(reason: "an ingestion gap"))
            #expect(paths.fullCalls.load(ordering: .relaxed) == 4)
        }
    }

    @Test("a full walk finding a change no audit event explains reports it once the feed covers the walk; an audited one is not reported")
    func unaudited() async throws {
        try await Self.withMonitor(fullEvery: .seconds(120)) { monitor, paths, clock, store, updates in
            _ = try await updates.next("the first check") { $0.status == .ready }
            // Behind the audit log's back: the full walk sees the grant, the incremental path cannot.
            paths.full.withLock { $0 = Fixture.snapshot(granted: true) }
            for _ in 0..<2 {
                try await DriftMonitorTests.eventually("the monitor to sleep") { clock.sleeping == 1 }
                try await Self.feed(store, highWater: clock.date().addingTimeInterval(50))
                clock.advance(by: .seconds(60))
            }
            let walked = try await updates.next("the scheduled full walk") { $0.status == .ready && $0.collection == .full(reason: "scheduled") }
            #expect(walked.unaudited.isEmpty, "pending until the feed covers the walk")
            // The feed covers the walk, with no event for the grant: reported at the next check.
            try await DriftMonitorTests.eventually("the monitor to sleep") { clock.sleeping == 1 }
            try await Self.feed(store, highWater: clock.date().addingTimeInterval(50))
            clock.advance(by: .seconds(60))
            let next = try await updates.next("the check after") { $0.status == .ready && !$0.unaudited.isEmpty }
            #expect(next.unaudited.count == 1)
            #expect(next.unaudited.first?.item.kind == .grantAdded)
            #expect(next.unaudited.first?.item.subject.id == "u2")
            #expect(DashboardFeed.dashboard(next).unaudited == 1)
            #expect(DashboardFeed.dashboard(next).feed.contains { $0.kind == "unauditedChange" })
        }

        // The same difference with its audit event (made while the walk ran) is not reported.
        try await Self.withMonitor(fullEvery: .seconds(120)) { monitor, paths, clock, store, updates in
            _ = try await updates.next("the first check") { $0.status == .ready }
            paths.full.withLock { $0 = Fixture.snapshot(granted: true) }
            try await DriftMonitorTests.eventually("the monitor to sleep") { clock.sleeping == 1 }
            try await Self.feed(store, highWater: clock.date().addingTimeInterval(50))
            clock.advance(by: .seconds(60))
            try await DriftMonitorTests.eventually("the monitor to sleep") { clock.sleeping == 1 }
            // Made during the full walk: its event is not yet ingested when the walk is compared.
            try await Self.feed(store, highWater: clock.date().addingTimeInterval(-100))
            clock.advance(by: .seconds(60))
            _ = try await updates.next("the scheduled full walk") { $0.status == .ready && $0.collection == .full(reason: "scheduled") }
            try await DriftMonitorTests.eventually("the monitor to sleep") { clock.sleeping == 1 }
            try await Self.feed(store, highWater: clock.date().addingTimeInterval(50), events: [Self.grantEvent(at: clock.date().addingTimeInterval(-1))])
            clock.advance(by: .seconds(60))
            let after = try await updates.next("the check after") { $0.status == .ready }
            #expect(after.unaudited.isEmpty)
            #expect(await monitor.cycles == 4)
        }
    }

    @Test("at start the newest stored snapshot is shown with its comparison, marked as stored, before any collection finishes")
    func storedFirst() async throws {
        try await Self.withMonitor(stored: Fixture.snapshot(granted: true), holdFirstCollection: true) { monitor, paths, clock, store, updates in
            let shown = try await updates.next("the stored snapshot") { $0.fromStore && $0.review != nil }
            #expect(shown.snapshot == Fixture.snapshot(granted: true))
            #expect(shown.collectedAt == clock.date().addingTimeInterval(-3600))
            #expect(shown.review?.items.contains { $0.item.kind == .grantAdded } == true)
            #expect(DashboardFeed.dashboard(shown).fromStore)
            #expect(DashboardFeed.dashboard(shown).users.count == 2)
            // Nothing was recorded for it: no finding, no snapshot stored again.
            #expect(try await store.findings(fingerprintPrefix: "").isEmpty)
            paths.release()
            let collected = try await updates.next("the first collection") { $0.status == .ready }
            #expect(!collected.fromStore)
            #expect(collected.collectedAt == clock.date())
        }
    }
}
