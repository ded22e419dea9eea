import Foundation
import Synchronization

public struct SimulatorConfiguration: Sendable {
    public var seed: UInt64 = 1
    public var users = 2000
    public var host = "127.0.0.1"
    /// 0 picks a free port.
    public var port = 0
    /// Requests per minute per access token; 0 disables the limit.
    public var rateLimitPerMinute = 300
    /// Length of the rate-limit window in seconds: 60 on the real service; tests shorten it.
    public var rateLimitWindowSeconds = 60.0
    /// Lifetime of issued tokens, in seconds.
    public var tokenTTL = 86_400
    /// Permissions of the auditor client's role (granted in division `*`).
    public var auditorPermissions = OrgGenerator.defaultAuditorPermissions
    /// Largest page size the offset-paged lists honour (larger requests are capped).
    public var maxPageSize = 500
    /// Extra users with exactly these names (to show how hostile names render), added after the
    /// generated ones so the rest of the organisation is unchanged.
    public var extraUserNames: [String] = []
    public var faults = FaultPlan()
    /// The Notifications API's limits and times (channel lifetime, heartbeats).
    public var notifications = NotificationSettings()
    /// Audit events become visible to queries up to this many seconds after their `eventDate`
    /// (each a random delay, so they also arrive out of order); 0: at once.
    public var auditArrivalDelaySeconds = 0.0
    /// Audit query requests per minute per token, on top of the general limit; 0: none.
    public var auditRateLimitPerMinute = 0
    /// The wall clock: every timestamp the simulator writes (audit `eventDate`s, `dateModified`)
    /// and the audit API's idea of "now" (arrival, the 14-day reach). Tests inject their own to
    /// move time without sleeping. Token lifetimes and rate-limit windows stay monotonic.
    public var wallClock: @Sendable () -> Date = { Date() }
    /// Seconds since the simulator started, for token lifetimes and rate-limit windows; `nil`:
    /// the monotonic clock. Tests inject their own to expire a token or end a window without
    /// sleeping (a sleeping test fails when a loaded machine pauses longer than the lifetime).
    public var uptime: (@Sendable () -> Double)?

    public init() {}

    public static var defaultAuditorPermissions: [String] { OrgGenerator.defaultAuditorPermissions }
}

/// Where a running simulator listens and the credentials it issued; what `rbacwatch simulate`
/// prints as its ready line.
public struct SimulatorEndpoint: Sendable, Equatable {
    public var apiBaseURL: String
    public var loginBaseURL: String
    public var clientId: String
    public var clientSecret: String
    /// A second client holding Master Admin, for driving the write endpoints.
    public var adminClientId: String
    public var adminClientSecret: String
    public var port: Int

    public init(
        apiBaseURL: String, loginBaseURL: String, clientId: String, clientSecret: String, adminClientId: String,
        adminClientSecret: String, port: Int
    ) {
        self.apiBaseURL = apiBaseURL
        self.loginBaseURL = loginBaseURL
        self.clientId = clientId
        self.clientSecret = clientSecret
        self.adminClientId = adminClientId
        self.adminClientSecret = adminClientSecret
        self.port = port
    }

    /// One JSON line, keys sorted.
    public var readyLine: String {
        var o = JSONObject()
        o.set("adminClientId", adminClientId)
        o.set("adminClientSecret", adminClientSecret)
        o.set("apiBaseUrl", apiBaseURL)
        o.set("clientId", clientId)
        o.set("clientSecret", clientSecret)
        o.set("loginBaseUrl", loginBaseURL)
        o.set("port", port)
        return String(decoding: o.json.serialized(), as: UTF8.self)
    }
}

/// A faithful local Genesys Cloud Platform API: a generated organisation behind the real
/// endpoints, envelopes, errors, token lifetimes and rate limits, with fault injection.
public final class GenesysSimulator: Sendable {
    public let configuration: SimulatorConfiguration
    let org: Mutex<Org>
    let tokens = Mutex(TokenStore())
    let faultController = FaultController()
    let credentials: OrgGenerator.Credentials
    private let clock = ContinuousClock()
    private let origin: ContinuousClock.Instant
    private let correlationCounter = Atomic<UInt64>(0)
    let asyncQueries = Mutex<[String: AsyncQuery]>([:])
    /// Requests served, by route (`GET /api/v2/users/{id}`).
    let routeCounts = Mutex<[String: Int]>([:])
    /// Notification channels, their topics and sockets.
    let notifications = NotificationHub()

