import AuditCore
import Synchronization

/// Incremental collection: the last snapshot, with what the audit events named read again.
///
/// Grants are read per subject (`authorization/subjects/{id}`: one request) or per role (its
/// `subjectgrants`, one request per 100 holders), whichever costs fewer requests; memberships are
/// patched from the named users' own group lists, or read whole when the events did not name them.
/// References the changes introduce (a new user holding a grant, a group newly holding a role) are
/// closed the way a full walk closes them. The result is the canonical snapshot a full walk would
/// produce when the events name every change; `DriftMonitor` checks that against full walks.
extension Collector {
    /// Reads what `changes` names and applies it to `base`.
    public func refresh(_ base: Snapshot, changes: ChangedEntities) async throws -> (Snapshot, CollectionReport) {
        let deadline = options.deadline
        let clock = client.clock
        return try await withThrowingTaskGroup(of: (Snapshot, CollectionReport)?.self) { group in
            group.addTask { try await self.refreshWithinDeadline(base, changes: changes) }
            group.addTask {
                try await clock.sleep(for: deadline)
                return nil
            }
            defer { group.cancelAll() }
            guard let first = try await group.next(), let result = first else {
                throw GenesysClientError(
                    .timeout, "the incremental collection did not finish within \(DurationWords.seconds(deadline)) (--timeout)")
            }
            return result
        }
    }

    /// The snapshot as mutable maps.
    struct Patch {
        var organization: Organization?
        var divisions: [String: Division]
        var roles: [String: Role]
        var users: [String: User]
        var groups: [String: Group]
        var teams: [String: Team]
        var clients: [String: OAuthClient]
        var grants: Set<Grant>
        /// Groups whose member lists are known (read by the walk that made the base, or since).
        var membersKnown: Set<String>

