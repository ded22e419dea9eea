import AuditCore
import Foundation
import Testing

/// A small organisation, changed one way or another per test.
struct Org {
    var divisions = [Division(id: "home", name: "Home", isHome: true), Division(id: "d1", name: "Support")]
    var roles = [
        Role(id: "r-agent", name: "Agent", policies: [PermissionPolicy(domain: "routing", entityName: "queue", actions: ["join", "view"])]),
        Role(
            id: "r-secadmin", name: "Security Admin",
            policies: [
                PermissionPolicy(domain: "authorization", entityName: "grant", actions: ["add"]),
                PermissionPolicy(domain: "authorization", entityName: "role", actions: ["view"]),
            ]),
        Role(id: "r-report", name: "Reporting", policies: [PermissionPolicy(domain: "analytics", entityName: "conversationDetail", actions: ["view"])]),
    ]
    var users = [
        User(id: "u1", name: "Ana", state: "active", divisionId: "d1"),
        User(id: "u2", name: "Ben", state: "active", divisionId: "d1"),
        User(id: "u3", name: "Cai", state: "active", divisionId: "home"),
    ]
    var groups = [Group(id: "g1", name: "Leads", rolesEnabled: true, memberIds: ["u1", "u2"])]
    var clients = [OAuthClient(id: "c1", name: "CRM", grantType: "CLIENT-CREDENTIALS")]
    var grants = [
        Grant(subjectId: "u1", subjectKind: .user, roleId: "r-agent", divisionId: "d1"),
        Grant(subjectId: "u2", subjectKind: .user, roleId: "r-agent", divisionId: "d1"),
        Grant(subjectId: "u3", subjectKind: .user, roleId: "r-report", divisionId: "home"),
        Grant(subjectId: "c1", subjectKind: .oauthClient, roleId: "r-report", divisionId: "d1"),
    ]

    var snapshot: Snapshot {
        Snapshot.resolving(
            organization: Organization(id: "o", name: "Acme"), divisions: divisions, roles: roles, users: users, groups: groups,
            teams: [], oauthClients: clients, grants: grants, problems: [])
    }

    mutating func replaceRole(_ id: String, with role: Role) {
        roles.removeAll { $0.id == id }
        roles.append(role)
    }
}

@Suite("Drift: semantic diff")
struct DriftEngineTests {
    @Test("an unchanged organisation has no drift and equal roots")
    func unchanged() {
        let result = DriftEngine.diff(baseline: Org().snapshot, current: Org().snapshot)
        #expect(result.items.isEmpty)
        #expect(result.baselineRoot == result.currentRoot)
        #expect(result.changedEntities == 0)
    }

    @Test("a critical role granted to a group: one critical grant item, one gain per member, grouped under it")
    func roleGrantedToGroup() throws {
        var org = Org()
        org.grants.append(Grant(subjectId: "g1", subjectKind: .group, roleId: "r-secadmin", divisionId: "*"))
        let result = DriftEngine.diff(baseline: Org().snapshot, current: org.snapshot)
        let grant = try #require(result.items.first { $0.kind == .grantAdded })
        #expect(grant.subject == EntityRef(.group, "g1", "Leads"))
        #expect(grant.severity == .critical)
        #expect(grant.escalation)
        let gains = result.items.filter { $0.kind == .permissionsGained }
        #expect(Set(gains.map(\.subject.id)) == ["u1", "u2"])
        for gain in gains {
            #expect(gain.via == EntityRef(.group, "g1", "Leads"))
            #expect(gain.division?.id == "*")
            #expect(gain.permissionsAdded == ["authorization:grant:add", "authorization:role:view"])
            #expect(gain.causeFingerprint == grant.fingerprint)
            #expect(gain.severity == .critical)
            #expect(gain.reasons.contains { $0.hasPrefix("escalation") })
        }
        #expect(result.items.first?.severity == .critical, "most severe first")
    }

    @Test("a role's permission edit shows as modified, and its holders' gains point to it")
    func roleModified() throws {
        var org = Org()
        org.replaceRole(
            "r-agent",
            with: Role(
                id: "r-agent", name: "Agent",
                policies: [
                    PermissionPolicy(domain: "routing", entityName: "queue", actions: ["join", "view"]),
                    PermissionPolicy(domain: "recording", entityName: "recording", actions: ["delete"]),
                ]))
        let result = DriftEngine.diff(baseline: Org().snapshot, current: org.snapshot)
        let modified = try #require(result.items.first { $0.kind == .roleModified })
        #expect(modified.subject.id == "r-agent")
        #expect(modified.permissionsAdded == ["recording:recording:delete"])
        #expect(modified.severity == .high)
        let gains = result.items.filter { $0.kind == .permissionsGained }
        #expect(Set(gains.map(\.subject.id)) == ["u1", "u2"])
        #expect(gains.allSatisfy { $0.causeFingerprint == modified.fingerprint && $0.via?.name == "direct" })
        #expect(!result.items.contains { $0.kind == .grantAdded || $0.kind == .grantRemoved })
    }

