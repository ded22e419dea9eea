@testable import AuditCore
import Foundation
import Testing

/// Comparing two snapshot files by their bytes (`DriftEngine.diff(baselineBytes:currentBytes:)`)
/// against comparing the decoded snapshots: the same root hashes, the same items, in the same
/// order — over seeded organisations and seeded changes of every kind.
@Suite("Snapshot files compared without decoding what did not change")
struct FileDiffTests {
    /// A seeded organisation: roles with policies, divisions, users with direct and group grants,
    /// role-enabled groups, teams, OAuth clients.
    static func organisation(seed: UInt64, users count: Int = 300) -> Snapshot {
        var rng = SplitMix64(seed: seed)
        func pick<T>(_ items: [T]) -> T { items[Int(rng.next() % UInt64(items.count))] }
        let divisions = (0..<6).map { Division(id: String(format: "d%02d", $0), name: "Division \($0)", isHome: $0 == 0) }
        let actions = ["view", "add", "edit", "delete", "*"]
        let domains = ["routing", "analytics", "authorization", "directory", "admin"]
        let roles = (0..<24).map { n in
            Role(
                id: String(format: "r%03d", n), name: "Role \(n)",
                policies: (0..<(1 + n % 3)).map { _ in PermissionPolicy(domain: pick(domains), entityName: pick(["queue", "user", "grant", "*"]), actions: [pick(actions)]) })
        }
        let userIds = (0..<count).map { String(format: "u%05d-%04x", $0, rng.next() % 65_536) }
        let groups = (0..<12).map { n in
            Group(
                id: String(format: "g%03d", n), name: "Group \(n)", rolesEnabled: n % 2 == 0,
                memberIds: n % 2 == 0 ? (0..<20).map { _ in pick(userIds) } : [])
        }
        var grants: [Grant] = []
        for user in userIds { for _ in 0..<Int(rng.next() % 3) { grants.append(Grant(subjectId: user, subjectKind: .user, roleId: pick(roles).id, divisionId: pick(divisions).id)) } }
        for group in groups where group.rolesEnabled { grants.append(Grant(subjectId: group.id, subjectKind: .group, roleId: pick(roles).id, divisionId: "*")) }
        let clients = (0..<4).map { OAuthClient(id: "c\($0)", name: "Client \($0)", grantType: "CLIENT-CREDENTIALS") }
        grants.append(Grant(subjectId: "c0", subjectKind: .oauthClient, roleId: roles[1].id, divisionId: "*"))
        let users = userIds.enumerated().map { n, id in
            User(
                id: id, name: "User \(n)", state: n % 17 == 0 ? "inactive" : "active", divisionId: pick(divisions).id,
                groupIds: groups.filter { $0.memberIds.contains(id) }.map(\.id), teamId: n % 5 == 0 ? "t\(n % 3)" : nil)
        }
        let teams = (0..<3).map { n in Team(id: "t\(n)", name: "Team \(n)", divisionId: "d00", memberIds: users.filter { $0.teamId == "t\(n)" }.map(\.id)) }
        return Snapshot.resolving(
            organization: Organization(id: "org", name: "Acme"), divisions: divisions, roles: roles, users: users, groups: groups, teams: teams,
            oauthClients: clients, grants: grants, problems: [])
    }

    /// Seeded changes of every kind.
    static func changed(_ snapshot: Snapshot, seed: UInt64) -> Snapshot {
        var rng = SplitMix64(seed: seed &* 7 &+ 1)
        func index(_ count: Int) -> Int { Int(rng.next() % UInt64(count)) }
        var users = snapshot.users
        var grants = snapshot.grants
        var roles = snapshot.roles
        var groups = snapshot.groups
        var divisions = snapshot.divisions
        var clients = snapshot.oauthClients
        for _ in 0..<8 {
            switch rng.next() % 9 {
            case 0: grants.append(Grant(subjectId: users[index(users.count)].id, subjectKind: .user, roleId: roles[index(roles.count)].id, divisionId: "*"))
            case 1: if !grants.isEmpty { grants.remove(at: index(grants.count)) }
            case 2: users[index(users.count)].divisionId = divisions[index(divisions.count)].id
            case 3: users.remove(at: index(users.count))
            case 4: users.append(User(id: "u9\(rng.next() % 1000)", name: "Newcomer", state: "active", divisionId: "d01"))
            case 5:
                let n = index(roles.count)
                roles[n] = Role(id: roles[n].id, name: roles[n].name, policies: roles[n].policies + [PermissionPolicy(domain: "admin", entityName: "*", actions: ["*"])])
            case 6:
                let n = index(groups.count)
                if groups[n].rolesEnabled { groups[n].memberIds = Array(Set(groups[n].memberIds + [users[index(users.count)].id])).sorted() }
            case 7: divisions.append(Division(id: "d9\(rng.next() % 100)", name: "Late Division"))
            default: clients.append(OAuthClient(id: "c9\(rng.next() % 100)", name: "New Client"))
            }
        }
        let userIds = Set(users.map(\.id))
        return Snapshot.resolving(
            organization: snapshot.organization, divisions: divisions, roles: roles,
            users: users.map { user in
                var user = user
                user.access = []
                return user
            },
            groups: groups.map { Group(id: $0.id, name: $0.name, rolesEnabled: $0.rolesEnabled, memberIds: $0.memberIds.filter(userIds.contains)) },
            teams: snapshot.teams, oauthClients: clients, grants: grants.filter { $0.subjectKind != .user || userIds.contains($0.subjectId) }, problems: [])
    }

