/// How the API writes each entity. Field names and shapes follow the Platform API definitions;
/// empty values are omitted, never `null`.
enum Wire {
    static func ref(_ id: String, name: String? = nil, path: String) -> JSON {
        var o = JSONObject()
        o.set("id", id)
        o.set("name", name)
        o.set("selfUri", "\(path)/\(id)")
        return o.json
    }

    static func divisionRef(_ org: Org, _ id: String) -> JSON {
        if id == "*" {
            var o = JSONObject()
            o.set("id", "*")
            return o.json
        }
        return ref(id, name: org.divisions[id]?.name, path: "/api/v2/authorization/divisions")
    }

    static func division(_ d: SimDivision, objectCounts: [String: Int]? = nil) -> JSON {
        var o = JSONObject()
        o.set("id", d.id)
        o.set("name", d.name)
        o.set("description", d.description)
        o.set("homeDivision", d.isHome)
        if let objectCounts, !objectCounts.isEmpty {
            o.set("objectCounts", JSON.object(objectCounts.keys.sorted().map { ($0, .int(objectCounts[$0]!)) }))
        }
        o.set("selfUri", "/api/v2/authorization/divisions/\(d.id)")
        return o.json
    }

    static func condition(_ c: SimCondition) -> JSON {
        var o = JSONObject()
        switch c {
        case .leaf(let variable, let op, let operands):
            o.set("variableName", variable)
            o.set("operator", op)
            o.set(
                "operands",
                array: operands.map { operand in
                    var v = JSONObject()
                    v.set("type", operand.type)
                    v.set("value", operand.value)
                    return v.json
                })
        case .group(let conjunction, let terms):
            o.set("conjunction", conjunction)
            o.set("terms", array: terms.map(condition))
        }
        return o.json
    }

    /// `DomainPermissionPolicy`.
    static func policy(_ p: SimPolicy) -> JSON {
        var o = JSONObject()
        o.set("domain", p.domain)
        o.set("entityName", p.entityName)
        o.set("policyName", "\(p.domain)-\(p.entityName)")
        o.set("actionSetKey", p.actions.joined(separator: ","))
        o.set("allowConditions", p.condition != nil)
        if let condition = p.condition { o.set("resourceConditionNode", Wire.condition(condition)) }
        o.set("actionSet", strings: p.actions, keepEmpty: true)
        return o.json
    }

    /// `DomainOrganizationRole`.
    static func role(_ r: SimRole, userCount: Int?) -> JSON {
        var o = JSONObject()
        o.set("id", r.id)
        o.set("name", r.name)
        o.set("description", r.description)
        o.set("defaultRoleId", r.defaultRoleId)
        o.set("permissions", strings: r.permissions, keepEmpty: true)
        o.set("permissionPolicies", array: r.policies.map(policy), keepEmpty: true)
        o.set("userCount", userCount)
        o.set("roleNeedsUpdate", false)
        o.set("default", r.isDefault)
        o.set("base", r.isBase)
        o.set("selfUri", "/api/v2/authorization/roles/\(r.id)")
        return o.json
    }

    struct UserExpand: OptionSet {
        let rawValue: Int
        static let authorization = UserExpand(rawValue: 1)
        static let groups = UserExpand(rawValue: 2)
        static let team = UserExpand(rawValue: 4)
        static let dateLastLogin = UserExpand(rawValue: 8)
        static let lastTokenIssued = UserExpand(rawValue: 16)

        init(rawValue: Int) { self.rawValue = rawValue }
        init(_ names: [String]) {
            var set: UserExpand = []
            for name in names {
                switch name {
                case "authorization", "authorization.unusedRoles": set.insert(.authorization)
                case "groups": set.insert(.groups)
                case "team": set.insert(.team)
                case "dateLastLogin": set.insert(.dateLastLogin)
                case "lasttokenissued": set.insert(.lastTokenIssued)
                default: break  // other expansions are best-effort and not simulated
                }
            }
            self = set
        }
    }

    /// `UserAuthorization`: every role the user holds (direct or inherited), flattened.
    static func userAuthorization(_ org: Org, userId: String) -> JSON {
        let roleIds = Set(org.effectiveGrants(ofUser: userId).map(\.grant.roleId))
        let roles = roleIds.compactMap { org.roles[$0] }.sorted { $0.name < $1.name }
        var permissions = Set<String>()
        var policies: [JSON] = []
        for role in roles {
            permissions.formUnion(role.permissions)
            policies.append(contentsOf: role.policies.map(policy))
        }
        var o = JSONObject()
        o.set("roles", array: roles.map { ref($0.id, name: $0.name, path: "/api/v2/authorization/roles") }, keepEmpty: true)
        o.set("permissions", strings: permissions.sorted(), keepEmpty: true)
        o.set("permissionPolicies", array: policies, keepEmpty: true)
        return o.json
    }

