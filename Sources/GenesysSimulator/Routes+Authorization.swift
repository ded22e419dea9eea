import Synchronization
/// Roles, grants, authorization subjects and divisions.
extension GenesysSimulator {
    // MARK: Roles

    func listRoles(_ r: SimRequest) throws -> SimResponse {
        let page = try page(r.query)
        let ids = Set(r.query.list("id"))
        let name = r.query.first("name")?.lowercased()
        let permissions = r.query.list("permission")
        let defaultRoleIds = Set(r.query.list("defaultRoleId"))
        let withUserCount = r.query.bool("userCount") ?? true
        return org.withLock { org in
            let order = org.roleOrder.filter { id in
                let role = org.roles[id]!
                return (ids.isEmpty || ids.contains(id)) && (name == nil || role.name.lowercased().contains(name!))
                    && (permissions.isEmpty || permissions.contains(where: role.grants))
                    && (defaultRoleIds.isEmpty || role.defaultRoleId.map(defaultRoleIds.contains) == true)
            }
            let entities = pageSlice(order, page).map { id in
                Wire.role(org.roles[id]!, userCount: withUserCount ? userCount(org, id) : nil)
            }
            return pageEnvelope(entities, page: page, total: order.count, request: r)
        }
    }

    func userCount(_ org: Org, _ roleId: String) -> Int {
        Set((org.grantsByRole[roleId] ?? []).filter { $0.subjectType == "PC_USER" }.map(\.subjectId)).count
    }

    func getRole(_ r: SimRequest, _ id: String) throws -> SimResponse {
        let withUserCount = r.query.bool("userCount") ?? true
        return try org.withLock { org in
            guard let role = org.roles[id] else { throw APIError.notFound("role") }
            return .ok(Wire.role(role, userCount: withUserCount ? userCount(org, id) : nil))
        }
    }

    /// Reads `DomainOrganizationRoleCreate`/`Update`: policies win over the flat permission list.
    func roleBody(_ r: SimRequest) throws -> (name: String, description: String, policies: [SimPolicy], legacy: [String]) {
        let body = try jsonBody(r)
        guard let name = body["name"]?.stringValue else { throw APIError.badRequest("The role name is required.") }
        var policies: [SimPolicy] = []
        var legacy: [String] = []
        if let items = body["permissionPolicies"]?.arrayValue, !items.isEmpty {
            for item in items {
                guard let domain = item["domain"]?.stringValue, let entity = item["entityName"]?.stringValue else {
                    throw APIError.badRequest("Each permission policy needs a domain and an entityName.")
                }
                let actions = item["actionSet"]?.arrayValue?.compactMap(\.stringValue) ?? []
                policies.append(SimPolicy(domain: domain, entityName: entity, actions: actions.sorted(), condition: nil))
            }
        }
        for permission in body["permissions"]?.arrayValue?.compactMap(\.stringValue) ?? [] {
            let parts = permission.split(separator: ":")
            if parts.count != 3 {
                legacy.append(permission)
            } else if policies.isEmpty || body["permissionPolicies"] == nil {
                policies.append(contentsOf: PermissionCatalogue.policies(for: [permission]))
            }
        }
        // Merge policies on the same domain and entity.
        var merged: [String: SimPolicy] = [:]
        for policy in policies {
            let key = "\(policy.domain):\(policy.entityName)"
            if var existing = merged[key] {
                existing.actions = Array(Set(existing.actions + policy.actions)).sorted()
                merged[key] = existing
            } else {
                merged[key] = policy
            }
        }
        return (name, body["description"]?.stringValue ?? "", merged.keys.sorted().map { merged[$0]! }, legacy)
    }

    func createRole(_ r: SimRequest) throws -> SimResponse {
        let input = try roleBody(r)
        let date = timestamp()
        var rng = SystemRandomNumberGenerator()
        var ids = SeededRandom(seed: rng.next())
        return try org.withLock { org in
            let role = try org.createRole(
                id: ids.uuid(), name: input.name, description: input.description, policies: input.policies,
                legacy: input.legacy, actor: actor(r), date: date)
            return .ok(Wire.role(role, userCount: 0))
        }
    }

    func updateRole(_ r: SimRequest, _ id: String) throws -> SimResponse {
        let input = try roleBody(r)
        let date = timestamp()
        return try org.withLock { org in
            let role = try org.updateRole(
                id: id, name: input.name, description: input.description, policies: input.policies,
                legacy: input.legacy, actor: actor(r), date: date)
            return .ok(Wire.role(role, userCount: userCount(org, id)))
        }
    }

    func deleteRole(_ r: SimRequest, _ id: String) throws -> SimResponse {
        let date = timestamp()
        try org.withLock { org in try org.deleteRole(id: id, actor: actor(r), date: date) }
        return .noContent
    }

