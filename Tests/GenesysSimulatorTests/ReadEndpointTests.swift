import Foundation
import AuditTestSupport
import GenesysSimulator
import Testing

@Suite("Simulator: read endpoints and envelopes")
struct ReadEndpointTests {
    @Test("offset paging envelope: URIs carry the other parameters, next and previous only where they exist")
    func pagingEnvelope() async throws {
        let sim = simulator(users: 20)
        try await sim.withRunning { endpoint in
            try await HTTPProbe.with(endpoint) { probe in
                let token = try await probe.token()
                let first = try await probe.get("/api/v2/users?pageSize=7&pageNumber=1&state=any&expand=groups,team", token: token).object
                #expect(first["pageSize"] as? Int == 7)
                #expect(first["pageNumber"] as? Int == 1)
                #expect(first["total"] as? Int == 20)
                #expect(first["pageCount"] as? Int == 3)
                #expect(first["previousUri"] == nil)
                #expect(first["nextUri"] as? String == "/api/v2/users?pageSize=7&pageNumber=2&state=any&expand=groups,team")
                #expect(first["lastUri"] as? String == "/api/v2/users?pageSize=7&pageNumber=3&state=any&expand=groups,team")
                #expect((first["entities"] as? [Any])?.count == 7)
                let last = try await probe.get("/api/v2/users?pageSize=7&pageNumber=3&state=any", token: token).object
                #expect(last["nextUri"] == nil)
                #expect(last["previousUri"] as? String == "/api/v2/users?pageSize=7&pageNumber=2&state=any")
                #expect((last["entities"] as? [Any])?.count == 6)
                let beyond = try await probe.get("/api/v2/users?pageSize=7&pageNumber=9&state=any", token: token).object
                #expect((beyond["entities"] as? [Any])?.isEmpty == true)
                let bad = try await probe.get("/api/v2/users?pageSize=0", token: token)
                #expect(bad.status == 400)
                #expect(bad.object["code"] as? String == "invalid.value")
                let capped = try await probe.get("/api/v2/authorization/roles?pageSize=100000", token: token).object
                #expect(capped["pageSize"] as? Int == 500)
                // Bare envelopes where the API has them.
                let roles = try await probe.get("/api/v2/authorization/roles?pageSize=100&userCount=false", token: token).object
                let employee = try #require((roles["entities"] as? [[String: Any]])?.first { $0["defaultRoleId"] as? String == "employee" })
                let holders = try await probe.get("/api/v2/authorization/roles/\(employee["id"]!)/users?pageSize=5", token: token).object
                #expect(holders["nextUri"] == nil && holders["firstUri"] == nil)
                #expect(holders["total"] as? Int ?? 0 > 0)
            }
        }
    }

    @Test("absurd page numbers and sizes from a client get an answer, never crash the simulator")
    func hostileClient() async throws {
        let sim = simulator(users: 20)
        try await sim.withRunning { endpoint in
            try await HTTPProbe.with(endpoint) { probe in
                let token = try await probe.token()
                let huge = try await probe.get("/api/v2/users?pageSize=500&pageNumber=9223372036854775807", token: token)
                #expect(huge.status == 200)
                #expect((huge.object["entities"] as? [Any])?.isEmpty == true)
                let interval = "2026-01-01T00:00:00Z/2026-01-02T00:00:00Z"
                for body in [
                    #"{"interval":"\#(interval)","pageNumber":1e300,"pageSize":1e300}"#,
                    #"{"interval":"\#(interval)","pageNumber":9223372036854775807,"pageSize":500}"#,
                    #"{"interval":"\#(interval)","pageNumber":-1e300,"pageSize":-5}"#,
                ] {
                    let reply = try await probe.send(
                        "POST", "/api/v2/audits/query/realtime", headers: [("Authorization", "Bearer \(token)"), ("Content-Type", "application/json")],
                        body: body)
                    #expect(reply.status == 200 || reply.status == 400, "\(body): \(reply.status) \(reply.text)")
                }
                // Still serving.
                #expect(try await probe.get("/api/v2/users?pageSize=5", token: token).status == 200)
            }
        }
    }

