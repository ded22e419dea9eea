import AuditCore
import AuditStore
import Foundation
import Logging
import Synchronization

/// How a fleet worker shares organisations with the others.
public struct FleetSettings: Sendable {
    /// Unique per process (host, pid and a random part by default).
    public var workerId: String
    public var host: String
    public var pid: Int
    /// How long a lease lasts unrenewed; a dead worker's organisations are taken over after it.
    public var leaseTTL: Duration = .seconds(30)
    /// Organisations this worker holds at most.
    public var maxOrganizations = 50
    /// How long a new worker waits (heartbeating) before it takes organisations, so workers
    /// started together see each other and split the fleet without shedding (default: one tick).
    public var settle: Duration?

    /// Leases are renewed three times per TTL: well before expiry.
    public var tick: Duration { leaseTTL / 3 }

    public init(workerId: String, host: String, pid: Int) {
        self.workerId = workerId
        self.host = host
        self.pid = pid
    }

    public static func defaultWorkerId(host: String, pid: Int) -> String {
        "\(host)-\(pid)-\(UUID().uuidString.prefix(6).lowercased())"
    }
}

/// What a worker publishes about itself: what it holds, for the endpoint and the log.
public struct FleetHealth: Sendable, Equatable {
    public var workerId: String
    public var organizations: [String: Int64] = [:]
    public var destinations: [String: Int64] = [:]
    public var liveWorkers = 0
    public var lastTick: Date?
    public var lastError: String?
    public var leasesLost = 0
    public var takeovers = 0
}

