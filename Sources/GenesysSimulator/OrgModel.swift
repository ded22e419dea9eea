// The simulated organisation's data. Plain values, mutated only under the simulator's lock.

struct SimDivision: Sendable {
    var id: String
    var name: String
    var description: String
    var isHome: Bool
}

indirect enum SimCondition: Sendable, Equatable {
    /// A leaf: `variableName operator operands`.
    case leaf(variable: String, op: String, operands: [(type: String, value: String)])
    case group(conjunction: String, terms: [SimCondition])

    static func == (a: SimCondition, b: SimCondition) -> Bool {
        switch (a, b) {
        case (.leaf(let v1, let o1, let p1), .leaf(let v2, let o2, let p2)):
            v1 == v2 && o1 == o2 && p1.map(\.type) == p2.map(\.type) && p1.map(\.value) == p2.map(\.value)
        case (.group(let c1, let t1), .group(let c2, let t2)): c1 == c2 && t1 == t2
        default: false
        }
    }
}

struct SimPolicy: Sendable, Equatable {
    var domain: String
    var entityName: String
    var actions: [String]
    var condition: SimCondition?
}

struct SimRole: Sendable {
    var id: String
    var name: String
    var description: String
    var defaultRoleId: String?
    var isDefault: Bool
    var isBase: Bool
    var policies: [SimPolicy]
    /// Permissions listed flat without a policy (the legacy `admin`).
    var legacyPermissions: [String]

    /// The flattened `permissions` array the API returns.
    var permissions: [String] {
        var all = Set(legacyPermissions)
        for policy in policies {
            for action in policy.actions { all.insert("\(policy.domain):\(policy.entityName):\(action)") }
        }
        return all.sorted()
    }

    /// Whether this role grants `permission` (`domain:entity:action`), honouring `*` wildcards.
    func grants(_ permission: String) -> Bool {
        let parts = permission.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 3 else { return legacyPermissions.contains(permission) }
        return policies.contains { policy in
            (policy.domain == "*" || policy.domain == parts[0])
                && (policy.entityName == "*" || policy.entityName == parts[1])
                && (policy.actions.contains("*") || policy.actions.contains(String(parts[2])))
        }
    }
}

struct SimUser: Sendable {
    var id: String
    var name: String
    var email: String
    var username: String
    var title: String
    var department: String
    var state: String
    var divisionId: String
    var managerId: String?
    var teamId: String?
    var version: Int
    var jabberId: String
    var dateLastLogin: String?
}

struct SimGroup: Sendable {
    var id: String
    var name: String
    var description: String
    var type: String
    var state: String
    var visibility: String
    var rolesEnabled: Bool
    var includeOwners: Bool
    var ownerIds: [String]
    /// Direct members, in the order they were added.
    var memberIds: [String]
    var version: Int
    var dateModified: String

    /// Who the members endpoint lists, and who inherits the group's grants.
    var effectiveMemberIds: [String] {
        guard includeOwners else { return memberIds }
        var seen = Set(memberIds)
        var all = memberIds
        for owner in ownerIds where seen.insert(owner).inserted { all.append(owner) }
        return all
    }
}

struct SimTeam: Sendable {
    var id: String
    var name: String
    var description: String
    var divisionId: String
    var dateCreated: String
    var dateModified: String
}

struct SimClient: Sendable {
    var id: String
    var name: String
    var description: String
    var secret: String
    var grantType: String
    var scope: [String]
    var accessTokenValiditySeconds: Int
    var state: String
    var dateCreated: String
    var dateModified: String
    var createdById: String?
}

/// A grant: (subject, role, division). `subjectType` is the API's enum value.
struct SimGrant: Sendable, Hashable {
    var subjectId: String
    var subjectType: String
    var roleId: String
    var divisionId: String
}

/// One audit event as the audit API returns it (AuditLogMessage).
struct SimAuditEvent: Sendable {
    struct Change: Sendable {
        var property: String
        var oldValues: [String]
        var newValues: [String]
    }

    var id: String
    var eventDate: String
    var serviceName: String
    var entityType: String
    var action: String
    var entityId: String
    var entityName: String
    var userId: String?
    var userName: String?
    var clientId: String?
    var remoteIp: [String]
    var level: String
    var status: String
    var propertyChanges: [Change]
    var transactionId: String
    /// When queries start to see it (epoch ms): `eventDate` plus the arrival delay.
    var visibleAt: Int64 = 0
}
