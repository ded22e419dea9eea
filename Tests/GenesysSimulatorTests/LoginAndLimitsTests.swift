import AuditTestSupport
import Foundation
import GenesysSimulator
import Testing

@Suite("Simulator: login, tokens, rate limits, errors")
struct LoginAndLimitsTests {
    @Test("client credentials by Basic auth and a form body")
    func login() async throws {
        let sim = simulator { $0.tokenTTL = 3600 }
        try await sim.withRunning { endpoint in
            try await HTTPProbe.with(endpoint) { probe in
                let basic = Data("\(endpoint.clientId):\(endpoint.clientSecret)".utf8).base64EncodedString()
                let ok = try await probe.send(
                    "POST", "/oauth/token",
                    headers: [("Authorization", "Basic \(basic)"), ("Content-Type", "application/x-www-form-urlencoded")],
                    body: "grant_type=client_credentials")
                #expect(ok.status == 200)
                #expect(ok.object["token_type"] as? String == "bearer")
                #expect(ok.object["expires_in"] as? Int == 3599)
                #expect((ok.object["access_token"] as? String)?.isEmpty == false)
                #expect(ok.object["refresh_token"] == nil)

                let wrong = Data("\(endpoint.clientId):nope".utf8).base64EncodedString()
                let refused = try await probe.send(
                    "POST", "/oauth/token",
                    headers: [("Authorization", "Basic \(wrong)"), ("Content-Type", "application/x-www-form-urlencoded")],
                    body: "grant_type=client_credentials")
                #expect(refused.status == 400)
                #expect(refused.object["error"] as? String == "invalid_client")
                #expect(refused.object["error_description"] as? String == "authentication failed")

                let grant = try await probe.send(
                    "POST", "/oauth/token",
                    headers: [("Authorization", "Basic \(basic)"), ("Content-Type", "application/x-www-form-urlencoded")],
                    body: "grant_type=password")
                #expect(grant.object["error"] as? String == "unsupported_grant_type")

                let json = try await probe.send(
                    "POST", "/oauth/token", headers: [("Authorization", "Basic \(basic)"), ("Content-Type", "application/json")],
                    body: #"{"grant_type":"client_credentials"}"#)
                #expect(json.status == 400)
            }
        }
    }

    @Test("missing and bad bearer tokens get 401 ErrorBodies; every reply carries the headers")
    func bearer() async throws {
        let sim = simulator()
        try await sim.withRunning { endpoint in
            try await HTTPProbe.with(endpoint) { probe in
                let none = try await probe.send("GET", "/api/v2/users")
                #expect(none.status == 401)
                #expect(none.object["code"] as? String == "authentication.required")
                #expect(none.object["status"] as? Int == 401)
                let bad = try await probe.get("/api/v2/users", token: "garbage")
                #expect(bad.status == 401)
                #expect(bad.object["code"] as? String == "bad.credentials")
                let token = try await probe.token()
                let ok = try await probe.get("/api/v2/users?pageSize=1", token: token)
                let missing = try await probe.get("/api/v2/authorization/roles/00000000-0000-0000-0000-000000000000", token: token)
                #expect(missing.status == 404)
                #expect(missing.object["code"] as? String == "not.found")
                for reply in [none, bad, ok, missing] {
                    #expect(reply.header("inin-correlation-id")?.count == 36)
                    #expect(reply.header("inin-ratelimit-allowed") != nil)
                    #expect(reply.header("inin-ratelimit-count") != nil)
                    #expect(reply.header("inin-ratelimit-reset") != nil)
                    #expect(missing.object["contextId"] as? String == missing.header("inin-correlation-id"))
                }
            }
        }
    }

    @Test("a token over its per-minute budget gets 429 with Retry-After")
    func rateLimit() async throws {
        // The window moves by hand: it cannot end between two requests on a loaded machine.
        let clock = ManualClock()
        let sim = simulator {
            $0.rateLimitPerMinute = 5
            $0.uptime = { clock.seconds() }
        }
        try await sim.withRunning { endpoint in
            try await HTTPProbe.with(endpoint) { probe in
                let token = try await probe.token()
                var replies: [HTTPProbe.Reply] = []
                for _ in 0..<6 { replies.append(try await probe.get("/api/v2/authorization/divisions", token: token)) }
                #expect(replies.prefix(5).allSatisfy { $0.status == 200 })
                #expect(replies[4].header("inin-ratelimit-count") == "5")
                #expect(replies[4].header("inin-ratelimit-allowed") == "5")
                let limited = replies[5]
                #expect(limited.status == 429)
                let retryAfter = try #require(limited.header("Retry-After").flatMap(Int.init))
                #expect((1...60).contains(retryAfter))
                #expect(limited.object["code"] as? String == "too.many.requests.retry.after")
                #expect((limited.object["message"] as? String)?.contains("[\(retryAfter)]") == true)
                // A new token has its own budget.
                let other = try await probe.token()
                #expect(try await probe.get("/api/v2/authorization/divisions", token: other).status == 200)
                // When the window ends the first token's budget is whole again.
                clock.advance(by: .seconds(60))
                let renewed = try await probe.get("/api/v2/authorization/divisions", token: token)
                #expect(renewed.status == 200)
                #expect(renewed.header("inin-ratelimit-count") == "1")
            }
        }
    }

    @Test("expired tokens are refused with bad.credentials")
    func tokenLifetime() async throws {
        // The simulator's uptime moved by hand: a token expires when the clock says so, however
        // loaded the machine is.
        let clock = ManualClock()
        let sim = simulator {
            $0.tokenTTL = 60
            $0.uptime = { clock.seconds() }
        }
        try await sim.withRunning { endpoint in
            try await HTTPProbe.with(endpoint) { probe in
                let token = try await probe.token()
                #expect(try await probe.get("/api/v2/tokens/me", token: token).status == 200)
                clock.advance(by: .seconds(59))
                #expect(try await probe.get("/api/v2/tokens/me", token: token).status == 200)
                clock.advance(by: .seconds(1))
                let expired = try await probe.get("/api/v2/tokens/me", token: token)
                #expect(expired.status == 401)
                #expect(expired.object["code"] as? String == "bad.credentials")
                let fresh = try await probe.token()
                #expect(try await probe.get("/api/v2/tokens/me", token: fresh).status == 200)
                sim.expireAllTokens()
                #expect(try await probe.get("/api/v2/tokens/me", token: fresh).status == 401)
            }
        }
    }

    @Test("a missing permission is a 403 naming it")
    func missingPermission() async throws {
        let sim = simulator { config in
            config.auditorPermissions = SimulatorConfiguration.defaultAuditorPermissions.filter { $0 != "directory:user:view" }
        }
        try await sim.withRunning { endpoint in
            try await HTTPProbe.with(endpoint) { probe in
                let token = try await probe.token()
                let denied = try await probe.get("/api/v2/users", token: token)
                #expect(denied.status == 403)
                #expect(denied.object["code"] as? String == "missing.permissions")
                #expect((denied.object["message"] as? String)?.hasSuffix("[directory:user:view]") == true)
                // The auditor cannot write either.
                let write = try await probe.call("POST", "/api/v2/authorization/roles", token: token, json: #"{"name":"x"}"#)
                #expect(write.status == 403)
            }
        }
    }

    @Test("injected faults: 5xx bursts, 429 storms, malformed bodies, dropped connections")
    func faults() async throws {
        let sim = simulator()
        try await sim.withRunning { endpoint in
            try await HTTPProbe.with(endpoint) { probe in
                let token = try await probe.token()
                var plan = FaultPlan()
                plan.serverErrorBurst = 1
                plan.rateLimitStorm = 1
                plan.stormRetryAfterSeconds = 7
                sim.faults = plan
                let unavailable = try await probe.get("/api/v2/authorization/divisions", token: token)
                #expect(unavailable.status == 503)
                #expect(unavailable.object["code"] as? String == "service.unavailable")
                let storm = try await probe.get("/api/v2/authorization/divisions", token: token)
                #expect(storm.status == 429)
                #expect(storm.header("Retry-After") == "7")
                plan = FaultPlan()
                plan.malformedReplies = 1
                sim.faults = plan
                let broken = try await probe.get("/api/v2/authorization/divisions", token: token)
                #expect(broken.status == 200)
                #expect(broken.json == nil, "the body does not parse")
                #expect(try await probe.get("/api/v2/authorization/divisions", token: token).json != nil)
                plan = FaultPlan()
                plan.dropConnections = 1
                sim.faults = plan
                await #expect(throws: (any Error).self) { try await probe.get("/api/v2/authorization/divisions", token: token) }
                #expect(try await probe.get("/api/v2/authorization/divisions", token: token).status == 200)
            }
        }
    }

    @Test("the fault plan can be read and changed over HTTP")
    func faultsOverHTTP() async throws {
        let sim = simulator()
        try await sim.withRunning { endpoint in
            try await HTTPProbe.with(endpoint) { probe in
                let put = try await probe.send("PUT", "/__simulator/faults", body: #"{"latencyMs":5,"serverErrorRate":0.25}"#)
                #expect(put.status == 200)
                #expect(sim.faults.latency == .milliseconds(5))
                #expect(sim.faults.serverErrorRate == 0.25)
                let got = try await probe.send("GET", "/__simulator/faults")
                #expect(got.object["latencyMs"] as? Int == 5)
            }
        }
    }
}
