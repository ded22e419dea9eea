import AuditCore
import AuditStore
import Foundation
import AuditTestSupport
import Testing

/// Every store implementation must pass these. Add a case to `StoreKind` for a new backend.
enum StoreKind: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case sqlite, memory, postgres

    var testDescription: String { rawValue }

    /// PostgreSQL: a real server (AuditTestSupport's PostgresServer), a database of its own, one
    /// organisation's store in it.
    func make() async throws -> any AuditStore {
        switch self {
        case .sqlite: try SQLiteAuditStore(path: StoreFiles.temporary().appendingPathComponent("state.sqlite").path)
        case .memory: InMemoryAuditStore()
        case .postgres: try await PostgresServer.open().store(organization: "acme-prod")
        }
    }
}

enum StoreFiles {
    static func temporary() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("rbacwatch-store-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    static func snapshot(users: Int = 3, extraRole: Bool = false) -> Snapshot {
        var roles = [Role(id: "r1", name: "Agent", policies: [PermissionPolicy(domain: "routing", entityName: "queue", actions: ["join"])])]
        if extraRole { roles.append(Role(id: "r2", name: "Admin", policies: [], legacyPermissions: ["admin"])) }
        let userList = (0..<users).map { User(id: "u\($0)", name: "User \($0)", state: "active", divisionId: "d1") }
        return Snapshot.resolving(
            organization: Organization(id: "o", name: "Acme"), divisions: [Division(id: "d1", name: "Support")], roles: roles,
            users: userList, groups: [], teams: [], oauthClients: [],
            grants: userList.map { Grant(subjectId: $0.id, subjectKind: .user, roleId: "r1", divisionId: "d1") }, problems: [])
    }
}

@Suite("Store contract")
struct StoreContractTests {
    let at = Date(timeIntervalSince1970: 1_800_000_000)

    @Test("snapshots are content-addressed and read back equal", arguments: StoreKind.allCases)
    func snapshots(kind: StoreKind) async throws {
        let store = try await kind.make()
        let snapshot = StoreFiles.snapshot()
        let stored = try await store.storeSnapshot(snapshot, collectedAt: at)
        #expect(stored.rootHash == SnapshotDigest(snapshot).root)
        #expect(stored.users == 3)
        #expect(stored.byteCount == snapshot.canonicalJSON().count)
        try await store.storeSnapshot(snapshot, collectedAt: at.addingTimeInterval(60))
        #expect(try await store.snapshots().count == 1, "the same content is stored once")
        #expect(try await store.snapshot(rootHash: stored.rootHash) == snapshot)
        #expect(try await store.snapshot(rootHash: "nope") == nil)
        // Undecoded, as a drift check compares it.
        #expect(try await store.snapshotDocument(rootHash: stored.rootHash) == snapshot.canonicalJSON())
        #expect(try await store.snapshotDocument(rootHash: "nope") == nil)
        let other = try await store.storeSnapshot(StoreFiles.snapshot(users: 4), collectedAt: at.addingTimeInterval(120))
        #expect(try await store.snapshots().map(\.rootHash) == [other.rootHash, stored.rootHash], "newest first")
        // Each with the preview a dashboard draws first.
        #expect(try await store.snapshotPreview(rootHash: stored.rootHash) == SnapshotPreview(snapshot))
        #expect(try await store.snapshotPreview(rootHash: other.rootHash)?.users.count == 4)
        #expect(try await store.snapshotPreview(rootHash: "nope") == nil)
    }

    @Test("a document of megabytes, handed over encoded, reads back byte for byte (read in pieces)", arguments: StoreKind.allCases)
    func largeDocument(kind: StoreKind) async throws {
        let store = try await kind.make()
        let snapshot = StoreFiles.snapshot(users: 12_000)
        let document = snapshot.canonicalJSON()
        #expect(document.count > 2 << 20, "more than one piece: \(document.count) bytes")
        let stored = try await store.storeSnapshot(snapshot, document: document, collectedAt: at)
        #expect(stored.byteCount == document.count)
        #expect(try await store.snapshotDocument(rootHash: stored.rootHash) == document)
        _ = try await store.acceptBaseline(rootHash: stored.rootHash, acceptedBy: "a", note: nil, at: at)
        let (_, baseline) = try #require(try await store.baselineDocument())
        #expect(baseline == document)
        #expect(try await store.snapshot(rootHash: stored.rootHash) == snapshot)
    }

