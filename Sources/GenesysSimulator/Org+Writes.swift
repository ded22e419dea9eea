import Foundation

/// Who made a change, as the audit log records it.
struct AuditActor: Sendable {
    var userId: String?
    var clientId: String?
}

struct WriteError: Error {
    var status: Int
    var code: String
    var message: String
}

/// Every change to the organisation goes through here: write endpoints and simulated activity
/// alike. Each bumps versions and appends an audit event.
extension Org {
    mutating func audit(
        _ actor: AuditActor, date: String, service: String, entityType: String, action: String,
        entityId: String, entityName: String, changes: [SimAuditEvent.Change], status: String = "SUCCESS", remoteIp: [String]? = nil
    ) {
        var rng = SeededRandom(seed: UInt64.random(in: .min ... .max))
        auditLog.append(
            SimAuditEvent(
                id: rng.uuid(), eventDate: date, serviceName: service, entityType: entityType, action: action,
                entityId: entityId, entityName: entityName, userId: actor.userId,
                userName: actor.userId.flatMap { users[$0]?.name }, clientId: actor.clientId,
                remoteIp: remoteIp ?? ["203.0.113.\(auditLog.count % 250 + 1)"], level: "USER", status: status,
                propertyChanges: changes, transactionId: rng.uuid(),
                visibleAt: (ISODate.epochMilliseconds(date) ?? 0)
                    + (auditArrivalDelayMs > 0 ? Int64(rng.next() % UInt64(auditArrivalDelayMs + 1)) : 0)))
        revision += 1
    }

    // MARK: Roles

    mutating func createRole(
        id: String, name: String, description: String, policies: [SimPolicy], legacy: [String],
        actor: AuditActor, date: String
    ) throws(WriteError) -> SimRole {
        guard !name.trimmingCharacters(in: .whitespaces).isEmpty else {
            throw WriteError(status: 400, code: "bad.request", message: "The role name is required.")
        }
        guard !roles.values.contains(where: { $0.name.lowercased() == name.lowercased() }) else {
            throw WriteError(status: 409, code: "general.conflict", message: "A role named \(name) already exists.")
        }
        let role = SimRole(
            id: id, name: name, description: description, defaultRoleId: nil, isDefault: false, isBase: false,
            policies: policies, legacyPermissions: legacy)
        roles[id] = role
        Org.insert(id, name: name, into: &roleOrder) { roles[$0]?.name ?? "" }
        audit(
            actor, date: date, service: "PeoplePermissions", entityType: "Role", action: "Create", entityId: id,
            entityName: name,
            changes: [
                .init(property: "name", oldValues: [], newValues: [name]),
                .init(property: "permissions", oldValues: [], newValues: role.permissions),
            ])
        return role
    }

    mutating func updateRole(
        id: String, name: String, description: String, policies: [SimPolicy], legacy: [String],
        actor: AuditActor, date: String
    ) throws(WriteError) -> SimRole {
        guard let old = roles[id] else {
            throw WriteError(status: 404, code: "not.found", message: "The role \(id) was not found.")
        }
        guard !name.trimmingCharacters(in: .whitespaces).isEmpty else {
            throw WriteError(status: 400, code: "bad.request", message: "The role name is required.")
        }
        if roles.values.contains(where: { $0.id != id && $0.name.lowercased() == name.lowercased() }) {
            throw WriteError(status: 409, code: "general.conflict", message: "A role named \(name) already exists.")
        }
        var role = old
        role.name = name
        role.description = description
        role.policies = policies
        role.legacyPermissions = legacy
        roles[id] = role
        if old.name != name {
            roleOrder.removeAll { $0 == id }
            Org.insert(id, name: name, into: &roleOrder) { roles[$0]?.name ?? "" }
        }
        var changes: [SimAuditEvent.Change] = []
        if old.name != name { changes.append(.init(property: "name", oldValues: [old.name], newValues: [name])) }
        if old.permissions != role.permissions {
            changes.append(.init(property: "permissions", oldValues: old.permissions, newValues: role.permissions))
        }
        if old.description != description {
            changes.append(.init(property: "description", oldValues: [old.description], newValues: [description]))
        }
        audit(
            actor, date: date, service: "PeoplePermissions", entityType: "Role", action: "Update", entityId: id,
            entityName: name, changes: changes)
        return role
    }