    public init(configuration: SimulatorConfiguration = SimulatorConfiguration()) {
        self.configuration = configuration
        let generated = OrgGenerator(
            seed: configuration.seed, userCount: max(1, configuration.users),
            auditorPermissions: configuration.auditorPermissions, extraUserNames: configuration.extraUserNames
        ).generate()
        var org = generated.org
        org.auditArrivalDelayMs = Int64(max(0, configuration.auditArrivalDelaySeconds) * 1000)
        org.pushedCount = org.auditLog.count
        self.org = Mutex(org)
        self.credentials = generated.credentials
        self.origin = clock.now
        faultController.plan = configuration.faults
    }

    /// Generates the organisation on a thread of its own, not on the concurrency pool: a large
    /// org is seconds of CPU, and a server (or a test) in the same process keeps answering
    /// meanwhile.
    public static func generating(_ configuration: SimulatorConfiguration) async -> GenesysSimulator {
        await withCheckedContinuation { continuation in
            let thread = Thread { continuation.resume(returning: GenesysSimulator(configuration: configuration)) }
            thread.stackSize = 8 << 20
            thread.start()
        }
    }

    /// Faults in force now; settable at any time, also over HTTP at `/__simulator/faults`.
    public var faults: FaultPlan {
        get { faultController.plan }
        set { faultController.plan = newValue }
    }

    /// Makes `change` happen when page `pageNumber` of a list under `pathPrefix` has been served.
    public func mutate(_ change: SimulatedChange, afterPage pageNumber: Int, of pathPrefix: String) {
        faultController.addTrigger(MutationTrigger(pathPrefix: pathPrefix, pageNumber: pageNumber, mutation: change))
    }

    /// Expires every issued token at once: the next call with any of them gets 401 `bad.credentials`.
    public func expireAllTokens() {
        let now = seconds()
        tokens.withLock { $0.expireAll(now: now) }
    }

    /// Applies a change now, as an administrator would. With `audited: false` the change leaves
    /// no audit event: a change made behind the audit log's back, which only a full walk finds.
    public func apply(_ change: SimulatedChange, audited: Bool = true) {
        let date = timestamp()
        org.withLock { org in
            let logged = org.auditLog.count
            org.apply(change, actor: .init(userId: nil, clientId: credentials.adminClientId), date: date)
            if !audited { org.auditLog.removeSubrange(logged...) }
        }
        publishAuditPushes()
    }

    /// Requests served so far, by route (`GET /api/v2/authorization/subjects/{id}`): what a
    /// benchmark reports its request mix with.
    public var requestsByRoute: [String: Int] { routeCounts.withLock { $0 } }

    /// Audit events recorded by the write endpoints so far, oldest first.
    public var auditEventCount: Int { org.withLock { $0.auditLog.count } }

    // MARK: Time and ids

    /// Monotonic seconds since the simulator started (or the injected `uptime`).
    func seconds() -> Double {
        if let uptime = configuration.uptime { return uptime() }
        let elapsed = clock.now - origin
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    }

    /// The wall-clock time as the API writes it.
    func timestamp() -> String {
        ISODate.string(epochMilliseconds: nowMilliseconds())
    }

    /// The wall clock in epoch milliseconds.
    func nowMilliseconds() -> Int64 {
        Int64((configuration.wallClock().timeIntervalSince1970 * 1000).rounded())
    }

    func nextCorrelationId() -> String {
        let n = correlationCounter.wrappingAdd(1, ordering: .relaxed).newValue
        var rng = SeededRandom(seed: n &* 0x2545_F491_4F6C_DD1D ^ configuration.seed)
        return rng.uuid()
    }
}
