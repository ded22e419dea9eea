/// Every endpoint the simulator serves, with the permission it requires.
extension GenesysSimulator {
    static let routes: [Route] = [
        // Login and tokens.
        Route("GET", "/api/v2/tokens/me") { sim, r, _ in sim.tokenInfo(r) },
        Route("DELETE", "/api/v2/tokens/me") { sim, r, _ in sim.revokeToken(r) },
        Route("GET", "/api/v2/organizations/me") { sim, r, _ in sim.organization(r) },
        Route("GET", "/api/v2/oauth/clients", permission: "oauth:client:view") { sim, r, _ in try sim.listClients(r) },
        Route("GET", "/api/v2/oauth/clients/{id}", permission: "oauth:client:view") { sim, r, p in try sim.getClient(r, p[0]) },

        // Directory.
        Route("GET", "/api/v2/users", permission: "directory:user:view") { sim, r, _ in try sim.listUsers(r) },
        Route("GET", "/api/v2/users/{id}", permission: "directory:user:view") { sim, r, p in try sim.getUser(r, p[0]) },
        Route("GET", "/api/v2/users/{id}/roles", permission: "authorization:grant:view") { sim, r, p in try sim.userRoles(r, p[0]) },
        Route("GET", "/api/v2/groups") { sim, r, _ in try sim.listGroups(r) },
        Route("GET", "/api/v2/groups/{id}") { sim, r, p in try sim.getGroup(r, p[0]) },
        Route("GET", "/api/v2/groups/{id}/members") { sim, r, p in try sim.groupMembers(r, p[0], individualsOnly: false) },
        Route("GET", "/api/v2/groups/{id}/individuals") { sim, r, p in try sim.groupMembers(r, p[0], individualsOnly: true) },
        Route("POST", "/api/v2/groups/{id}/members", permission: "directory:group:edit") { sim, r, p in try sim.addGroupMembers(r, p[0]) },
        Route("DELETE", "/api/v2/groups/{id}/members", permission: "directory:group:edit") { sim, r, p in try sim.removeGroupMembers(r, p[0]) },
        Route("GET", "/api/v2/teams", permission: "groups:team:view") { sim, r, _ in try sim.listTeams(r) },
        Route("GET", "/api/v2/teams/{id}", permission: "groups:team:view") { sim, r, p in try sim.getTeam(r, p[0]) },
        Route("GET", "/api/v2/teams/{id}/members", permission: "groups:team:view") { sim, r, p in try sim.teamMembers(r, p[0]) },

        // Authorization.
        Route("GET", "/api/v2/authorization/roles", permission: "authorization:role:view") { sim, r, _ in try sim.listRoles(r) },
        Route("POST", "/api/v2/authorization/roles", permission: "authorization:role:add") { sim, r, _ in try sim.createRole(r) },
        Route("GET", "/api/v2/authorization/roles/{id}", permission: "authorization:role:view") { sim, r, p in try sim.getRole(r, p[0]) },
        Route("PUT", "/api/v2/authorization/roles/{id}", permission: "authorization:role:edit") { sim, r, p in try sim.updateRole(r, p[0]) },
        Route("DELETE", "/api/v2/authorization/roles/{id}", permission: "authorization:role:delete") { sim, r, p in try sim.deleteRole(r, p[0]) },
        Route("GET", "/api/v2/authorization/roles/{id}/users", permission: "authorization:role:view") { sim, r, p in try sim.roleUsers(r, p[0]) },
        Route("GET", "/api/v2/authorization/roles/{id}/subjectgrants", permission: "authorization:grant:view") { sim, r, p in try sim.roleSubjectGrants(r, p[0]) },
        Route("GET", "/api/v2/authorization/subjects/{id}", permission: "authorization:grant:view") { sim, r, p in try sim.subject(r, p[0]) },
        Route("POST", "/api/v2/authorization/subjects/{id}/divisions/{div}/roles/{role}", permission: "authorization:grant:add") { sim, r, p in
            try sim.changeGrant(r, subject: p[0], division: p[1], role: p[2], add: true)
        },
        Route("DELETE", "/api/v2/authorization/subjects/{id}/divisions/{div}/roles/{role}", permission: "authorization:grant:delete") { sim, r, p in
            try sim.changeGrant(r, subject: p[0], division: p[1], role: p[2], add: false)
        },
        Route("POST", "/api/v2/authorization/subjects/{id}/bulkadd", permission: "authorization:grant:add") { sim, r, p in try sim.bulkGrants(r, p[0], mode: .add) },
        Route("POST", "/api/v2/authorization/subjects/{id}/bulkremove", permission: "authorization:grant:delete") { sim, r, p in try sim.bulkGrants(r, p[0], mode: .remove) },
        Route("POST", "/api/v2/authorization/subjects/{id}/bulkreplace", permission: "authorization:grant:add") { sim, r, p in try sim.bulkGrants(r, p[0], mode: .replace) },
        Route("GET", "/api/v2/authorization/divisions", permission: "authorization:division:view") { sim, r, _ in try sim.listDivisions(r) },
        Route("GET", "/api/v2/authorization/divisions/home", permission: "authorization:division:view") { sim, r, _ in try sim.homeDivision(r) },
        Route("GET", "/api/v2/authorization/divisions/{id}", permission: "authorization:division:view") { sim, r, p in try sim.getDivision(r, p[0]) },
        Route("GET", "/api/v2/authorization/divisions/{id}/grants", permission: "authorization:grant:view") { sim, r, p in try sim.divisionGrants(r, p[0]) },
        Route("POST", "/api/v2/authorization/divisions/{id}/objects/{type}", permission: "directory:user:edit") { sim, r, p in
            try sim.moveObjects(r, division: p[0], type: p[1])
        },

        // Notifications: channels and their topics (the sockets are served beside the routes).
        Route("POST", "/api/v2/notifications/channels") { sim, r, _ in try sim.createChannel(r) },
        Route("GET", "/api/v2/notifications/channels") { sim, r, _ in sim.listChannels(r) },
        Route("HEAD", "/api/v2/notifications/channels/{id}") { sim, r, p in try sim.headChannel(r, p[0]) },
        Route("GET", "/api/v2/notifications/channels/{id}/subscriptions") { sim, r, p in try sim.getSubscriptions(r, p[0]) },
        Route("PUT", "/api/v2/notifications/channels/{id}/subscriptions") { sim, r, p in try sim.setSubscriptions(r, p[0], replace: true) },
        Route("POST", "/api/v2/notifications/channels/{id}/subscriptions") { sim, r, p in try sim.setSubscriptions(r, p[0], replace: false) },
        Route("DELETE", "/api/v2/notifications/channels/{id}/subscriptions") { sim, r, p in try sim.deleteSubscriptions(r, p[0]) },

        // Audit (filled by the audit feed's issue; well-formed and empty until then).
        Route("POST", "/api/v2/audits/query/realtime", permission: "audits:audit:view") { sim, r, _ in try sim.realtimeAuditQuery(r) },
        Route("POST", "/api/v2/audits/query", permission: "audits:audit:view") { sim, r, _ in try sim.createAuditQuery(r) },
        Route("GET", "/api/v2/audits/query/servicemapping", permission: "audits:audit:view") { sim, _, _ in sim.serviceMapping() },
        Route("GET", "/api/v2/audits/query/realtime/servicemapping", permission: "audits:audit:view") { sim, _, _ in sim.serviceMapping() },
        Route("GET", "/api/v2/audits/query/{id}", permission: "audits:audit:view") { sim, r, p in try sim.auditQueryStatus(r, p[0]) },
        Route("GET", "/api/v2/audits/query/{id}/results", permission: "audits:audit:view") { sim, r, p in try sim.auditQueryResults(r, p[0]) },
    ]
}