    /// Users holding the role directly: `{id, selfUri}` only, in a bare envelope.
    func roleUsers(_ r: SimRequest, _ id: String) throws -> SimResponse {
        let page = try page(r.query)
        return try org.withLock { org in
            guard org.roles[id] != nil else { throw APIError.notFound("role") }
            let ids = Set((org.grantsByRole[id] ?? []).filter { $0.subjectType == "PC_USER" }.map(\.subjectId))
            let order = ids.sorted { Org.sortKey(org.users[$0]?.name ?? "", $0) < Org.sortKey(org.users[$1]?.name ?? "", $1) }
            let entities = pageSlice(order, page).map { Wire.ref($0, path: "/api/v2/users") }
            return pageEnvelope(entities, page: page, total: order.count, request: r, bare: true)
        }
    }

    /// Every subject holding the role — users, groups and OAuth clients — with its divisions.
    func roleSubjectGrants(_ r: SimRequest, _ id: String) throws -> SimResponse {
        let page = try page(r.query)
        return try org.withLock { org in
            guard org.roles[id] != nil else { throw APIError.notFound("role") }
            let subjects = org.subjectGrants(ofRole: id)
            let entities = pageSlice(subjects, page).map { subject -> JSON in
                var o = JSONObject()
                o.set("id", subject.subjectId)
                o.set("name", org.subjectName(subject.subjectId))
                o.set("type", subject.subjectType)
                o.set("divisions", array: subject.divisionIds.map { Wire.divisionRef(org, $0) }, keepEmpty: true)
                let path = subject.subjectType == "PC_GROUP" ? "/api/v2/groups" : subject.subjectType == "PC_OAUTH_CLIENT" ? "/api/v2/oauth/clients" : "/api/v2/users"
                o.set("selfUri", "\(path)/\(subject.subjectId)")
                return o.json
            }
            return pageEnvelope(entities, page: page, total: subjects.count, request: r)
        }
    }

    // MARK: Subjects

    func subject(_ r: SimRequest, _ id: String) throws -> SimResponse {
        let includeDuplicates = r.query.bool("includeDuplicates") ?? false
        return try org.withLock { org in
            guard org.subjectType(of: id) != nil else { throw APIError.notFound("subject") }
            var rows: [(SimGrant, String)]
            if org.users[id] != nil {
                rows = org.effectiveGrants(ofUser: id).map { ($0.grant, $0.viaSubject) }
            } else {
                rows = (org.grantsBySubject[id] ?? []).map { ($0, id) }
            }
            // Direct rows first, then by role, division and granting subject.
            rows.sort { a, b in
                ((a.1 == id ? 0 : 1), a.0.roleId, a.0.divisionId, a.1) < ((b.1 == id ? 0 : 1), b.0.roleId, b.0.divisionId, b.1)
            }
            if !includeDuplicates {
                var seen = Set<String>()
                rows = rows.filter { seen.insert("\($0.0.roleId)|\($0.0.divisionId)").inserted }
            }
            let grants = rows.map { grant, via -> JSON in
                let role = org.roles[grant.roleId]
                var roleJSON = JSONObject()
                roleJSON.set("id", grant.roleId)
                roleJSON.set("name", role?.name)
                roleJSON.set("description", role?.description)
                roleJSON.set("default", role?.isDefault ?? false)
                roleJSON.set(
                    "policies",
                    array: (role?.policies ?? []).map { policy in
                        var p = JSONObject()
                        p.set("actions", strings: policy.actions, keepEmpty: true)
                        p.set("domain", policy.domain)
                        p.set("entityName", policy.entityName)
                        return p.json
                    })
                roleJSON.set("selfUri", "/api/v2/authorization/roles/\(grant.roleId)")
                var division = JSONObject()
                division.set("id", grant.divisionId)
                if let d = org.divisions[grant.divisionId] {
                    division.set("name", d.name)
                    division.set("description", d.description)
                    division.set("homeDivision", d.isHome)
                    division.set("selfUri", "/api/v2/authorization/divisions/\(d.id)")
                }
                var o = JSONObject()
                o.set("subjectId", via)
                o.set("role", roleJSON.json)
                o.set("division", division.json)
                o.set("grantMadeAt", org.grants[grant])
                return o.json
            }
            var o = JSONObject()
            o.set("id", id)
            o.set("name", org.subjectName(id))
            o.set("grants", array: grants, keepEmpty: true)
            o.set("version", org.subjectVersions[id] ?? 1)
            o.set("selfUri", "/api/v2/authorization/subjects/\(id)")
            return .ok(o.json)
        }
    }