    @Test("list parameters are accepted comma-separated and repeated")
    func listParameters() async throws {
        let sim = simulator(users: 30)
        try await sim.withRunning { endpoint in
            try await HTTPProbe.with(endpoint) { probe in
                let token = try await probe.token()
                let commas = try await probe.get("/api/v2/users?pageSize=5&state=any&expand=groups,team,authorization", token: token)
                let repeated = try await probe.get("/api/v2/users?pageSize=5&state=any&expand=groups&expand=team&expand=authorization", token: token)
                let users = try #require(commas.object["entities"] as? [[String: Any]])
                let same = try #require(repeated.object["entities"] as? [[String: Any]])
                #expect(users.map { $0["id"] as? String } == same.map { $0["id"] as? String })
                #expect(users.map { Set($0.keys) } == same.map { Set($0.keys) })
                #expect(users.allSatisfy { $0["authorization"] != nil })
                let ids = users.prefix(3).map { $0["id"] as! String }
                let byComma = try await probe.get("/api/v2/users?state=any&id=\(ids.joined(separator: ","))", token: token).object
                let byRepeat = try await probe.get("/api/v2/users?state=any&" + ids.map { "id=\($0)" }.joined(separator: "&"), token: token).object
                #expect(byComma["total"] as? Int == 3)
                #expect(byRepeat["total"] as? Int == 3)
            }
        }
    }

    @Test("no reply anywhere contains null")
    func noNulls() async throws {
        let sim = simulator(users: 200)
        try await sim.withRunning { endpoint in
            try await HTTPProbe.with(endpoint) { probe in
                let token = try await probe.token()
                var paths = [
                    "/api/v2/users?pageSize=200&state=any&expand=authorization,groups,team,dateLastLogin,lasttokenissued",
                    "/api/v2/authorization/roles?pageSize=100", "/api/v2/authorization/divisions?objectCount=true",
                    "/api/v2/authorization/divisions/home", "/api/v2/groups?pageSize=100", "/api/v2/teams?pageSize=100",
                    "/api/v2/oauth/clients", "/api/v2/organizations/me", "/api/v2/tokens/me",
                    "/api/v2/audits/query/servicemapping",
                ]
                let roles = try await probe.get("/api/v2/authorization/roles?pageSize=100", token: token).object
                for role in (roles["entities"] as? [[String: Any]] ?? []).prefix(5) {
                    paths.append("/api/v2/authorization/roles/\(role["id"]!)/subjectgrants?pageSize=100")
                }
                let groups = try await probe.get("/api/v2/groups?pageSize=100", token: token).object
                for group in (groups["entities"] as? [[String: Any]] ?? []).prefix(4) {
                    paths.append("/api/v2/groups/\(group["id"]!)/members?pageSize=100&expand=groups")
                    paths.append("/api/v2/authorization/subjects/\(group["id"]!)")
                }
                let users = try await probe.get("/api/v2/users?pageSize=5&state=any", token: token).object
                for user in users["entities"] as? [[String: Any]] ?? [] {
                    paths.append("/api/v2/authorization/subjects/\(user["id"]!)?includeDuplicates=true")
                    paths.append("/api/v2/users/\(user["id"]!)/roles")
                }
                for path in paths {
                    let reply = try await probe.get(path, token: token)
                    #expect(reply.status == 200, "\(path)")
                    #expect(reply.json != nil, "\(path) parses")
                    #expect(nulls(in: reply.json) == [], "\(path)")
                }
            }
        }
    }

    @Test("authorization/subjects shows inherited grants with the group as subjectId")
    func inheritedGrants() async throws {
        let sim = simulator(users: 400)
        let truth = sim.groundTruth()
        let (userId, access) = try #require(truth.userAccess.first { $0.value.contains { $0.viaSubjectId != $0.roleId && truth.groups[$0.viaSubjectId] != nil } })
        try await sim.withRunning { endpoint in
            try await HTTPProbe.with(endpoint) { probe in
                let token = try await probe.token()
                let subject = try await probe.get("/api/v2/authorization/subjects/\(userId)?includeDuplicates=true", token: token).object
                let grants = try #require(subject["grants"] as? [[String: Any]])
                let rows = Set(grants.map { grant -> String in
                    let role = (grant["role"] as? [String: Any])?["id"] as? String ?? ""
                    let division = (grant["division"] as? [String: Any])?["id"] as? String ?? ""
                    return "\(role)|\(division)|\(grant["subjectId"] as? String ?? "")"
                })
                #expect(rows == Set(access.map { "\($0.roleId)|\($0.divisionId)|\($0.viaSubjectId)" }))
                #expect(grants.contains { ($0["subjectId"] as? String).map { truth.groups[$0] != nil } == true })
            }
        }
    }

    @Test("teams page by cursor without repeats or gaps")
    func teamCursor() async throws {
        let sim = simulator(users: 400)
        let truth = sim.groundTruth()
        try await sim.withRunning { endpoint in
            try await HTTPProbe.with(endpoint) { probe in
                let token = try await probe.token()
                var next: String? = "/api/v2/teams?pageSize=3"
                var ids: [String] = []
                while let path = next {
                    let page = try await probe.get(path, token: token).object
                    ids += (page["entities"] as? [[String: Any]] ?? []).map { $0["id"] as! String }
                    next = page["nextUri"] as? String
                    #expect(page["pageNumber"] == nil, "cursor pages carry no page numbers")
                }
                #expect(ids.count == truth.teams.count)
                #expect(Set(ids) == Set(truth.teams.keys))
                let bad = try await probe.get("/api/v2/teams?after=%%%", token: token)
                #expect(bad.status == 400)
            }
        }
    }

