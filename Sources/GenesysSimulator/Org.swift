/// The whole simulated organisation with the indices the endpoints need. Mutated only under the
/// simulator's lock; every list keeps the order the API pages it in.
struct Org: Sendable {
    var id: String
    var name: String
    var homeDivisionId = ""

    var divisions: [String: SimDivision] = [:]
    var roles: [String: SimRole] = [:]
    var users: [String: SimUser] = [:]
    var groups: [String: SimGroup] = [:]
    var teams: [String: SimTeam] = [:]
    var clients: [String: SimClient] = [:]

    /// Paging orders: by case-folded name, then id.
    var divisionOrder: [String] = []
    var roleOrder: [String] = []
    var userOrder: [String] = []
    var groupOrder: [String] = []
    var teamOrder: [String] = []
    var clientOrder: [String] = []

    /// Grants with the time they were made.
    var grants: [SimGrant: String] = [:]
    var grantsByRole: [String: Set<SimGrant>] = [:]
    var grantsBySubject: [String: Set<SimGrant>] = [:]
    /// `version` of authorization subjects (users, groups, clients): bumped on every grant change.
    var subjectVersions: [String: Int] = [:]

    /// Groups each user belongs to directly (what `expand=groups` shows).
    var userGroups: [String: Set<String>] = [:]
    /// Groups that include owners as members, by owner: owners inherit those groups' grants.
    var ownerGroups: [String: Set<String>] = [:]
    /// Members of each team.
    var teamMembers: [String: [String]] = [:]

    var auditLog: [SimAuditEvent] = []
    /// Largest delay before an audit event shows in queries, in milliseconds.
    var auditArrivalDelayMs: Int64 = 0
    /// Bumped on every write; caches key on it.
    var revision = 0
    /// How much of `auditLog` has been offered to notification sockets.
    var pushedCount = 0
    /// Subject lists of `roles/{id}/subjectgrants`, sorted, cached per revision.
    var subjectGrantCache: [String: (revision: Int, subjects: [SubjectGrants])] = [:]

    struct SubjectGrants: Sendable {
        var subjectId: String
        var subjectType: String
        var divisionIds: [String]
    }

    init(id: String, name: String) {
        self.id = id
        self.name = name
    }

    // MARK: Ordering

    static func sortKey(_ name: String, _ id: String) -> (String, String) { (name.lowercased(), id) }

    /// Inserts `id` into `order` at its sorted position by name.
    static func insert(_ id: String, name: String, into order: inout [String], nameOf: (String) -> String) {
        let key = sortKey(name, id)
        var low = 0
        var high = order.count
        while low < high {
            let mid = (low + high) / 2
            if sortKey(nameOf(order[mid]), order[mid]) < key { low = mid + 1 } else { high = mid }
        }
        order.insert(id, at: low)
    }

    static func sorted<T>(_ items: [String: T], name: (T) -> String) -> [String] {
        items.map { (id: $0.key, key: sortKey(name($0.value), $0.key)) }.sorted { $0.key < $1.key }.map(\.id)
    }

    mutating func rebuildOrders() {
        divisionOrder = Org.sorted(divisions, name: \.name)
        roleOrder = Org.sorted(roles, name: \.name)
        userOrder = Org.sorted(users, name: \.name)
        groupOrder = Org.sorted(groups, name: \.name)
        teamOrder = Org.sorted(teams, name: \.name)
        clientOrder = Org.sorted(clients, name: \.name)
    }

    // MARK: Grants

    mutating func addGrant(_ grant: SimGrant, at date: String) -> Bool {
        guard grants[grant] == nil else { return false }
        grants[grant] = date
        grantsByRole[grant.roleId, default: []].insert(grant)
        grantsBySubject[grant.subjectId, default: []].insert(grant)
        subjectVersions[grant.subjectId, default: 1] += 1
        revision += 1
        return true
    }

    mutating func removeGrant(_ grant: SimGrant) -> Bool {
        guard grants.removeValue(forKey: grant) != nil else { return false }
        grantsByRole[grant.roleId]?.remove(grant)
        grantsBySubject[grant.subjectId]?.remove(grant)
        subjectVersions[grant.subjectId, default: 1] += 1
        revision += 1
        return true
    }

    /// Subject type of an id, as the grant APIs name it, or nil when the id is unknown.
    func subjectType(of id: String) -> String? {
        if users[id] != nil { return "PC_USER" }
        if groups[id] != nil { return "PC_GROUP" }
        if clients[id] != nil { return "PC_OAUTH_CLIENT" }
        return nil
    }

    func subjectName(_ id: String) -> String {
        users[id]?.name ?? groups[id]?.name ?? clients[id]?.name ?? ""
    }

    /// Holders of a role, one entry per subject with its divisions, sorted by type, name, id.
    mutating func subjectGrants(ofRole roleId: String) -> [SubjectGrants] {
        if let cached = subjectGrantCache[roleId], cached.revision == revision { return cached.subjects }
        var bySubject: [String: SubjectGrants] = [:]
        for grant in grantsByRole[roleId] ?? [] {
            bySubject[grant.subjectId, default: SubjectGrants(subjectId: grant.subjectId, subjectType: grant.subjectType, divisionIds: [])]
                .divisionIds.append(grant.divisionId)
        }
        let subjects = bySubject.values.map { entry -> (SubjectGrants, (String, String, String)) in
            var entry = entry
            entry.divisionIds.sort()
            return (entry, (entry.subjectType, subjectName(entry.subjectId).lowercased(), entry.subjectId))
        }.sorted { $0.1 < $1.1 }.map(\.0)
        subjectGrantCache[roleId] = (revision, subjects)
        return subjects
    }

    // MARK: Effective access (the simulator's own, independent of the client's)

    /// Every grant a user holds, directly or through a group, with the granting subject.
    func effectiveGrants(ofUser userId: String) -> [(grant: SimGrant, viaSubject: String)] {
        var result: [(SimGrant, String)] = []
        for grant in grantsBySubject[userId] ?? [] { result.append((grant, userId)) }
        for groupId in inheritingGroups(ofUser: userId) {
            for grant in grantsBySubject[groupId] ?? [] { result.append((grant, groupId)) }
        }
        return result
    }

    /// Groups whose grants reach the user: those listing the user as member (or as owner when the
    /// group includes owners). This is wider than `userGroups`, which shows direct membership only.
    func inheritingGroups(ofUser userId: String) -> [String] {
        let ids = (userGroups[userId] ?? []).union(ownerGroups[userId] ?? [])
        return ids.filter { groups[$0]?.rolesEnabled == true }.sorted()
    }

    /// Divisions where `clientId` holds `permission`, `*` meaning all of them.
    func divisions(where clientId: String, has permission: String) -> Set<String> {
        var result = Set<String>()
        for grant in grantsBySubject[clientId] ?? [] {
            if roles[grant.roleId]?.grants(permission) == true { result.insert(grant.divisionId) }
        }
        return result
    }
}
