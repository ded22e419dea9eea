import AuditCore
import AuditTestSupport
import Foundation
@testable import GenesysClient
import GenesysSimulator
import Synchronization
import Testing

/// The client against a misbehaving server over loopback: the simulator behind `HostileServer`,
/// one reply corrupted at a time. Every case must end — with a result or one clear error — in
/// bounded time and requests.
@Suite("Client against a hostile server")
struct HostileServerTests {
    static func simulator(users: Int = 120) -> GenesysSimulator { TestSupport.simulator(users: users, seed: 21) }

    /// A client with short waits (the shared test client).
    static func withClient<T: Sendable>(
        _ endpoint: SimulatorEndpoint, requestTimeout: Duration = .seconds(20), _ body: (GenesysAPIClient) async throws -> T
    ) async throws -> T {
        try await TestSupport.withClient(endpoint, requestTimeout: requestTimeout, body)
    }

    // MARK: Numbers

    @Test("Retry-After headers that are not numbers, or absurd ones, never trap and never mean a long wait")
    func retryAfterParsing() {
        for text in ["inf", "-inf", "nan", "NaN", "infinity", "0x1p3", "", " ", "1e300", "-5", "12abc"] {
            let parsed = RetryPolicy.retryAfter(header: text)
            let delay = RetryPolicy().rateLimitDelay(retryAfter: parsed, attempt: 1, random: 0.5)
            #expect(delay >= .zero && delay <= RetryPolicy.retryAfterCeiling, "\(text) → \(delay)")
        }
        #expect(RetryPolicy.retryAfter(header: "12") == .seconds(12))
        #expect(RetryPolicy.retryAfter(header: "1.5") == .milliseconds(1500))
        #expect(RetryPolicy.retryAfter(header: "inf") == nil)
        #expect(RetryPolicy.retryAfter(header: "1e300") == .seconds(86_400))
        #expect(RetryPolicy().rateLimitDelay(retryAfter: RetryPolicy.retryAfter(header: "999999"), attempt: 1, random: 0) == .seconds(300))
    }

