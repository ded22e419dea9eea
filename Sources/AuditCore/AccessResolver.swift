/// Effective access: a principal's direct grants together with the grants of every group it
/// belongs to, per division, each with its provenance. Pure and linear in grants × members.
public enum AccessResolver {
    public struct Resolved: Sendable, Equatable {
        public var users: [String: [Access]]
        public var clients: [String: [Access]]
    }

    /// - Parameters:
    ///   - grants: direct grants; OAuth clients' `roleDivisions` belong here as `.oauthClient` grants.
    ///   - groups: groups with their members; any group holding a grant passes it on to its members
    ///     (the API only lets role-enabled groups hold grants, and we do not second-guess it).
    public static func resolve(grants: [Grant], groups: [Group], oauthClients: [OAuthClient] = []) -> Resolved {
        var members: [String: [String]] = [:]
        for group in groups { members[group.id] = group.memberIds }

        var users: [String: Set<Access>] = [:]
        var clients: [String: Set<Access>] = [:]
        for grant in grants {
            switch grant.subjectKind {
            case .user:
                users[grant.subjectId, default: []]
                    .insert(Access(roleId: grant.roleId, divisionId: grant.divisionId, via: .direct))
            case .group:
                let via = Provenance.group(id: grant.subjectId)
                for member in members[grant.subjectId] ?? [] {
                    users[member, default: []]
                        .insert(Access(roleId: grant.roleId, divisionId: grant.divisionId, via: via))
                }
            case .oauthClient:
                clients[grant.subjectId, default: []]
                    .insert(Access(roleId: grant.roleId, divisionId: grant.divisionId, via: .direct))
            case .trusteeUser, .trusteeGroup, .other:
                continue
            }
        }
        return Resolved(
            users: users.mapValues { $0.sorted() },
            clients: clients.mapValues { $0.sorted() })
    }
}

/// Permission-level view of a principal's access.
public struct EffectivePermissions: Sendable, Equatable {
    /// One permission held in one division, with every path that grants it.
    public struct Entry: Sendable, Hashable, Comparable {
        public var divisionId: String
        public var permission: String
        public var sources: [Access]

        public static func < (a: Entry, b: Entry) -> Bool {
            (a.divisionId, a.permission) < (b.divisionId, b.permission)
        }
    }

    /// Sorted by division, then permission.
    public var entries: [Entry]

    public init(access: [Access], roles: [String: Role]) {
        var byKey: [String: [String: [Access]]] = [:]
        for item in access {
            guard let role = roles[item.roleId] else { continue }
            for permission in role.permissions {
                byKey[item.divisionId, default: [:]][permission, default: []].append(item)
            }
        }
        var entries: [Entry] = []
        for (division, permissions) in byKey {
            for (permission, sources) in permissions {
                entries.append(Entry(divisionId: division, permission: permission, sources: sources.sorted()))
            }
        }
        self.entries = entries.sorted()
    }

    /// Distinct (division, permission) pairs.
    public var count: Int { entries.count }

    /// Distinct permission strings, whatever the division.
    public var distinctPermissions: Set<String> { Set(entries.map(\.permission)) }

    /// Entries reached only through a group, not directly.
    public var inheritedOnly: [Entry] {
        entries.filter { entry in !entry.sources.contains { $0.via == .direct } }
    }
}
