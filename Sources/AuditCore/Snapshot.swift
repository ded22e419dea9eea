/// Something the collector could not read or could not read consistently. A snapshot with any
/// problem is *partial*: it says so in the file, in the summary and in the exit code.
public struct CollectionProblem: Sendable, Hashable, Comparable {
    /// A stable code: `missing.permissions`, `inconsistent.list`, `unresolved.reference`,
    /// `verify.mismatch`, or the API error code that stopped a read.
    public var code: String
    /// What was being read, e.g. `GET /api/v2/oauth/clients`.
    public var endpoint: String
    /// Permissions the API said are missing (for `missing.permissions`).
    public var permissions: [String]
    public var message: String

    public init(code: String, endpoint: String, permissions: [String] = [], message: String) {
        self.code = code
        self.endpoint = endpoint
        self.permissions = permissions.sorted()
        self.message = message
    }

    public static func < (a: CollectionProblem, b: CollectionProblem) -> Bool {
        (a.code, a.endpoint, a.message) < (b.code, b.endpoint, b.message)
    }
}

/// One collection of an organisation: every principal, role, grant and division, and the effective
/// access of each user and OAuth client with its provenance. Arrays are kept sorted by id so that
/// equal organisations give equal values and byte-identical canonical files.
public struct Snapshot: Sendable, Hashable {
    /// The schema identifier written into every snapshot file. Bump on incompatible change.
    public static let schema = "rbacwatch.snapshot/1"

    public var organization: Organization?
    public var divisions: [Division]
    public var roles: [Role]
    public var users: [User]
    public var groups: [Group]
    public var teams: [Team]
    public var oauthClients: [OAuthClient]
    /// Direct grants as the API lists them (users, groups, OAuth clients, trustees).
    public var grants: [Grant]
    public var problems: [CollectionProblem]

    public var isPartial: Bool { !problems.isEmpty }

    /// Adds problems found after the snapshot was built (a verification's mismatches).
    public mutating func addProblems(_ more: [CollectionProblem]) {
        problems = (problems + more).sortedUnique()
    }

    /// Sorted by id; a linear check when already sorted.
    static func byId<T: Identifiable>(_ items: [T]) -> [T] where T.ID == String {
        var index = 1
        while index < items.count {
            if !(items[index - 1].id < items[index].id) { return items.sorted { $0.id < $1.id } }
            index += 1
        }
        return items
    }

    public init(
        organization: Organization? = nil, divisions: [Division] = [], roles: [Role] = [], users: [User] = [],
        groups: [Group] = [], teams: [Team] = [], oauthClients: [OAuthClient] = [], grants: [Grant] = [],
        problems: [CollectionProblem] = []
    ) {
        self.organization = organization
        self.divisions = Self.byId(divisions)
        self.roles = Self.byId(roles)
        self.users = Self.byId(users)
        self.groups = Self.byId(groups)
        self.teams = Self.byId(teams)
        self.oauthClients = Self.byId(oauthClients)
        self.grants = grants.sortedUnique()
        self.problems = problems.sortedUnique()
    }

    /// Builds a snapshot from what the API returned, resolving each user's and client's effective
    /// access from the direct grants and the memberships of role-holding groups.
    public static func resolving(
        organization: Organization?, divisions: [Division], roles: [Role], users: consuming [User], groups: [Group],
        teams: [Team], oauthClients: [OAuthClient], grants: [Grant], problems: [CollectionProblem]
    ) -> Snapshot {
        var resolved = AccessResolver.resolve(grants: grants, groups: groups, oauthClients: oauthClients)
        // In place: a caller that hands over its users (a collection's 100,000) holds one array of
        // them, not two, and each access list is moved out of the resolver's table, not copied.
        var users = Self.byId(users)
        for index in users.indices {
            var access = resolved.users.removeValue(forKey: users[index].id) ?? []
            access.sort()
            users[index].access = access
        }
        let clients = oauthClients.map { client -> OAuthClient in
            var client = client
            client.access = (resolved.clients[client.id] ?? []).sorted()
            return client
        }
        return Snapshot(
            organization: organization, divisions: divisions, roles: roles, users: users, groups: groups,
            teams: teams, oauthClients: clients, grants: grants, problems: problems)
    }
}
