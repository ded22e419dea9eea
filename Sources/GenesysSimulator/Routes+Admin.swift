/// `/__simulator/...`: controls for tests, benchmarks and people poking at a running simulator.
/// Not part of the Genesys API; no token needed (the simulator listens on loopback).
///
/// - `GET /__simulator/health`
/// - `GET|PUT /__simulator/faults` — the fault plan as JSON (see `FaultPlan`)
/// - `POST /__simulator/expire-tokens`
/// - `POST /__simulator/changes` — `{"change":"insertUsers","count":2,"afterPage":2,"pathPrefix":"/api/v2/users"}`
/// - `GET /__simulator/truth` — summary counts of the simulator's ground truth
/// - `POST /__simulator/notifications/close-sockets` — every notification socket closed now
/// - `POST /__simulator/notifications/expire-channels` — every channel expired now
extension GenesysSimulator {
    func respondToAdmin(_ r: SimRequest) -> SimResponse {
        do {
            switch (r.method, r.path) {
            case ("GET", "/__simulator/health"):
                return .ok(.object([("ok", .bool(true))]))
            case ("GET", "/__simulator/faults"):
                return .ok(Self.faultJSON(faults))
            case ("PUT", "/__simulator/faults"):
                faults = try Self.faultPlan(from: jsonBody(r), base: faults)
                return .ok(Self.faultJSON(faults))
            case ("POST", "/__simulator/expire-tokens"):
                expireAllTokens()
                return .noContent
            case ("POST", "/__simulator/changes"):
                let body = try jsonBody(r)
                guard let change = Self.change(from: body) else {
                    throw APIError.badRequest(
                        "change must be one of insertUsers, renameFirstUser, recreateFirstRole, grantRoleToGroup, addGroupMember, "
                            + "grantRoleToUser, randomMix, dailyMix")
                }
                if let page = body["afterPage"]?.intValue {
                    mutate(change, afterPage: page, of: body["pathPrefix"]?.stringValue ?? "/api/v2/")
                } else {
                    apply(change, audited: body["audited"]?.boolValue ?? true)
                }
                return SimResponse(status: 202, body: .object([]))
            case ("POST", "/__simulator/notifications/close-sockets"):
                closeNotificationSockets()
                return .noContent
            case ("POST", "/__simulator/notifications/expire-channels"):
                expireNotificationChannels()
                return .noContent
            case ("GET", "/__simulator/truth"):
                let truth = groundTruth()
                var o = JSONObject()
                o.set("organizationId", truth.organizationId)
                o.set("users", truth.users.count)
                o.set("roles", truth.roles.count)
                o.set("groups", truth.groups.count)
                o.set("grants", truth.grants.count)
                o.set("auditEvents", auditEventCount)
                return .ok(o.json)
            default:
                throw APIError.notFound("simulator control")
            }
        } catch let error as APIError {
            return errorResponse(error, request: r)
        } catch {
            return errorResponse(APIError.badRequest("\(error)"), request: r)
        }
    }

    static func change(from body: JSON) -> SimulatedChange? {
        switch body["change"]?.stringValue {
        case "insertUsers": .insertUsers(count: max(1, body["count"]?.intValue ?? 1))
        case "renameFirstUser": .renameFirstUser
        case "recreateFirstRole": .recreateFirstRole
        case "grantRoleToGroup": .grantRoleToGroup
        case "addGroupMember": .addGroupMember
        case "grantRoleToUser": .grantRoleToUser
        case "randomMix": .randomMix(seed: UInt64(max(0, body["seed"]?.intValue ?? 1)), count: min(10_000, max(1, body["count"]?.intValue ?? 10)))
        case "dailyMix": .dailyMix(seed: UInt64(max(0, body["seed"]?.intValue ?? 1)), count: min(10_000, max(1, body["count"]?.intValue ?? 10)))
        default: nil
        }
    }

    static func faultJSON(_ plan: FaultPlan) -> JSON {
        var members: [(String, JSON)] = [
            ("latencyMs", .int(Int(plan.latency / .milliseconds(1)))),
            ("latencyJitterMs", .int(Int(plan.latencyJitter / .milliseconds(1)))),
            ("serverErrorBurst", .int(plan.serverErrorBurst)),
            ("serverErrorStatus", .int(plan.serverErrorStatus)),
            ("serverErrorRate", .double(plan.serverErrorRate)),
            ("dropConnections", .int(plan.dropConnections)),
            ("dropRate", .double(plan.dropRate)),
            ("rateLimitStorm", .int(plan.rateLimitStorm)),
            ("stormRetryAfterSeconds", .int(plan.stormRetryAfterSeconds)),
            ("malformedReplies", .int(plan.malformedReplies)),
            ("expireTokensAfterRequests", .int(plan.expireTokensAfterRequests)),
            ("droppedPushes", .int(plan.droppedPushes)),
            ("duplicatedPushes", .int(plan.duplicatedPushes)),
            ("pushesAhead", .int(plan.pushesAhead)),
            ("pushLeadSeconds", .double(plan.pushLeadSeconds)),
            ("pathPrefix", .string(plan.pathPrefix)),
        ]
        if let limit = plan.auditRateLimitPerMinute { members.append(("auditRateLimitPerMinute", .int(limit))) }
        return .object(members)
    }

    /// Reads a fault plan; members left out keep their current value.
    static func faultPlan(from body: JSON, base: FaultPlan) throws -> FaultPlan {
        guard case .object = body else { throw APIError.badRequest("The fault plan must be a JSON object.") }
        var plan = base
        func number(_ key: String) -> Double? {
            switch body[key] {
            case .int(let i): Double(i)
            case .double(let d): d
            default: nil
            }
        }
        if let v = number("latencyMs") { plan.latency = .milliseconds(Int(v)) }
        if let v = number("auditRateLimitPerMinute") { plan.auditRateLimitPerMinute = v < 0 ? nil : Int(v) }
        if let v = number("latencyJitterMs") { plan.latencyJitter = .milliseconds(Int(v)) }
        if let v = number("serverErrorBurst") { plan.serverErrorBurst = Int(v) }
        if let v = number("serverErrorStatus") { plan.serverErrorStatus = Int(v) }
        if let v = number("serverErrorRate") { plan.serverErrorRate = v }
        if let v = number("dropConnections") { plan.dropConnections = Int(v) }
        if let v = number("dropRate") { plan.dropRate = v }
        if let v = number("rateLimitStorm") { plan.rateLimitStorm = Int(v) }
        if let v = number("stormRetryAfterSeconds") { plan.stormRetryAfterSeconds = Int(v) }
        if let v = number("malformedReplies") { plan.malformedReplies = Int(v) }
        if let v = number("expireTokensAfterRequests") { plan.expireTokensAfterRequests = Int(v) }
        if let v = number("droppedPushes") { plan.droppedPushes = Int(min(max(v, 0), 1e9)) }
        if let v = number("duplicatedPushes") { plan.duplicatedPushes = Int(min(max(v, 0), 1e9)) }
        if let v = number("pushesAhead") { plan.pushesAhead = Int(min(max(v, 0), 1e9)) }
        if let v = number("pushLeadSeconds") { plan.pushLeadSeconds = min(max(v, 0), 86_400) }
        if let v = body["pathPrefix"]?.stringValue { plan.pathPrefix = v }
        return plan
    }
}
