import AuditCore
import Foundation
import Logging
import Synchronization

/// Where and as whom to talk to Genesys Cloud, and how long to wait for it.
public struct GenesysConnection: Sendable {
    public var apiBaseURL: String
    public var loginBaseURL: String
    public var clientId: String
    public var clientSecret: Secret
    public var limits: Limits

    /// How long one request may take (connection, headers and the whole body), and one whole
    /// collection of the organisation.
    public struct Limits: Sendable, Equatable {
        public var request: Duration = .seconds(60)
        public var collection: Duration = .seconds(3600)
        public init() {}
    }

    public init(apiBaseURL: String, loginBaseURL: String, clientId: String, clientSecret: Secret, limits: Limits = Limits()) {
        self.apiBaseURL = apiBaseURL.hasSuffix("/") ? String(apiBaseURL.dropLast()) : apiBaseURL
        self.loginBaseURL = loginBaseURL
        self.clientId = clientId
        self.clientSecret = clientSecret
        self.limits = limits
    }
}

/// Counters of what the client did, for summaries and benchmarks.
public struct ClientStatistics: Sendable, Equatable {
    /// HTTP requests sent to the API (login excluded), retries included.
    public var requests = 0
    public var rateLimited = 0
    public var serverErrors = 0
    public var transportErrors = 0
    public var malformedReplies = 0
    public var retries = 0
    public var reauthentications = 0
    public var bytesReceived = 0
    /// Time this client's requests chose to wait, summed over requests: backoffs, `Retry-After`
    /// and the pacer's holds, as planned (a loaded machine's late wake-ups are not counted).
    public var waited: Duration = .zero
}

/// Calls the Platform API: bearer tokens, pacing from the rate-limit headers, retries with
/// backoff on 5xx, resets and timeouts, `Retry-After` on 429, one re-login on a 401, and typed
/// errors. Safe to share between tasks.
public final class GenesysAPIClient: Sendable {
    public let connection: GenesysConnection
    public let retry: RetryPolicy
    /// Ceilings on walking one list.
    public let paging: PagingLimits
    let transport: any HTTPTransport
    let tokens: TokenProvider
    let pacer: RateLimitPacer
    let clock: any APIClock
    let logger: Logger
    private let stats = Mutex(ClientStatistics())
    private let requestTimeout: Duration
    private let limiter: AsyncLimiter
    private let budget = Mutex<(left: Int, allowed: Int)?>(nil)

    public init(
        connection: GenesysConnection, transport: any HTTPTransport, clock: any APIClock = SystemAPIClock(),
        retry: RetryPolicy = RetryPolicy(), requestTimeout: Duration? = nil, maxConcurrentRequests: Int = 8,
        paging: PagingLimits = PagingLimits(), logger: Logger = Logger(label: "rbacwatch.client", factory: { _ in SwiftLogNoOpLogHandler() })
    ) {
        self.connection = connection
        self.transport = transport
        self.clock = clock
        self.retry = retry
        self.paging = paging
        self.logger = logger
        self.requestTimeout = requestTimeout ?? connection.limits.request
        self.limiter = AsyncLimiter(limit: maxConcurrentRequests)
        self.pacer = RateLimitPacer(clock: clock)
        self.tokens = TokenProvider(
            transport: transport, loginBaseURL: connection.loginBaseURL, clientId: connection.clientId,
            secret: connection.clientSecret, clock: clock, retry: retry, logger: logger)
    }

    public var statistics: ClientStatistics { stats.withLock { $0 } }

    /// Logins performed (the first one included).
    public func logins() async -> Int { await tokens.logins }

    /// Budget left in the current rate-limit window, as the last reply reported it.
    public var lastRateBudget: (left: Int, allowed: Int)? { budget.withLock { $0 } }

    /// Logs in now, so that bad credentials fail before any other work.
    public func authenticate() async throws {
        _ = try await tokens.token()
    }

    /// GETs `pathAndQuery` (relative, `/api/v2/...`) and decodes the reply.
    public func get<T: Decodable>(_ pathAndQuery: String, as type: T.Type = T.self) async throws -> T {
        try await request("GET", pathAndQuery, body: nil, decode: type)
    }

