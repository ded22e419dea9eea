import AuditCore
import Synchronization

extension Collector {
    /// Builds the snapshot from what was gathered, letting go of the users' wire records once they
    /// are mapped (a 100,000-user organisation's are the biggest thing gathered, and resolving
    /// access is the collection's high-water mark).
    func buildSnapshot(_ data: inout Gathered) -> Snapshot {
        let users = data.users.values.map(Collector.user)
        data.users = [:]
        var teamMembers: [String: [String]] = [:]
        for user in users {
            if let team = user.teamId { teamMembers[team, default: []].append(user.id) }
        }
        let teams = data.teams.values.map { team in
            Team(id: team.id, name: team.name ?? "", divisionId: team.division?.id, memberIds: teamMembers[team.id] ?? [])
        }
        let groups = data.groups.values.map { Collector.group($0, members: data.groupMembers[$0.id] ?? []) }
        // Grants of roles that are gone are dropped with the role.
        let grants = allGrants(data).filter { data.roles[$0.roleId] != nil }
        let clients = data.clients.values.map { client in
            OAuthClient(
                id: client.id, name: client.name ?? "", grantType: Collector.nonEmpty(client.authorizedGrantType),
                state: Collector.nonEmpty(client.state))
        }
        return Snapshot.resolving(
            organization: data.organization, divisions: Array(data.divisions.values),
            roles: data.roles.values.map(Collector.role), users: consume users, groups: groups, teams: teams,
            oauthClients: clients, grants: grants, problems: problems.withLock { $0 })
    }

    /// Cross-checks `sample` users against `authorization/subjects/{id}?includeDuplicates=true`,
    /// which lists a user's direct and inherited grants with the granting subject. Returns how many
    /// were checked and a problem for each mismatch.
    func verify(_ snapshot: Snapshot, sample: Int) async throws -> (Int, [CollectionProblem]) {
        var rng = SplitMix64(seed: options.verifySeed)
        let candidates = snapshot.users.map(\.id).shuffled(using: &rng).prefix(sample)
        let byId = Dictionary(snapshot.users.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        return try await withThrowingTaskGroup(of: CollectionProblem?.self) { tasks in
            for userId in candidates {
                tasks.addTask {
                    let path = "/api/v2/authorization/subjects/\(GenesysAPIClient.segment(userId))?includeDuplicates=true"
                    let subject: AuthzSubjectWire?? = try await self.absentOn404 {
                        try await self.guarded("GET /api/v2/authorization/subjects/{id}", nil) { () async throws -> AuthzSubjectWire? in
                            try await self.client.get(path)
                        }
                    }
                    guard let subject = subject ?? nil else { return nil }
                    let api = Set((subject.grants ?? []).compactMap { grant -> String? in
                        guard let role = grant.role?.id, let division = grant.division?.id else { return nil }
                        return "\(role)|\(division)|\(grant.subjectId ?? userId)"
                    })
                    let ours = Set((byId[userId]?.access ?? []).map { access -> String in
                        let via: String
                        switch access.via {
                        case .direct: via = userId
                        case .group(let id): via = id
                        }
                        return "\(access.roleId)|\(access.divisionId)|\(via)"
                    })
                    guard api != ours else { return nil }
                    let missing = api.subtracting(ours).sorted()
                    let extra = ours.subtracting(api).sorted()
                    return CollectionProblem(
                        code: "verify.mismatch", endpoint: "GET /api/v2/authorization/subjects/{id}",
                        message: "user \(userId): \(missing.count) grant(s) the API lists but the snapshot lacks"
                            + (missing.first.map { " (e.g. role|division|via \($0))" } ?? "")
                            + ", \(extra.count) the snapshot has but the API does not"
                            + (extra.first.map { " (e.g. \($0))" } ?? ""))
                }
            }
            var problems: [CollectionProblem] = []
            var checked = 0
            for try await problem in tasks {
                checked += 1
                if let problem { problems.append(problem) }
            }
            return (checked, problems)
        }
    }
}
