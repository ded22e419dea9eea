import AuditTestSupport
@testable import GenesysClient
import GenesysSimulator
import Logging
import Testing

@Suite("Retry policy and rate-limit pacing")
struct RetryAndPacingTests {
    @Test("backoff grows exponentially, is capped, and has bounded jitter")
    func backoff() {
        let policy = RetryPolicy(baseDelay: .milliseconds(100), maxDelay: .seconds(2))
        #expect(policy.backoff(attempt: 1, random: 0) == .milliseconds(50))
        #expect(policy.backoff(attempt: 1, random: 1) == .milliseconds(100))
        #expect(policy.backoff(attempt: 3, random: 1) == .milliseconds(400))
        #expect(policy.backoff(attempt: 20, random: 1) == .seconds(2))
        #expect(policy.backoff(attempt: 20, random: 0) == .seconds(1))
        for attempt in 1...10 {
            let low = policy.backoff(attempt: attempt, random: 0)
            let high = policy.backoff(attempt: attempt, random: 1)
            #expect(low <= high && high <= .seconds(2))
        }
    }

    @Test("a 429 waits the server's Retry-After, capped")
    func retryAfter() {
        let policy = RetryPolicy(maxRetryAfter: .seconds(30))
        #expect(policy.rateLimitDelay(retryAfter: .seconds(12), attempt: 1, random: 0.5) == .seconds(12))
        #expect(policy.rateLimitDelay(retryAfter: .seconds(600), attempt: 1, random: 0.5) == .seconds(30))
        #expect(policy.rateLimitDelay(retryAfter: nil, attempt: 1, random: 1) == policy.backoff(attempt: 1, random: 1))
        #expect(RetryPolicy.isRetriable(status: 503) && RetryPolicy.isRetriable(status: 504) && !RetryPolicy.isRetriable(status: 404))
    }

    @Test("the pacer holds requests once the window's budget is spent, until it resets")
    func pacerWaitsForReset() async throws {
        let clock = ManualClock()
        let pacer = RateLimitPacer(clock: clock, reserve: 0)
        try await pacer.acquire()
        await pacer.complete(allowed: 3, count: 3, resetSeconds: 10)
        let waiter = Task { try await pacer.acquire() }
        // The waiter is asleep until the window resets.
        try await waitUntil { clock.sleeping == 1 }
        clock.advance(by: .seconds(5))
        #expect(clock.sleeping == 1)
        clock.advance(by: .seconds(6))
        try await waiter.value
        #expect(await pacer.waited > .seconds(10))
    }

    @Test("requests in flight count against the budget")
    func pacerCountsInFlight() async throws {
        let clock = ManualClock()
        let pacer = RateLimitPacer(clock: clock, reserve: 0)
        try await pacer.acquire()
        await pacer.complete(allowed: 3, count: 1, resetSeconds: 60)
        try await pacer.acquire()
        try await pacer.acquire()  // two in flight, one used: the budget of three is spoken for
        let third = Task { try await pacer.acquire() }
        try await waitUntil { clock.sleeping == 1 }
        await pacer.complete(allowed: 3, count: 2, resetSeconds: 59)
        clock.advance(by: .seconds(30))
        #expect(clock.sleeping == 1, "still held half way through the window")
        clock.advance(by: .seconds(31))
        let held = try await third.value
        // Held until the window reset (59 or 60 s from now, plus 50 ms for clock skew), and counted.
        #expect(held > .seconds(59) && held <= .milliseconds(60_050), "\(held)")
        #expect(await pacer.waited == held)
    }

    @Test("a 429 blocks every request for Retry-After")
    func pacerBlocks() async throws {
        let clock = ManualClock()
        let pacer = RateLimitPacer(clock: clock)
        await pacer.block(for: .seconds(7))
        let waiter = Task { try await pacer.acquire() }
        let other = Task { try await pacer.acquire() }
        try await waitUntil { clock.sleeping == 2 }
        clock.advance(by: .seconds(6))
        #expect(clock.sleeping == 2, "both held until the Retry-After ends")
        clock.advance(by: .seconds(1))
        #expect(try await waiter.value == .seconds(7))
        #expect(try await other.value == .seconds(7))
    }

    @Test("tokens are renewed a tenth of their lifetime early, at most five minutes")
    func renewal() {
        #expect(TokenProvider.renewalBuffer(lifetime: .seconds(86_399)) == .seconds(300))
        #expect(TokenProvider.renewalBuffer(lifetime: .seconds(600)) == .seconds(60))
        #expect(TokenProvider.renewalBuffer(lifetime: .seconds(2)) == .milliseconds(200))
    }