    /// Sends a request with an optional JSON body and decodes the reply.
    public func request<T: Decodable>(_ method: String, _ pathAndQuery: String, body: [UInt8]?, decode type: T.Type) async throws -> T {
        try await execute(method, pathAndQuery, body: body) { response in
            try JSONDecoder().decode(T.self, from: Data(response.body))
        }
    }

    /// Sends a request and returns the raw reply of a 2xx answer.
    public func send(_ method: String, _ pathAndQuery: String, body: [UInt8]? = nil) async throws -> HTTPResponseData {
        try await execute(method, pathAndQuery, body: body) { $0 }
    }

    private func count(_ update: (inout ClientStatistics) -> Void) {
        stats.withLock { update(&$0) }
    }

    /// Sleeps a backoff, counted in `statistics.waited`.
    private func wait(_ delay: Duration) async throws {
        count { $0.waited += delay }
        try await clock.sleep(for: delay)
    }

    /// The request loop. `parse` turns a 2xx reply into a value; a parse failure is retried a
    /// few times (a truncated reply may be transient) and then reported as malformed.
    private func execute<T>(
        _ method: String, _ pathAndQuery: String, body: [UInt8]?, parse: (HTTPResponseData) throws -> T
    ) async throws -> T {
        guard pathAndQuery.hasPrefix("/api/v2/") else {
            // Never send the token anywhere but the API host.
            throw GenesysClientError(.malformedReply, "refusing to follow \(pathAndQuery): not a relative /api/v2 path")
        }
        let endpoint = "\(method) \(GenesysAPIError.stripQuery(pathAndQuery))"
        var failures = 0
        var rateLimitRetries = 0
        var malformed = 0
        var reauthentications = 0
        while true {
            try Task.checkCancellation()
            let held = try await pacer.acquire()
            if held > .zero { count { $0.waited += held } }
            // The token is taken once a connection slot is ours, just before sending, so a wait in
            // the queue cannot outlive it.
            await limiter.acquire()
            let token: String
            do {
                token = try await tokens.token()
            } catch {
                await limiter.release()
                await pacer.release()
                throw error
            }
            var headers = [("Authorization", "Bearer \(token)"), ("Accept", "application/json")]
            if body != nil { headers.append(("Content-Type", "application/json")) }
            let request = HTTPRequestData(
                method: method, url: connection.apiBaseURL + pathAndQuery, headers: headers, body: body,
                timeout: requestTimeout)
            count { $0.requests += 1 }

            let response: HTTPResponseData
            do {
                response = try await transport.send(request)
                await limiter.release()
            } catch {
                await limiter.release()
                await pacer.release()
                count { $0.transportErrors += 1 }
                failures += 1
                guard error.isRetriable, failures < retry.attempts(for: error) else {
                    throw GenesysClientError(
                        error.kind == .timeout ? .timeout : .unreachable,
                        "\(endpoint) failed after \(failures) attempt\(failures == 1 ? "" : "s"): \(error.message)")
                }
                count { $0.retries += 1 }
                logger.debug("transport error, retrying", metadata: ["endpoint": "\(endpoint)", "error": "\(error)"])
                try await wait(retry.backoff(attempt: failures, random: .random(in: 0...1)))
                continue
            }
            count { $0.bytesReceived += response.body.count }
            // Read into ranges: a window of at most five minutes, budgets of at most ten million.
            let allowed = response.header("inin-ratelimit-allowed").flatMap { Bounded.int($0, in: 0...10_000_000) }
            let used = response.header("inin-ratelimit-count").flatMap { Bounded.int($0, in: 0...10_000_000) }
            let reset = response.header("inin-ratelimit-reset").flatMap(Bounded.number).map { Bounded.seconds($0, clampedTo: 0...300) }
            await pacer.complete(allowed: allowed, count: used, resetSeconds: reset.map { Int($0.rounded(.up)) })
            if let allowed, let used { budget.withLock { $0 = (max(0, allowed - used), allowed) } }

            switch response.status {
            case 200..<300:
                do {
                    return try parse(response)
                } catch {
                    malformed += 1
                    count { $0.malformedReplies += 1 }
                    guard malformed < retry.maxMalformedAttempts else {
                        throw GenesysClientError(
                            .malformedReply,
                            "\(endpoint) returned a malformed reply (\(DecodingErrorText.describe(error)))"
                                + (response.header("inin-correlation-id").map { "; correlation id \($0.prefix(100))" } ?? ""))
                    }
                    count { $0.retries += 1 }
                    try await wait(retry.backoff(attempt: malformed, random: .random(in: 0...1)))
                    continue
                }
            case 401 where reauthentications < 2:
                // Expired or revoked: log in again (a fresh token refused twice means the
                // credentials themselves are refused).
                reauthentications += 1
                count { $0.reauthentications += 1 }
                await tokens.invalidate(token)
                logger.debug("401 from the API, logging in again", metadata: ["endpoint": "\(endpoint)"])
                continue
            case 429:
                count { $0.rateLimited += 1 }
                let error = await apiError(method, pathAndQuery, response)
                rateLimitRetries += 1
                guard rateLimitRetries <= retry.maxRateLimitRetries else { throw error }
                let delay = retry.rateLimitDelay(retryAfter: error.retryAfter, attempt: rateLimitRetries, random: .random(in: 0...1))
                await pacer.block(for: delay)
                count { $0.retries += 1 }
                logger.debug("429, waiting", metadata: ["endpoint": "\(endpoint)", "wait": "\(delay)"])
                continue
            case let status where RetryPolicy.isRetriable(status: status):
                count { $0.serverErrors += 1 }
                failures += 1
                guard failures < retry.maxAttempts else {
                    var error = await apiError(method, pathAndQuery, response)
                    error.message = (error.message ?? "") + " (gave up after \(failures) attempts)"
                    throw error
                }
                count { $0.retries += 1 }
                try await wait(retry.backoff(attempt: failures, random: .random(in: 0...1)))
                continue
            default:
                throw await apiError(method, pathAndQuery, response)
            }
        }
    }

