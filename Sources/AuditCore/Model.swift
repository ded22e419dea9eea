// The domain model of one Genesys Cloud organisation's access control, as rbacwatch sees it.
// Values only: no I/O, no wire formats. The client maps API replies onto these types; the
// canonical snapshot encoding (Snapshot+Canonical.swift) writes them in one stable form.

/// The division id Genesys uses for "all divisions, present and future".
public let allDivisionsID = "*"

public struct Organization: Sendable, Hashable {
    public var id: String
    public var name: String

    public init(id: String, name: String) {
        self.id = id
        self.name = name
    }
}

public struct Division: Sendable, Hashable, Identifiable {
    public var id: String
    public var name: String
    public var description: String?
    public var isHome: Bool

    public init(id: String, name: String, description: String? = nil, isHome: Bool = false) {
        self.id = id
        self.name = name
        self.description = description
        self.isHome = isHome
    }
}

/// A node of a policy's resource condition (`resourceConditionNode`), kept structurally so that
/// two equal conditions encode identically.
public struct ConditionNode: Sendable, Hashable {
    public struct Operand: Sendable, Hashable {
        public var type: String
        public var value: String
        public init(type: String, value: String) {
            self.type = type
            self.value = value
        }
    }

    public var variableName: String?
    public var `operator`: String?
    public var operands: [Operand]
    public var conjunction: String?
    public var terms: [ConditionNode]

    public init(
        variableName: String? = nil, operator: String? = nil, operands: [Operand] = [],
        conjunction: String? = nil, terms: [ConditionNode] = []
    ) {
        self.variableName = variableName
        self.operator = `operator`
        self.operands = operands
        self.conjunction = conjunction
        self.terms = terms
    }
}

/// One entry of a role's `permissionPolicies`: a domain and entity with the actions granted on it.
public struct PermissionPolicy: Sendable, Hashable, Comparable {
    public var domain: String
    public var entityName: String
    /// Sorted, deduplicated; may hold `*`.
    public var actions: [String]
    public var condition: ConditionNode?

    public init(domain: String, entityName: String, actions: [String], condition: ConditionNode? = nil) {
        self.domain = domain
        self.entityName = entityName
        self.actions = Array(Set(actions)).sorted()
        self.condition = condition
    }

    /// The `domain:entity:action` strings this policy grants.
    public var permissions: [String] {
        actions.map { "\(domain):\(entityName):\($0)" }
    }

    /// A total order: domain, entity, actions, then the condition's canonical form.
    public static func < (a: PermissionPolicy, b: PermissionPolicy) -> Bool {
        (a.domain, a.entityName, a.actions.joined(separator: ","), a.conditionKey)
            < (b.domain, b.entityName, b.actions.joined(separator: ","), b.conditionKey)
    }

    var conditionKey: String {
        guard let condition else { return "" }
        var writer = CanonicalJSONWriter(reservingCapacity: 128)
        condition.encode(to: &writer)
        return String(decoding: writer.bytes, as: UTF8.self)
    }
}

public struct Role: Sendable, Hashable, Identifiable {
    public var id: String
    public var name: String
    public var description: String?
    /// Set on Genesys's built-in roles (`default: true`).
    public var defaultRoleId: String?
    public var isBuiltIn: Bool
    public var policies: [PermissionPolicy]
    /// Flattened permissions the API lists that no policy carries (the legacy `admin`).
    public var legacyPermissions: [String]

    public init(
        id: String, name: String, description: String? = nil, defaultRoleId: String? = nil,
        isBuiltIn: Bool = false, policies: [PermissionPolicy], legacyPermissions: [String] = []
    ) {
        self.id = id
        self.name = name
        self.description = description
        self.defaultRoleId = defaultRoleId
        self.isBuiltIn = isBuiltIn
        self.policies = policies.sorted()
        self.legacyPermissions = Array(Set(legacyPermissions)).sorted()
    }

    /// Every permission string the role grants: policies first (the API's source of truth), then
    /// legacy flattened permissions. Sorted, unique.
    public var permissions: [String] {
        var all = Set(legacyPermissions)
        for policy in policies { all.formUnion(policy.permissions) }
        return all.sorted()
    }
}

/// Who a grant is made to. Unknown kinds are kept verbatim: the API's enums grow.
public enum SubjectKind: Sendable, Hashable, Comparable {
    case user, group, oauthClient, trusteeUser, trusteeGroup
    case other(String)

    public init(apiValue: String) {
        switch apiValue {
        case "PC_USER": self = .user
        case "PC_GROUP": self = .group
        case "PC_OAUTH_CLIENT": self = .oauthClient
        case "PC_TRUSTEE_USER": self = .trusteeUser
        case "PC_TRUSTEE_GROUP": self = .trusteeGroup
        default: self = .other(apiValue)
        }
    }

    public var apiValue: String {
        switch self {
        case .user: "PC_USER"
        case .group: "PC_GROUP"
        case .oauthClient: "PC_OAUTH_CLIENT"
        case .trusteeUser: "PC_TRUSTEE_USER"
        case .trusteeGroup: "PC_TRUSTEE_GROUP"
        case .other(let value): value
        }
    }

    public static func < (a: SubjectKind, b: SubjectKind) -> Bool { a.apiValue < b.apiValue }
}

/// A grant: a subject holds a role in a division (`*` = all divisions).
public struct Grant: Sendable, Hashable, Comparable {
    public var subjectId: String
    public var subjectKind: SubjectKind
    public var roleId: String
    public var divisionId: String