    @Test("a role deleted and created again under the same name is recreated, its grants compared across the lineage")
    func recreatedSameName() throws {
        var org = Org()
        org.replaceRole("r-agent", with: Role(id: "r-agent-2", name: "agent ", policies: Org().roles[0].policies))
        org.grants = org.grants.map { grant in
            var grant = grant
            if grant.roleId == "r-agent" { grant.roleId = "r-agent-2" }
            return grant
        }
        let result = DriftEngine.diff(baseline: Org().snapshot, current: org.snapshot)
        #expect(result.items.map(\.kind) == [.roleRecreated])
        let item = result.items[0]
        #expect(item.previous?.id == "r-agent")
        #expect(item.subject.id == "r-agent-2")
        #expect(result.newLineage == ["r-agent-2": "r-agent"])
    }

    @Test("near-identical permissions under a new name are recreated too, with the difference")
    func recreatedBySimilarity() throws {
        var org = Org()
        let bigPolicies = (1...9).map { PermissionPolicy(domain: "wfm", entityName: "thing\($0)", actions: ["view"]) }
        var baseline = Org()
        baseline.roles.append(Role(id: "r-wfm", name: "WFM", policies: bigPolicies))
        org.roles.append(
            Role(id: "r-wfm-new", name: "Workforce", policies: bigPolicies + [PermissionPolicy(domain: "wfm", entityName: "extra", actions: ["edit"])]))
        let result = DriftEngine.diff(baseline: baseline.snapshot, current: org.snapshot)
        let item = try #require(result.items.first)
        #expect(result.items.count == 1)
        #expect(item.kind == .roleRecreated)
        #expect(item.permissionsAdded == ["wfm:extra:edit"])
        var strict = DriftOptions()
        strict.recreateSimilarity = 0.95
        let kinds = DriftEngine.diff(baseline: baseline.snapshot, current: org.snapshot, options: strict).items.map(\.kind)
        #expect(Set(kinds) == [.roleCreated, .roleDeleted])
    }

    @Test("a lineage from an earlier run links roles whose names and permissions have since diverged")
    func persistedLineage() {
        var org = Org()
        org.replaceRole("r-report", with: Role(id: "r-bi", name: "BI", policies: [PermissionPolicy(domain: "analytics", entityName: "dataExport", actions: ["add"])]))
        org.grants = org.grants.map { grant in
            var grant = grant
            if grant.roleId == "r-report" { grant.roleId = "r-bi" }
            return grant
        }
        let unlinked = DriftEngine.diff(baseline: Org().snapshot, current: org.snapshot)
        #expect(unlinked.items.contains { $0.kind == .roleDeleted })
        #expect(unlinked.items.contains { $0.kind == .grantRemoved })
        let linked = DriftEngine.diff(baseline: Org().snapshot, current: org.snapshot, lineage: RoleLineage(links: ["r-bi": "r-report"]))
        #expect(!linked.items.contains { $0.kind == .roleDeleted || $0.kind == .grantRemoved || $0.kind == .grantAdded })
        #expect(linked.items.contains { $0.kind == .roleRecreated })
        // The holders' permissions did change, through the recreated role.
        let gains = linked.items.filter { $0.kind == .permissionsGained }
        #expect(Set(gains.map(\.subject.id)) == ["u3", "c1"])
    }

    @Test("users: added with their access, removed, reactivated, moved")
    func users() throws {
        var org = Org()
        org.users.append(User(id: "u4", name: "Dee", state: "active", divisionId: "d1"))
        org.grants.append(Grant(subjectId: "u4", subjectKind: .user, roleId: "r-agent", divisionId: "d1"))
        org.users.removeAll { $0.id == "u2" }
        org.groups[0].memberIds = ["u1"]
        org.grants.removeAll { $0.subjectId == "u2" }
        org.users[0].divisionId = "home"
        var baseline = Org()
        baseline.users[2].state = "inactive"
        let result = DriftEngine.diff(baseline: baseline.snapshot, current: org.snapshot)
        let kinds = Set(result.items.map(\.kind))
        #expect(kinds.isSuperset(of: [.userAdded, .userRemoved, .userStateChanged, .userDivisionMoved, .grantAdded, .permissionsGained]))
        let gain = try #require(result.items.first { $0.kind == .permissionsGained && $0.subject.id == "u4" })
        let grant = try #require(result.items.first { $0.kind == .grantAdded && $0.subject.id == "u4" })
        #expect(gain.causeFingerprint == grant.fingerprint)
        let reactivated = try #require(result.items.first { $0.kind == .userStateChanged })
        #expect(reactivated.severity == .medium)
        #expect(result.items.first { $0.kind == .userDivisionMoved }?.previous?.name == "Support")
        #expect(result.items.contains { $0.kind == .groupMemberRemoved && $0.member?.id == "u2" })
    }

