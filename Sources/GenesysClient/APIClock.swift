/// Time for the client: monotonic "now" and sleeping. The real one wraps `ContinuousClock`;
/// tests may drive their own.
public protocol APIClock: Sendable {
    /// Monotonic time since an arbitrary origin.
    func now() -> Duration
    func sleep(for duration: Duration) async throws
}

public struct SystemAPIClock: APIClock {
    private let clock = ContinuousClock()
    private let origin: ContinuousClock.Instant

    public init() {
        origin = clock.now
    }

    public func now() -> Duration { clock.now - origin }

    public func sleep(for duration: Duration) async throws {
        guard duration > .zero else { return }
        try await clock.sleep(for: duration)
    }
}
