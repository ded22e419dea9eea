/// Users deleted, OAuth clients written, and the seeded mix of every kind of change
/// (`SimulatedChange.randomMix`) that tests and benchmarks use to check incremental collection
/// against full walks. Every change goes through an audited write path.
extension Org {
    // MARK: Users

    /// Deletes a user as the API does: the user stays listed (`state=deleted`) and loses every
    /// grant, membership, ownership and team, with one audit event for the deletion.
    mutating func deleteUser(_ userId: String, actor: AuditActor, date: String) {
        guard var user = users[userId], user.state != "deleted" else { return }
        for grant in grantsBySubject[userId] ?? [] { _ = removeGrant(grant) }
        for groupId in userGroups[userId] ?? [] {
            groups[groupId]?.memberIds.removeAll { $0 == userId }
            groups[groupId]?.version += 1
        }
        userGroups[userId] = nil
        for groupId in ownerGroups[userId] ?? [] { groups[groupId]?.ownerIds.removeAll { $0 == userId } }
        ownerGroups[userId] = nil
        if let team = user.teamId { teamMembers[team]?.removeAll { $0 == userId } }
        user.teamId = nil
        user.state = "deleted"
        user.version += 1
        users[userId] = user
        revision += 1
        audit(
            actor, date: date, service: "Directory", entityType: "User", action: "Delete", entityId: userId, entityName: user.name,
            changes: [.init(property: "state", oldValues: ["active"], newValues: ["deleted"])])
    }

    // MARK: OAuth clients

    mutating func createClient(id: String, name: String, roleDivisions: [(String, String)], actor: AuditActor, date: String) {
        clients[id] = SimClient(
            id: id, name: name, description: "\(name) client", secret: "mix-\(id.prefix(8))", grantType: "CLIENT-CREDENTIALS", scope: [],
            accessTokenValiditySeconds: 86_400, state: "active", dateCreated: date, dateModified: date, createdById: nil)
        Org.insert(id, name: name, into: &clientOrder) { clients[$0]?.name ?? "" }
        for (roleId, divisionId) in roleDivisions where roles[roleId] != nil {
            _ = addGrant(SimGrant(subjectId: id, subjectType: "PC_OAUTH_CLIENT", roleId: roleId, divisionId: divisionId), at: date)
        }
        audit(
            actor, date: date, service: "PeoplePermissions", entityType: "OAuthClient", action: "Create", entityId: id, entityName: name,
            changes: [.init(property: "roleDivisions", oldValues: [], newValues: roleDivisions.map { "\($0.0)|\($0.1)" })])
    }

    mutating func replaceClientRoles(_ id: String, roleDivisions: [(String, String)], actor: AuditActor, date: String) {
        guard let client = clients[id] else { return }
        let old = (grantsBySubject[id] ?? []).map { "\($0.roleId)|\($0.divisionId)" }.sorted()
        for grant in grantsBySubject[id] ?? [] { _ = removeGrant(grant) }
        for (roleId, divisionId) in roleDivisions where roles[roleId] != nil {
            _ = addGrant(SimGrant(subjectId: id, subjectType: "PC_OAUTH_CLIENT", roleId: roleId, divisionId: divisionId), at: date)
        }
        clients[id]?.dateModified = date
        audit(
            actor, date: date, service: "PeoplePermissions", entityType: "OAuthClient", action: "Update", entityId: id, entityName: client.name,
            changes: [.init(property: "roleDivisions", oldValues: old, newValues: roleDivisions.map { "\($0.0)|\($0.1)" })])
    }

    mutating func deleteClient(_ id: String, actor: AuditActor, date: String) {
        guard let client = clients[id] else { return }
        for grant in grantsBySubject[id] ?? [] { _ = removeGrant(grant) }
        grantsBySubject[id] = nil
        clients[id] = nil
        clientOrder.removeAll { $0 == id }
        revision += 1
        audit(
            actor, date: date, service: "PeoplePermissions", entityType: "OAuthClient", action: "Delete", entityId: id, entityName: client.name,
            changes: [.init(property: "name", oldValues: [client.name], newValues: [])])
    }

    // MARK: The mix

