import Synchronization
import Foundation

/// Users, groups, teams and the organisation.
extension GenesysSimulator {
    func organization(_ r: SimRequest) -> SimResponse {
        org.withLock { org in
            var o = JSONObject()
            o.set("id", org.id)
            o.set("name", org.name)
            o.set("defaultLanguage", "en-us")
            o.set("defaultCountryCode", "US")
            o.set("thirdPartyOrgName", "simulated-\(configuration.seed)")
            o.set("domain", "simulated-\(configuration.seed)")
            o.set("version", 1)
            o.set("state", "active")
            o.set("voicemailEnabled", true)
            o.set("productPlatform", "PureCloud")
            o.set("selfUri", "/api/v2/organizations/\(org.id)")
            return .ok(o.json)
        }
    }

    // MARK: Users

    private static let userStates: Set<String> = ["active", "inactive", "deleted", "any"]

    func listUsers(_ r: SimRequest) throws -> SimResponse {
        let page = try page(r.query)
        let expand = Wire.UserExpand(r.query.list("expand"))
        let state = r.query.first("state") ?? "active"
        guard Self.userStates.contains(state) else {
            throw APIError.badRequest("The value of state must be one of active, inactive, deleted, any.", code: "invalid.value")
        }
        let ids = Set(r.query.list("id"))
        let descending = r.query.first("sortOrder")?.lowercased() == "descending"
        let clientId = r.clientId ?? ""
        return org.withLock { org in
            let visible = org.divisions(where: clientId, has: "directory:user:view")
            var order = org.userOrder
            if !ids.isEmpty || state != "any" || !visible.contains("*") {
                order = order.filter { id in
                    guard let user = org.users[id] else { return false }
                    return (ids.isEmpty || ids.contains(id)) && (state == "any" || user.state == state)
                        && (visible.contains("*") || visible.contains(user.divisionId))
                }
            }
            if descending { order.reverse() }
            let entities = pageSlice(order, page).map { Wire.user(org, org.users[$0]!, expand: expand) }
            return pageEnvelope(entities, page: page, total: order.count, request: r)
        }
    }

    func getUser(_ r: SimRequest, _ id: String) throws -> SimResponse {
        let expand = Wire.UserExpand(r.query.list("expand"))
        let state = r.query.first("state")
        return try org.withLock { org in
            guard let user = org.users[id] else { throw APIError.notFound("user") }
            if user.state == "deleted", state != "deleted", state != "any" { throw APIError.notFound("user") }
            return .ok(Wire.user(org, user, expand: expand))
        }
    }

    func userRoles(_ r: SimRequest, _ id: String) throws -> SimResponse {
        try org.withLock { org in
            guard org.users[id] != nil else { throw APIError.notFound("user") }
            return .ok(Wire.userAuthorization(org, userId: id))
        }
    }

    // MARK: Groups

    func listGroups(_ r: SimRequest) throws -> SimResponse {
        let page = try page(r.query)
        let ids = Set(r.query.list("id"))
        let descending = r.query.first("sortOrder")?.lowercased() == "descending"
        return org.withLock { org in
            var order = ids.isEmpty ? org.groupOrder : org.groupOrder.filter { ids.contains($0) }
            if descending { order.reverse() }
            let entities = pageSlice(order, page).map { Wire.group(org.groups[$0]!) }
            return pageEnvelope(entities, page: page, total: order.count, request: r)
        }
    }

    func getGroup(_ r: SimRequest, _ id: String) throws -> SimResponse {
        try org.withLock { org in
            guard let group = org.groups[id] else { throw APIError.notFound("group") }
            return .ok(Wire.group(group))
        }
    }

    /// Members (owners included when the group includes them) or direct members only.
    func groupMembers(_ r: SimRequest, _ id: String, individualsOnly: Bool) throws -> SimResponse {
        let page = try page(r.query)
        let expand = Wire.UserExpand(r.query.list("expand"))
        let descending = r.query.first("sortOrder")?.lowercased() == "descending"
        return try org.withLock { org in
            guard let group = org.groups[id] else { throw APIError.notFound("group") }
            let ids = individualsOnly ? group.memberIds : group.effectiveMemberIds
            var order = ids.filter { org.users[$0] != nil }.sorted {
                Org.sortKey(org.users[$0]!.name, $0) < Org.sortKey(org.users[$1]!.name, $1)
            }
            if descending { order.reverse() }
            let entities = pageSlice(order, page).map { Wire.user(org, org.users[$0]!, expand: expand) }
            return pageEnvelope(entities, page: page, total: order.count, request: r)
        }
    }

    func addGroupMembers(_ r: SimRequest, _ id: String) throws -> SimResponse {
        let body = try jsonBody(r)
        guard let ids = body["memberIds"]?.arrayValue?.compactMap(\.stringValue), !ids.isEmpty else {
            throw APIError.badRequest("memberIds is required.")
        }
        let version = body["version"]?.intValue
        let date = timestamp()
        try org.withLock { org in
            try org.addGroupMembers(groupId: id, userIds: ids, version: version, actor: actor(r), date: date)
        }
        return SimResponse(status: 202, body: .object([]))
    }

