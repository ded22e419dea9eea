import AuditCore

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
    /// Attempts when the server does not answer in time (each waits out the request deadline).
    public var maxTimeoutAttempts: Int
    /// Longest `Retry-After` honoured; longer values are capped (and the health line says so).
    public var maxRetryAfter: Duration

    /// The ceiling on any `Retry-After`, here and in the audit feed: five minutes.
    public static let retryAfterCeiling: Duration = .seconds(300)

    public init(
        maxAttempts: Int = 6, maxRateLimitRetries: Int = 30, maxConnectAttempts: Int = 2, maxMalformedAttempts: Int = 3,
        maxTimeoutAttempts: Int = 3, baseDelay: Duration = .milliseconds(250), maxDelay: Duration = .seconds(30),
        maxRetryAfter: Duration = RetryPolicy.retryAfterCeiling
    ) {
        self.maxAttempts = maxAttempts
        self.maxTimeoutAttempts = maxTimeoutAttempts
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
        switch error.kind {
        case .connect: min(maxConnectAttempts, maxAttempts)
        case .timeout: min(maxTimeoutAttempts, maxAttempts)
        default: maxAttempts
        }
    }

    /// A `Retry-After` header as a duration: delta-seconds read into 0 … 1 day (a server asking
    /// for more gets a day, which `rateLimitDelay` caps anyway); nil when it is not a number
    /// (`inf`, `nan`, an HTTP date), so the caller backs off instead.
    public static func retryAfter(header: String) -> Duration? {
        Bounded.number(header).map(retryAfter(seconds:))
    }

    public static func retryAfter(seconds: Double) -> Duration {
        Bounded.duration(seconds: seconds, clampedTo: 0...86_400)
    }

    /// Status codes worth retrying after a backoff.
    public static func isRetriable(status: Int) -> Bool {
        status == 408 || status == 500 || status == 502 || status == 503 || status == 504
    }
}
