import AuditCore
import Logging

/// Closing the gaps offset paging leaves: references to entities the lists did not return are
/// fetched by id, and the small lists (roles, groups, OAuth clients, divisions) are walked once
/// more at the end so that a role recreated or a group changed mid-collection is caught.
extension Collector {
    /// Fetches entities that grants, memberships or clients reference but the lists lacked.
    /// Returns how many were found; what cannot be found is recorded as a problem.
    func closeReferences(in data: inout Gathered) async throws -> Int {
        var found = 0
        var unresolved: [String: Set<String>] = [:]  // kind → ids
        var refreshed = Set<String>()
        for _ in 0..<4 {
            enter("references")
            var progressed = false
            let grants = allGrants(data)

            // Groups holding grants that the group list did not return.
            let missingGroups = Set(grants.filter { $0.subjectKind == .group }.map(\.subjectId))
                .filter { data.groups[$0] == nil && unresolved["group", default: []].contains($0) == false }
            if !missingGroups.isEmpty {
                let fetched = try await fetchInChunks(Array(missingGroups)) { ids in
                    try await self.guarded("GET /api/v2/groups", []) { try await self.walkGroups(ids: ids) }
                }
                for group in fetched { data.groups[group.id] = group }
                found += fetched.count
                progressed = progressed || !fetched.isEmpty
                unresolved["group", default: []].formUnion(missingGroups.subtracting(fetched.map(\.id)))
            }

            // Roles that OAuth clients hold but the role list did not return.
            let missingRoles = Set(grants.map(\.roleId)).filter {
                data.roles[$0] == nil && unresolved["role", default: []].contains($0) == false
            }
            var newRoles: [String] = []
            if !missingRoles.isEmpty {
                let fetched = try await fetchInChunks(Array(missingRoles)) { ids in
                    try await self.guarded("GET /api/v2/authorization/roles", []) { try await self.walkRoles(ids: ids) }
                }
                for role in fetched { data.roles[role.id] = role }
                newRoles = fetched.map(\.id)
                found += fetched.count
                progressed = progressed || !fetched.isEmpty
                unresolved["role", default: []].formUnion(missingRoles.subtracting(newRoles))
            }
            let needMembers = groupsNeedingMembers(data)
            if !newRoles.isEmpty || !needMembers.isEmpty {
                try await readGrantsAndMembers(into: &data, roles: newRoles, groups: needMembers)
                progressed = true
            }

            // Users that hold grants or group memberships but were not listed.
            var referencedUsers = Set(allGrants(data).filter { $0.subjectKind == .user }.map(\.subjectId))
            for members in data.groupMembers.values { referencedUsers.formUnion(members) }
            let missingUsers = referencedUsers.filter {
                data.users[$0] == nil && unresolved["user", default: []].contains($0) == false
            }
            if !missingUsers.isEmpty {
                let fetched = try await fetchUsers(missingUsers)
                for user in fetched { data.users[user.id] = user }
                found += fetched.count
                progressed = progressed || !fetched.isEmpty
                unresolved["user", default: []].formUnion(missingUsers.subtracting(fetched.map(\.id)))
            }

            // Users whose group memberships disagree with the members of a role-holding group
            // changed after the users walk read them: read them again (once each).
            let stale = usersWithStaleMemberships(data).subtracting(refreshed)
            if !stale.isEmpty {
                refreshed.formUnion(stale)
                let fetched = try await fetchUsers(stale)
                for user in fetched { data.users[user.id] = user }
                found += fetched.count
                progressed = progressed || !fetched.isEmpty
            }

            // OAuth clients holding grants that the client list did not return.
            let missingClients = Set(allGrants(data).filter { $0.subjectKind == .oauthClient }.map(\.subjectId)).filter {
                data.clients[$0] == nil && unresolved["OAuth client", default: []].contains($0) == false
            }
            for id in missingClients.sorted() {
                let client: OAuthClientWire?? = try await absentOn404 {
                    try await self.guarded("GET /api/v2/oauth/clients/{id}", nil) { () async throws -> OAuthClientWire? in
                        try await self.client.get("/api/v2/oauth/clients/\(GenesysAPIClient.segment(id))")
                    }
                }
                if let client = client ?? nil {
                    data.clients[client.id] = client
                    found += 1
                    progressed = true
                } else {
                    unresolved["OAuth client", default: []].insert(id)
                }
            }

            // Divisions referenced by grants, users or teams.
            var referencedDivisions = Set(allGrants(data).map(\.divisionId))
            referencedDivisions.formUnion(data.users.values.compactMap { $0.division?.id })
            referencedDivisions.formUnion(data.teams.values.compactMap { $0.division?.id })
            let missingDivisions = referencedDivisions.filter {
                $0 != allDivisionsID && data.divisions[$0] == nil && unresolved["division", default: []].contains($0) == false
            }
            if !missingDivisions.isEmpty {
                let fetched = try await fetchInChunks(Array(missingDivisions)) { ids in
                    try await self.guarded("GET /api/v2/authorization/divisions", []) {
                        try await self.client.walkPages(
                            "/api/v2/authorization/divisions", query: [("id", ids.joined(separator: ","))],
                            pageSize: 100, id: { (d: DivisionWire) in d.id }, onPage: self.pageDone
                        ).items
                    }
                }
                for division in fetched { data.divisions[division.id] = Collector.division(division) }
                found += fetched.count
                progressed = progressed || !fetched.isEmpty
                unresolved["division", default: []].formUnion(missingDivisions.subtracting(fetched.map(\.id)))
            }

            if !progressed { break }
        }
        for (kind, ids) in unresolved where !ids.isEmpty {
            let examples = ids.sorted().prefix(5).joined(separator: ", ")
            record(
                CollectionProblem(
                    code: "unresolved.reference", endpoint: "references",
                    message: "\(ids.count) \(kind)\(ids.count == 1 ? "" : "s") referenced by grants or memberships could not be read "
                        + "(\(examples)\(ids.count > 5 ? ", …" : "")); check the client's view permissions in every division"))
        }
        return found
    }

