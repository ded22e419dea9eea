/// The named changes tests, benchmarks and demos ask for (`SimulatedChange`), made through the
/// same audited write paths as the HTTP endpoints.
extension Org {
    mutating func apply(_ change: SimulatedChange, actor: AuditActor, date: String) {
        var rng = SeededRandom(seed: UInt64(revision) &+ 0xC0FFEE)
        switch change {
        case .insertUsers(let count):
            for n in 0..<count {
                let id = rng.uuid()
                let name = "Aaron Aardvark \(users.count + n)"
                let local = "aaron.aardvark.\(users.count + n)"
                let user = SimUser(
                    id: id, name: name, email: "\(local)@example.com", username: "\(local)@example.com",
                    title: "Agent", department: "Customer Care", state: "active", divisionId: homeDivisionId,
                    managerId: nil, teamId: nil, version: 1, jabberId: "\(id.prefix(12))@simulated.orgspan.com",
                    dateLastLogin: nil)
                addUser(user, actor: actor, date: date)
                if let employee = roles.values.first(where: { $0.defaultRoleId == "employee" }) {
                    try? addGrants(
                        subjectId: id, subjectType: "PC_USER", [(employee.id, homeDivisionId)], actor: actor, date: date)
                }
            }
        case .renameFirstUser:
            guard let first = userOrder.first, let user = users[first] else { return }
            renameUser(first, to: "Zz Renamed \(user.name)", actor: actor, date: date)
        case .recreateFirstRole:
            let protected = Set((grantsBySubject.values.joined()).filter { $0.subjectType == "PC_OAUTH_CLIENT" }.map(\.roleId))
            guard let oldId = roleOrder.first(where: { roles[$0]?.isDefault == false && !protected.contains($0) }),
                let old = roles[oldId]
            else { return }
            let moved = grantsByRole[oldId] ?? []
            try? deleteRole(id: oldId, actor: actor, date: date)
            guard
                let new = try? createRole(
                    id: rng.uuid(), name: "Aa Recreated \(old.name)", description: old.description,
                    policies: old.policies, legacy: old.legacyPermissions, actor: actor, date: date)
            else { return }
            for grant in moved.sorted(by: { ($0.subjectId, $0.divisionId) < ($1.subjectId, $1.divisionId) }) {
                try? addGrants(
                    subjectId: grant.subjectId, subjectType: grant.subjectType, [(new.id, grant.divisionId)],
                    actor: actor, date: date)
            }
        case .grantRoleToGroup:
            guard let groupId = groupOrder.first(where: { groups[$0]?.rolesEnabled == true }) else { return }
            let held = Set((grantsBySubject[groupId] ?? []).map(\.roleId))
            guard let roleId = roleOrder.first(where: { roles[$0]?.isDefault == false && !held.contains($0) }),
                let divisionId = divisionOrder.first(where: { $0 != homeDivisionId })
            else { return }
            try? addGrants(subjectId: groupId, subjectType: "PC_GROUP", [(roleId, divisionId)], actor: actor, date: date)
        case .addGroupMember:
            guard let groupId = groupOrder.first(where: { groups[$0]?.rolesEnabled == true }),
                let group = groups[groupId],
                let userId = userOrder.first(where: { !group.memberIds.contains($0) })
            else { return }
            try? addGroupMembers(groupId: groupId, userIds: [userId], version: nil, actor: actor, date: date)
        case .randomMix(let seed, let count):
            applyRandomMix(seed: seed, count: count, actor: actor, date: date)
        case .dailyMix(let seed, let count):
            applyRandomMix(seed: seed, count: count, weights: Org.dailyMix, actor: actor, date: date)
        case .grantRoleToUser:
            let held = Set(grantsBySubject.values.joined().filter { $0.subjectType == "PC_OAUTH_CLIENT" }.map(\.roleId))
            guard let userId = userOrder.first(where: { users[$0]?.state == "active" }),
                let roleId = roleOrder.first(where: { roles[$0]?.isDefault == false && !held.contains($0) }),
                let divisionId = divisionOrder.first(where: { $0 != homeDivisionId })
            else { return }
            let mine = Set((grantsBySubject[userId] ?? []).map { "\($0.roleId)|\($0.divisionId)" })
            let division = mine.contains("\(roleId)|\(divisionId)") ? "*" : divisionId
            try? addGrants(subjectId: userId, subjectType: "PC_USER", [(roleId, division)], actor: actor, date: date)
        }
    }
}