    mutating func deleteRole(id: String, actor: AuditActor, date: String) throws(WriteError) {
        guard let role = roles[id] else {
            throw WriteError(status: 404, code: "not.found", message: "The role \(id) was not found.")
        }
        guard !role.isDefault else {
            throw WriteError(status: 400, code: "bad.request", message: "Built-in roles cannot be deleted.")
        }
        for grant in grantsByRole[id] ?? [] { _ = removeGrant(grant) }
        grantsByRole[id] = nil
        roles[id] = nil
        roleOrder.removeAll { $0 == id }
        audit(
            actor, date: date, service: "PeoplePermissions", entityType: "Role", action: "Delete", entityId: id,
            entityName: role.name, changes: [.init(property: "name", oldValues: [role.name], newValues: [])])
    }

    // MARK: Grants

    /// Validates and applies grant additions for one subject; all or nothing.
    mutating func addGrants(
        subjectId: String, subjectType: String?, _ pairs: [(roleId: String, divisionId: String)],
        actor: AuditActor, date: String
    ) throws(WriteError) {
        let type = try validateSubject(subjectId, declared: subjectType)
        if type == "PC_GROUP", groups[subjectId]?.rolesEnabled != true {
            throw WriteError(status: 400, code: "bad.request", message: "Group \(subjectId) is not enabled for roles.")
        }
        for pair in pairs { try validateGrantTarget(roleId: pair.roleId, divisionId: pair.divisionId) }
        for pair in pairs {
            let grant = SimGrant(subjectId: subjectId, subjectType: type, roleId: pair.roleId, divisionId: pair.divisionId)
            if addGrant(grant, at: date) { auditGrant(grant, action: "MemberAdd", actor: actor, date: date) }
        }
    }

    mutating func removeGrants(
        subjectId: String, subjectType: String?, _ pairs: [(roleId: String, divisionId: String)],
        actor: AuditActor, date: String
    ) throws(WriteError) {
        let type = try validateSubject(subjectId, declared: subjectType)
        for pair in pairs {
            let grant = SimGrant(subjectId: subjectId, subjectType: type, roleId: pair.roleId, divisionId: pair.divisionId)
            if removeGrant(grant) { auditGrant(grant, action: "MemberRemove", actor: actor, date: date) }
        }
    }

    /// Replaces all of a subject's grants with `pairs`.
    mutating func replaceGrants(
        subjectId: String, subjectType: String?, _ pairs: [(roleId: String, divisionId: String)],
        actor: AuditActor, date: String
    ) throws(WriteError) {
        let type = try validateSubject(subjectId, declared: subjectType)
        for pair in pairs { try validateGrantTarget(roleId: pair.roleId, divisionId: pair.divisionId) }
        let wanted = Set(pairs.map { SimGrant(subjectId: subjectId, subjectType: type, roleId: $0.roleId, divisionId: $0.divisionId) })
        let current = grantsBySubject[subjectId] ?? []
        for grant in current.subtracting(wanted) where removeGrant(grant) {
            auditGrant(grant, action: "MemberRemove", actor: actor, date: date)
        }
        for grant in wanted.subtracting(current) where addGrant(grant, at: date) {
            auditGrant(grant, action: "MemberAdd", actor: actor, date: date)
        }
    }

    private func validateSubject(_ subjectId: String, declared: String?) throws(WriteError) -> String {
        guard let type = subjectType(of: subjectId) else {
            throw WriteError(status: 404, code: "not.found", message: "The subject \(subjectId) was not found.")
        }
        if let declared, declared != type {
            throw WriteError(status: 400, code: "invalid.value", message: "Subject \(subjectId) is not of type \(declared).")
        }
        return type
    }

    private func validateGrantTarget(roleId: String, divisionId: String) throws(WriteError) {
        guard roles[roleId] != nil else {
            throw WriteError(status: 404, code: "not.found", message: "The role \(roleId) was not found.")
        }
        guard divisionId == "*" || divisions[divisionId] != nil else {
            throw WriteError(status: 404, code: "not.found", message: "The division \(divisionId) was not found.")
        }
    }