    /// Builds a typed error from an error reply, reading `ErrorBody` when there is one. The
    /// server's words are cut to 500 characters and never carry our credentials back out.
    func apiError(_ method: String, _ path: String, _ response: HTTPResponseData) async -> GenesysAPIError {
        struct ErrorBody: Decodable {
            var message: String?
            var code: String?
            var contextId: String?
        }
        let body = response.body.count <= 1 << 20 ? try? JSONDecoder().decode(ErrorBody.self, from: Data(response.body)) : nil
        var retryAfter: Duration?
        if let header = response.header("Retry-After") {
            retryAfter = RetryPolicy.retryAfter(header: header)
        } else if response.status == 429, let message = body?.message,
            let seconds = GenesysAPIError.permissions(inMessage: message).first.flatMap(Bounded.number)
        {
            // "Retry the request in [12] seconds"
            retryAfter = RetryPolicy.retryAfter(seconds: seconds)
        }
        let code = body?.code.map { String($0.prefix(100)) }
        let message = await redact(body?.message.map { String($0.prefix(500)) })
        return GenesysAPIError(
            method: method, path: path, status: response.status, code: code, message: message,
            correlationId: (response.header("inin-correlation-id") ?? body?.contextId).map { String($0.prefix(100)) },
            retryAfter: retryAfter,
            missingPermissions: code == "missing.permissions" || code == "missing.any.permissions"
                ? GenesysAPIError.permissions(inMessage: message ?? "") : [])
    }

    /// `text` with the client secret and any token this client holds or held replaced: a
    /// server may echo a credential back in an error message.
    func redact(_ text: String?) async -> String? {
        guard var text else { return nil }
        for token in await tokens.issued where token.count >= 8 {
            text = text.replacingOccurrences(of: token, with: "<token>")
        }
        let secret = connection.clientSecret.reveal()
        if secret.count >= 4 { text = text.replacingOccurrences(of: secret, with: "<secret>") }
        return text
    }

    /// Closes the transport. Call once, when done.
    public func shutdown() async {
        await transport.shutdown()
    }
}