    @Test("a token is renewed on schedule, a tenth of its lifetime before the server would refuse it")
    func renewalOnSchedule() async throws {
        // One manual clock for the client and the simulator's token lifetimes.
        let clock = ManualClock()
        let sim = TestSupport.simulator(users: 5, seed: 2) {
            $0.tokenTTL = 600
            $0.uptime = { clock.seconds() }
        }
        let transport = AsyncHTTPClientTransport(connectTimeout: .seconds(2))
        do {
            try await sim.withRunning { endpoint in
                let provider = TokenProvider(
                    transport: transport, loginBaseURL: endpoint.loginBaseURL, clientId: endpoint.clientId,
                    secret: Secret(endpoint.clientSecret), clock: clock, retry: TestSupport.fastRetry, logger: .init(label: "test"))
                let first = try await provider.token()
                // expires_in is 599: the client renews 59.9 s early, at 539.1 s.
                clock.advance(by: .seconds(539))
                #expect(try await provider.token() == first)
                #expect(await provider.logins == 1)
                clock.advance(by: .milliseconds(200))
                let second = try await provider.token()
                #expect(second != first)
                #expect(await provider.logins == 2)
            }
        } catch {
            await transport.shutdown()
            throw error
        }
        await transport.shutdown()
    }

    @Test("a transport dropped without shutdown() does not take the process down; the next one works")
    func droppedTransport() async throws {
        let sim = TestSupport.simulator(users: 5, seed: 3)
        try await sim.withRunning { endpoint in
            do {
                // An error path that forgets shutdown(): the client had a live connection.
                let forgotten = AsyncHTTPClientTransport(connectTimeout: .seconds(20))
                let reply = try await forgotten.send(.init(method: "GET", url: endpoint.apiBaseURL + "/api/v2/users"))
                #expect(reply.status == 401)
            }
            let next = AsyncHTTPClientTransport(connectTimeout: .seconds(20))
            let reply = try await next.send(.init(method: "GET", url: endpoint.apiBaseURL + "/api/v2/users"))
            await next.shutdown()
            await next.shutdown()  // twice is harmless
            #expect(reply.status == 401)
        }
    }

    @Test("regions map to their API and login hosts")
    func regions() {
        #expect(GenesysRegion.baseURLs(for: "eu-west-1")?.api == "https://api.mypurecloud.ie")
        #expect(GenesysRegion.baseURLs(for: "eu-west-1")?.login == "https://login.mypurecloud.ie")
        #expect(GenesysRegion.baseURLs(for: "mypurecloud.com.au")?.login == "https://login.mypurecloud.com.au")
        #expect(GenesysRegion.baseURLs(for: "US-EAST-2")?.api == "https://api.use2.us-gov-pure.cloud")
        #expect(GenesysRegion.baseURLs(for: "mars-north-1") == nil)
        #expect(GenesysRegion.apiHosts.count == 18)
    }

    @Test("error bodies are read into typed errors")
    func errorBodies() {
        #expect(
            GenesysAPIError.permissions(inMessage: "You are missing the following permission(s): [oauth:client:view, audits:audit:view]")
                == ["oauth:client:view", "audits:audit:view"])
        let error = GenesysAPIError(
            method: "GET", path: "/api/v2/users?pageSize=1", status: 403, code: "missing.permissions", message: "denied",
            correlationId: "abc")
        #expect(error.description == "GET /api/v2/users answered 403 missing.permissions: denied (correlation id abc)")
    }

    @Test("secrets never print")
    func secrets() {
        let secret = Secret("hunter2")
        #expect("\(secret)" == "<redacted>")
        #expect(String(reflecting: secret) == "<redacted>")
        #expect(!String(describing: Mirror(reflecting: secret).children.map(\.value)).contains("hunter2"))
        let connection = GenesysConnection(apiBaseURL: "https://x/", loginBaseURL: "https://y", clientId: "id", clientSecret: secret)
        #expect(!"\(connection)".contains("hunter2"))
        #expect(connection.apiBaseURL == "https://x")
    }

    /// Polls a condition with a deadline (the waiter needs a moment to reach its sleep).
    func waitUntil(_ condition: () -> Bool) async throws {
        // A hang catcher: a loaded test process can be seconds late to run a task.
        let deadline = ContinuousClock.now + .seconds(60)
        while !condition() {
            guard ContinuousClock.now < deadline else {
                Issue.record("condition not reached in time")
                return
            }
            try await Task.sleep(for: .milliseconds(2))
        }
    }
}
