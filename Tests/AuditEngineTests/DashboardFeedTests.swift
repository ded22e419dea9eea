import AuditCore
import AuditEngine
import AuditStore
import AuditTestSupport
import Foundation
import Synchronization
import Testing

/// The engine's dashboard feed over an in-memory store and a scripted audit source, on manual
/// clocks: what it publishes, when, and what a new finding or an approval changes.
@Suite("Dashboard feed")
struct DashboardFeedTests {
    /// Audit events served from a list, by date, for one service.
    final class ScriptedAudit: AuditSource {
        let events = Mutex<[AuditEvent]>([])
        let fetches = Atomic<Int>(0)

        func services() async throws -> [String] { ["PeoplePermissions"] }

        func fetch(from: Date, to: Date, service: String, entityType: String?, realtime: Bool) async throws -> AuditFetch {
            fetches.add(1, ordering: .relaxed)
            return AuditFetch(events: events.withLock { $0.filter { $0.date >= from && $0.date < to } })
        }
    }

    /// A role granted in every division: RBW-003 fires.
    static func grantEverywhere(_ id: String, at date: Date) -> AuditEvent {
        AuditEvent(
            id: id, date: date, serviceName: "PeoplePermissions", entityType: "Role", action: "MemberAdd", entityId: "r-agent", entityName: "Agent",
            userId: "u-admin", userName: "Ana Admin", changes: [AuditEvent.Change(property: "divisionId", newValues: ["*"])])
    }

    /// What the feed published, in order.
    final class Published: Sendable {
        let updates = Mutex<[DashboardFeed.Update]>([])
        var drifts: [DashboardData] { updates.withLock { $0.compactMap { if case .drift(let data) = $0 { data } else { nil } } } }
        var audits: [AuditFeed] { updates.withLock { $0.compactMap { if case .audit(let feed) = $0 { feed } else { nil } } } }
    }

    @Test("drift rows once per check; a poll's new finding joins the held ones, marked new, without a drift update; an approval shows at once")
    func feed() async throws {
        let driftClock = ManualClock()
        let auditClock = ManualClock(epoch: driftClock.date())
        let store = InMemoryAuditStore()
        let start = auditClock.date()
        _ = try await store.acceptBaseline(
            snapshot: DriftMonitorTests.snapshot(), collectedAt: start, acceptedBy: "tester", note: nil, at: start)
        // A finding recorded before the dashboard opened: on the first page, not "new".
        var engine = RuleEngine(rules: .defaults())
        let earlier = Self.grantEverywhere("ev-earlier", at: start.addingTimeInterval(-7200))
        _ = try await store.recordAudit(
            AuditBatch(
                events: [earlier], findings: engine.judge(earlier),
                checkpoint: IngestionCheckpoint(highWater: start.addingTimeInterval(-120), updatedAt: start.addingTimeInterval(-60))))

        let audit = ScriptedAudit()
        let ingestor = AuditIngestor(source: audit, store: store, rules: .defaults(), clock: ManualWallClock(auditClock))
        let source = DriftMonitorTests.Source()
        let monitor = DriftMonitor(store: store, interval: .seconds(3600), clock: ManualWallClock(driftClock)) { try await source.collect() }
        let feed = DashboardFeed(monitor: monitor, source: .ingesting(ingestor), store: store, rules: .defaults(), clock: ManualWallClock(auditClock))
        let published = Published()
        let running = Task { await feed.run() }
        let reading = Task {
            for await update in feed.updates { published.updates.withLock { $0.append(update) } }
        }
        defer {
            running.cancel()
            reading.cancel()
        }

        try await DriftMonitorTests.eventually("the first drift rows") { published.drifts.contains { $0.status == .ready } }
        let ready = try #require(published.drifts.last { $0.status == .ready })
        #expect(ready.users.map(\.name) == ["Ana", "Ben"])
        #expect(ready.risk.roles["r-sec"] != nil, "risk as the monitor rolled it up")
        try await DriftMonitorTests.eventually("the first poll") { await ingestor.health.lastSuccess != nil && auditClock.sleeping >= 1 }
        // The page the poll's update brings (one read from the store before it may come first).
        try await DriftMonitorTests.eventually("the first page, with the poll's health") {
            published.audits.last?.rows.count == 1 && published.audits.last?.health?.mode == .normal
        }
        let first = try #require(published.audits.last)
        #expect(first.rows.first?.rule == "RBW-003")
        #expect(first.rows.first?.appeared == nil, "recorded before the dashboard opened")
        #expect(first.details.values.first?.event?.id == "ev-earlier", "the event behind the finding")
        #expect(first.health?.mode == .normal)
        let driftsBefore = published.drifts.count

        // A grant made now: judged at the next poll, once past the lag.
        audit.events.withLock { $0.append(Self.grantEverywhere("ev-new", at: auditClock.date().addingTimeInterval(-5))) }
        auditClock.advance(by: .seconds(60))
        try await DriftMonitorTests.eventually("the new finding") { published.audits.last?.rows.count == 2 }
        let grown = try #require(published.audits.last)
        let newRow = try #require(grown.rows.first { $0.rowId?.hasSuffix("ev-new") == true })
        #expect(newRow.appeared == auditClock.date(), "new since the dashboard opened")
        #expect(grown.rows.map(\.rowId) == [newRow.rowId, first.rows[0].rowId], "newest first")
        #expect(grown.details[newRow.id]?.event?.id == "ev-new")
        #expect(published.drifts.count == driftsBefore, "a finding does not rebuild the drift rows")

        // An approval of the new finding's fingerprint: the held findings show it at once.
        _ = try await feed.approve(fingerprint: newRow.fingerprint, ticket: "CHG-7", note: nil, lifetime: 3600, approver: "tester")
        try await DriftMonitorTests.eventually("the approval") {
            published.audits.last?.rows.first { $0.id == newRow.id }?.state.isApproved == true
        }
        let approved = try #require(published.audits.last)
        #expect(approved.rows.first { $0.id == newRow.id }?.state.approval?.ticket == "CHG-7")
        #expect(approved.details[newRow.id]?.finding.approval?.ticket == "CHG-7")
        #expect(approved.rows.count == 2)
    }