    @Test("pruning keeps every baseline's snapshot and the newest others", arguments: StoreKind.allCases)
    func pruning(kind: StoreKind) async throws {
        let store = try await kind.make()
        let baseline = try await store.acceptBaseline(snapshot: StoreFiles.snapshot(users: 1), collectedAt: at, acceptedBy: "a", note: nil, at: at)
        var roots: [String] = []
        for users in 2...6 {
            roots.append(try await store.storeSnapshot(StoreFiles.snapshot(users: users), collectedAt: at.addingTimeInterval(Double(users))).rootHash)
        }
        #expect(try await store.pruneSnapshots(keepLatest: 2) == 3)
        let left = Set(try await store.snapshots().map(\.rootHash))
        #expect(left == [baseline.rootHash, roots[3], roots[4]])
        #expect(try await store.baselineSnapshot() != nil)
    }

    @Test("baselines are versioned; the latest is current; an unknown snapshot cannot be accepted", arguments: StoreKind.allCases)
    func baselines(kind: StoreKind) async throws {
        let store = try await kind.make()
        #expect(try await store.currentBaseline() == nil)
        let first = try await store.acceptBaseline(snapshot: StoreFiles.snapshot(), collectedAt: at, acceptedBy: "ana", note: "initial", at: at)
        #expect(first.version == 1)
        let stored = try await store.storeSnapshot(StoreFiles.snapshot(extraRole: true), collectedAt: at)
        let second = try await store.acceptBaseline(rootHash: stored.rootHash, acceptedBy: "ben", note: nil, at: at.addingTimeInterval(10))
        #expect(second.version == 2)
        #expect(try await store.currentBaseline() == second)
        #expect(try await store.baselines() == [first, second])
        let (baseline, snapshot) = try #require(try await store.baselineSnapshot())
        #expect(baseline == second)
        #expect(snapshot.roles.count == 2)
        await #expect(throws: StoreError.self) {
            try await store.acceptBaseline(rootHash: "0000", acceptedBy: "x", note: nil, at: at)
        }
        #expect(try await store.currentBaseline() == second)
    }

    @Test("role lineage persists, and links are not rewritten", arguments: StoreKind.allCases)
    func lineage(kind: StoreKind) async throws {
        let store = try await kind.make()
        try await store.recordLineage(["r2": "r1"], at: at)
        try await store.recordLineage(["r3": "r1", "r2": "r9"], at: at)
        let lineage = try await store.roleLineage()
        #expect(lineage.links == ["r2": "r1", "r3": "r1"])
        #expect(lineage.lineage(of: "r3") == "r1")
    }

    @Test("approvals are kept, revoked, and listed with their history", arguments: StoreKind.allCases)
    func approvals(kind: StoreKind) async throws {
        let store = try await kind.make()
        let approval = Approval(fingerprint: "abc", ticket: "CHG-7", note: "planned", approver: "ana", createdAt: at, expiresAt: at.addingTimeInterval(3600))
        try await store.addApproval(approval)
        try await store.addApproval(Approval(fingerprint: "def", approver: "ben", createdAt: at, expiresAt: at.addingTimeInterval(60)))
        #expect(try await store.approvals().first == approval)
        #expect(try await store.revokeApprovals(fingerprint: "abc", at: at.addingTimeInterval(5)) == 1)
        #expect(try await store.revokeApprovals(fingerprint: "abc", at: at.addingTimeInterval(6)) == 0)
        let all = try await store.approvals()
        #expect(all.count == 2)
        #expect(all.first?.status(at: at) == .revoked)
        #expect(all.last?.status(at: at.addingTimeInterval(61)) == .expired)
    }

    @Test("findings remember when they were first and last seen", arguments: StoreKind.allCases)
    func findings(kind: StoreKind) async throws {
        let store = try await kind.make()
        let item = DriftItem(kind: .userAdded, subject: EntityRef(.user, "u9", "Nine"))
        try await store.recordFindings([item], baselineVersion: 1, at: at)
        try await store.recordFindings([item], baselineVersion: 2, at: at.addingTimeInterval(100))
        let found = try await store.findings(fingerprintPrefix: String(item.fingerprint.prefix(8)))
        #expect(found.count == 1)
        #expect(found.first?.firstSeen == at)
        #expect(found.first?.lastSeen == at.addingTimeInterval(100))
        #expect(found.first?.baselineVersion == 2)
        #expect(found.first?.summary == "user Nine added")
        #expect(try await store.findings(fingerprintPrefix: "zz").isEmpty)
    }

    @Test("audit events by entity: only those entities, only the window, oldest first", arguments: StoreKind.allCases)
    func auditEventsByEntity(kind: StoreKind) async throws {
        let store = try await kind.make()
        let events = (0..<9).map { n in
            AuditEvent(
                id: "e\(n)", date: at.addingTimeInterval(Double(8 - n) * 60), serviceName: "PeoplePermissions", entityType: "Role", action: "Update",
                entityId: "r\(n % 3)")
        }
        try await store.recordAudit(AuditBatch(events: events, findings: [], checkpoint: IngestionCheckpoint(highWater: at, updatedAt: at)))
        let found = try await store.auditEvents(from: at.addingTimeInterval(60), to: at.addingTimeInterval(420), entityIds: ["r0", "r2", "nobody"])
        // e0…e8 are dated 8…0 minutes after `at`; in [1, 7) minutes: e2…e7; of r0 and r2: e2, e3, e5, e6.
        #expect(found.map(\.id) == ["e6", "e5", "e3", "e2"])
        #expect(try await store.auditEvents(from: .distantPast, to: .distantFuture, entityIds: []).isEmpty)
    }

    // MARK: The audit log and the checkpoint

    func event(_ n: Int, minutes: Double) -> AuditEvent {
        AuditEvent(
            id: "e\(n)", date: at.addingTimeInterval(minutes * 60), serviceName: "PeoplePermissions", entityType: "Role", action: "Update",
            entityId: "r\(n)", entityName: "Role \(n)", userId: "u1", userName: "Ana", remoteIp: ["203.0.113.\(n)"])
    }

    func finding(_ rule: String, _ severity: Severity, trigger: AuditEvent) -> AuditFinding {
        AuditFinding(
            fingerprint: "fp-\(rule)-\(trigger.entityId)", ruleId: rule, title: "Rule \(rule)", severity: severity, controls: ["CIS 6.8"],
            eventIds: [trigger.id], date: trigger.date, serviceName: trigger.serviceName, entityType: trigger.entityType, entityId: trigger.entityId,
            entityName: trigger.entityName, action: trigger.action, actor: "Ana", actorId: "u1", clientId: nil, remoteIp: trigger.remoteIp,
            evidence: ["permissions: authorization:grant:add"], status: .open, approval: nil)
    }

    @Test("one batch records events, findings, the checkpoint, a gap and quarantine together; the same batch again changes nothing",
        arguments: StoreKind.allCases)
    func auditBatch(kind: StoreKind) async throws {
        let store = try await kind.make()
        #expect(try await store.ingestionCheckpoint() == nil)
        let events = [event(1, minutes: 1), event(2, minutes: 2), event(3, minutes: 3)]
        let findings = [finding("RBW-001", .critical, trigger: events[1])]
        let checkpoint = IngestionCheckpoint(highWater: at.addingTimeInterval(240), criticalHighWater: at.addingTimeInterval(180), updatedAt: at.addingTimeInterval(300))
        let gap = IngestionGap(start: at.addingTimeInterval(-7200), end: at, detectedAt: at)
        let record = QuarantinedRecord(kind: .unreadable, eventId: "bad", reason: "eventDate does not parse", raw: Array(#"{"id":"bad"}"#.utf8), receivedAt: at)
        let batch = AuditBatch(events: events, findings: findings, checkpoint: checkpoint, gap: gap, quarantined: [record])
        #expect(try await store.recordAudit(batch) == 3)
        #expect(try await store.recordAudit(batch) == 0, "a retry records nothing twice")

        #expect(try await store.ingestionCheckpoint() == checkpoint)
        let gaps = try await store.ingestionGaps()
        #expect(gaps == [gap], "\(gaps)")
        #expect(try await store.auditFindings(FindingQuery()).map(\.id) == findings.map(\.id))
        #expect(try await store.quarantineCount() == 1)
        let quarantined = try await store.quarantinedRecords(limit: 10)
        #expect(quarantined.map(\.reason) == ["eventDate does not parse"] && quarantined.first?.raw == record.raw)

        let all = try await store.recordedAuditEvents(ids: ["e1", "e3", "nope"], datedFrom: .distantPast, to: .distantFuture)
        #expect(all.keys.sorted() == ["e1", "e3"])
        // The span is part of the key: [from, to) of the event dates.
        let early = try await store.recordedAuditEvents(ids: ["e1", "e2", "e3"], datedFrom: at, to: at.addingTimeInterval(150))
        #expect(early.keys.sorted() == ["e1", "e2"], "\(early.keys.sorted())")
        #expect(try await store.recordedAuditEvents(ids: ["e3"], datedFrom: at, to: at.addingTimeInterval(180)).isEmpty, "e3 at 3 min is past the end")
        let stored = try #require(try await store.auditEvent(id: "e2", near: events[1].date))
        #expect(stored.entityName == "Role 2" && stored.remoteIp == ["203.0.113.2"] && stored.date == events[1].date)
        #expect(try await store.auditEvent(id: "e2", near: events[1].date.addingTimeInterval(30)) == nil, "another date is another key")
        #expect(try await store.auditEvent(id: "nope", near: at) == nil)
        // [from, to): e1 at 1 min is in, e3 at 3 min is out.
        #expect(try await store.auditEvents(from: at.addingTimeInterval(60), to: at.addingTimeInterval(180)).map(\.id) == ["e1", "e2"])
    }

    @Test("a finding is kept only with the event that triggered it, once", arguments: StoreKind.allCases)
    func findingsFollowTheirEvent(kind: StoreKind) async throws {
        let store = try await kind.make()
        let first = event(1, minutes: 1)
        let checkpoint = IngestionCheckpoint(highWater: at, updatedAt: at)
        try await store.recordAudit(AuditBatch(events: [first], findings: [], checkpoint: checkpoint))
        // The event again (an overlap), now with a finding: the event was not new, so neither is the finding.
        try await store.recordAudit(AuditBatch(events: [first], findings: [finding("RBW-002", .high, trigger: first)], checkpoint: checkpoint))
        #expect(try await store.auditFindings(FindingQuery()).isEmpty)
    }

    @Test("findings: newest first, since a time, at least a severity, at most a limit", arguments: StoreKind.allCases)
    func findingQueries(kind: StoreKind) async throws {
        let store = try await kind.make()
        let events = (1...4).map { event($0, minutes: Double($0)) }
        let severities: [Severity] = [.low, .high, .medium, .critical]
        let findings = zip(events, severities).map { finding("RBW-00\($0.0.entityId.dropFirst())", $0.1, trigger: $0.0) }
        try await store.recordAudit(AuditBatch(events: events, findings: findings, checkpoint: IngestionCheckpoint(highWater: at, updatedAt: at)))
        #expect(try await store.auditFindings(FindingQuery()).map(\.ruleId) == ["RBW-004", "RBW-003", "RBW-002", "RBW-001"])
        #expect(try await store.auditFindings(FindingQuery(minimumSeverity: .high)).map(\.ruleId) == ["RBW-004", "RBW-002"])
        #expect(try await store.auditFindings(FindingQuery(since: at.addingTimeInterval(150))).map(\.ruleId) == ["RBW-004", "RBW-003"])
        #expect(try await store.auditFindings(FindingQuery(limit: 1)).map(\.ruleId) == ["RBW-004"])
    }

    @Test("quarantine keeps the newest records up to its limit (10,000) and no more", arguments: StoreKind.allCases)
    func quarantineLimitKept(kind: StoreKind) async throws {
        let store = try await kind.make()
        let records = (0..<(quarantineLimit + 5)).map { n in
            QuarantinedRecord(kind: .unreadable, eventId: "bad\(n)", reason: "record \(n)", raw: Array("{\"n\":\(n)}".utf8), receivedAt: at.addingTimeInterval(Double(n)))
        }
        try await store.recordAudit(AuditBatch(events: [], findings: [], checkpoint: IngestionCheckpoint(highWater: at, updatedAt: at), quarantined: records))
        #expect(try await store.quarantineCount() == quarantineLimit)
        #expect(try await store.quarantinedRecords(limit: 2).map(\.reason) == ["record \(quarantineLimit + 4)", "record \(quarantineLimit + 3)"])
    }
}