    func removeGroupMembers(_ r: SimRequest, _ id: String) throws -> SimResponse {
        let ids = r.query.list("ids")
        guard !ids.isEmpty else { throw APIError.badRequest("ids is required.") }
        let date = timestamp()
        try org.withLock { org in
            try org.removeGroupMembers(groupId: id, userIds: ids, actor: actor(r), date: date)
        }
        return SimResponse(status: 202, body: .object([]))
    }

    // MARK: Teams (cursor paging)

    func listTeams(_ r: SimRequest) throws -> SimResponse {
        let size = try cursorPageSize(r.query, cap: 100)
        let prefix = r.query.first("name")?.lowercased()
        return try org.withLock { org in
            var order = org.teamOrder
            if let prefix { order = order.filter { org.teams[$0]!.name.lowercased().hasPrefix(prefix) } }
            let keys = order.map { Org.sortKey(org.teams[$0]!.name, $0) }
            return try cursorPage(
                order, keys: keys, size: size, request: r,
                render: { Wire.team(org, org.teams[$0]!) })
        }
    }

    func getTeam(_ r: SimRequest, _ id: String) throws -> SimResponse {
        try org.withLock { org in
            guard let team = org.teams[id] else { throw APIError.notFound("team") }
            return .ok(Wire.team(org, team))
        }
    }

    func teamMembers(_ r: SimRequest, _ id: String) throws -> SimResponse {
        let size = try cursorPageSize(r.query, cap: 100)
        let withNames = r.query.list("expand").contains("entities")
        return try org.withLock { org in
            guard org.teams[id] != nil else { throw APIError.notFound("team") }
            let members = (org.teamMembers[id] ?? []).sorted()
            return try cursorPage(
                members, keys: members.map { ($0, "") }, size: size, request: r,
                render: { member in
                    withNames
                        ? Wire.ref(member, name: org.users[member]?.name, path: "/api/v2/users")
                        : Wire.ref(member, path: "/api/v2/users")
                })
        }
    }

    func cursorPageSize(_ query: QueryParameters, cap: Int) throws -> Int {
        guard let raw = query.first("pageSize") else { return 25 }
        guard let value = Int(raw), value >= 1 else {
            throw APIError.badRequest("The value of pageSize must be a positive integer.", code: "invalid.value")
        }
        return min(value, cap)
    }

    /// A cursor page: entities after the `after` cursor, `nextUri` with a new cursor when more remain.
    /// Cursors name the last key seen, so inserts and deletes elsewhere never skip or repeat rows.
    func cursorPage(
        _ ids: [String], keys: [(String, String)], size: Int, request: SimRequest, render: (String) -> JSON
    ) throws -> SimResponse {
        var start = 0
        if let after = request.query.first("after") {
            guard let key = Self.decodeCursor(after) else {
                throw APIError.badRequest("The cursor is not valid.", code: "invalid.value")
            }
            start = keys.firstIndex { $0 > key } ?? keys.count
        }
        let end = min(ids.count, start + size)
        var o = JSONObject()
        o.set("entities", array: ids[start..<end].map(render), keepEmpty: true)
        let rest = request.query.rawQuery(excluding: ["after", "before", "pageSize"])
        let suffix = rest.isEmpty ? "" : "&" + rest
        if end < ids.count {
            o.set("nextUri", "\(request.path)?pageSize=\(size)&after=\(Self.encodeCursor(keys[end - 1]))\(suffix)")
        }
        o.set("selfUri", "\(request.path)?pageSize=\(size)\(request.query.first("after").map { "&after=\($0)" } ?? "")\(suffix)")
        if start > 0 {
            o.set("previousUri", "\(request.path)?pageSize=\(size)&before=\(Self.encodeCursor(keys[start]))\(suffix)")
        }
        return .ok(o.json)
    }

    static func encodeCursor(_ key: (String, String)) -> String {
        Data("\(key.0)\u{1F}\(key.1)".utf8).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_")
            .replacingOccurrences(of: "=", with: "")
    }

    static func decodeCursor(_ cursor: String) -> (String, String)? {
        var base64 = cursor.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        guard let data = Data(base64Encoded: base64), let text = String(data: data, encoding: .utf8) else { return nil }
        let parts = text.split(separator: "\u{1F}", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2 else { return nil }
        return (String(parts[0]), String(parts[1]))
    }

    // MARK: Helpers

    func jsonBody(_ r: SimRequest) throws -> JSON {
        guard !r.body.isEmpty else { throw APIError.badRequest("A request body is required.") }
        do {
            return try JSON.parse(r.body)
        } catch {
            throw APIError.badRequest("The request body is not valid JSON: \(error)")
        }
    }

    func actor(_ r: SimRequest) -> AuditActor {
        AuditActor(userId: nil, clientId: r.clientId)
    }
}