    @Test("the same roots and the same items as the decoded comparison", arguments: [UInt64(1), 2, 3, 4, 5, 6])
    func sameAsDecoded(seed: UInt64) throws {
        let baseline = Self.organisation(seed: seed)
        let current = Self.changed(baseline, seed: seed)
        let reference = DriftEngine.diff(baseline: baseline, current: current)
        let files = try DriftEngine.diff(baselineBytes: baseline.canonicalJSON(), currentBytes: current.canonicalJSON())
        #expect(files.indexed)
        #expect(files.result.baselineRoot == SnapshotDigest(baseline).root)
        #expect(files.result.currentRoot == SnapshotDigest(current).root)
        #expect(SnapshotDigest.root(of: current) == files.result.currentRoot, "the root alone is the digest's root")
        #expect(!reference.items.isEmpty)
        #expect(files.result.items == reference.items)
        #expect(files.result.changedEntities == reference.changedEntities)
        #expect(files.decodedUsers < baseline.users.count + current.users.count, "only what changed is decoded")
    }

    @Test("equal files: no items, equal roots, nothing decoded; a file not in the canonical layout is read whole")
    func equalAndFallback() throws {
        let snapshot = Self.organisation(seed: 9)
        let bytes = snapshot.canonicalJSON()
        let same = try DriftEngine.diff(baselineBytes: bytes, currentBytes: bytes)
        #expect(same.indexed && same.result.items.isEmpty && same.decodedUsers == 0)
        #expect(same.result.baselineRoot == SnapshotDigest(snapshot).root)
        // The same content, one line: not the layout; compared all the same.
        let oneLine = bytes.filter { $0 != UInt8(ascii: "\n") }
        let current = Self.changed(snapshot, seed: 9)
        let fallback = try DriftEngine.diff(baselineBytes: oneLine, currentBytes: current.canonicalJSON())
        #expect(!fallback.indexed)
        #expect(fallback.result.items == DriftEngine.diff(baseline: snapshot, current: current).items)
    }
}

/// The principals' comparison, split over two cores when there are many: the same items in the
/// same order as one core gives.
@Suite("Drift comparison on two cores")
struct SplitComparisonTests {
    @Test("split or not, the same items in the same order and the same count of principals", arguments: [UInt64(1), 2, 3])
    func sameSplit(seed: UInt64) throws {
        let baseline = FileDiffTests.organisation(seed: seed, users: 900)
        // Every role gains a permission: every holder is compared, and most gain something.
        let current = Snapshot.resolving(
            organization: baseline.organization, divisions: baseline.divisions,
            roles: baseline.roles.enumerated().map { n, role in
                Role(id: role.id, name: role.name, policies: role.policies + [PermissionPolicy(domain: "quality", entityName: "evaluation", actions: ["edit\(n % 4)"])])
            },
            users: baseline.users.map { user in
                var user = user
                user.access = []
                return user
            },
            groups: baseline.groups, teams: baseline.teams, oauthClients: baseline.oauthClients, grants: baseline.grants, problems: [])
        let (changed, added, removed) = SnapshotDigest(baseline).compare(to: SnapshotDigest(current))
        var one = Comparison(baseline: baseline, current: current, lineage: RoleLineage(), options: DriftOptions())
        one.run(changed: changed, added: added, removed: removed, splitAt: .max)
        var two = Comparison(baseline: baseline, current: current, lineage: RoleLineage(), options: DriftOptions())
        two.run(changed: changed, added: added, removed: removed, splitAt: 1)
        #expect(one.items.filter { $0.kind == .permissionsGained }.count > 300, "most holders gain a permission")
        #expect(two.items == one.items)
        #expect(two.principalsCompared == one.principalsCompared)
        #expect(one.principalsCompared > 600)
    }
}