    @Test(
        "a 429 whose Retry-After is inf, nan, negative or not a number is waited out as a backoff; the walk completes",
        arguments: ["inf", "nan", "-1", "soon"])
    func absurdRetryAfter(_ value: String) async throws {
        let sim = Self.simulator()
        let rule = HostileServer.Rule.path("/api/v2/users", times: 2) { _, reply in
            reply = .init(status: 429, json: #"{"message":"Rate limit exceeded","code":"too.many.requests.retry.after","status":429}"#)
            reply.set("Retry-After", value)
        }
        let started = ContinuousClock.now
        let (snapshot, report) = try await sim.withHostile([rule]) { endpoint, _ in
            try await Self.withClient(endpoint) { try await Collector(client: $0).collect() }
        }
        // The waits the client chose (the test policy caps a Retry-After at 5 s): two of them,
        // however many requests were held by them.
        #expect(report.statistics.waited < .seconds(5 * 2 * 8), "\(report.statistics.waited)")
        #expect(report.statistics.rateLimited == 2)
        // A hang catcher, not a measure: alone this takes about 2 s, a loaded machine 30 times that.
        #expect(ContinuousClock.now - started < .seconds(180))
        #expect(TestSupport.differences(snapshot, sim.groundTruth()) == [])
    }

    @Test("rate-limit headers with absurd numbers leave the pacer's waits bounded")
    func absurdRateLimitHeaders() async throws {
        let sim = Self.simulator()
        let rule = HostileServer.Rule.path("/api/v2/", times: 3) { _, reply in
            reply.set("inin-ratelimit-allowed", "99999999999999999999999")
            reply.set("inin-ratelimit-count", "-4")
            reply.set("inin-ratelimit-reset", "1e300")
        }
        let started = ContinuousClock.now
        let (snapshot, report) = try await sim.withHostile([rule]) { endpoint, _ in
            try await Self.withClient(endpoint) { try await Collector(client: $0).collect() }
        }
        // A count of -4 is out of range, so nothing is held for a window said to reset in 1e300 s.
        #expect(report.statistics.waited < .seconds(5), "absurd numbers are not believed: \(report.statistics.waited)")
        #expect(ContinuousClock.now - started < .seconds(180), "a hang catcher, not a measure")
        #expect(!snapshot.isPartial)
    }

    @Test("a login reply with expires_in 1e300, -1 or 0 is believed within 60 s to 48 h")
    func absurdTokenLifetime() async throws {
        for value in ["1e300", "-1", "0"] {
            let sim = Self.simulator(users: 20)
            let rule = HostileServer.Rule.path("/oauth/token") { _, reply in
                HostileServer.rewriteJSON(&reply) { $0["expires_in"] = Double(value)! }
            }
            let logins = try await sim.withHostile([rule]) { endpoint, _ in
                try await Self.withClient(endpoint) { client in
                    _ = try await Collector(client: client).collect()
                    return await client.logins()
                }
            }
            #expect(logins == 1, "expires_in \(value): one login for the whole collection, not one per request")
        }
    }

    // MARK: Waits

    @Test("a reply trickled a byte at a time is cut at the request deadline, the endpoint named",
        arguments: [HostileServer.Delivery.trickle(.milliseconds(150)), .trickleBody(.milliseconds(50)), .stall])
    func slowLoris(_ delivery: HostileServer.Delivery) async throws {
        let sim = Self.simulator(users: 20)
        let rule = HostileServer.Rule.path("/api/v2/authorization/roles", delivery: delivery)
        let started = ContinuousClock.now
        // One request (and the login): a whole collection's many healthy requests would meet
        // the same short deadline on a loaded machine; the collection's case is the binary's
        // (HostileInputTests).
        let (failure, attempts) = try await sim.withHostile([rule]) { endpoint, server in
            do {
                _ = try await Self.withClient(endpoint, requestTimeout: .seconds(15)) { client in
                    try await client.send("GET", "/api/v2/authorization/roles?pageSize=25&pageNumber=1")
                }
                return (GenesysClientError?.none, server.requests("/api/v2/authorization/roles"))
            } catch let error as GenesysClientError {
                return (error, server.requests("/api/v2/authorization/roles"))
            }
        }
        // Bounded in requests: three attempts, each cut at its deadline. In time: 3 x 15 s and the
        // backoffs, about 46 s alone; the ceiling leaves room for a loaded 2-core machine, and
        // unbounded, a trickled page would take many minutes. (A 6 s deadline let the whole
        // suite's load delay the in-process server's headers past it in a fresh-clone run.)
        #expect(attempts == 3)
        let elapsed = ContinuousClock.now - started
        #expect(elapsed < .seconds(150), "\(delivery): \(elapsed)")
        let error = try #require(failure, "the request must fail")
        #expect(error.kind == .timeout)
        let text = error.description
        #expect(text.hasPrefix("GET /api/v2/authorization/roles failed after 3 attempts: "), "\(text)")
        #expect(text.contains("within 15 s"), "\(text)")
        if case .trickleBody = delivery {
            #expect(text.contains("the body was still arriving"), "\(text)")
        } else {
            #expect(text.contains("waiting for the headers"), "\(text)")
        }
    }

    @Test("a silence shorter than the deadline is cut by the idle timeout, and says so; one as long as it reads as the deadline")
    func idleTimeout() async throws {
        let sim = Self.simulator(users: 5)
        let rule = HostileServer.Rule.path("/api/v2/organizations/me", delivery: .stall)
        let (short, long) = try await sim.withHostile([rule]) { endpoint, _ in
            func failure(idle: Duration, deadline: Duration) async -> String {
                let transport = AsyncHTTPClientTransport(connectTimeout: .seconds(2), idleTimeout: idle)
                let outcome: String
                do {
                    _ = try await transport.send(.init(method: "GET", url: endpoint.apiBaseURL + "/api/v2/organizations/me", timeout: deadline))
                    outcome = "answered"
                } catch {
                    outcome = error.message
                }
                await transport.shutdown()
                return outcome
            }
            return (await failure(idle: .seconds(1), deadline: .seconds(60)), await failure(idle: .seconds(2), deadline: .seconds(2)))
        }
        #expect(short.hasSuffix("went silent for 1 s (waiting for the headers)"), "\(short)")
        #expect(long.hasPrefix("no reply from 127.0.0.1:") && long.hasSuffix("within 2 s (waiting for the headers)"), "\(long)")
    }

    @Test("one slow reply is retried and the collection completes")
    func slowOnce() async throws {
        let sim = Self.simulator()
        let rule = HostileServer.Rule.path("/api/v2/users", times: 1, delivery: .trickleBody(.milliseconds(200)))
        let (snapshot, report) = try await sim.withHostile([rule]) { endpoint, _ in
            try await Self.withClient(endpoint) { try await Collector(client: $0).collect() }
        }
        #expect(TestSupport.differences(snapshot, sim.groundTruth()) == [])
        #expect(report.statistics.transportErrors == 1)
    }

    @Test("a collection past its deadline fails with one line naming the phase")
    func collectionDeadline() async throws {
        let sim = Self.simulator(users: 20)
        // Every reply says the rate-limit budget is spent for five minutes.
        let rule = HostileServer.Rule.path("/api/v2/") { _, reply in
            reply.set("inin-ratelimit-allowed", "10")
            reply.set("inin-ratelimit-count", "10")
            reply.set("inin-ratelimit-reset", "999999")
        }
        let started = ContinuousClock.now
        let error = await #expect(throws: GenesysClientError.self) {
            try await sim.withHostile([rule]) { endpoint, _ in
                try await Self.withClient(endpoint) { client in
                    var options = CollectorOptions()
                    options.deadline = .seconds(2)
                    return try await Collector(client: client, options: options).collect()
                }
            }
        }
        #expect(ContinuousClock.now - started < .seconds(180), "a hang catcher, not a measure")
        // The phase it names depends on how far it got on a loaded machine; that it names one does not.
        let text = error?.description ?? ""
        #expect(text.contains("did not finish within 2 s (--timeout): still at ") && text.contains(" requests; raise --timeout"), "\(text)")
    }