    private mutating func auditGrant(_ grant: SimGrant, action: String, actor: AuditActor, date: String) {
        let values = ["\(grant.subjectId)", "\(grant.divisionId)"]
        audit(
            actor, date: date, service: "PeoplePermissions", entityType: "Role", action: action,
            entityId: grant.roleId, entityName: roles[grant.roleId]?.name ?? "",
            changes: [
                .init(property: "subjectId", oldValues: action == "MemberAdd" ? [] : [values[0]], newValues: action == "MemberAdd" ? [values[0]] : []),
                .init(property: "divisionId", oldValues: action == "MemberAdd" ? [] : [values[1]], newValues: action == "MemberAdd" ? [values[1]] : []),
                .init(property: "subjectType", oldValues: [], newValues: [grant.subjectType]),
            ])
    }

    // MARK: Groups

    mutating func addGroupMembers(groupId: String, userIds: [String], version: Int?, actor: AuditActor, date: String) throws(WriteError) {
        guard var group = groups[groupId] else {
            throw WriteError(status: 404, code: "not.found", message: "The group \(groupId) was not found.")
        }
        if let version, version != group.version {
            throw WriteError(status: 409, code: "general.conflict", message: "The group version \(version) is out of date; it is now \(group.version).")
        }
        for userId in userIds where users[userId] == nil {
            throw WriteError(status: 404, code: "not.found", message: "The user \(userId) was not found.")
        }
        let added = userIds.filter { !group.memberIds.contains($0) }
        guard !added.isEmpty else { return }
        group.memberIds.append(contentsOf: added)
        group.version += 1
        group.dateModified = date
        groups[groupId] = group
        for userId in added { userGroups[userId, default: []].insert(groupId) }
        revision += 1
        audit(
            actor, date: date, service: "Groups", entityType: "DirectoryGroup", action: "MemberAdd", entityId: groupId,
            entityName: group.name, changes: [.init(property: "group-membership", oldValues: [], newValues: added)])
    }

    mutating func removeGroupMembers(groupId: String, userIds: [String], actor: AuditActor, date: String) throws(WriteError) {
        guard var group = groups[groupId] else {
            throw WriteError(status: 404, code: "not.found", message: "The group \(groupId) was not found.")
        }
        let removed = userIds.filter { group.memberIds.contains($0) }
        guard !removed.isEmpty else { return }
        group.memberIds.removeAll { removed.contains($0) }
        group.version += 1
        group.dateModified = date
        groups[groupId] = group
        for userId in removed { userGroups[userId]?.remove(groupId) }
        revision += 1
        audit(
            actor, date: date, service: "Groups", entityType: "DirectoryGroup", action: "MemberRemove", entityId: groupId,
            entityName: group.name, changes: [.init(property: "group-membership", oldValues: removed, newValues: [])])
    }

    // MARK: Users

    mutating func moveUsers(_ userIds: [String], toDivision divisionId: String, actor: AuditActor, date: String) throws(WriteError) {
        guard divisions[divisionId] != nil else {
            throw WriteError(status: 404, code: "not.found", message: "The division \(divisionId) was not found.")
        }
        for userId in userIds where users[userId] == nil {
            throw WriteError(status: 404, code: "not.found", message: "The user \(userId) was not found.")
        }
        for userId in userIds {
            let old = users[userId]!.divisionId
            guard old != divisionId else { continue }
            users[userId]!.divisionId = divisionId
            users[userId]!.version += 1
            revision += 1
            audit(
                actor, date: date, service: "Directory", entityType: "User", action: "Update", entityId: userId,
                entityName: users[userId]!.name, changes: [.init(property: "divisionId", oldValues: [old], newValues: [divisionId])])
        }
    }

    mutating func addUser(_ user: SimUser, actor: AuditActor, date: String) {
        users[user.id] = user
        Org.insert(user.id, name: user.name, into: &userOrder) { users[$0]?.name ?? "" }
        revision += 1
        audit(
            actor, date: date, service: "Directory", entityType: "User", action: "Create", entityId: user.id,
            entityName: user.name, changes: [.init(property: "name", oldValues: [], newValues: [user.name])])
    }

    mutating func renameUser(_ userId: String, to name: String, actor: AuditActor, date: String) {
        guard let old = users[userId]?.name else { return }
        users[userId]!.name = name
        users[userId]!.version += 1
        userOrder.removeAll { $0 == userId }
        Org.insert(userId, name: name, into: &userOrder) { users[$0]?.name ?? "" }
        revision += 1
        audit(
            actor, date: date, service: "Directory", entityType: "User", action: "Update", entityId: userId,
            entityName: name, changes: [.init(property: "name", oldValues: [old], newValues: [name])])
    }
}
