import AuditCore

/// API replies → the core model.
extension Collector {
    static func division(_ w: DivisionWire) -> Division {
        Division(id: w.id, name: w.name ?? "", description: nonEmpty(w.description), isHome: w.homeDivision ?? false)
    }

    static func condition(_ w: ConditionWire) -> ConditionNode {
        ConditionNode(
            variableName: nonEmpty(w.variableName), operator: nonEmpty(w.operator),
            operands: (w.operands ?? []).map { .init(type: $0.type ?? "", value: $0.value ?? "") },
            conjunction: nonEmpty(w.conjunction), terms: (w.terms ?? []).map(condition))
    }

    /// Policies are the source of truth; flat permissions fill in only what policies cannot say
    /// (the legacy `admin`), or everything when a reply carries no policies at all.
    static func role(_ w: RoleWire) -> Role {
        var policies = (w.permissionPolicies ?? []).compactMap { p -> PermissionPolicy? in
            guard let domain = p.domain, let entity = p.entityName else { return nil }
            return PermissionPolicy(
                domain: domain, entityName: entity, actions: p.actionSet ?? [],
                condition: p.resourceConditionNode.map(condition))
        }
        let flat = w.permissions ?? []
        let legacy = flat.filter { $0.split(separator: ":", omittingEmptySubsequences: false).count != 3 }
        if policies.isEmpty {
            var grouped: [String: (String, String, [String])] = [:]
            for permission in flat {
                let parts = permission.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
                guard parts.count == 3 else { continue }
                grouped["\(parts[0]):\(parts[1])", default: (parts[0], parts[1], [])].2.append(parts[2])
            }
            policies = grouped.values.map { PermissionPolicy(domain: $0.0, entityName: $0.1, actions: $0.2) }
        }
        return Role(
            id: w.id, name: w.name ?? "", description: nonEmpty(w.description), defaultRoleId: nonEmpty(w.defaultRoleId),
            isBuiltIn: w.default ?? false, policies: policies, legacyPermissions: legacy)
    }

    static func user(_ w: UserWire) -> User {
        User(
            id: w.id, name: w.name ?? "", username: nonEmpty(w.username), email: nonEmpty(w.email),
            state: w.state ?? "unknown", divisionId: w.division?.id, title: nonEmpty(w.title),
            department: nonEmpty(w.department), managerId: w.manager?.id, groupIds: (w.groups ?? []).map(\.id),
            teamId: w.team?.id)
    }

    static func group(_ w: GroupWire, members: [String]) -> Group {
        Group(
            id: w.id, name: w.name ?? "", description: nonEmpty(w.description), type: nonEmpty(w.type),
            state: nonEmpty(w.state), visibility: nonEmpty(w.visibility), rolesEnabled: w.rolesEnabled ?? false,
            memberIds: members)
    }

    static func grants(ofRole roleId: String, _ subjects: [SubjectGrantsWire]) -> [Grant] {
        subjects.flatMap { subject in
            (subject.divisions ?? []).map { division in
                Grant(
                    subjectId: subject.id, subjectKind: SubjectKind(apiValue: subject.type ?? "UNKNOWN"), roleId: roleId,
                    divisionId: division.id)
            }
        }
    }

    static func grants(ofClient w: OAuthClientWire) -> [Grant] {
        (w.roleDivisions ?? []).compactMap { rd in
            guard let roleId = rd.roleId, let divisionId = rd.divisionId else { return nil }
            return Grant(subjectId: w.id, subjectKind: .oauthClient, roleId: roleId, divisionId: divisionId)
        }
    }

    static func nonEmpty(_ text: String?) -> String? {
        guard let text, !text.isEmpty else { return nil }
        return text
    }
}