    /// Custom roles no OAuth client holds (so that the simulator's own clients keep working).
    private func freeCustomRoles() -> [String] {
        let held = Set(grantsBySubject.values.joined().filter { $0.subjectType == "PC_OAUTH_CLIENT" }.map(\.roleId))
        return roleOrder.filter { roles[$0]?.isDefault == false && !held.contains($0) }
    }

    private func customRoles() -> [String] { roleOrder.filter { roles[$0]?.isDefault == false } }

    private func liveUsers() -> [String] { userOrder.filter { users[$0]?.state != "deleted" } }

    private mutating func randomDivision(_ rng: inout SeededRandom, allowAll: Bool = true) -> String {
        let options = divisionOrder + (allowAll ? [allDivisions] : [])
        return rng.pick(options)
    }

    private var allDivisions: String { "*" }

    /// Weights of the mix's 17 kinds of change, in the order of `applyRandomMix`'s cases: every
    /// kind alike (the identity checks), or as a contact centre's administrators make them day to
    /// day — memberships, grants and user edits mostly, recreations and deletions rarely.
    static let uniformMix = [Int](repeating: 1, count: 17)
    static let dailyMix = [
        12, 12, 10,  // grants to users, a grant removed
        3,  // group grants
        18, 10, 12,  // memberships added (twice), removed
        4,  // role edits
        0,  // recreations
        8,  // division moves
        6,  // users added
        1,  // users deleted
        0, 2, 0,  // OAuth clients created, edited, deleted
        8,  // renames
        0,  // roles deleted
    ]