    @Test("a permission held in every division is reported once, under *")
    func allDivisions() {
        var org = Org()
        org.grants.append(Grant(subjectId: "u1", subjectKind: .user, roleId: "r-agent", divisionId: "*"))
        let result = DriftEngine.diff(baseline: Org().snapshot, current: org.snapshot)
        let gains = result.items.filter { $0.kind == .permissionsGained }
        #expect(gains.count == 1)
        #expect(gains.first?.division?.id == "*")
        // Routing permissions are low on their own; every division raises them one level.
        #expect(gains.first?.severity == .medium)
        #expect(gains.first?.reasons.contains { $0.contains("every division") } == true)
    }

    @Test("fingerprints are stable: the same change, twice, or with names changed, has the same fingerprint")
    func fingerprints() {
        var org = Org()
        org.grants.append(Grant(subjectId: "g1", subjectKind: .group, roleId: "r-secadmin", divisionId: "d1"))
        let first = DriftEngine.diff(baseline: Org().snapshot, current: org.snapshot).items.map(\.fingerprint)
        let second = DriftEngine.diff(baseline: Org().snapshot, current: org.snapshot).items.map(\.fingerprint)
        #expect(first == second)
        var renamed = org
        renamed.users[0].name = "Ana Adeyemi"
        var renamedBaseline = Org()
        renamedBaseline.users[0].name = "Ana Adeyemi"
        let third = DriftEngine.diff(baseline: renamedBaseline.snapshot, current: renamed.snapshot).items.map(\.fingerprint)
        #expect(Set(first) == Set(third))
        #expect(Set(first).count == first.count, "distinct changes, distinct fingerprints")
    }

    @Test("risk comes from permissions; scope, OAuth clients and large groups widen it; names only add to it")
    func risk() throws {
        var org = Org()
        org.grants.append(Grant(subjectId: "c1", subjectKind: .oauthClient, roleId: "r-agent", divisionId: "d1"))
        let client = DriftEngine.diff(baseline: Org().snapshot, current: org.snapshot).items
        #expect(client.first { $0.kind == .grantAdded }?.severity == .medium, "low routing permissions, raised for an OAuth client")

        var named = Org()
        named.replaceRole("r-agent", with: Role(id: "r-agent", name: "Queue Admin", policies: Org().roles[0].policies))
        named.grants.append(Grant(subjectId: "u3", subjectKind: .user, roleId: "r-agent", divisionId: "d1"))
        let byName = try #require(DriftEngine.diff(baseline: Org().snapshot, current: named.snapshot).items.first { $0.kind == .grantAdded })
        #expect(byName.severity == .low, "a name alone never raises severity")

        let policy = RiskPolicy.standard
        #expect(policy.assess(["routing:queue:*"]).severity == .high)
        #expect(policy.assess(["integrations:action:execute"]).severity == .high)
        #expect(policy.assess(["oauth:client:view"]).severity == .medium)
        #expect(policy.assess(["admin"]).escalation)
        #expect(policy.assess(["authorization:grant:*"]).escalation, "a wildcard action covers grant:add")
        #expect(policy.assess(["wfm:schedule:view"]).severity == .low)
    }

    @Test("a risk policy file can be read, and a bad one is refused with a clear reason")
    func riskFile() throws {
        let policy = try RiskPolicy(
            json: Data(#"{"version":1,"rules":[{"match":["wfm:*"],"severity":"critical","reason":"schedules"}],"raiseAllDivisions":false}"#.utf8))
        #expect(policy.assess(["wfm:schedule:edit"]).severity == .critical)
        #expect(!policy.raiseAllDivisions)
        #expect(throws: RiskPolicyError.self) { try RiskPolicy(json: Data(#"{"version":1,"rules":[{"match":["x"],"severity":"dire"}]}"#.utf8)) }
        do {
            _ = try RiskPolicy(json: Data("{".utf8))
        } catch {
            #expect(error.description.hasPrefix("invalid risk policy"))
        }
    }
}