/// One worker of a fleet: it holds leases on a fair share of the organisations (at most
/// `maxOrganizations`) and on destinations' queues, runs each one it holds (`runOrganization`,
/// `runDestination`, given a store fenced by that lease) until it loses or gives up the lease,
/// and renews every lease each tick, a third of the TTL. Leases are granted by the database's
/// clock, so workers on several machines agree on expiry.
public actor FleetWorker {
    public typealias OrganizationRunner = @Sendable (_ name: String, _ store: PostgresAuditStore) async -> Void
    public typealias DestinationRunner = @Sendable (_ name: String, _ outbox: PostgresOutbox) async -> Void

    private let database: PostgresDatabase
    private let organizations: [String]
    private let destinations: [String]
    private let settings: FleetSettings
    private let runOrganization: OrganizationRunner
    private let runDestination: DestinationRunner
    private let logger: Logger
    private var held: [String: (fence: Fence, task: Task<Void, Never>)] = [:]
    private var started: ContinuousClock.Instant?
    private let published: Mutex<FleetHealth>

    public init(
        database: PostgresDatabase, organizations: [String], destinations: [String] = [], settings: FleetSettings, logger: Logger,
        runOrganization: @escaping OrganizationRunner, runDestination: @escaping DestinationRunner = { _, _ in }
    ) {
        self.database = database
        self.organizations = organizations
        self.destinations = destinations
        self.settings = settings
        self.logger = logger
        self.runOrganization = runOrganization
        self.runDestination = runDestination
        published = Mutex(FleetHealth(workerId: settings.workerId))
    }

    /// What the worker holds now (readable from anywhere).
    public nonisolated var health: FleetHealth { published.withLock { $0 } }

    static func key(organization name: String) -> String { "org:\(name)" }
    static func key(destination name: String) -> String { "destination:\(name)" }

    /// Ticks until cancelled; then stops what it runs and releases its leases.
    public func run() async {
        try? await database.registerOrganizations(organizations)
        while !Task.isCancelled {
            await step()
            try? await Task.sleep(for: settings.tick)
        }
        // Not in the cancelled task: its statements would be cancelled with it.
        await Task { await self.shutdown() }.value
    }

    /// One tick: heartbeat, renew, then balance. Public for tests.
    public func step() async {
        let now = ContinuousClock.now
        if started == nil { started = now }
        do {
            try await database.heartbeat(worker: settings.workerId, host: settings.host, pid: settings.pid, maxOrganizations: settings.maxOrganizations)
            await renew()
            let live = max(1, try await database.workers(window: settings.leaseTTL).filter(\.live).count)
            if let started, now - started >= (settings.settle ?? settings.tick) {
                try await balance(liveWorkers: live)
                try await takeDestinations()
            }
            publish { $0.liveWorkers = live; $0.lastTick = Date(); $0.lastError = nil }
        } catch {
            logger.warning("fleet tick failed", metadata: ["error": "\(error)"])
            publish { $0.lastError = "\(error)" }
        }
    }

    /// Renews every lease; one that was taken over (or cannot be renewed before it expires) is
    /// stopped at once: its runner's writes would be refused anyway.
    private func renew() async {
        for (key, entry) in held {
            let renewed: Bool
            do {
                renewed = try await database.renewLease(entry.fence, ttl: settings.leaseTTL)
            } catch {
                logger.warning("lease renewal failed", metadata: ["lease": "\(key)", "error": "\(error)"])
                continue
            }
            if !renewed {
                logger.error("lease lost (taken over after it expired): stopping", metadata: ["lease": "\(key)", "token": "\(entry.fence.token)"])
                await stop(key, release: false)
                publish { $0.leasesLost += 1 }
            }
        }
    }

    private func balance(liveWorkers: Int) async throws {
        let total = organizations.count
        let share = (total + liveWorkers - 1) / liveWorkers
        let target = min(settings.maxOrganizations, share)
        let mine = held.keys.filter { $0.hasPrefix("org:") }.sorted()
        if mine.count > target {
            // A new worker joined: give back the excess so it can take its share.
            for key in mine.suffix(mine.count - target) {
                logger.notice("giving an organisation back to balance the fleet", metadata: ["lease": "\(key)", "workers": "\(liveWorkers)"])
                await stop(key, release: true)
            }
            return
        }
        guard mine.count < target else { return }
        let leased = Set(try await database.leases(prefix: "org:").filter(\.held).map(\.name))
        var candidates = organizations.map(Self.key(organization:)).filter { !leased.contains($0) && held[$0] == nil }
        candidates.shuffle()
        for key in candidates.prefix(target - mine.count) {
            guard let fence = try await database.acquireLease(key, owner: settings.workerId, ttl: settings.leaseTTL) else { continue }
            let name = String(key.dropFirst(4))
            logger.notice("organisation leased", metadata: ["organization": "\(name)", "token": "\(fence.token)"])
            let store = database.store(organization: name, fence: fence)
            let run = runOrganization
            held[key] = (fence, Task { await run(name, store) })
            publish { $0.organizations[name] = fence.token; if fence.token > 1 { $0.takeovers += 1 } }
        }
    }

    private func takeDestinations() async throws {
        for name in destinations where held[Self.key(destination: name)] == nil {
            let key = Self.key(destination: name)
            guard let fence = try await database.acquireLease(key, owner: settings.workerId, ttl: settings.leaseTTL) else { continue }
            logger.notice("destination queue leased", metadata: ["destination": "\(name)", "token": "\(fence.token)"])
            let outbox = database.outbox(fence: fence)
            let run = runDestination
            held[key] = (fence, Task { await run(name, outbox) })
            publish { $0.destinations[name] = fence.token }
        }
    }

    /// Stops what runs under a lease (bounded wait) and, if asked, releases it.
    private func stop(_ key: String, release: Bool) async {
        guard let entry = held.removeValue(forKey: key) else { return }
        entry.task.cancel()
        await withTaskGroup(of: Void.self) { group in
            group.addTask { await entry.task.value }
            group.addTask { try? await Task.sleep(for: .seconds(30)) }
            await group.next()
            group.cancelAll()
        }
        if release {
            try? await database.releaseLease(entry.fence)
            if key.hasPrefix("org:") {
                try? await database.reportOrganization(
                    String(key.dropFirst(4)), health: "unassigned", detail: "released by \(settings.workerId)", worker: settings.workerId)
            }
        }
        publish {
            if key.hasPrefix("org:") { $0.organizations[String(key.dropFirst(4))] = nil } else { $0.destinations[String(key.dropFirst(12))] = nil }
        }
    }

    /// Graceful shutdown: every runner stopped, every lease released, the worker marked stopped.
    public func shutdown() async {
        for key in held.keys.sorted() { await stop(key, release: true) }
        try? await database.stopWorker(settings.workerId)
    }

    private func publish(_ change: (inout FleetHealth) -> Void) {
        published.withLock { change(&$0) }
    }
}