    mutating func applyRandomMix(seed: UInt64, count: Int, weights: [Int] = Org.uniformMix, actor: AuditActor, date: String) {
        var rng = SeededRandom(seed: seed)
        let total = weights.reduce(0, +)
        for step in 0..<max(0, count) {
            let users = liveUsers()
            let custom = customRoles()
            let free = freeCustomRoles()
            guard !users.isEmpty, !custom.isEmpty, total > 0 else { return }
            var draw = Int(rng.next() % UInt64(total))
            var kind = 0
            while kind < weights.count - 1 && draw >= weights[kind] {
                draw -= weights[kind]
                kind += 1
            }
            switch kind {
            case 0, 1:  // a role granted to a user
                try? addGrants(
                    subjectId: rng.pick(users), subjectType: "PC_USER", [(rng.pick(custom), randomDivision(&rng))], actor: actor, date: date)
            case 2:  // a user's grant removed
                let user = rng.pick(users)
                if let grant = (grantsBySubject[user] ?? []).sorted(by: { ($0.roleId, $0.divisionId) < ($1.roleId, $1.divisionId) }).first {
                    try? removeGrants(subjectId: user, subjectType: "PC_USER", [(grant.roleId, grant.divisionId)], actor: actor, date: date)
                }
            case 3:  // a role granted to a role-enabled group, or one of its grants removed
                let enabled = groupOrder.filter { groups[$0]?.rolesEnabled == true }
                guard !enabled.isEmpty else { continue }
                let group = rng.pick(enabled)
                let held = (grantsBySubject[group] ?? []).sorted(by: { ($0.roleId, $0.divisionId) < ($1.roleId, $1.divisionId) })
                if rng.chance(0.3), let grant = held.first, grant.roleId != "" {
                    try? removeGrants(subjectId: group, subjectType: "PC_GROUP", [(grant.roleId, grant.divisionId)], actor: actor, date: date)
                } else {
                    try? addGrants(subjectId: group, subjectType: "PC_GROUP", [(rng.pick(custom), randomDivision(&rng))], actor: actor, date: date)
                }
            case 4, 5:  // a member added to a group (role-enabled more often)
                let enabled = groupOrder.filter { groups[$0]?.rolesEnabled == true }
                let pool = rng.chance(0.7) && !enabled.isEmpty ? enabled : groupOrder
                guard !pool.isEmpty else { continue }
                let group = rng.pick(pool)
                try? addGroupMembers(groupId: group, userIds: [rng.pick(users)], version: nil, actor: actor, date: date)
            case 6:  // a member removed
                let withMembers = groupOrder.filter { groups[$0]?.memberIds.isEmpty == false }
                guard !withMembers.isEmpty else { continue }
                let group = rng.pick(withMembers)
                let members = groups[group]!.memberIds
                try? removeGroupMembers(groupId: group, userIds: [rng.pick(members)], actor: actor, date: date)
            case 7:  // a role's permissions edited
                guard !free.isEmpty else { continue }
                let roleId = rng.pick(free)
                guard let role = roles[roleId] else { continue }
                var policies = role.policies
                if let last = policies.last, last.domain == "mix", rng.chance(0.5) {
                    policies.removeLast()
                } else {
                    policies.append(SimPolicy(domain: "mix", entityName: "entity\(seed % 1000)x\(step)", actions: ["view"], condition: nil))
                }
                _ = try? updateRole(
                    id: roleId, name: role.name, description: role.description, policies: policies, legacy: role.legacyPermissions, actor: actor,
                    date: date)
            case 8:  // a role recreated under a new id, its holders moved over
                guard !free.isEmpty else { continue }
                let oldId = rng.pick(free)
                guard let old = roles[oldId] else { continue }
                let moved = (grantsByRole[oldId] ?? []).sorted { ($0.subjectId, $0.divisionId) < ($1.subjectId, $1.divisionId) }
                try? deleteRole(id: oldId, actor: actor, date: date)
                guard
                    let new = try? createRole(
                        id: rng.uuid(), name: "Mix \(step) \(old.name)".prefix(120).description, description: old.description,
                        policies: old.policies, legacy: old.legacyPermissions, actor: actor, date: date)
                else { continue }
                for grant in moved where subjectType(of: grant.subjectId) != nil {
                    try? addGrants(subjectId: grant.subjectId, subjectType: grant.subjectType, [(new.id, grant.divisionId)], actor: actor, date: date)
                }
            case 9:  // a user moved to another division
                try? moveUsers([rng.pick(users)], toDivision: randomDivision(&rng, allowAll: false), actor: actor, date: date)
            case 10:  // a user added, with a role
                let id = rng.uuid()
                let n = self.users.count
                addUser(
                    SimUser(
                        id: id, name: "Mix User \(seed % 10_000)-\(step)-\(n)", email: "mix.\(n)@example.com", username: "mix.\(n)@example.com",
                        title: "Agent", department: "Customer Care", state: "active", divisionId: homeDivisionId, managerId: nil, teamId: nil,
                        version: 1, jabberId: "\(id.prefix(12))@simulated.orgspan.com", dateLastLogin: nil),
                    actor: actor, date: date)
                try? addGrants(subjectId: id, subjectType: "PC_USER", [(rng.pick(custom), randomDivision(&rng))], actor: actor, date: date)
            case 11:  // a user deleted
                deleteUser(rng.pick(users), actor: actor, date: date)
            case 12:  // an OAuth client created with a role
                let id = rng.uuid()
                createClient(
                    id: id, name: "Mix Client \(seed % 10_000)-\(step)", roleDivisions: [(rng.pick(custom), randomDivision(&rng))], actor: actor,
                    date: date)
            case 13:  // an OAuth client's roles replaced
                let mine = clientOrder.filter { clients[$0]?.name.hasPrefix("Mix Client") == true }
                guard !mine.isEmpty else { continue }
                replaceClientRoles(
                    rng.pick(mine), roleDivisions: [(rng.pick(custom), randomDivision(&rng)), (rng.pick(custom), randomDivision(&rng))],
                    actor: actor, date: date)
            case 14:  // an OAuth client deleted
                let mine = clientOrder.filter { clients[$0]?.name.hasPrefix("Mix Client") == true }
                guard !mine.isEmpty else { continue }
                deleteClient(rng.pick(mine), actor: actor, date: date)
            case 15:  // a user renamed
                let user = rng.pick(users)
                renameUser(user, to: "Mix Renamed \(step) \(self.users[user]?.name ?? "")".prefix(200).description, actor: actor, date: date)
            default:  // a role deleted with its grants
                guard !free.isEmpty else { continue }
                try? deleteRole(id: rng.pick(free), actor: actor, date: date)
            }
        }
    }
}