    func changeGrant(_ r: SimRequest, subject: String, division: String, role: String, add: Bool) throws -> SimResponse {
        let date = timestamp()
        let declared = r.query.first("subjectType")
        try org.withLock { org in
            if add {
                try org.addGrants(subjectId: subject, subjectType: declared, [(role, division)], actor: actor(r), date: date)
            } else {
                try org.removeGrants(subjectId: subject, subjectType: declared, [(role, division)], actor: actor(r), date: date)
            }
        }
        return .noContent
    }

    enum BulkMode { case add, remove, replace }

    func bulkGrants(_ r: SimRequest, _ subject: String, mode: BulkMode) throws -> SimResponse {
        let body = try jsonBody(r)
        guard let items = body["grants"]?.arrayValue else { throw APIError.badRequest("grants is required.") }
        var pairs: [(roleId: String, divisionId: String)] = []
        for item in items {
            guard let roleId = item["roleId"]?.stringValue, let divisionId = item["divisionId"]?.stringValue else {
                throw APIError.badRequest("Each grant needs a roleId and a divisionId.")
            }
            pairs.append((roleId, divisionId))
        }
        let declared = r.query.first("subjectType")
        let date = timestamp()
        try org.withLock { org in
            switch mode {
            case .add: try org.addGrants(subjectId: subject, subjectType: declared, pairs, actor: actor(r), date: date)
            case .remove: try org.removeGrants(subjectId: subject, subjectType: declared, pairs, actor: actor(r), date: date)
            case .replace: try org.replaceGrants(subjectId: subject, subjectType: declared, pairs, actor: actor(r), date: date)
            }
        }
        return .noContent
    }

    // MARK: Divisions

    func listDivisions(_ r: SimRequest) throws -> SimResponse {
        let page = try page(r.query)
        let ids = Set(r.query.list("id"))
        let name = r.query.first("name")?.lowercased()
        let withCounts = r.query.bool("objectCount") ?? false
        return org.withLock { org in
            let order = org.divisionOrder.filter { id in
                (ids.isEmpty || ids.contains(id)) && (name == nil || org.divisions[id]!.name.lowercased() == name)
            }
            let entities = pageSlice(order, page).map { id in
                Wire.division(org.divisions[id]!, objectCounts: withCounts ? objectCounts(org, id) : nil)
            }
            return pageEnvelope(entities, page: page, total: order.count, request: r)
        }
    }

    func objectCounts(_ org: Org, _ divisionId: String) -> [String: Int] {
        [
            "USER": org.users.values.filter { $0.divisionId == divisionId }.count,
            "TEAM": org.teams.values.filter { $0.divisionId == divisionId }.count,
        ]
    }

    func homeDivision(_ r: SimRequest) throws -> SimResponse {
        org.withLock { org in .ok(Wire.division(org.divisions[org.homeDivisionId]!)) }
    }

    func getDivision(_ r: SimRequest, _ id: String) throws -> SimResponse {
        try org.withLock { org in
            guard let division = org.divisions[id] else { throw APIError.notFound("division") }
            return .ok(Wire.division(division, objectCounts: (r.query.bool("objectCount") ?? false) ? objectCounts(org, id) : nil))
        }
    }

    /// Grants made in one division (≤ 500 a page), in a bare envelope.
    func divisionGrants(_ r: SimRequest, _ id: String) throws -> SimResponse {
        let page = try page(r.query, cap: 500)
        return try org.withLock { org in
            guard id == "*" || org.divisions[id] != nil else { throw APIError.notFound("division") }
            let grants = org.grants.keys.filter { $0.divisionId == id }
                .sorted { ($0.subjectId, $0.roleId) < ($1.subjectId, $1.roleId) }
            let entities = pageSlice(grants, page).map { grant -> JSON in
                var o = JSONObject()
                o.set("subjectId", grant.subjectId)
                o.set("division", Wire.divisionRef(org, grant.divisionId))
                o.set("role", Wire.ref(grant.roleId, name: org.roles[grant.roleId]?.name, path: "/api/v2/authorization/roles"))
                o.set("grantMadeAt", org.grants[grant])
                return o.json
            }
            return pageEnvelope(entities, page: page, total: grants.count, request: r, bare: true)
        }
    }

    /// Moves objects into a division; the simulator moves users (`objectType` USER).
    func moveObjects(_ r: SimRequest, division: String, type: String) throws -> SimResponse {
        guard type.uppercased() == "USER" else {
            throw APIError.badRequest("The simulator moves USER objects only.", code: "invalid.value")
        }
        let body = try jsonBody(r)
        guard let ids = body.arrayValue?.compactMap(\.stringValue), !ids.isEmpty else {
            throw APIError.badRequest("The body must be a list of object ids.")
        }
        let date = timestamp()
        try org.withLock { org in try org.moveUsers(ids, toDivision: division, actor: actor(r), date: date) }
        return .noContent
    }
}