    @Test("audit endpoints validate queries and answer from the write log: interval, filters, sort, paging, cursor")
    func auditEndpoints() async throws {
        let sim = simulator()
        try await sim.withRunning { endpoint in
            try await HTTPProbe.with(endpoint) { probe in
                let token = try await probe.token()
                let admin = try await probe.token(clientId: endpoint.adminClientId, secret: endpoint.adminClientSecret)
                let before = ISO8601DateFormatter().string(from: Date().addingTimeInterval(-60))
                for name in ["Audit One", "Audit Two", "Audit Three"] {
                    let created = try await probe.call("POST", "/api/v2/authorization/roles", token: admin, json: #"{"name":"\#(name)","permissions":["admin"]}"#)
                    #expect(created.status == 200)
                }
                let after = ISO8601DateFormatter().string(from: Date().addingTimeInterval(60))
                let window = "\(before)/\(after)"

                let query = #"{"interval":"\#(window)","serviceName":"PeoplePermissions","filters":[{"property":"EntityType","value":"Role"},{"property":"Action","value":"Create"}],"sort":[{"name":"Timestamp","sortOrder":"ascending"}],"pageNumber":1,"pageSize":2}"#
                let realtime = try await probe.call("POST", "/api/v2/audits/query/realtime?expand=user", token: token, json: query)
                #expect(realtime.status == 200)
                #expect(realtime.object["total"] as? Int == 3)
                #expect(realtime.object["pageCount"] as? Int == 2)
                let page = try #require(realtime.object["entities"] as? [[String: Any]])
                #expect(page.count == 2)
                let first = try #require(page.first)
                #expect((first["entity"] as? [String: Any])?["name"] as? String == "Audit One")
                #expect(first["action"] as? String == "Create" && first["entityType"] as? String == "Role")
                #expect(first["serviceName"] as? String == "PeoplePermissions" && first["status"] as? String == "SUCCESS")
                #expect((first["client"] as? [String: Any])?["id"] as? String == endpoint.adminClientId)
                #expect((first["remoteIp"] as? [String])?.isEmpty == false)
                #expect(first["eventDate"] is String && first["context"] is [String: Any] && first["propertyChanges"] is [Any])

                let none = try await probe.call(
                    "POST", "/api/v2/audits/query/realtime", token: token,
                    json: #"{"interval":"2026-01-01T00:00:00Z/2026-01-02T00:00:00Z","filters":[{"property":"EntityType","value":"Role"}]}"#)
                #expect(none.object["total"] as? Int == 0)
                #expect((none.object["entities"] as? [Any])?.isEmpty == true)
                let badDate = try await probe.call("POST", "/api/v2/audits/query/realtime", token: token, json: #"{"interval":"yesterday"}"#)
                #expect(badDate.status == 400)
                #expect(badDate.object["code"] as? String == "invalid.date")
                let mapping = try await probe.get("/api/v2/audits/query/servicemapping", token: token).object
                let services = try #require(mapping["services"] as? [[String: Any]])
                #expect(services.contains { $0["name"] as? String == "PeoplePermissions" })

                // Async: the same events, newest first by default, a cursor while more follow.
                let started = try await probe.call(
                    "POST", "/api/v2/audits/query", token: token,
                    json: #"{"interval":"\#(window)","filters":[{"property":"EntityType","value":"Role"},{"property":"Action","value":"Create"}]}"#)
                let id = try #require(started.object["id"] as? String)
                #expect(started.status == 202 && started.object["state"] as? String == "Queued")
                let early = try await probe.get("/api/v2/audits/query/\(id)/results", token: token)
                #expect(early.status == 400 && early.object["code"] as? String == "audit.query.not.complete")
                let running = try await probe.get("/api/v2/audits/query/\(id)", token: token)
                #expect(running.status == 202 && running.object["state"] as? String == "Running")
                let done = try await probe.get("/api/v2/audits/query/\(id)", token: token)
                #expect(done.status == 200 && done.object["state"] as? String == "Succeeded")
                var names: [String] = []
                var cursor: String?
                repeat {
                    let path = "/api/v2/audits/query/\(id)/results?pageSize=2" + (cursor.map { "&cursor=\($0)" } ?? "")
                    let results = try await probe.get(path, token: token).object
                    for entity in results["entities"] as? [[String: Any]] ?? [] {
                        names.append(((entity["entity"] as? [String: Any])?["name"] as? String) ?? "")
                    }
                    cursor = results["cursor"] as? String
                } while cursor != nil && names.count < 10
                #expect(names == ["Audit Three", "Audit Two", "Audit One"])
                #expect(try await probe.get("/api/v2/audits/query/\(id)/results?cursor=%%%", token: token).status == 400)
            }
        }
    }

    @Test("audit events arrive late and out of order (--audit-delay); the audit API has its own rate limit")
    func auditArrivalAndLimit() async throws {
        let clock = ManualClock()
        let sim = simulator {
            $0.auditArrivalDelaySeconds = 2
            $0.auditRateLimitPerMinute = 1000
            $0.wallClock = { clock.date() }
        }
        try await sim.withRunning { endpoint in
            try await HTTPProbe.with(endpoint) { probe in
                let token = try await probe.token()
                let admin = try await probe.token(clientId: endpoint.adminClientId, secret: endpoint.adminClientSecret)
                let window = ISO8601DateFormatter().string(from: clock.date().addingTimeInterval(-60)) + "/"
                    + ISO8601DateFormatter().string(from: clock.date().addingTimeInterval(60))
                for index in 1...6 {
                    #expect(try await probe.call("POST", "/api/v2/authorization/roles", token: admin, json: #"{"name":"Late \#(index)"}"#).status == 200)
                }
                let query = #"{"interval":"\#(window)","filters":[{"property":"EntityType","value":"Role"},{"property":"Action","value":"Create"}],"pageSize":100}"#
                func visible() async throws -> Int {
                    try await probe.call("POST", "/api/v2/audits/query/realtime", token: token, json: query).object["total"] as? Int ?? -1
                }
                // Six delays drawn from 0–2000 ms, the clock stopped: that all are 0 is a 1-in-10^19 event.
                #expect(try await visible() < 6)
                clock.advance(by: .milliseconds(2000))
                #expect(try await visible() == 6, "every event arrives within its delay")
            }
        }

        let limited = simulator { $0.auditRateLimitPerMinute = 2 }
        try await limited.withRunning { endpoint in
            try await HTTPProbe.with(endpoint) { probe in
                let token = try await probe.token()
                let query = #"{"interval":"2026-11-01T00:00:00Z/2026-11-02T00:00:00Z"}"#
                #expect(try await probe.call("POST", "/api/v2/audits/query/realtime", token: token, json: query).status == 200)
                #expect(try await probe.call("POST", "/api/v2/audits/query/realtime", token: token, json: query).status == 200)
                let refused = try await probe.call("POST", "/api/v2/audits/query/realtime", token: token, json: query)
                #expect(refused.status == 429)
                #expect(refused.header("Retry-After").flatMap(Int.init).map { $0 >= 1 } == true)
                #expect(try await probe.get("/api/v2/authorization/divisions", token: token).status == 200, "only the audit API is limited")
            }
        }
    }

    @Test("the same seed gives the same organisation, another seed another one")
    func determinism() {
        let a = simulator(users: 500, seed: 11).groundTruth()
        let b = simulator(users: 500, seed: 11).groundTruth()
        let c = simulator(users: 500, seed: 12).groundTruth()
        #expect(a.organizationId == b.organizationId)
        #expect(a.grants == b.grants)
        #expect(a.users == b.users)
        #expect(a.userAccess == b.userAccess)
        #expect(a.organizationId != c.organizationId)
    }

    @Test("the generated org looks like a contact centre")
    func realism() async {
        let truth = await TestSupport.generated(users: 2000, seed: 3).groundTruth()
        #expect((35...45).contains(truth.roles.count), "about N/50 roles")
        #expect(truth.roles.values.contains { $0.isDefault })
        #expect(truth.roles.values.flatMap(\.permissions).allSatisfy { $0 == "admin" || $0.split(separator: ":").count == 3 })
        #expect(truth.grants.contains { $0.divisionId == "*" && $0.subjectType == "PC_USER" })
        #expect(truth.grants.contains { $0.subjectType == "PC_GROUP" })
        #expect(truth.grants.contains { $0.subjectType == "PC_OAUTH_CLIENT" })
        #expect(Set(truth.users.values.map(\.state)) == ["active", "inactive", "deleted"])
        #expect(truth.divisions.count >= 4)
    }

    @Test("100,000 users: generated and served")
    func hundredThousand() async throws {
        let sim = await TestSupport.generated(users: 100_000, seed: 3)
        try await sim.withRunning { endpoint in
            try await HTTPProbe.with(endpoint) { probe in
                let token = try await probe.token()
                let page = try await probe.get("/api/v2/users?pageSize=500&pageNumber=200&state=any&expand=groups,team", token: token).object
                #expect(page["total"] as? Int == 100_000)
                #expect((page["entities"] as? [Any])?.count == 500)
                let roles = try await probe.get("/api/v2/authorization/roles?pageSize=1&userCount=false", token: token).object
                #expect((1900...2100).contains(roles["total"] as? Int ?? 0))
            }
        }
    }
}
