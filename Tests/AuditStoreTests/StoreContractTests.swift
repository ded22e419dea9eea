import AuditCore
import AuditStore
import Foundation
import Testing

/// Every store implementation must pass these. Add a case to `StoreKind` for a new backend.
enum StoreKind: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case sqlite, memory

    var testDescription: String { rawValue }

    func make() throws -> any AuditStore {
        switch self {
        case .sqlite: try SQLiteAuditStore(path: StoreFiles.temporary().appendingPathComponent("state.sqlite").path)
        case .memory: InMemoryAuditStore()
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
        let store = try kind.make()
        let snapshot = StoreFiles.snapshot()
        let stored = try await store.storeSnapshot(snapshot, collectedAt: at)
        #expect(stored.rootHash == SnapshotDigest(snapshot).root)
        #expect(stored.users == 3)
        #expect(stored.byteCount == snapshot.canonicalJSON().count)
        try await store.storeSnapshot(snapshot, collectedAt: at.addingTimeInterval(60))
        #expect(try await store.snapshots().count == 1, "the same content is stored once")
        #expect(try await store.snapshot(rootHash: stored.rootHash) == snapshot)
        #expect(try await store.snapshot(rootHash: "nope") == nil)
        let other = try await store.storeSnapshot(StoreFiles.snapshot(users: 4), collectedAt: at.addingTimeInterval(120))
        #expect(try await store.snapshots().map(\.rootHash) == [other.rootHash, stored.rootHash], "newest first")
    }

    @Test("pruning keeps every baseline's snapshot and the newest others", arguments: StoreKind.allCases)
    func pruning(kind: StoreKind) async throws {
        let store = try kind.make()
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
        let store = try kind.make()
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
        let store = try kind.make()
        try await store.recordLineage(["r2": "r1"], at: at)
        try await store.recordLineage(["r3": "r1", "r2": "r9"], at: at)
        let lineage = try await store.roleLineage()
        #expect(lineage.links == ["r2": "r1", "r3": "r1"])
        #expect(lineage.lineage(of: "r3") == "r1")
    }

    @Test("approvals are kept, revoked, and listed with their history", arguments: StoreKind.allCases)
    func approvals(kind: StoreKind) async throws {
        let store = try kind.make()
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
        let store = try kind.make()
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
        let store = try kind.make()
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
}
