import Foundation

/// Risk rolled up once for a snapshot under a policy: every role's assessment (and each of its
/// permission groups'), every permission's severity, and what each user's and OAuth client's
/// held roles weigh. The engine computes it with each check; the dashboard only reads it.
public struct RiskRollup: Sendable {
    /// What one held role weighs for a principal.
    public struct Held: Sendable, Equatable {
        public var access: Access
        /// The role's own assessment (nil when the role is not in the snapshot).
        public var assessment: RiskPolicy.Assessment?
        /// The role's weight where it is held: one level more in every division.
        public var severity: Severity
        public var raisedBecause: String?
    }

    public private(set) var roles: [String: RiskPolicy.Assessment] = [:]
    /// Each role's permission groups, in the role's order.
    public private(set) var rolePolicies: [String: [Severity]] = [:]
    public private(set) var permissions: [String: Severity] = [:]
    /// Per user and per OAuth client, by id.
    public private(set) var held: [String: [Held]] = [:]

    public init() {}

    /// - Parameter extraPermissions: permissions to assess besides the roles' (drift items'
    ///   added and removed ones, which a role may no longer hold).
    public init(snapshot: Snapshot, policy: RiskPolicy, extraPermissions: [String] = []) {
        var risks: [String: RiskPolicy.PermissionRisk] = [:]  // roles share most permissions
        func risk(_ permission: String) -> RiskPolicy.PermissionRisk {
            if let known = risks[permission] { return known }
            let computed = policy.risk(of: permission)
            risks[permission] = computed
            return computed
        }
        for role in snapshot.roles {
            roles[role.id] = policy.assess(role.permissions, using: risk)
            rolePolicies[role.id] = role.policies.map { policy.assess($0.permissions, using: risk).severity }
        }
        for permission in Set(snapshot.roles.flatMap(\.permissions)).union(extraPermissions) {
            permissions[permission] = policy.assess([permission], using: risk).severity
        }
        func weigh(_ access: [Access]) -> [Held] {
            access.map { access in
                let assessment = roles[access.roleId]
                let weight = policy.held(assessment?.severity ?? .low, inDivision: access.divisionId)
                return Held(access: access, assessment: assessment, severity: weight.severity, raisedBecause: weight.raisedBecause)
            }
        }
        for user in snapshot.users where !user.access.isEmpty { held[user.id] = weigh(user.access) }
        for client in snapshot.oauthClients where !client.access.isEmpty { held[client.id] = weigh(client.access) }
    }

    /// The same, with the permissions a review's drift items add and remove assessed too.
    public init(snapshot: Snapshot, policy: RiskPolicy, review: DriftReview?) {
        self.init(
            snapshot: snapshot, policy: policy,
            extraPermissions: (review?.items ?? []).flatMap { $0.item.permissionsAdded + $0.item.permissionsRemoved })
    }

    /// A principal's risk: the heaviest role it holds (nil when it holds none).
    public func principal(_ id: String) -> Severity? {
        held[id]?.map(\.severity).max()
    }

    /// A role's assessment (low, no reasons, when the role was not rolled up).
    public func role(_ id: String) -> RiskPolicy.Assessment {
        roles[id] ?? RiskPolicy.Assessment(severity: .low, escalation: false, reasons: [])
    }

    /// A permission's severity (low when it was not rolled up).
    public func permission(_ permission: String) -> Severity {
        permissions[permission] ?? .low
    }
}
