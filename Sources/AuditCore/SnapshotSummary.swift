/// Counts that describe a snapshot at a glance; what `rbacwatch snapshot` prints.
public struct SnapshotSummary: Sendable, Equatable {
    public var divisions = 0
    public var roles = 0
    public var builtInRoles = 0
    public var users = 0
    public var usersByState: [String: Int] = [:]
    public var groups = 0
    public var roleEnabledGroups = 0
    public var teams = 0
    public var oauthClients = 0
    public var grants = 0
    public var grantsBySubject: [String: Int] = [:]
    /// Role assignments held by users (direct and inherited, counted once per path).
    public var userAccess = 0
    /// Users holding at least one role only through a group.
    public var usersWithInheritedAccess = 0
    /// Users holding at least one role in every division (`*`).
    public var usersWithAllDivisions = 0
    /// Distinct (user, division, permission) triples.
    public var effectivePermissions = 0
    public var problems = 0

    public init(_ snapshot: Snapshot) {
        divisions = snapshot.divisions.count
        roles = snapshot.roles.count
        builtInRoles = snapshot.roles.filter(\.isBuiltIn).count
        users = snapshot.users.count
        groups = snapshot.groups.count
        roleEnabledGroups = snapshot.groups.filter(\.rolesEnabled).count
        teams = snapshot.teams.count
        oauthClients = snapshot.oauthClients.count
        grants = snapshot.grants.count
        problems = snapshot.problems.count
        for grant in snapshot.grants {
            grantsBySubject[grant.subjectKind.apiValue, default: 0] += 1
        }

        // Permission counts per role, computed once.
        var permissionsPerRole: [String: [String]] = [:]
        for role in snapshot.roles { permissionsPerRole[role.id] = role.permissions }

        for user in snapshot.users {
            usersByState[user.state, default: 0] += 1
            userAccess += user.access.count
            if user.access.contains(where: { $0.via != .direct }) { usersWithInheritedAccess += 1 }
            if user.access.contains(where: { $0.divisionId == allDivisionsID }) { usersWithAllDivisions += 1 }
            var perDivision: [String: Set<String>] = [:]
            for item in user.access {
                perDivision[item.divisionId, default: []].formUnion(permissionsPerRole[item.roleId] ?? [])
            }
            effectivePermissions += perDivision.values.reduce(0) { $0 + $1.count }
        }
    }
}