    @Test("without a snapshot the drift rows carry the status and the failures, newest first")
    func failures() {
        var update = MonitorUpdate(status: .failed("the API is unreachable"))
        update.failures.record("first", at: Date(timeIntervalSince1970: 1_000))
        update.failures.record("second", at: Date(timeIntervalSince1970: 2_000))
        let data = DashboardFeed.dashboard(update)
        #expect(data.status == .failed("the API is unreachable"))
        #expect(data.feed.map(\.summary) == ["collection failed: second", "collection failed: first"])
        #expect(data.users.isEmpty)
    }

    @Test("ingestion health as the header sees it: starting, normal, throttled, critical-only, failing, and another process's feed")
    func healthView() {
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        #expect(IngestionView(nil, problem: nil, now: now).mode == .starting)
        var health = IngestionHealth()
        health.lastPoll = now
        health.lastSuccess = now
        health.lagSeconds = 65
        #expect(IngestionView(health, problem: nil, now: now) == IngestionView(mode: .normal, lagSeconds: 65, lastEvent: nil))
        health.throttledSince = now
        #expect(IngestionView(health, problem: nil, now: now).mode == .throttled)
        health.mode = .criticalOnly
        #expect(IngestionView(health, problem: nil, now: now).mode == .criticalOnly)
        health = IngestionHealth()
        health.lastPoll = now
        health.lastError = "the audit API answered 503"
        #expect(IngestionView(health, problem: nil, now: now) == IngestionView(mode: .failing, lagSeconds: nil, lastEvent: nil, message: "the audit API answered 503"))
        let holder = StateLock.Holder(pid: 42, role: "rbacwatch watch")
        let kept = IngestionView(keptBy: holder, checkpoint: IngestionCheckpoint(highWater: now.addingTimeInterval(-90), updatedAt: now.addingTimeInterval(-700)), problem: nil, now: now)
        #expect(kept.mode == .failing)
        #expect(kept.message?.contains("which has recorded nothing for 11 min") == true)
        #expect(kept.lagSeconds == 90)
    }
}

/// The stored snapshot's preview: what the users pane draws before the snapshot is decoded.
@Suite("Dashboard: the stored snapshot's preview")
struct SnapshotPreviewTests {
    /// Users with names that sort differently by case, ids that break ties, grants direct and
    /// through a group, a division the snapshot does not name, and one in every division.
    static var snapshot: Snapshot {
        let roles = [
            Role(id: "r-agent", name: "Agent", policies: [PermissionPolicy(domain: "routing", entityName: "queue", actions: ["join", "view"])]),
            Role(id: "r-sec", name: "Security Admin", policies: [PermissionPolicy(domain: "authorization", entityName: "grant", actions: ["add"])]),
            Role(id: "r-both", name: "Both", policies: [PermissionPolicy(domain: "routing", entityName: "queue", actions: ["join"])], legacyPermissions: ["admin"]),
        ]
        let users = [
            User(id: "u3", name: "ana", username: "ana@x", state: "active", divisionId: "d1", groupIds: ["g1"]),
            User(id: "u1", name: "Ana", username: nil, state: "inactive", divisionId: "d-gone"),
            User(id: "u2", name: "Ben\u{1B}[2J", username: "ben@x", state: "active", divisionId: nil),
            User(id: "u4", name: "Ćiril", state: "active", divisionId: "*"),
        ]
        return Snapshot.resolving(
            organization: Organization(id: "o", name: "Acme"), divisions: [Division(id: "d1", name: "Support", isHome: true)], roles: roles,
            users: users, groups: [Group(id: "g1", name: "Supervisors", rolesEnabled: true, memberIds: ["u3"])],
            teams: [Team(id: "t1", name: "Tier 1", divisionId: "d1", memberIds: ["u1"])], oauthClients: [],
            grants: [
                Grant(subjectId: "u1", subjectKind: .user, roleId: "r-agent", divisionId: "d1"),
                Grant(subjectId: "u1", subjectKind: .user, roleId: "r-both", divisionId: "*"),
                Grant(subjectId: "g1", subjectKind: .group, roleId: "r-sec", divisionId: "d1"),
                Grant(subjectId: "u3", subjectKind: .user, roleId: "r-agent", divisionId: "d1"),
            ], problems: [])
    }

