import Foundation
import GenesysSimulator
import Testing

@Suite("Simulator: write endpoints")
struct WriteEndpointTests {
    @Test("roles are created, edited in place and deleted, each change audited")
    func roles() async throws {
        let sim = simulator()
        try await sim.withRunning { endpoint in
            try await HTTPProbe.with(endpoint) { probe in
                let admin = try await probe.token(clientId: endpoint.adminClientId, secret: endpoint.adminClientSecret)
                let events = sim.auditEventCount
                let created = try await probe.call(
                    "POST", "/api/v2/authorization/roles", token: admin,
                    json: #"{"name":"Night Auditor","permissions":["audits:audit:view","admin"]}"#)
                #expect(created.status == 200)
                let id = try #require(created.object["id"] as? String)
                #expect(created.object["permissions"] as? [String] == ["admin", "audits:audit:view"])
                let edited = try await probe.call(
                    "PUT", "/api/v2/authorization/roles/\(id)", token: admin,
                    json: #"{"name":"Night Auditor 2","permissionPolicies":[{"domain":"audits","entityName":"audit","actionSet":["view","*"]}]}"#)
                #expect(edited.status == 200)
                #expect(edited.object["id"] as? String == id, "PUT edits in place: the id never changes")
                #expect(edited.object["name"] as? String == "Night Auditor 2")
                let duplicate = try await probe.call("POST", "/api/v2/authorization/roles", token: admin, json: #"{"name":"night auditor 2"}"#)
                #expect(duplicate.status == 409)
                #expect(duplicate.object["code"] as? String == "general.conflict")
                let noName = try await probe.call("POST", "/api/v2/authorization/roles", token: admin, json: #"{"description":"x"}"#)
                #expect(noName.status == 400)
                let notJSON = try await probe.call("POST", "/api/v2/authorization/roles", token: admin, json: "{nope")
                #expect(notJSON.status == 400)
                #expect(try await probe.call("DELETE", "/api/v2/authorization/roles/\(id)", token: admin).status == 204)
                #expect(try await probe.get("/api/v2/authorization/roles/\(id)", token: admin).status == 404)
                #expect(sim.auditEventCount == events + 3)
            }
        }
    }

    @Test("grants are added and removed singly and in bulk, bumping the subject's version")
    func grants() async throws {
        let sim = simulator()
        let truth = sim.groundTruth()
        let user = try #require(truth.users.values.sorted { $0.id < $1.id }.first)
        let role = try #require(truth.roles.values.first { $0.name.hasSuffix("Auditor") && !$0.isDefault && $0.name != "rbacwatch Auditor" } ?? truth.roles.values.first { !$0.isDefault })
        let division = try #require(truth.divisions.keys.sorted().first)
        try await sim.withRunning { endpoint in
            try await HTTPProbe.with(endpoint) { probe in
                let admin = try await probe.token(clientId: endpoint.adminClientId, secret: endpoint.adminClientSecret)
                let before = try await probe.get("/api/v2/authorization/subjects/\(user.id)", token: admin).object
                let version = try #require(before["version"] as? Int)
                let path = "/api/v2/authorization/subjects/\(user.id)/divisions/\(division)/roles/\(role.id)?subjectType=PC_USER"
                #expect(try await probe.call("POST", path, token: admin).status == 204)
                let after = try await probe.get("/api/v2/authorization/subjects/\(user.id)", token: admin).object
                #expect(after["version"] as? Int == version + 1)
                #expect(sim.groundTruth().grants.contains(.init(subjectId: user.id, subjectType: "PC_USER", roleId: role.id, divisionId: division)))
                #expect(try await probe.call("DELETE", path, token: admin).status == 204)
                #expect(!sim.groundTruth().grants.contains(.init(subjectId: user.id, subjectType: "PC_USER", roleId: role.id, divisionId: division)))

                let bulk = #"{"grants":[{"roleId":"\#(role.id)","divisionId":"*"}]}"#
                #expect(try await probe.call("POST", "/api/v2/authorization/subjects/\(user.id)/bulkadd?subjectType=PC_USER", token: admin, json: bulk).status == 204)
                #expect(sim.groundTruth().grants.contains(.init(subjectId: user.id, subjectType: "PC_USER", roleId: role.id, divisionId: "*")))
                #expect(try await probe.call("POST", "/api/v2/authorization/subjects/\(user.id)/bulkremove", token: admin, json: bulk).status == 204)
                #expect(!sim.groundTruth().grants.contains(.init(subjectId: user.id, subjectType: "PC_USER", roleId: role.id, divisionId: "*")))

                let wrongType = try await probe.call("POST", path.replacingOccurrences(of: "PC_USER", with: "PC_GROUP"), token: admin)
                #expect(wrongType.status == 400)
                let unknownRole = try await probe.call("POST", "/api/v2/authorization/subjects/\(user.id)/divisions/\(division)/roles/nope", token: admin)
                #expect(unknownRole.status == 404)
            }
        }
    }

    @Test("group members change with optimistic versions; a stale version is a 409")
    func groupMembers() async throws {
        let sim = simulator()
        let truth = sim.groundTruth()
        let group = try #require(truth.groups.values.filter(\.rolesEnabled).sorted { $0.id < $1.id }.first)
        let outsider = try #require(truth.users.keys.sorted().first { !group.memberIds.contains($0) })
        try await sim.withRunning { endpoint in
            try await HTTPProbe.with(endpoint) { probe in
                let admin = try await probe.token(clientId: endpoint.adminClientId, secret: endpoint.adminClientSecret)
                let version = try #require(try await probe.get("/api/v2/groups/\(group.id)", token: admin).object["version"] as? Int)
                let stale = try await probe.call(
                    "POST", "/api/v2/groups/\(group.id)/members", token: admin, json: #"{"memberIds":["\#(outsider)"],"version":\#(version - 1)}"#)
                #expect(stale.status == 409)
                let added = try await probe.call(
                    "POST", "/api/v2/groups/\(group.id)/members", token: admin, json: #"{"memberIds":["\#(outsider)"],"version":\#(version)}"#)
                #expect(added.status == 202)
                #expect(sim.groundTruth().groups[group.id]?.memberIds.contains(outsider) == true)
                // The new member inherits the group's grants.
                let inherited = sim.groundTruth().userAccess[outsider] ?? []
                #expect(inherited.contains { $0.viaSubjectId == group.id })
                #expect(try await probe.get("/api/v2/groups/\(group.id)", token: admin).object["version"] as? Int == version + 1)
                #expect(try await probe.call("DELETE", "/api/v2/groups/\(group.id)/members?ids=\(outsider)", token: admin).status == 202)
                #expect(sim.groundTruth().groups[group.id]?.memberIds.contains(outsider) == false)
            }
        }
    }

    @Test("users move between divisions")
    func divisionMove() async throws {
        let sim = simulator()
        let truth = sim.groundTruth()
        let user = try #require(truth.users.values.sorted { $0.id < $1.id }.first)
        let target = try #require(truth.divisions.keys.sorted().first { $0 != user.divisionId })
        try await sim.withRunning { endpoint in
            try await HTTPProbe.with(endpoint) { probe in
                let admin = try await probe.token(clientId: endpoint.adminClientId, secret: endpoint.adminClientSecret)
                let before = try await probe.get("/api/v2/users/\(user.id)?state=any", token: admin).object["version"] as? Int
                let moved = try await probe.call("POST", "/api/v2/authorization/divisions/\(target)/objects/USER", token: admin, json: #"["\#(user.id)"]"#)
                #expect(moved.status == 204)
                let after = try await probe.get("/api/v2/users/\(user.id)?state=any", token: admin).object
                #expect((after["division"] as? [String: Any])?["id"] as? String == target)
                #expect(after["version"] as? Int == (before ?? 0) + 1)
            }
        }
    }
}