    public init(subjectId: String, subjectKind: SubjectKind, roleId: String, divisionId: String) {
        self.subjectId = subjectId
        self.subjectKind = subjectKind
        self.roleId = roleId
        self.divisionId = divisionId
    }

    public static func < (a: Grant, b: Grant) -> Bool {
        if a.subjectId != b.subjectId { return a.subjectId < b.subjectId }
        if a.roleId != b.roleId { return a.roleId < b.roleId }
        if a.divisionId != b.divisionId { return a.divisionId < b.divisionId }
        return a.subjectKind < b.subjectKind
    }
}

/// How a principal came to hold a role in a division.
public enum Provenance: Sendable, Hashable, Comparable {
    /// Granted to the principal itself.
    case direct
    /// Inherited through membership of a role-enabled group.
    case group(id: String)

    /// `"direct"` or the group's id: how the snapshot file writes it.
    public var encoded: String {
        switch self {
        case .direct: "direct"
        case .group(let id): id
        }
    }

    public static func < (a: Provenance, b: Provenance) -> Bool { a.sortKey < b.sortKey }
    private var sortKey: String {
        switch self {
        case .direct: ""
        case .group(let id): "g:" + id
        }
    }
}

/// One effective role assignment of a principal: role, division, and where it came from.
public struct Access: Sendable, Hashable, Comparable {
    public var roleId: String
    public var divisionId: String
    public var via: Provenance

    public init(roleId: String, divisionId: String, via: Provenance) {
        self.roleId = roleId
        self.divisionId = divisionId
        self.via = via
    }

    public static func < (a: Access, b: Access) -> Bool {
        if a.divisionId != b.divisionId { return a.divisionId < b.divisionId }
        if a.roleId != b.roleId { return a.roleId < b.roleId }
        return a.via < b.via
    }
}

public struct User: Sendable, Hashable, Identifiable {
    public var id: String
    public var name: String
    public var username: String?
    public var email: String?
    /// `active`, `inactive`, `deleted`, or whatever the API grows to.
    public var state: String
    public var divisionId: String?
    public var title: String?
    public var department: String?
    public var managerId: String?
    /// Every group the user belongs to (role-enabled or not), from `expand=groups`.
    public var groupIds: [String]
    public var teamId: String?
    /// Effective role assignments: direct grants plus those inherited from role-enabled groups.
    public var access: [Access]

    public init(
        id: String, name: String, username: String? = nil, email: String? = nil, state: String,
        divisionId: String? = nil, title: String? = nil, department: String? = nil,
        managerId: String? = nil, groupIds: [String] = [], teamId: String? = nil, access: [Access] = []
    ) {
        self.id = id
        self.name = name
        self.username = username
        self.email = email
        self.state = state
        self.divisionId = divisionId
        self.title = title
        self.department = department
        self.managerId = managerId
        self.groupIds = groupIds.sortedUnique()
        self.teamId = teamId
        self.access = access.sortedUnique()
    }
}

public struct Group: Sendable, Hashable, Identifiable {
    public var id: String
    public var name: String
    public var description: String?
    /// `official` or `social`.
    public var type: String?
    public var state: String?
    public var visibility: String?
    /// Only role-enabled groups can hold grants; their members inherit them.
    public var rolesEnabled: Bool
    /// Members as the members endpoint lists them (owners and rule-based members included).
    /// Read for role-enabled groups only; empty otherwise (user records carry all memberships).
    public var memberIds: [String]

    public init(
        id: String, name: String, description: String? = nil, type: String? = nil, state: String? = nil,
        visibility: String? = nil, rolesEnabled: Bool, memberIds: [String] = []
    ) {
        self.id = id
        self.name = name
        self.description = description
        self.type = type
        self.state = state
        self.visibility = visibility
        self.rolesEnabled = rolesEnabled
        self.memberIds = memberIds.sortedUnique()
    }
}

/// Teams carry no roles in Genesys Cloud; they are kept for context and grouping.
public struct Team: Sendable, Hashable, Identifiable {
    public var id: String
    public var name: String
    public var divisionId: String?
    public var memberIds: [String]

    public init(id: String, name: String, divisionId: String? = nil, memberIds: [String] = []) {
        self.id = id
        self.name = name
        self.divisionId = divisionId
        self.memberIds = memberIds.sortedUnique()
    }
}

public struct OAuthClient: Sendable, Hashable, Identifiable {
    public var id: String
    public var name: String
    /// `CLIENT-CREDENTIALS`, `CODE`, `TOKEN`, `SAML2-BEARER`, `PASSWORD`…
    public var grantType: String?
    public var state: String?
    /// The client's roles: its `roleDivisions` together with grants listing it as a subject.
    public var access: [Access]

    public init(id: String, name: String, grantType: String? = nil, state: String? = nil, access: [Access] = []) {
        self.id = id
        self.name = name
        self.grantType = grantType
        self.state = state
        self.access = access.sortedUnique()
    }
}

extension Array where Element: Comparable & Hashable {
    /// Sorted with duplicates removed — in one linear check when it already is, as canonical
    /// files and the collector produce it.
    func sortedUnique() -> [Element] {
        var ordered = true
        var index = 1
        while index < count {
            if !(self[index - 1] < self[index]) {
                ordered = false
                break
            }
            index += 1
        }
        return ordered ? self : Array(Set(self)).sorted()
    }
}
