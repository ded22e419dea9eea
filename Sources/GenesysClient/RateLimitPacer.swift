/// Paces requests from the `inin-ratelimit-*` headers so that a healthy walk never meets a 429:
/// it tracks the budget left in the server's window, counts requests in flight against it, and
/// holds new requests until the window resets when the budget is spent. A 429's `Retry-After`
/// blocks everyone, not just the request that met it.
public actor RateLimitPacer {
    private let clock: any APIClock
    /// Requests kept in reserve below the server's limit.
    private let reserve: Int
    private var allowed: Int?
    private var highestCount = 0
    private var windowResetsAt: Duration?
    private var inFlight = 0
    private var blockedUntil: Duration = .zero
    /// Time spent waiting for the budget, for reports.
    public private(set) var waited: Duration = .zero
    /// When the longest wait in progress ends.
    private var holdingUntil: Duration = .zero

    public init(clock: any APIClock, reserve: Int = 1) {
        self.clock = clock
        self.reserve = reserve
    }

    /// Waits until a request may be sent, then counts it as in flight; returns the time it
    /// chose to wait.
    @discardableResult
    public func acquire() async throws -> Duration {
        var held: Duration = .zero
        while true {
            let now = clock.now()
            if now < blockedUntil {
                let wait = blockedUntil - now
                waited += wait
                held += wait
                holdingUntil = max(holdingUntil, blockedUntil)
                try await clock.sleep(for: wait)
                continue
            }
            if let resetAt = windowResetsAt, now >= resetAt {
                highestCount = 0
                windowResetsAt = nil
            }
            if let allowed, allowed > 0, allowed - highestCount - inFlight <= reserve {
                // Budget spent: wait for the window to reset (plus a little for clock skew).
                let wait = max((windowResetsAt ?? now + .seconds(1)) - now, .zero) + .milliseconds(50)
                waited += wait
                held += wait
                holdingUntil = max(holdingUntil, now + wait)
                try await clock.sleep(for: wait)
                if let resetAt = windowResetsAt, clock.now() >= resetAt {
                    highestCount = 0
                    windowResetsAt = nil
                }
                continue
            }
            inFlight += 1
            return held
        }
    }

    /// Records a reply's headers and ends the request.
    public func complete(allowed: Int?, count: Int?, resetSeconds: Int?) {
        inFlight = max(0, inFlight - 1)
        guard let allowed, let count else { return }
        self.allowed = allowed
        let now = clock.now()
        let resetAt = now + .seconds(max(0, resetSeconds ?? 60))
        if let current = windowResetsAt, resetAt > current + .milliseconds(1500) || count < highestCount / 2 {
            // A new window has begun.
            highestCount = count
        } else {
            highestCount = max(highestCount, count)
        }
        windowResetsAt = resetAt
    }

    /// Ends a request that got no usable reply.
    public func release() {
        inFlight = max(0, inFlight - 1)
    }

    /// Holds every request for `duration` (a 429's `Retry-After`).
    public func block(for duration: Duration) {
        blockedUntil = max(blockedUntil, clock.now() + duration)
    }

    /// How long requests are being held for the rate limit from now, if they are.
    public var holding: Duration? {
        let now = clock.now()
        return holdingUntil > now ? holdingUntil - now : nil
    }

    /// Budget left in the current window as last reported, if known.
    public var remaining: (left: Int, allowed: Int)? {
        allowed.map { (max(0, $0 - highestCount), $0) }
    }
}
