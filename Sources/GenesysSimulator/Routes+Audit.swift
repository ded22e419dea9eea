import Foundation
import Synchronization
/// The audit endpoints, answered from the write log: every write (API or simulated activity)
/// appends an AuditLogMessage. Realtime queries reach back 14 days and page by number; async
/// queries reach the whole log and page by cursor.
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
        // Not in the contract's list; the simulator's guess at where recording settings live.
        ("Recording", [("RecordingSettings", ["Update"]), ("RetentionPolicy", ["Create", "Update", "Delete"])]),
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

    /// How far back the realtime query reaches.
    static let realtimeReachMilliseconds: Int64 = 14 * 24 * 3600 * 1000

    /// The events a query body selects, in its sort order (`Timestamp`, descending unless asked).
    func auditEvents(matching body: JSON, reachFrom floor: Int64?) -> [SimAuditEvent] {
        let now = nowMilliseconds()
        let ends = (body["interval"]?.stringValue ?? "").split(separator: "/")
        let start = max(ISODate.epochMilliseconds(String(ends.first ?? "")) ?? 0, floor ?? .min)
        let end = ISODate.epochMilliseconds(String(ends.last ?? "")) ?? 0
        let service = body["serviceName"]?.stringValue
        let filters = (body["filters"]?.arrayValue ?? []).compactMap { filter -> (String, String)? in
            guard let property = filter["property"]?.stringValue, let value = filter["value"]?.stringValue else { return nil }
            return (property, value)
        }
        let ascending = body["sort"]?.arrayValue?.first?["sortOrder"]?.stringValue?.lowercased() == "ascending"
        let selected = org.withLock { $0.auditLog }.filter { event in
            // Not yet arrived: the audit service has not indexed it.
            guard event.visibleAt <= now, let at = ISODate.epochMilliseconds(event.eventDate), at >= start, at < end else { return false }
            if let service, event.serviceName != service { return false }
            for (property, value) in filters {
                let actual: String? =
                    switch property {
                    case "UserId": event.userId
                    case "ClientId": event.clientId
                    case "Action": event.action
                    case "EntityType": event.entityType
                    case "EntityId": event.entityId
                    default: nil  // TrusteeOrganizationId: no partner organisation acts in here
                    }
                if actual != value { return false }
            }
            return true
        }
        // Stable: events of the same millisecond keep the order they were written in.
        let dated = selected.enumerated().map { (ISODate.epochMilliseconds($1.eventDate) ?? 0, $0, $1) }
        return dated.sorted { a, b in a.0 != b.0 ? (ascending ? a.0 < b.0 : a.0 > b.0) : (ascending ? a.1 < b.1 : a.1 > b.1) }.map(\.2)
    }

    /// An AuditLogMessage as the API writes it: empty values as `""`, `{}` and `[]`.
    func auditMessage(_ event: SimAuditEvent, expandUser: Bool) -> JSON {
        let orgId = org.withLock { $0.id }
        var o = JSONObject()
        o.set("id", event.id)
        o.set("userHomeOrgId", orgId)
        if let userId = event.userId {
            var user = JSONObject()
            user.set("id", userId)
            if expandUser { user.set("name", event.userName) }
            user.set("selfUri", "/api/v2/users/\(userId)")
            o.set("user", user.json)
        }
        if let clientId = event.clientId {
            var client = JSONObject()
            client.set("id", clientId)
            o.set("client", client.json)
        }
        o.set("remoteIp", strings: event.remoteIp, keepEmpty: true)
        o.set("serviceName", event.serviceName)
        o.set("level", event.level)
        o.set("eventDate", event.eventDate)
        o.set("message", Self.auditMessageInfo(event))
        o.set("action", event.action)
        o.set("entity", JSON.object([("id", .string(event.entityId)), ("name", .string(event.entityName))]))
        o.set("entityType", event.entityType)
        o.set("status", event.status)
        o.set("application", JSON.string(""))
        o.set("initiatingAction", JSON.object([("transactionId", .string(event.transactionId)), ("actionContext", .string(""))]))
        o.set("transactionInitiator", true)
        o.set("propertyChanges", array: Self.propertyChanges(event), keepEmpty: true)
        o.set("context", JSON.object([]))
        o.set("entityChanges", array: [], keepEmpty: true)
        return o.json
    }

    /// The `message` member both shapes carry (the query's and the push's).
    static func auditMessageInfo(_ event: SimAuditEvent) -> JSON {
        let text = "\(event.action) \(event.entityType) \(event.entityName)"
        return JSON.object([
            ("localizableMessageCode", .string("\(event.serviceName).\(event.entityType).\(event.action)")), ("message", .string(text)),
            ("messageWithParams", .string(text)), ("messageParams", .object([])),
        ])
    }

    static func propertyChanges(_ event: SimAuditEvent) -> [JSON] {
        event.propertyChanges.map { change in
            JSON.object([
                ("property", .string(change.property)), ("oldValues", .array(change.oldValues.map(JSON.string))),
                ("newValues", .array(change.newValues.map(JSON.string))),
            ])
        }
    }

    func realtimeAuditQuery(_ r: SimRequest) throws -> SimResponse {
        let body = try auditQueryBody(r)
        let pageSize = min(max(1, body["pageSize"]?.intValue ?? 25), 500)
        let pageNumber = max(1, body["pageNumber"]?.intValue ?? 1)
        let now = nowMilliseconds()
        let events = auditEvents(matching: body, reachFrom: now - Self.realtimeReachMilliseconds)
        let expand = r.query.first("expand")?.split(separator: ",").contains("user") ?? false
        let (offset, overflow) = (pageNumber - 1).multipliedReportingOverflow(by: pageSize)
        let page = events.dropFirst(overflow ? events.count : offset).prefix(pageSize)
        var o = JSONObject()
        o.set("entities", array: page.map { auditMessage($0, expandUser: expand) }, keepEmpty: true)
        o.set("pageSize", pageSize)
        o.set("pageNumber", pageNumber)
        o.set("total", events.count)
        o.set("pageCount", (events.count + pageSize - 1) / pageSize)
        return .ok(o.json)
    }

    /// An async query as the audit service tracks it: Queued when created, Running at the
    /// first status check, Succeeded from the second on (202 until then, as the API answers).
    struct AsyncQuery: Sendable {
        var id: String
        var body: JSON
        var startDate: String
        var polls = 0

        var state: String { polls == 0 ? "Queued" : polls == 1 ? "Running" : "Succeeded" }

        func status() -> SimResponse {
            var o = JSONObject()
            o.set("id", id)
            o.set("state", state)
            o.set("startDate", startDate)
            o.set("interval", body["interval"])
            o.set("serviceName", body["serviceName"])
            o.set("filters", body["filters"])
            o.set("sort", body["sort"])
            return SimResponse(status: state == "Succeeded" ? 200 : 202, body: o.json)
        }
    }

    func createAuditQuery(_ r: SimRequest) throws -> SimResponse {
        let body = try auditQueryBody(r)
        var ids = SeededRandom(seed: UInt64.random(in: .min ... .max))
        let query = AsyncQuery(id: ids.uuid(), body: body, startDate: timestamp())
        asyncQueries.withLock { $0[query.id] = query }
        return query.status()
    }

    func auditQueryStatus(_ r: SimRequest, _ id: String) throws -> SimResponse {
        let query = asyncQueries.withLock { queries -> AsyncQuery? in
            queries[id]?.polls += 1
            return queries[id]
        }
        guard let query else { throw APIError.notFound("audit query") }
        return query.status()
    }

    /// Results of an async query, `pageSize` at a time; `cursor` is present while more follow.
    func auditQueryResults(_ r: SimRequest, _ id: String) throws -> SimResponse {
        guard let query = asyncQueries.withLock({ $0[id] }) else { throw APIError.notFound("audit query") }
        guard query.state == "Succeeded" else {
            throw APIError.badRequest("The audit query \(id) is \(query.state); results are available once it has succeeded.", code: "audit.query.not.complete")
        }
        let pageSize = min(max(1, Int(r.query.first("pageSize") ?? "") ?? 25), 500)
        var offset = 0
        if let cursor = r.query.first("cursor") {
            guard let decoded = Data(base64Encoded: cursor).flatMap({ Int(String(decoding: $0, as: UTF8.self)) }), decoded >= 0 else {
                throw APIError.badRequest("The cursor is not valid.", code: "invalid.value")
            }
            offset = decoded
        }
        let events = auditEvents(matching: query.body, reachFrom: nil)
        let expand = r.query.first("expand")?.split(separator: ",").contains("user") ?? false
        let page = events.dropFirst(offset).prefix(pageSize)
        var o = JSONObject()
        o.set("id", id)
        o.set("pageSize", pageSize)
        if offset + page.count < events.count {
            o.set("cursor", Data(String(offset + page.count).utf8).base64EncodedString())
        }
        o.set("entities", array: page.map { auditMessage($0, expandUser: expand) }, keepEmpty: true)
        return .ok(o.json)
    }
}
