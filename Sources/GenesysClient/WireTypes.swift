// The client's reading of the Platform API's JSON. Only `id` is required of an entity;
// everything else is optional (empty fields are omitted by the API) and enums are read as
// strings (they grow). These types are the client's own: the simulator writes its replies
// without them.

struct Ref: Decodable, Sendable {
    var id: String
    var name: String?
}

/// Offset paging (`pageNumber`).
struct PageEnvelope<Entity: Decodable & Sendable>: Decodable, Sendable {
    var entities: [Entity]?
    var pageSize: Int?
    var pageNumber: Int?
    var total: Int?
    var pageCount: Int?
    var nextUri: String?
}

/// Cursor paging (`after`).
struct CursorEnvelope<Entity: Decodable & Sendable>: Decodable, Sendable {
    var entities: [Entity]?
    var nextUri: String?
}

struct OrganizationWire: Decodable, Sendable {
    var id: String
    var name: String?
}

struct DivisionWire: Decodable, Sendable {
    var id: String
    var name: String?
    var description: String?
    var homeDivision: Bool?
}

final class ConditionWire: Decodable, Sendable {
    struct Operand: Decodable, Sendable {
        var type: String?
        var value: String?
    }

    let variableName: String?
    let `operator`: String?
    let operands: [Operand]?
    let conjunction: String?
    let terms: [ConditionWire]?
}

struct PolicyWire: Decodable, Sendable {
    var domain: String?
    var entityName: String?
    var actionSet: [String]?
    var allowConditions: Bool?
    var resourceConditionNode: ConditionWire?
}

struct RoleWire: Decodable, Sendable {
    var id: String
    var name: String?
    var description: String?
    var defaultRoleId: String?
    var `default`: Bool?
    var base: Bool?
    var permissions: [String]?
    var permissionPolicies: [PolicyWire]?
}

struct SubjectGrantsWire: Decodable, Sendable {
    var id: String
    var name: String?
    var type: String?
    var divisions: [Ref]?
}

struct UserWire: Decodable, Sendable {
    var id: String
    var name: String?
    var division: Ref?
    var email: String?
    var state: String?
    var title: String?
    var department: String?
    var username: String?
    var manager: Ref?
    var groups: [Ref]?
    var team: Ref?
}

struct GroupWire: Decodable, Sendable {
    var id: String
    var name: String?
    var description: String?
    var type: String?
    var state: String?
    var visibility: String?
    var rolesEnabled: Bool?
    var memberCount: Int?
    var includeOwners: Bool?
    var owners: [Ref]?
}

struct MemberWire: Decodable, Sendable {
    var id: String
}

struct TeamWire: Decodable, Sendable {
    var id: String
    var name: String?
    var division: Ref?
}

struct OAuthClientWire: Decodable, Sendable {
    struct RoleDivision: Decodable, Sendable {
        var roleId: String?
        var divisionId: String?
    }

    var id: String
    var name: String?
    var authorizedGrantType: String?
    var state: String?
    var roleDivisions: [RoleDivision]?
}

/// `AuthzSubject`: a user's or group's grants, inherited ones included for users.
struct AuthzSubjectWire: Decodable, Sendable {
    struct GrantWire: Decodable, Sendable {
        var subjectId: String?
        var role: Ref?
        var division: Ref?
    }

    var id: String
    var name: String?
    var grants: [GrantWire]?
}