    /// `User`.
    static func user(_ org: Org, _ u: SimUser, expand: UserExpand) -> JSON {
        var o = JSONObject()
        o.set("id", u.id)
        o.set("name", u.name)
        o.set("division", divisionRef(org, u.divisionId))
        var chat = JSONObject()
        chat.set("jabberId", u.jabberId)
        o.set("chat", chat.json)
        o.set("department", u.department)
        o.set("email", u.email)
        var contact = JSONObject()
        contact.set("address", u.email)
        contact.set("mediaType", "EMAIL")
        contact.set("type", "PRIMARY")
        o.set("primaryContactInfo", array: [contact.json])
        o.set("state", u.state)
        o.set("title", u.title)
        o.set("username", u.username)
        if let manager = u.managerId { o.set("manager", ref(manager, path: "/api/v2/users")) }
        o.set("version", u.version)
        o.set("acdAutoAnswer", false)
        if expand.contains(.authorization) { o.set("authorization", userAuthorization(org, userId: u.id)) }
        if expand.contains(.groups) {
            let groups = (org.userGroups[u.id] ?? []).sorted().map { ref($0, path: "/api/v2/groups") }
            o.set("groups", array: groups)
        }
        if expand.contains(.team), let teamId = u.teamId, let team = org.teams[teamId] {
            o.set("team", ref(team.id, name: team.name, path: "/api/v2/teams"))
        }
        if expand.contains(.dateLastLogin) { o.set("dateLastLogin", u.dateLastLogin) }
        if expand.contains(.lastTokenIssued), let last = u.dateLastLogin {
            var token = JSONObject()
            token.set("dateIssued", last)
            o.set("lastTokenIssued", token.json)
        }
        o.set("selfUri", "/api/v2/users/\(u.id)")
        return o.json
    }

    /// `Group`.
    static func group(_ g: SimGroup) -> JSON {
        var o = JSONObject()
        o.set("id", g.id)
        o.set("name", g.name)
        o.set("description", g.description)
        o.set("dateModified", g.dateModified)
        o.set("memberCount", g.effectiveMemberIds.count)
        o.set("state", g.state)
        o.set("version", g.version)
        o.set("type", g.type)
        o.set("rulesVisible", false)
        o.set("visibility", g.visibility)
        o.set("rolesEnabled", g.rolesEnabled)
        o.set("includeOwners", g.includeOwners)
        o.set("callsEnabled", false)
        o.set("owners", array: g.ownerIds.map { ref($0, path: "/api/v2/users") })
        o.set("selfUri", "/api/v2/groups/\(g.id)")
        return o.json
    }

    /// `Team`.
    static func team(_ org: Org, _ t: SimTeam) -> JSON {
        var o = JSONObject()
        o.set("id", t.id)
        o.set("name", t.name)
        o.set("division", divisionRef(org, t.divisionId))
        o.set("description", t.description)
        o.set("dateCreated", t.dateCreated)
        o.set("dateModified", t.dateModified)
        o.set("memberCount", org.teamMembers[t.id]?.count ?? 0)
        o.set("selfUri", "/api/v2/teams/\(t.id)")
        return o.json
    }

    /// `OAuthClientListing`. The secret is never listed.
    static func client(_ org: Org, _ c: SimClient) -> JSON {
        let grants = (org.grantsBySubject[c.id] ?? []).sorted { ($0.roleId, $0.divisionId) < ($1.roleId, $1.divisionId) }
        var o = JSONObject()
        o.set("id", c.id)
        o.set("name", c.name)
        o.set("accessTokenValiditySeconds", c.accessTokenValiditySeconds)
        o.set("description", c.description)
        o.set("roleIds", strings: Array(Set(grants.map(\.roleId))).sorted())
        o.set("dateCreated", c.dateCreated)
        o.set("dateModified", c.dateModified)
        if let creator = c.createdById { o.set("createdBy", ref(creator, path: "/api/v2/users")) }
        o.set("authorizedGrantType", c.grantType)
        o.set("scope", strings: c.scope)
        o.set(
            "roleDivisions",
            array: grants.map { grant in
                var rd = JSONObject()
                rd.set("roleId", grant.roleId)
                rd.set("divisionId", grant.divisionId)
                return rd.json
            })
        o.set("state", c.state)
        o.set("selfUri", "/api/v2/oauth/clients/\(c.id)")
        return o.json
    }

    /// `ErrorBody`.
    static func error(status: Int, code: String, message: String, correlationId: String, params: [String: String] = [:]) -> JSON {
        var o = JSONObject()
        o.set("message", message)
        o.set("code", code)
        o.set("status", status)
        o.set("messageParams", JSON.object(params.keys.sorted().map { ($0, .string(params[$0]!)) }))
        o.set("contextId", correlationId)
        o.set("details", array: [], keepEmpty: true)
        o.set("errors", array: [], keepEmpty: true)
        return o.json
    }
}
