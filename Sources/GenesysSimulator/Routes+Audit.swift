import Synchronization
/// The audit endpoints. Queries are validated and answered with well-formed, empty results; the
/// audit feed's issue fills them from the write log.
extension GenesysSimulator {
    /// Services, entity types and actions the audit API knows, as `servicemapping` lists them.
    static let auditServices: [(name: String, entities: [(name: String, actions: [String])])] = [
        (
            "PeoplePermissions",
            [
                ("Role", ["Create", "Update", "Delete", "MemberAdd", "MemberRemove"]),
                ("Policy", ["Create", "Update", "Delete"]),
                ("RoleSettings", ["Update"]),
                ("OAuthClient", ["Create", "Update", "Delete", "SecretRegenerated"]),
                ("OAuthClientAuthorization", ["Create", "Delete"]),
                ("AccessToken", ["Create", "Revoke"]),
                ("AuthUser", ["Authenticate", "AuthenticationFailed"]),
                ("IdentityProvider", ["Create", "Update", "Delete", "Enable", "Disable"]),
            ]
        ),
        ("Directory", [("User", ["Create", "Update", "Delete", "AuthorizationChanged"])]),
        (
            "Groups",
            [
                ("DirectoryGroup", ["Create", "Update", "Delete", "MemberAdd", "MemberRemove"]),
                ("Team", ["Create", "Update", "Delete", "MemberAdd", "MemberRemove"]),
                ("SkillGroup", ["Create", "Update", "Delete"]),
            ]
        ),
        ("ContactCenter", [("Queue", ["Create", "Update", "Delete"])]),
        ("Telephony", [("Trunk", ["Create", "Update", "Delete"])]),
        ("Integrations", [("Integration", ["Create", "Update", "Delete", "Enable", "Disable"]), ("Action", ["Create", "Update", "Delete"])]),
        ("Webhooks", [("Webhook", ["Create", "Update", "Delete"])]),
    ]

    func serviceMapping() -> SimResponse {
        let services = Self.auditServices.map { service -> JSON in
            var o = JSONObject()
            o.set("name", service.name)
            o.set(
                "entities",
                array: service.entities.map { entity in
                    var e = JSONObject()
                    e.set("name", entity.name)
                    e.set("actions", strings: entity.actions)
                    return e.json
                })
            return o.json
        }
        var o = JSONObject()
        o.set("services", array: services, keepEmpty: true)
        return .ok(o.json)
    }

    private static let filterProperties: Set<String> = ["UserId", "TrusteeOrganizationId", "ClientId", "Action", "EntityType", "EntityId"]

    /// Validates an audit query body: a well-formed `interval`, known filter properties and sort.
    func auditQueryBody(_ r: SimRequest) throws -> JSON {
        let body = try jsonBody(r)
        guard let interval = body["interval"]?.stringValue else {
            throw APIError.badRequest("interval is required.")
        }
        let ends = interval.split(separator: "/")
        guard ends.count == 2, let start = ISODate.epochMilliseconds(String(ends[0])),
            let end = ISODate.epochMilliseconds(String(ends[1])), start < end
        else {
            throw APIError.badRequest("The interval \(interval) is not a valid ISO-8601 interval.", code: "invalid.date")
        }
        for filter in body["filters"]?.arrayValue ?? [] {
            guard let property = filter["property"]?.stringValue, Self.filterProperties.contains(property) else {
                throw APIError.badRequest("Unknown filter property.", code: "invalid.value")
            }
        }
        if let service = body["serviceName"]?.stringValue, !Self.auditServices.contains(where: { $0.name == service }) {
            throw APIError.badRequest("Unknown serviceName \(service).", code: "invalid.value")
        }
        return body
    }

    func realtimeAuditQuery(_ r: SimRequest) throws -> SimResponse {
        let body = try auditQueryBody(r)
        let pageSize = min(max(1, body["pageSize"]?.intValue ?? 25), 500)
        let pageNumber = max(1, body["pageNumber"]?.intValue ?? 1)
        var o = JSONObject()
        o.set("entities", array: [], keepEmpty: true)
        o.set("pageSize", pageSize)
        o.set("pageNumber", pageNumber)
        o.set("total", 0)
        o.set("pageCount", 0)
        return .ok(o.json)
    }

    func createAuditQuery(_ r: SimRequest) throws -> SimResponse {
        let body = try auditQueryBody(r)
        var ids = SeededRandom(seed: UInt64.random(in: .min ... .max))
        let id = ids.uuid()
        var o = JSONObject()
        o.set("id", id)
        o.set("state", "Succeeded")
        o.set("startDate", timestamp())
        o.set("interval", body["interval"])
        o.set("serviceName", body["serviceName"])
        o.set("filters", body["filters"])
        o.set("sort", body["sort"])
        let status = o.json
        asyncQueries.withLock { $0[id] = status }
        return .ok(status)
    }

    func auditQueryStatus(_ r: SimRequest, _ id: String) throws -> SimResponse {
        guard let status = asyncQueries.withLock({ $0[id] }) else { throw APIError.notFound("audit query") }
        return .ok(status)
    }

    func auditQueryResults(_ r: SimRequest, _ id: String) throws -> SimResponse {
        guard asyncQueries.withLock({ $0[id] }) != nil else { throw APIError.notFound("audit query") }
        let pageSize = min(max(1, Int(r.query.first("pageSize") ?? "") ?? 25), 500)
        var o = JSONObject()
        o.set("id", id)
        o.set("pageSize", pageSize)
        o.set("entities", array: [], keepEmpty: true)
        return .ok(o.json)
    }
}
