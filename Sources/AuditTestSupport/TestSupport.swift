import Foundation
import AuditCore
import GenesysClient
import GenesysSimulator
import Logging

/// Helpers shared by the test targets: a simulator on a free port, a client wired to it, and a
/// comparison of a snapshot against the simulator's ground truth.
public enum TestSupport {
    /// A retry policy with short waits, so fault tests run in seconds.
    public static let fastRetry = RetryPolicy(
        maxAttempts: 8, maxRateLimitRetries: 60, maxConnectAttempts: 2, maxMalformedAttempts: 3, baseDelay: .milliseconds(5),
        maxDelay: .milliseconds(100), maxRetryAfter: .seconds(5))

    /// A simulator with no rate limit (tests that want one set it), generated from `seed`.
    public static func simulator(
        users: Int, seed: UInt64, _ adjust: (inout SimulatorConfiguration) -> Void = { _ in }
    ) -> GenesysSimulator {
        TimerWatch.start()
        var configuration = SimulatorConfiguration()
        configuration.users = users
        configuration.seed = seed
        configuration.rateLimitPerMinute = 0
        adjust(&configuration)
        return GenesysSimulator(configuration: configuration)
    }

    /// The same, generated on a thread of its own (`GenesysSimulator.generating`): for orgs of
    /// thousands of users, whose generation would otherwise hold a thread of the concurrency pool
    /// (two on a 2-core machine) for seconds and stall every other test in the process.
    public static func generated(
        users: Int, seed: UInt64, _ adjust: (inout SimulatorConfiguration) -> Void = { _ in }
    ) async -> GenesysSimulator {
        TimerWatch.start()
        var configuration = SimulatorConfiguration()
        configuration.users = users
        configuration.seed = seed
        configuration.rateLimitPerMinute = 0
        adjust(&configuration)
        return await GenesysSimulator.generating(configuration)
    }

    public static func connection(_ endpoint: SimulatorEndpoint, secret: String? = nil) -> GenesysConnection {
        GenesysConnection(
            apiBaseURL: endpoint.apiBaseURL, loginBaseURL: endpoint.loginBaseURL, clientId: endpoint.clientId,
            clientSecret: Secret(secret ?? endpoint.clientSecret))
    }

    /// Runs `body` with a client talking to `endpoint` over real loopback HTTP, then shuts it down.
    public static func withClient<T: Sendable>(
        _ endpoint: SimulatorEndpoint, secret: String? = nil, retry: RetryPolicy = fastRetry, concurrency: Int = 8,
        requestTimeout: Duration = .seconds(20), _ body: (GenesysAPIClient) async throws -> T
    ) async throws -> T {
        let client = GenesysAPIClient(
            connection: connection(endpoint, secret: secret), transport: AsyncHTTPClientTransport(connectTimeout: .seconds(5)),
            retry: retry, requestTimeout: requestTimeout, maxConcurrentRequests: concurrency)
        do {
            let result = try await body(client)
            await client.shutdown()
            return result
        } catch {
            await client.shutdown()
            throw error
        }
    }

    /// Collects the simulator's organisation.
    public static func collect(
        _ endpoint: SimulatorEndpoint, options: CollectorOptions = CollectorOptions(), retry: RetryPolicy = fastRetry,
        concurrency: Int = 8
    ) async throws -> (Snapshot, CollectionReport) {
        try await withClient(endpoint, retry: retry, concurrency: concurrency) { client in
            try await Collector(client: client, options: options).collect()
        }
    }