    @Test("the preview's rows are the snapshot's rows, in the same order, before risk and drift")
    func sameRows() throws {
        let snapshot = Self.snapshot
        let built = DashboardBuilder.build(
            snapshot: snapshot, review: nil, baselineVersion: nil, lineage: RoleLineage(), firstSeen: [:], risk: RiskRollup(), status: .collecting,
            collectedAt: nil, nextRefresh: nil)
        let preview = SnapshotPreview(snapshot)
        var update = MonitorUpdate(status: .collecting)
        update.preview = try #require(SnapshotPreview(encoded: preview.encoded()))
        update.fromStore = true
        update.collectedAt = Date(timeIntervalSince1970: 1_000)
        let data = DashboardFeed.dashboard(update)
        #expect(data.users == built.users)
        #expect(data.users.map(\.id) == ["u1", "u3", "u2", "u4"])
        #expect(data.users.map(\.permissions) == [3, 3, 0, 0])
        #expect(data.users.map(\.division) == ["d-gone", "Support", "", "*"])
        #expect(data.reading?.roles == 3 && data.reading?.inheritance == 2)
        #expect(data.organization == "Acme" && data.fromStore && data.collectedAt == update.collectedAt)
        #expect(data.roles.isEmpty && data.snapshot == nil)
        // Once the snapshot itself is there, the preview is not used.
        update.snapshot = snapshot
        #expect(DashboardFeed.dashboard(update).reading == nil)
    }

    @Test("a preview in another format, truncated or damaged anywhere is not read (the snapshot is), never a crash")
    func damaged() {
        let bytes = SnapshotPreview(Self.snapshot).encoded()
        #expect(SnapshotPreview(encoded: bytes) == SnapshotPreview(Self.snapshot))
        #expect(SnapshotPreview(encoded: []) == nil)
        #expect(SnapshotPreview(encoded: Array("{\"schema\":\"rbacwatch.snapshot/1\"}".utf8)) == nil)
        for cut in 0..<bytes.count {
            #expect(SnapshotPreview(encoded: Array(bytes[0..<cut])) == nil, "cut at \(cut)")
        }
        #expect(SnapshotPreview(encoded: bytes + [0]) == nil, "trailing bytes")
        // A user count of 2^62 after the header: refused before anything is reserved.
        var huge = Array(bytes[0..<(bytes.firstIndex(of: UInt8(ascii: "\n"))! + 1)])
        huge += [4] + Array("Acme".utf8) + [3, 1, 1] + [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x3F]
        #expect(SnapshotPreview(encoded: huge) == nil)
        // Every byte flipped in turn: read or refused, never a trap.
        for index in bytes.indices {
            var flipped = bytes
            flipped[index] ^= 0xFF
            _ = SnapshotPreview(encoded: flipped)
        }
    }

    @Test("showing the stored snapshot ends with the snapshot itself: the preview is not left behind")
    func monitorEndsWithSnapshot() async throws {
        let store = InMemoryAuditStore()
        let snapshot = Self.snapshot
        _ = try await store.acceptBaseline(snapshot: snapshot, collectedAt: Date(timeIntervalSince1970: 1_000), acceptedBy: "t", note: nil, at: Date())
        #expect(try await store.snapshotPreview(rootHash: SnapshotDigest(snapshot).root) == SnapshotPreview(snapshot))
        let monitor = DriftMonitor(store: store, interval: .seconds(60), clock: ManualWallClock(ManualClock())) { snapshot }
        await monitor.showStored()
        let latest = await monitor.latest
        #expect(latest.snapshot == snapshot && latest.preview == nil && latest.fromStore)
    }
}
