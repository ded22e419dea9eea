/// When to try again and how long to wait: pure, with the randomness injected.
public struct RetryPolicy: Sendable, Equatable {
    /// Attempts for one request on 5xx, resets and timeouts (the first try included).
    public var maxAttempts: Int
    /// Extra attempts a request may spend waiting out 429s.
    public var maxRateLimitRetries: Int
    /// Attempts when the host cannot be reached at all (each waits out the connect timeout).
    public var maxConnectAttempts: Int
    /// Attempts after a 200 whose body does not parse.
    public var maxMalformedAttempts: Int
    public var baseDelay: Duration
    public var maxDelay: Duration
    /// Longest `Retry-After` honoured; longer values are capped (and logged).
    public var maxRetryAfter: Duration

    public init(
        maxAttempts: Int = 6, maxRateLimitRetries: Int = 30, maxConnectAttempts: Int = 2, maxMalformedAttempts: Int = 3,
        baseDelay: Duration = .milliseconds(250), maxDelay: Duration = .seconds(30), maxRetryAfter: Duration = .seconds(120)
    ) {
        self.maxAttempts = maxAttempts
        self.maxRateLimitRetries = maxRateLimitRetries
        self.maxConnectAttempts = maxConnectAttempts
        self.maxMalformedAttempts = maxMalformedAttempts
        self.baseDelay = baseDelay
        self.maxDelay = maxDelay
        self.maxRetryAfter = maxRetryAfter
    }

    /// Backoff before retry number `attempt` (1 = the first retry): exponential, capped, with
    /// "equal jitter" (half fixed, half random) so concurrent retries spread out.
    public func backoff(attempt: Int, random: Double) -> Duration {
        let exponent = min(max(attempt - 1, 0), 30)
        let ceiling = min(maxDelay, baseDelay * Double(1 << exponent))
        let half = ceiling / 2
        return half + half * min(max(random, 0), 1)
    }

    /// Wait after a 429: the server's `Retry-After` (capped), else a backoff.
    public func rateLimitDelay(retryAfter: Duration?, attempt: Int, random: Double) -> Duration {
        if let retryAfter { return min(retryAfter, maxRetryAfter) }
        return backoff(attempt: attempt, random: random)
    }

    /// How many attempts a transport failure of this kind deserves.
    public func attempts(for error: TransportError) -> Int {
        error.kind == .connect ? min(maxConnectAttempts, maxAttempts) : maxAttempts
    }

    /// Status codes worth retrying after a backoff.
    public static func isRetriable(status: Int) -> Bool {
        status == 408 || status == 500 || status == 502 || status == 503 || status == 504
    }
}