    /// Differences between a snapshot and the ground truth; empty when they agree exactly.
    public static func differences(_ snapshot: Snapshot, _ truth: GroundTruth) -> [String] {
        var out: [String] = []
        func compare<T: Hashable>(_ what: String, _ ours: Set<T>, _ theirs: Set<T>) {
            let missing = theirs.subtracting(ours)
            let extra = ours.subtracting(theirs)
            if !missing.isEmpty { out.append("\(what): \(missing.count) missing, e.g. \(missing.first!)") }
            if !extra.isEmpty { out.append("\(what): \(extra.count) unexpected, e.g. \(extra.first!)") }
        }
        if snapshot.organization?.id != truth.organizationId { out.append("organisation id differs") }
        compare("divisions", Set(snapshot.divisions.map { "\($0.id)|\($0.name)" }), Set(truth.divisions.map { "\($0.key)|\($0.value)" }))
        compare(
            "users", Set(snapshot.users.map { "\($0.id)|\($0.name)|\($0.state)|\($0.divisionId ?? "")|\($0.teamId ?? "")|\($0.groupIds.joined(separator: ","))" }),
            Set(truth.users.values.map { "\($0.id)|\($0.name)|\($0.state)|\($0.divisionId)|\($0.teamId ?? "")|\($0.groupIds.joined(separator: ","))" }))
        compare(
            "roles", Set(snapshot.roles.map { "\($0.id)|\($0.name)|\($0.isBuiltIn)|\($0.permissions.joined(separator: ","))" }),
            Set(truth.roles.values.map { "\($0.id)|\($0.name)|\($0.isDefault)|\($0.permissions.joined(separator: ","))" }))
        compare(
            "grants", Set(snapshot.grants.map { "\($0.subjectId)|\($0.subjectKind.apiValue)|\($0.roleId)|\($0.divisionId)" }),
            Set(truth.grants.map { "\($0.subjectId)|\($0.subjectType)|\($0.roleId)|\($0.divisionId)" }))
        compare(
            "role-holding groups' members",
            Set(snapshot.groups.filter(\.rolesEnabled).map { "\($0.id)|\($0.memberIds.joined(separator: ","))" }),
            Set(truth.groups.values.filter(\.rolesEnabled).map { "\($0.id)|\($0.memberIds.joined(separator: ","))" }))
        compare("groups", Set(snapshot.groups.map { "\($0.id)|\($0.name)|\($0.rolesEnabled)" }), Set(truth.groups.values.map { "\($0.id)|\($0.name)|\($0.rolesEnabled)" }))
        compare("teams", Set(snapshot.teams.map { "\($0.id)|\($0.memberIds.joined(separator: ","))" }), Set(truth.teams.map { "\($0.key)|\($0.value.joined(separator: ","))" }))
        compare("OAuth clients", Set(snapshot.oauthClients.map { "\($0.id)|\($0.name)" }), Set(truth.oauthClients.map { "\($0.key)|\($0.value)" }))
        var ours = Set<String>()
        for user in snapshot.users {
            for access in user.access {
                let via: String
                switch access.via {
                case .direct: via = user.id
                case .group(let id): via = id
                }
                ours.insert("\(user.id)|\(access.roleId)|\(access.divisionId)|\(via)")
            }
        }
        var theirs = Set<String>()
        for (userId, access) in truth.userAccess {
            for item in access { theirs.insert("\(userId)|\(item.roleId)|\(item.divisionId)|\(item.viaSubjectId)") }
        }
        compare("effective access", ours, theirs)
        return out
    }
}

/// A clock tests move by hand. `sleep` returns once `advance` has passed its deadline, and
/// throws `CancellationError` at once when its task is cancelled (as a real clock's does: a
/// deadline timer in a task group must not outlive the work it guards).
public final class ManualClock: APIClock, @unchecked Sendable {
    private let lock = NSLockShim()
    private var current: Duration = .zero
    private var sleepers: [(id: UInt64, deadline: Duration, continuation: CheckedContinuation<Void, any Error>)] = []
    private var nextId: UInt64 = 0
    private var cancelledEarly: Set<UInt64> = []

    /// The wall-clock time at `now() == .zero`.
    public let epoch: Date

    public init(epoch: Date = Date(timeIntervalSince1970: 1_795_000_000)) {
        TimerWatch.start()
        self.epoch = epoch
    }

    public func now() -> Duration { lock.withLock { current } }

    /// The wall-clock time now: `epoch` plus the time advanced (for a simulator's `wallClock`).
    public func date() -> Date {
        epoch.addingTimeInterval(seconds())
    }

    /// The time advanced, in seconds (for a simulator's `uptime`).
    public func seconds() -> Double {
        let elapsed = now()
        return Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
    }

    public func sleep(for duration: Duration) async throws {
        let id = lock.withLock { () -> UInt64 in
            nextId += 1
            return nextId
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                enum Start { case sleep, ready, cancelled }
                let start = lock.withLock { () -> Start in
                    if cancelledEarly.remove(id) != nil { return .cancelled }
                    if duration <= .zero { return .ready }
                    sleepers.append((id, current + duration, continuation))
                    return .sleep
                }
                switch start {
                case .sleep: break
                case .ready: continuation.resume()
                case .cancelled: continuation.resume(throwing: CancellationError())
                }
            }
        } onCancel: {
            let sleeper = lock.withLock { () -> CheckedContinuation<Void, any Error>? in
                guard let index = sleepers.firstIndex(where: { $0.id == id }) else {
                    cancelledEarly.insert(id)
                    return nil
                }
                return sleepers.remove(at: index).continuation
            }
            sleeper?.resume(throwing: CancellationError())
        }
    }

    /// Number of tasks sleeping now.
    public var sleeping: Int { lock.withLock { sleepers.count } }

    public func advance(by duration: Duration) {
        let due = lock.withLock { () -> [CheckedContinuation<Void, any Error>] in
            current += duration
            let due = sleepers.filter { $0.deadline <= current }.map(\.continuation)
            sleepers.removeAll { $0.deadline <= current }
            return due
        }
        for continuation in due { continuation.resume() }
    }
}



/// `NSLock` with a closure API.
final class NSLockShim: @unchecked Sendable {
    private let lock = NSLock()
    func withLock<T>(_ body: () throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }
}

/// `ManualClock` as a wall clock (for services that think in dates): moves only when advanced.
public struct ManualWallClock: WallClock {
    public let clock: ManualClock
    public init(_ clock: ManualClock) { self.clock = clock }
    public func now() -> Date { clock.date() }
    public func sleep(for duration: Duration) async throws { try await clock.sleep(for: duration) }
}
