import AuditCore
import Testing

@Suite("Effective access")
struct AccessResolverTests {
    static let roles = [
        Role(id: "r-agent", name: "Agent", policies: [PermissionPolicy(domain: "routing", entityName: "queue", actions: ["join", "view"])]),
        Role(
            id: "r-admin", name: "Admin", isBuiltIn: true,
            policies: [PermissionPolicy(domain: "authorization", entityName: "grant", actions: ["add"])], legacyPermissions: ["admin"]),
    ]

    @Test("direct grants and group grants both reach a user, each with its provenance")
    func inheritance() {
        let grants = [
            Grant(subjectId: "u1", subjectKind: .user, roleId: "r-agent", divisionId: "d1"),
            Grant(subjectId: "g1", subjectKind: .group, roleId: "r-admin", divisionId: "*"),
            Grant(subjectId: "g1", subjectKind: .group, roleId: "r-agent", divisionId: "d1"),
            Grant(subjectId: "c1", subjectKind: .oauthClient, roleId: "r-admin", divisionId: "d2"),
            Grant(subjectId: "t1", subjectKind: .trusteeUser, roleId: "r-admin", divisionId: "*"),
        ]
        let groups = [
            Group(id: "g1", name: "Leads", rolesEnabled: true, memberIds: ["u1", "u2"]),
            Group(id: "g2", name: "Social", rolesEnabled: false, memberIds: ["u3"]),
        ]
        let resolved = AccessResolver.resolve(grants: grants, groups: groups)
        #expect(
            resolved.users["u1"] == [
                Access(roleId: "r-admin", divisionId: "*", via: .group(id: "g1")),
                Access(roleId: "r-agent", divisionId: "d1", via: .direct),
                Access(roleId: "r-agent", divisionId: "d1", via: .group(id: "g1")),
            ])
        #expect(resolved.users["u2"]?.count == 2)
        #expect(resolved.users["u3"] == nil, "a group holding nothing passes nothing on")
        #expect(resolved.users["t1"] == nil, "trustees are not users of this org")
        #expect(resolved.clients["c1"] == [Access(roleId: "r-admin", divisionId: "d2", via: .direct)])
    }

    @Test("permissions expand per division; a permission held twice lists both paths")
    func permissions() {
        let access = [
            Access(roleId: "r-agent", divisionId: "d1", via: .direct),
            Access(roleId: "r-agent", divisionId: "d1", via: .group(id: "g1")),
            Access(roleId: "r-admin", divisionId: "*", via: .group(id: "g1")),
            Access(roleId: "missing-role", divisionId: "d1", via: .direct),
        ]
        let roles = Dictionary(uniqueKeysWithValues: Self.roles.map { ($0.id, $0) })
        let effective = EffectivePermissions(access: access, roles: roles)
        #expect(effective.count == 4)
        #expect(effective.distinctPermissions == ["admin", "authorization:grant:add", "routing:queue:join", "routing:queue:view"])
        let join = effective.entries.first { $0.permission == "routing:queue:join" }
        #expect(join?.sources.count == 2)
        #expect(effective.inheritedOnly.map(\.permission) == ["admin", "authorization:grant:add"])
    }

    @Test("a role's permissions come from its policies, plus legacy flat ones")
    func rolePermissions() {
        let role = Role(
            id: "r", name: "R",
            policies: [
                PermissionPolicy(domain: "oauth", entityName: "client", actions: ["view", "add", "view"]),
                PermissionPolicy(domain: "routing", entityName: "queue", actions: ["*"]),
            ],
            legacyPermissions: ["admin", "admin"])
        #expect(role.permissions == ["admin", "oauth:client:add", "oauth:client:view", "routing:queue:*"])
        #expect(role.policies.first?.actions == ["add", "view"])
    }
}