    @Test("an async audit query that stays Queued is given up after its timeout, the endpoint named")
    func asyncQueryStaysQueued() async throws {
        let sim = Self.simulator(users: 20)
        let rule = HostileServer.Rule(matches: { $0.method == "GET" && $0.path.hasPrefix("/api/v2/audits/query/") && !$0.path.hasSuffix("/results") }) {
            _, reply in
            HostileServer.rewriteJSON(&reply) { $0["state"] = "Queued" }
            reply.status = 202
        }
        let started = ContinuousClock.now
        let error = await #expect(throws: AuditSourceError.self) {
            try await sim.withHostile([rule]) { endpoint, server in
                try await Self.withClient(endpoint) { client in
                    let source = GenesysAuditSource(client: client, pollInterval: .milliseconds(50), queryTimeout: .seconds(1))
                    _ = try await source.fetch(from: Date().addingTimeInterval(-86_400 * 20), to: Date(), service: "PeoplePermissions", entityType: nil, realtime: false)
                }
            }
        }
        #expect(ContinuousClock.now - started < .seconds(180), "a hang catcher, not a measure")
        #expect("\(error!)".contains("was still Queued after 1 s (waited for Succeeded)"), "\(error!)")
        #expect("\(error!)".hasPrefix("GET /api/v2/audits/query/"))
    }

    // MARK: Loops

    @Test("a nextUri that points back at the same page ends the walk, with the reason, in a few requests")
    func nextUriLoop() async throws {
        let sim = Self.simulator()
        let rule = HostileServer.Rule.pagesPointingAtThemselves("/api/v2/groups")
        let (walk, requests) = try await sim.withHostile([rule]) { endpoint, server in
            let walk = try await Self.withClient(endpoint) { client in
                try await client.walkPages("/api/v2/groups", pageSize: 100, id: { (g: GroupWire) in g.id })
            }
            return (walk, server.requests("/api/v2/groups"))
        }
        #expect(walk.truncation?.contains("nextUri") == true, "\(walk.truncation ?? "none")")
        #expect(requests <= 4, "\(requests) requests")
        #expect(!walk.items.isEmpty)
    }

    @Test("a pageCount of a billion over the same rows stops after a window, never sized from the count")
    func billionPages() async throws {
        let sim = Self.simulator()
        let first = Mutex<Data?>(nil)
        let rule = HostileServer.Rule.path("/api/v2/users", method: "GET") { request, reply in
            HostileServer.rewriteJSON(&reply) { page in
                page["pageCount"] = 1_000_000_000
                page["total"] = 1_000_000_000
                // Every page the same rows as the first.
                if let seen = first.withLock({ $0 }) {
                    page["entities"] = try? JSONSerialization.jsonObject(with: seen)
                } else if let rows = page["entities"] {
                    let data = try? JSONSerialization.data(withJSONObject: rows)
                    first.withLock { $0 = data }
                }
            }
        }
        let (walk, requests) = try await sim.withHostile([rule]) { endpoint, server in
            let walk = try await Self.withClient(endpoint) { client in
                try await client.walkPages("/api/v2/users", query: [("state", "any")], pageSize: 25, id: { (u: UserWire) in u.id })
            }
            return (walk, server.requests("/api/v2/users"))
        }
        #expect(walk.truncation?.contains("repeats rows already read") == true, "\(walk.truncation ?? "none")")
        #expect(requests <= 20, "\(requests) requests")
        #expect(walk.items.count == 25)
    }

    @Test("a page ceiling stops an endless list of new rows with the reason")
    func pageCeiling() async throws {
        let sim = Self.simulator(users: 300)
        let (walk, requests) = try await sim.withHostile([]) { endpoint, server in
            let client = GenesysAPIClient(
                connection: TestSupport.connection(endpoint), transport: AsyncHTTPClientTransport(), retry: TestSupport.fastRetry,
                paging: { var limits = PagingLimits(); limits.maxPages = 5; return limits }())
            let walk = try await client.walkPages("/api/v2/users", query: [("state", "any")], pageSize: 25, id: { (u: UserWire) in u.id })
            await client.shutdown()
            return (walk, server.requests("/api/v2/users"))
        }
        #expect(walk.truncation?.contains("stopped at 5 pages") == true, "\(walk.truncation ?? "none")")
        #expect(walk.items.count == 125)
        #expect(requests <= 5 + PagingLimits().window)
    }

    @Test("a cursor that repeats ends a cursor walk")
    func cursorLoop() async throws {
        let sim = Self.simulator()
        // Every page's nextUri is the first page's: a cursor that never moves on.
        let firstNext = Mutex<String?>(nil)
        let rule = HostileServer.Rule.path("/api/v2/teams", method: "GET") { _, reply in
            HostileServer.rewriteJSON(&reply) { page in
                if let next = firstNext.withLock({ $0 }) {
                    page["nextUri"] = next
                } else {
                    let next = page["nextUri"] as? String
                    firstNext.withLock { $0 = next }
                }
            }
        }
        let (walk, requests) = try await sim.withHostile([rule]) { endpoint, server in
            let walk = try await Self.withClient(endpoint) { client in
                try await client.walkCursor("/api/v2/teams", pageSize: 1, id: { (t: TeamWire) in t.id })
            }
            return (walk, server.requests("/api/v2/teams"))
        }
        #expect(walk.truncation != nil)
        #expect(requests <= 3, "\(requests) requests")
    }

    @Test("a list that loops makes the snapshot partial with the reason, not a request storm")
    func collectorTruncation() async throws {
        let sim = Self.simulator()
        let rule = HostileServer.Rule.pagesPointingAtThemselves("/api/v2/oauth/clients")
        let (snapshot, requests) = try await sim.withHostile([rule]) { endpoint, server in
            let (snapshot, _) = try await Self.withClient(endpoint) { try await Collector(client: $0).collect() }
            return (snapshot, server.requests("/api/v2/oauth/clients"))
        }
        #expect(snapshot.isPartial)
        #expect(snapshot.problems.contains { $0.code == "truncated.list" && $0.message.contains("nextUri") }, "\(snapshot.problems)")
        #expect(requests <= 10, "\(requests) requests")
    }

    // MARK: Secrets

    @Test("a login reply whose token is not a bearer token is refused without quoting it")
    func hostileToken() async throws {
        let sim = Self.simulator(users: 20)
        let planted = "tok\r\nX-Leak: PLANTED-SECRET-7f3a"
        let rule = HostileServer.Rule.path("/oauth/token") { _, reply in
            HostileServer.rewriteJSON(&reply) { $0["access_token"] = planted }
        }
        let error = await #expect(throws: GenesysClientError.self) {
            try await sim.withHostile([rule]) { endpoint, _ in
                try await Self.withClient(endpoint) { try await Collector(client: $0).collect() }
            }
        }
        let text = error?.description ?? ""
        #expect(text.contains("not a valid bearer token (not shown)"), "\(text)")
        #expect(!text.contains("PLANTED-SECRET"))
    }

    @Test("an error message that echoes our token or secret is scrubbed of both")
    func echoedCredentials() async throws {
        let sim = Self.simulator(users: 20)
        let secret = try await sim.withRunning { $0.clientSecret }
        let rule = HostileServer.Rule.path("/api/v2/oauth/clients", method: "GET") { request, reply in
            reply = .init(
                status: 403,
                json: #"{"message":"token \#(request.token ?? "") of client with secret \#(secret) may not read [oauth:client:view]","code":"missing.permissions","status":403}"#)
        }
        let (snapshot, tokens) = try await sim.withHostile([rule]) { endpoint, server in
            let (snapshot, _) = try await Self.withClient(endpoint) { try await Collector(client: $0).collect() }
            return (snapshot, server.tokens)
        }
        let problems = snapshot.problems.map { "\($0.message) \($0.permissions)" }.joined(separator: "\n")
        #expect(snapshot.isPartial)
        #expect(!tokens.isEmpty)
        for token in tokens { #expect(!problems.contains(token)) }
        #expect(!problems.contains(secret))
    }

    @Test("ids from a reply go into paths percent-encoded: an id cannot choose the endpoint")
    func pathSegments() {
        #expect(GenesysAPIClient.segment("5f1c-ab_9") == "5f1c-ab_9")
        #expect(GenesysAPIClient.segment("../../users?x=1") == "%2E%2E%2F%2E%2E%2Fusers%3Fx%3D1")
        #expect(GenesysAPIClient.segment("a\r\nb") == "a%0D%0Ab")
        #expect(GenesysAPIClient.segment("") == "%2E")
    }
}
