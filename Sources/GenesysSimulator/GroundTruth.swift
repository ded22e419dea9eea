import Synchronization
/// The simulator's own account of its organisation, computed from its internal state, with no
/// code shared with the client: tests compare a collected snapshot against it.
public struct GroundTruth: Sendable {
    public struct User: Sendable, Hashable {
        public var id: String
        public var name: String
        public var state: String
        public var divisionId: String
        public var teamId: String?
        /// Direct group memberships (what `expand=groups` lists).
        public var groupIds: [String]
    }

    public struct Role: Sendable, Hashable {
        public var id: String
        public var name: String
        public var permissions: [String]
        public var isDefault: Bool
    }

    public struct Group: Sendable, Hashable {
        public var id: String
        public var name: String
        public var rolesEnabled: Bool
        /// Everyone who inherits the group's grants (owners too when the group includes them).
        public var memberIds: [String]
    }

    public struct Grant: Sendable, Hashable {
        public var subjectId: String
        public var subjectType: String
        public var roleId: String
        public var divisionId: String

        public init(subjectId: String, subjectType: String, roleId: String, divisionId: String) {
            self.subjectId = subjectId
            self.subjectType = subjectType
            self.roleId = roleId
            self.divisionId = divisionId
        }
    }

    /// One effective role assignment: role, division, and the subject whose grant it is
    /// (the user itself, or a group).
    public struct Access: Sendable, Hashable {
        public var roleId: String
        public var divisionId: String
        public var viaSubjectId: String
    }

    public var organizationId: String
    public var organizationName: String
    public var divisions: [String: String]
    public var users: [String: User]
    public var roles: [String: Role]
    public var groups: [String: Group]
    public var teams: [String: [String]]
    public var oauthClients: [String: String]
    public var grants: Set<Grant>
    /// Per user: direct grants and grants inherited through role-enabled groups.
    public var userAccess: [String: Set<Access>]
}

extension GenesysSimulator {
    public func groundTruth() -> GroundTruth {
        org.withLock { org in
            var userAccess: [String: Set<GroundTruth.Access>] = [:]
            for userId in org.users.keys {
                let access = org.effectiveGrants(ofUser: userId).map {
                    GroundTruth.Access(roleId: $0.grant.roleId, divisionId: $0.grant.divisionId, viaSubjectId: $0.viaSubject)
                }
                if !access.isEmpty { userAccess[userId] = Set(access) }
            }
            return GroundTruth(
                organizationId: org.id, organizationName: org.name,
                divisions: org.divisions.mapValues(\.name),
                users: org.users.mapValues {
                    GroundTruth.User(
                        id: $0.id, name: $0.name, state: $0.state, divisionId: $0.divisionId, teamId: $0.teamId,
                        groupIds: (org.userGroups[$0.id] ?? []).sorted())
                },
                roles: org.roles.mapValues {
                    GroundTruth.Role(id: $0.id, name: $0.name, permissions: $0.permissions, isDefault: $0.isDefault)
                },
                groups: org.groups.mapValues {
                    GroundTruth.Group(id: $0.id, name: $0.name, rolesEnabled: $0.rolesEnabled, memberIds: $0.effectiveMemberIds.sorted())
                },
                teams: org.teams.keys.reduce(into: [:]) { $0[$1] = (org.teamMembers[$1] ?? []).sorted() },
                oauthClients: org.clients.mapValues(\.name),
                grants: Set(org.grants.keys.map {
                    GroundTruth.Grant(subjectId: $0.subjectId, subjectType: $0.subjectType, roleId: $0.roleId, divisionId: $0.divisionId)
                }),
                userAccess: userAccess)
        }
    }
}