    /// Walks roles, groups, OAuth clients and divisions again and adopts what changed since the
    /// first walk. Returns the number of changes adopted.
    func confirmSmallLists(in data: inout Gathered) async throws -> Int {
        var total = 0
        for _ in 0...options.maxRewalks {
            enter("confirm")
            let size = options.pageSize
            async let rolesWalk = guarded("GET /api/v2/authorization/roles", nil) { () async throws -> [RoleWire]? in
                try await self.walkRoles()
            }
            async let groupsWalk = guarded("GET /api/v2/groups", nil) { () async throws -> [GroupWire]? in
                try await self.walkGroups()
            }
            async let clientsWalk = guarded("GET /api/v2/oauth/clients", nil) { () async throws -> [OAuthClientWire]? in
                try await self.stableWalk("OAuth clients") {
                    try await self.client.walkPages("/api/v2/oauth/clients", pageSize: size, id: { (c: OAuthClientWire) in c.id }, onPage: self.pageDone)
                }
            }
            async let divisionsWalk = guarded("GET /api/v2/authorization/divisions", nil) { () async throws -> [DivisionWire]? in
                try await self.stableWalk("divisions") {
                    try await self.client.walkPages("/api/v2/authorization/divisions", pageSize: size, id: { (d: DivisionWire) in d.id }, onPage: self.pageDone)
                }
            }
            let (roles, groups, clients, divisions) = try await (rolesWalk, groupsWalk, clientsWalk, divisionsWalk)

            var changes = 0
            var newRoles: [String] = []
            if let roles {
                let fresh = Dictionary(roles.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
                for id in Set(data.roles.keys).subtracting(fresh.keys) {
                    data.roles[id] = nil
                    data.grantsByRole[id] = nil
                    changes += 1
                }
                for (id, role) in fresh {
                    if let old = data.roles[id] {
                        if Collector.role(old) != Collector.role(role) {
                            data.roles[id] = role
                            changes += 1
                        }
                    } else {
                        data.roles[id] = role
                        newRoles.append(id)
                        changes += 1
                    }
                }
            }
            if let groups {
                let fresh = Dictionary(groups.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
                for id in Set(data.groups.keys).subtracting(fresh.keys) {
                    data.groups[id] = nil
                    data.groupMembers[id] = nil
                    changes += 1
                }
                for (id, group) in fresh {
                    let old = data.groups[id]
                    if old == nil || old?.rolesEnabled != group.rolesEnabled || old?.name != group.name {
                        changes += 1
                        if old?.rolesEnabled != group.rolesEnabled { data.groupMembers[id] = nil }
                    }
                    data.groups[id] = group
                }
            }
            if let clients {
                let fresh = Dictionary(clients.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
                for id in Set(data.clients.keys).subtracting(fresh.keys) {
                    data.clients[id] = nil
                    changes += 1
                }
                for (id, client) in fresh {
                    let old = data.clients[id]
                    if old == nil || Set(Collector.grants(ofClient: old!)) != Set(Collector.grants(ofClient: client))
                        || old?.state != client.state || old?.name != client.name
                    {
                        changes += 1
                    }
                    data.clients[id] = client
                }
            }
            if let divisions {
                let fresh = Dictionary(divisions.map { ($0.id, Collector.division($0)) }, uniquingKeysWith: { a, _ in a })
                if fresh != data.divisions {
                    changes += 1
                    data.divisions = fresh
                }
            }

            total += changes
            let needMembers = groupsNeedingMembers(data)
            if !newRoles.isEmpty || !needMembers.isEmpty {
                try await readGrantsAndMembers(into: &data, roles: newRoles, groups: needMembers)
            }
            if changes == 0 { return total }
            logger.debug("the organisation changed during collection; confirming again", metadata: ["changes": "\(changes)"])
            _ = try await closeReferences(in: &data)
        }
        record(
            CollectionProblem(
                code: "inconsistent.list", endpoint: "confirmation",
                message: "roles, groups or OAuth clients kept changing during \(options.maxRewalks + 1) confirmation walks"))
        return total
    }

    /// Users whose `groups` (direct memberships) contradict the member list of a group whose
    /// members were read: a member that is neither listed in its groups nor an included owner, or
    /// a group listed that no longer lists the user.
    func usersWithStaleMemberships(_ data: Gathered) -> Set<String> {
        guard !data.groupMembers.isEmpty else { return [] }
        // Who lists each read group among their groups.
        var listing: [String: Set<String>] = [:]
        for (userId, user) in data.users {
            for group in user.groups ?? [] where data.groupMembers[group.id] != nil {
                listing[group.id, default: []].insert(userId)
            }
        }
        var stale = Set<String>()
        for (groupId, members) in data.groupMembers {
            guard let group = data.groups[groupId] else { continue }
            let owners = (group.includeOwners ?? false) ? Set((group.owners ?? []).map(\.id)) : []
            let listedBy = listing[groupId] ?? []
            let memberSet = Set(members)
            for member in members where data.users[member] != nil && !listedBy.contains(member) && !owners.contains(member) {
                stale.insert(member)
            }
            stale.formUnion(listedBy.subtracting(memberSet))
        }
        return stale
    }

    func allGrants(_ data: Gathered) -> [Grant] {
        data.grantsByRole.values.flatMap { $0 } + data.clients.values.flatMap(Collector.grants(ofClient:))
    }

    /// Reads users by id (any state), as the users walk would have returned them.
    func fetchUsers(_ ids: Set<String>) async throws -> [UserWire] {
        try await fetchInChunks(Array(ids)) { chunk in
            try await self.guarded("GET /api/v2/users", []) {
                try await self.client.walkPages(
                    "/api/v2/users", query: [("id", chunk.joined(separator: ",")), ("state", "any"), ("expand", "groups,team")],
                    pageSize: 100, id: { (u: UserWire) in u.id }, onPage: self.pageDone
                ).items
            }
        }
    }

    /// Ids fetched by reference in one pass, at most: a reply that references more entities
    /// than the lists hold is not worth thousands of requests.
    static let maxReferenceFetches = 10_000

    /// Runs `fetch` over ids in chunks of 100 (the API's id-list limit), one chunk at a time, for
    /// at most `maxReferenceFetches` ids (the rest are recorded as a problem).
    func fetchInChunks<T>(_ ids: [String], _ fetch: ([String]) async throws -> [T]) async throws -> [T] {
        var result: [T] = []
        var sorted = ids.sorted()
        if sorted.count > Self.maxReferenceFetches {
            record(
                CollectionProblem(
                    code: "too.many.references", endpoint: "references",
                    message: "\(sorted.count) referenced entities were missing from the lists; only \(Self.maxReferenceFetches) were fetched"))
            sorted = Array(sorted.prefix(Self.maxReferenceFetches))
        }
        var index = 0
        while index < sorted.count {
            let chunk = Array(sorted[index..<min(sorted.count, index + 100)])
            result += try await fetch(chunk)
            index += 100
        }
        return result
    }
}