        init(_ base: Snapshot) {
            organization = base.organization
            divisions = Dictionary(base.divisions.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
            roles = Dictionary(base.roles.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
            users = Dictionary(base.users.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
            groups = Dictionary(base.groups.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
            teams = Dictionary(base.teams.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
            clients = Dictionary(base.oauthClients.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
            grants = Set(base.grants)
            let holding = Set(base.grants.filter { $0.subjectKind == .group }.map(\.subjectId))
            membersKnown = Set(base.groups.filter { $0.rolesEnabled || holding.contains($0.id) }.map(\.id))
        }

        func needsMembers(_ groupId: String) -> Bool {
            groups[groupId]?.rolesEnabled == true || grants.contains { $0.subjectKind == .group && $0.subjectId == groupId }
        }

        mutating func replaceGrants(where drop: (Grant) -> Bool, with fresh: [Grant]) {
            grants = grants.filter { !drop($0) }
            grants.formUnion(fresh)
        }

        func kind(of subjectId: String, declared: String?) -> SubjectKind? {
            if let declared { return SubjectKind(apiValue: declared) }
            if let grant = grants.first(where: { $0.subjectId == subjectId }) { return grant.subjectKind }
            if users[subjectId] != nil { return .user }
            if groups[subjectId] != nil { return .group }
            if clients[subjectId] != nil { return .oauthClient }
            return nil
        }
    }

    func refreshWithinDeadline(_ base: Snapshot, changes: ChangedEntities) async throws -> (Snapshot, CollectionReport) {
        let start = client.clock.now()
        enter("login")
        try await client.authenticate()
        enter("refresh")
        var p = Patch(base)
        let size = options.pageSize

        let requestsBefore = client.statistics.requests
        if changes.divisions { try await rereadDivisions(&p) }
        if changes.teams {
            let teams = try await guarded("GET /api/v2/teams", nil) { () async throws -> [TeamWire]? in
                try await self.stableWalk("teams") {
                    try await self.client.walkCursor("/api/v2/teams", pageSize: size, id: { (t: TeamWire) in t.id }, onPage: self.pageDone)
                }
            }
            if let teams {
                p.teams = Dictionary(teams.map { ($0.id, Team(id: $0.id, name: $0.name ?? "", divisionId: $0.division?.id)) }, uniquingKeysWith: { a, _ in a })
            }
        }

        // Role definitions: edited, created, deleted, and any role a grant event names that the
        // base does not know (a role recreated under a new id).
        var roleIds = changes.roles
        for id in Set(changes.roleSubjects.keys).union(changes.rolesWithAllHolders) where p.roles[id] == nil { roleIds.insert(id) }
        var allHolders = changes.rolesWithAllHolders
        if !roleIds.isEmpty {
            let before = problemCount()
            let fetched = try await fetchInChunks(Array(roleIds)) { ids in
                try await self.guarded("GET /api/v2/authorization/roles", []) { try await self.walkRoles(ids: ids) }
            }
            let found = Dictionary(fetched.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
            // A refused read says nothing about what exists: the snapshot is partial instead.
            for id in roleIds where found[id] != nil || problemCount() == before {
                if let wire = found[id] {
                    if p.roles[id] == nil { allHolders.insert(id) }
                    p.roles[id] = Collector.role(wire)
                } else {
                    p.roles[id] = nil
                    p.grants = p.grants.filter { $0.roleId != id }
                    allHolders.remove(id)
                }
            }
        }

        // OAuth clients: their grants are their roleDivisions.
        var clientIds = changes.oauthClients
        var subjects: [String: SubjectKind] = [:]
        // Deleted users' grants go with them (the API drops them without an event each): the
        // users read below confirms they are gone, and reads the grants of any still there.
        let plan = Self.planGrantReads(changes, p, pageSize: size, alreadyRead: changes.removedUsers.union(clientIds), allHolders: allHolders)
        allHolders.formUnion(plan.roles)
        for (subject, kind) in plan.subjects {
            if kind == .oauthClient { clientIds.insert(subject) } else { subjects[subject] = kind }
        }
        // One request per client, or the client list when that is fewer pages.
        var clientWires: [String: OAuthClientWire?] = [:]  // nil value: gone
        if clientIds.count > 1, clientIds.count > (p.clients.count + size - 1) / size {
            let listed = try await guarded("GET /api/v2/oauth/clients", nil) { () async throws -> [OAuthClientWire]? in
                try await self.stableWalk("OAuth clients") {
                    try await self.client.walkPages("/api/v2/oauth/clients", pageSize: size, id: { (c: OAuthClientWire) in c.id }, onPage: self.pageDone)
                }
            }
            if let listed {
                let byId = Dictionary(listed.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
                for id in clientIds { clientWires[id] = .some(byId[id]) }
            }
        } else {
            for id in clientIds.sorted() {
                let wire: OAuthClientWire?? = try await absentOn404 {
                    try await self.guarded("GET /api/v2/oauth/clients/{id}", nil) { () async throws -> OAuthClientWire? in
                        try await self.client.get("/api/v2/oauth/clients/\(GenesysAPIClient.segment(id))")
                    }
                }
                switch wire {
                case .some(.some(let w)): clientWires[id] = .some(w)
                case .some(.none): break  // forbidden: recorded as a problem, the snapshot is partial
                case .none: clientWires[id] = .some(nil)
                }
            }
        }
        for (id, wire) in clientWires {
            if let w = wire {
                p.clients[id] = OAuthClient(
                    id: w.id, name: w.name ?? "", grantType: Collector.nonEmpty(w.authorizedGrantType), state: Collector.nonEmpty(w.state))
                p.replaceGrants(where: { $0.subjectId == id && $0.subjectKind == .oauthClient }, with: Collector.grants(ofClient: w))
            } else {
                p.clients[id] = nil
                p.grants = p.grants.filter { !($0.subjectId == id && $0.subjectKind == .oauthClient) }
            }
        }

        try await readSubjectGrants(&p, subjects)

        // Grants per role: every holder.
        if !allHolders.isEmpty {
            var data = Gathered()
            try await readGrantsAndMembers(into: &data, roles: allHolders.sorted(), groups: [])
            for roleId in allHolders {
                guard let fresh = data.grantsByRole[roleId] else {
                    // 404: the role went between reading it and its holders.
                    p.roles[roleId] = nil
                    p.grants = p.grants.filter { $0.roleId != roleId }
                    continue
                }
                // Clients' roleDivisions stay as the clients say (a changed client was read above).
                p.replaceGrants(where: { $0.roleId == roleId && $0.subjectKind != .oauthClient }, with: fresh.filter { $0.subjectKind != .oauthClient })
                p.grants.formUnion(fresh.filter { $0.subjectKind == .oauthClient })
            }
        }

        // Groups: definitions, then memberships.
        var groupIds = changes.groups.union(changes.groupMembers.keys).union(changes.groupsWithAllMembers)
        var memberChanges = changes.groupMembers
        // A deleted user leaves every group that listed them: direct memberships, and groups
        // that include their owners (which the user's own group list does not show).
        if !changes.removedUsers.isEmpty {
            for groupId in p.membersKnown {
                guard let members = p.groups[groupId]?.memberIds else { continue }
                let leaving = changes.removedUsers.filter { members.contains($0) }
                guard !leaving.isEmpty else { continue }
                memberChanges[groupId, default: []].formUnion(leaving)
                groupIds.insert(groupId)
            }
        }
        var wholeMembers = changes.groupsWithAllMembers
        var groupWires: [String: GroupWire] = [:]
        var userIds = changes.users.union(changes.removedUsers)
        if !groupIds.isEmpty {
            let before = problemCount()
            let fetched = try await fetchInChunks(Array(groupIds)) { ids in
                try await self.guarded("GET /api/v2/groups", []) { try await self.walkGroups(ids: ids) }
            }
            for wire in fetched { groupWires[wire.id] = wire }
            for id in groupIds where groupWires[id] != nil || problemCount() == before {
                guard let wire = groupWires[id] else {
                    // Gone: its members' group lists change with it.
                    for (userId, user) in p.users where user.groupIds.contains(id) { userIds.insert(userId) }
                    p.groups[id] = nil
                    p.membersKnown.remove(id)
                    p.grants = p.grants.filter { !($0.subjectId == id && $0.subjectKind == .group) }
                    continue
                }
                let old = p.groups[id]
                p.groups[id] = Collector.group(wire, members: old?.memberIds ?? [])
                if old == nil || old?.rolesEnabled != (wire.rolesEnabled ?? false) { wholeMembers.insert(id) }
            }
        }

        // Users: the named ones, read again; those the API no longer returns are gone.
        if !userIds.isEmpty {
            let before = problemCount()
            let fetched = try await fetchUsers(userIds)
            let found = Set(fetched.map(\.id))
            for wire in fetched { p.users[wire.id] = Collector.user(wire) }
            if problemCount() == before {
                // A user an event said was deleted who is still there: their grants, read now.
                let remaining = changes.removedUsers.intersection(found).subtracting(subjects.keys)
                try await readSubjectGrants(&p, Dictionary(remaining.map { ($0, SubjectKind.user) }, uniquingKeysWith: { a, _ in a }))
                for id in userIds.subtracting(found) {
                    p.users[id] = nil
                    p.grants = p.grants.filter { !($0.subjectId == id && $0.subjectKind == .user) }
                    for groupId in p.membersKnown where p.groups[groupId]?.memberIds.contains(id) == true {
                        memberChanges[groupId, default: []].insert(id)
                    }
                }
            }
        }

        // Memberships of groups whose members matter: patched from the named users' group lists
        // where the events named them, read whole otherwise.
        var readWhole: [String] = []
        for (groupId, group) in p.groups where groupIds.contains(groupId) || memberChanges[groupId] != nil {
            guard p.needsMembers(groupId) else {
                p.groups[groupId]?.memberIds = []
                p.membersKnown.remove(groupId)
                continue
            }
            if wholeMembers.contains(groupId) || !p.membersKnown.contains(groupId) {
                readWhole.append(groupId)
                continue
            }
            guard let named = memberChanges[groupId], !named.isEmpty else { continue }
            let wire = groupWires[groupId]
            let owners = (wire?.includeOwners ?? false) ? Set((wire?.owners ?? []).map(\.id)) : []
            var members = Set(group.memberIds).subtracting(named)
            for userId in named where p.users[userId]?.groupIds.contains(groupId) == true || owners.contains(userId) {
                members.insert(userId)
            }
            p.groups[groupId]?.memberIds = members.sorted()
        }
        try await readMembers(&p, readWhole)

        try await closeReferences(&p)
        // The organisation, when the events name it — or when nothing else was read: one request
        // that says the API answers, so a check with nothing to re-read still proves the
        // organisation was reachable now.
        if changes.organization || client.statistics.requests == requestsBefore {
            p.organization = try await guarded("GET /api/v2/organizations/me", p.organization) { () async throws -> Organization? in
                let org: OrganizationWire = try await self.client.get("/api/v2/organizations/me")
                return Organization(id: org.id, name: org.name ?? "")
            }
        }
        return finish(p, start: start)
    }

    /// Each subject's grants, one request each, replacing what the snapshot held for it (a
    /// subject that is gone holds none; a refused read leaves the snapshot partial).
    func readSubjectGrants(_ p: inout Patch, _ subjects: [String: SubjectKind]) async throws {
        guard !subjects.isEmpty else { return }
        try await withThrowingTaskGroup(of: (String, SubjectKind, [Grant]?).self) { tasks in
            for (subjectId, kind) in subjects {
                tasks.addTask {
                    let path = "/api/v2/authorization/subjects/\(GenesysAPIClient.segment(subjectId))?includeDuplicates=true"
                    let subject: AuthzSubjectWire?? = try await self.absentOn404 {
                        try await self.guarded("GET /api/v2/authorization/subjects/{id}", nil) { () async throws -> AuthzSubjectWire? in
                            try await self.client.get(path)
                        }
                    }
                    switch subject {
                    case .some(.some(let s)):
                        let direct = (s.grants ?? []).compactMap { grant -> Grant? in
                            guard (grant.subjectId ?? subjectId) == subjectId, let role = grant.role?.id, let division = grant.division?.id else { return nil }
                            return Grant(subjectId: subjectId, subjectKind: kind, roleId: role, divisionId: division)
                        }
                        return (subjectId, kind, direct)
                    case .some(.none): return (subjectId, kind, nil)  // forbidden: partial
                    case .none: return (subjectId, kind, [])  // gone: no grants
                    }
                }
            }
            for try await (subjectId, kind, grants) in tasks {
                guard let grants else { continue }
                p.replaceGrants(where: { $0.subjectId == subjectId && $0.subjectKind == kind }, with: grants)
            }
        }
    }

    func problemCount() -> Int { problems.withLock { $0.count } }

    /// Which grants to read for the (role, subject) pairs the grant events name: a role's holder
    /// list (one request per page of holders) covers every pair of that role, a subject's grants
    /// (one request) every pair of that subject. Chosen greedily by pairs covered per request;
    /// subjects read anyway (changed clients) and deleted users (their grants go with them)
    /// cover theirs for free. A subject of a
    /// kind that cannot be read alone (a trustee) makes its role's holder list necessary.
    static func planGrantReads(
        _ changes: ChangedEntities, _ p: Patch, pageSize: Int, alreadyRead: Set<String>, allHolders: Set<String>
    ) -> (roles: Set<String>, subjects: [String: SubjectKind]) {
        var roles = Set<String>()
        var kinds: [String: SubjectKind] = [:]
        var uncovered = Set<[String]>()  // [role, subject]
        for (roleId, named) in changes.roleSubjects where p.roles[roleId] != nil && !allHolders.contains(roleId) {
            for subject in named where !alreadyRead.contains(subject) {
                switch p.kind(of: subject, declared: changes.subjectTypes[subject]) {
                case .user?: kinds[subject] = .user
                case .group?: kinds[subject] = .group
                case .oauthClient?: kinds[subject] = .oauthClient
                default: roles.insert(roleId)
                }
                uncovered.insert([roleId, subject])
            }
        }
        uncovered = uncovered.filter { !roles.contains($0[0]) }
        guard !uncovered.isEmpty else { return (roles, [:]) }
        var holders: [String: Int] = [:]
        let named = Set(uncovered.map { $0[0] })
        var seen = Set<[String]>()
        for grant in p.grants where named.contains(grant.roleId) && seen.insert([grant.roleId, grant.subjectId]).inserted {
            holders[grant.roleId, default: 0] += 1
        }
        var subjects: [String: SubjectKind] = [:]
        for _ in 0..<10_000 where !uncovered.isEmpty {
            var byRole: [String: Int] = [:]
            var bySubject: [String: Int] = [:]
            for pair in uncovered {
                byRole[pair[0], default: 0] += 1
                bySubject[pair[1], default: 0] += 1
            }
            let bestRole = byRole.map { ($0.key, Double($0.value) / Double(max(1, ((holders[$0.key] ?? 0) + pageSize - 1) / pageSize))) }
                .max { ($0.1, $1.0) < ($1.1, $0.0) }
            let bestSubject = bySubject.map { ($0.key, Double($0.value)) }.max { ($0.1, $1.0) < ($1.1, $0.0) }
            if let role = bestRole, role.1 >= (bestSubject?.1 ?? 0) {
                roles.insert(role.0)
                uncovered = uncovered.filter { $0[0] != role.0 }
            } else if let subject = bestSubject {
                subjects[subject.0] = kinds[subject.0]
                uncovered = uncovered.filter { $0[1] != subject.0 }
            }
        }
        return (roles, subjects)
    }

    func rereadDivisions(_ p: inout Patch) async throws {
        let divisions = try await guarded("GET /api/v2/authorization/divisions", nil) { () async throws -> [DivisionWire]? in
            try await self.stableWalk("divisions") {
                try await self.client.walkPages(
                    "/api/v2/authorization/divisions", pageSize: self.options.pageSize, id: { (d: DivisionWire) in d.id }, onPage: self.pageDone)
            }
        }
        if let divisions {
            p.divisions = Dictionary(divisions.map { ($0.id, Collector.division($0)) }, uniquingKeysWith: { a, _ in a })
        }
    }

    func readMembers(_ p: inout Patch, _ groupIds: [String]) async throws {
        guard !groupIds.isEmpty else { return }
        var data = Gathered()
        for id in groupIds { data.groups[id] = GroupWire(id: id) }
        try await readGrantsAndMembers(into: &data, roles: [], groups: groupIds.sorted())
        for id in groupIds {
            if let members = data.groupMembers[id] {
                p.groups[id]?.memberIds = members.sortedUniqueIds()
                p.membersKnown.insert(id)
            } else if data.groups[id] == nil {
                // 404: the group went.
                p.groups[id] = nil
                p.membersKnown.remove(id)
                p.grants = p.grants.filter { !($0.subjectId == id && $0.subjectKind == .group) }
            }
        }
    }

    /// What the changes brought in that the snapshot does not hold yet, read the way a full walk
    /// closes its references: users, groups, clients and roles that grants or memberships name,
    /// members of groups that now pass roles on, divisions referenced.
    func closeReferences(_ p: inout Patch) async throws {
        enter("references")
        var tried = Set<String>()
        for _ in 0..<4 {
            var progressed = false
            let missingRoles = Set(p.grants.map(\.roleId)).filter { p.roles[$0] == nil && !tried.contains($0) }
            if !missingRoles.isEmpty {
                tried.formUnion(missingRoles)
                let fetched = try await fetchInChunks(Array(missingRoles)) { ids in
                    try await self.guarded("GET /api/v2/authorization/roles", []) { try await self.walkRoles(ids: ids) }
                }
                for wire in fetched { p.roles[wire.id] = Collector.role(wire) }
                progressed = progressed || !fetched.isEmpty
            }
            let missingGroups = Set(p.grants.filter { $0.subjectKind == .group }.map(\.subjectId)).filter { p.groups[$0] == nil && !tried.contains($0) }
            if !missingGroups.isEmpty {
                tried.formUnion(missingGroups)
                let fetched = try await fetchInChunks(Array(missingGroups)) { ids in
                    try await self.guarded("GET /api/v2/groups", []) { try await self.walkGroups(ids: ids) }
                }
                for wire in fetched { p.groups[wire.id] = Collector.group(wire, members: []) }
                progressed = progressed || !fetched.isEmpty
            }
            let needMembers = p.groups.keys.filter { !p.membersKnown.contains($0) && p.needsMembers($0) && !tried.contains("members:" + $0) }
            if !needMembers.isEmpty {
                tried.formUnion(needMembers.map { "members:" + $0 })
                try await readMembers(&p, needMembers)
                progressed = true
            }
            var referencedUsers = Set(p.grants.filter { $0.subjectKind == .user }.map(\.subjectId))
            for groupId in p.membersKnown { referencedUsers.formUnion(p.groups[groupId]?.memberIds ?? []) }
            let missingUsers = referencedUsers.filter { p.users[$0] == nil && !tried.contains($0) }
            if !missingUsers.isEmpty {
                tried.formUnion(missingUsers)
                let fetched = try await fetchUsers(missingUsers)
                for wire in fetched { p.users[wire.id] = Collector.user(wire) }
                progressed = progressed || !fetched.isEmpty
            }
            let missingClients = Set(p.grants.filter { $0.subjectKind == .oauthClient }.map(\.subjectId)).filter { p.clients[$0] == nil && !tried.contains($0) }
            for id in missingClients.sorted() {
                tried.insert(id)
                let wire: OAuthClientWire?? = try await absentOn404 {
                    try await self.guarded("GET /api/v2/oauth/clients/{id}", nil) { () async throws -> OAuthClientWire? in
                        try await self.client.get("/api/v2/oauth/clients/\(GenesysAPIClient.segment(id))")
                    }
                }
                if let w = wire ?? nil {
                    p.clients[id] = OAuthClient(
                        id: w.id, name: w.name ?? "", grantType: Collector.nonEmpty(w.authorizedGrantType), state: Collector.nonEmpty(w.state))
                    progressed = true
                }
            }
            var referencedDivisions = Set(p.grants.map(\.divisionId))
            referencedDivisions.formUnion(p.users.values.compactMap(\.divisionId))
            referencedDivisions.formUnion(p.teams.values.compactMap(\.divisionId))
            if referencedDivisions.contains(where: { $0 != allDivisionsID && p.divisions[$0] == nil }), !tried.contains("divisions") {
                tried.insert("divisions")
                try await rereadDivisions(&p)
                progressed = true
            }
            if !progressed { break }
        }
    }

    func finish(_ p: Patch, start: Duration) -> (Snapshot, CollectionReport) {
        var teamMembers: [String: [String]] = [:]
        for user in p.users.values {
            if let team = user.teamId { teamMembers[team, default: []].append(user.id) }
        }
        let teams = p.teams.values.map { team in
            Team(id: team.id, name: team.name, divisionId: team.divisionId, memberIds: teamMembers[team.id] ?? [])
        }
        let groups = p.groups.values.map { group -> Group in
            var group = group
            if !p.membersKnown.contains(group.id) { group.memberIds = [] }
            return group
        }
        let snapshot = Snapshot.resolving(
            organization: p.organization, divisions: Array(p.divisions.values), roles: Array(p.roles.values), users: Array(p.users.values),
            groups: groups, teams: teams, oauthClients: Array(p.clients.values), grants: p.grants.filter { p.roles[$0.roleId] != nil },
            problems: problems.withLock { $0 })
        var report = CollectionReport()
        report.elapsed = client.clock.now() - start
        report.statistics = client.statistics
        report.pages = pages.load(ordering: .relaxed)
        report.rewalks = rewalks.withLock { $0 }
        enter("done")
        return (snapshot, report)
    }
}

extension Array where Element == String {
    func sortedUniqueIds() -> [String] { Array(Set(self)).sorted() }
}
