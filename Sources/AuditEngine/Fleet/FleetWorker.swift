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
    /// Leases being given back once their runners finish.
    private var releasing: [UUID: Task<Void, Never>] = [:]
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
            // A tick runs to its end even when the stop comes in the middle of it: a lease
            // acquisition cancelled between its commit and its answer would be held in the
            // database by this worker without it knowing (and so never released).
            let wait = await Task { await self.step() }.value
            try? await Task.sleep(for: wait)
        }
        // Not in the cancelled task: its statements would be cancelled with it.
        await Task { await self.shutdown() }.value
    }

    /// One tick: heartbeat, renew, then balance; returns how long to wait for the next — a tick,
    /// or less when another worker's lease expires sooner (a dead worker's organisations are
    /// then taken the moment they are free, within the TTL of its last renewal). Public for tests.
    @discardableResult
    public func step() async -> Duration {
        let now = ContinuousClock.now
        if started == nil { started = now }
        var wait = settings.tick
        do {
            // Renewals first, then the heartbeat: a worker that dies between the two is seen
            // silent before its leases run out, so by then the others' shares include them.
            await renew()
            try await database.heartbeat(worker: settings.workerId, host: settings.host, pid: settings.pid, maxOrganizations: settings.maxOrganizations)
            // A worker silent for most of a TTL no longer counts: by the time its leases expire
            // the others' shares already include its organisations.
            let live = max(1, try await database.workers(window: settings.leaseTTL - settings.tick / 2).filter(\.live).count)
            let leases = try await database.leases()
            if let started, now - started >= (settings.settle ?? settings.tick) {
                try await balance(liveWorkers: live, leases: leases.filter { $0.name.hasPrefix("org:") })
                try await takeDestinations()
            }
            let soonest = leases.filter { $0.held && $0.owner != settings.workerId }.map(\.expiresIn).min()
            if let soonest, soonest >= 0 {
                wait = min(wait, .milliseconds(Int64(soonest * 1000) + 50))
            }
            publish { $0.liveWorkers = live; $0.lastTick = Date(); $0.lastError = nil }
        } catch {
            logger.warning("fleet tick failed", metadata: ["error": "\(error)"])
            publish { $0.lastError = "\(error)" }
        }
        return max(.milliseconds(100), wait)
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
                stop(key, release: false)
                publish { $0.leasesLost += 1 }
            }
        }
    }

    private func balance(liveWorkers: Int, leases: [LeaseRecord]) async throws {
        let total = organizations.count
        let share = (total + liveWorkers - 1) / liveWorkers
        let target = min(settings.maxOrganizations, share)
        let mine = held.keys.filter { $0.hasPrefix("org:") }.sorted()
        if mine.count > target {
            // A new worker joined: give back the excess so it can take its share.
            for key in mine.suffix(mine.count - target) {
                logger.notice("giving an organisation back to balance the fleet", metadata: ["lease": "\(key)", "workers": "\(liveWorkers)"])
                stop(key, release: true)
            }
            return
        }
        guard mine.count < target else { return }
        let leased = Set(leases.filter(\.held).map(\.name))
        var candidates = organizations.map(Self.key(organization:)).filter { !leased.contains($0) && held[$0] == nil }
        candidates.shuffle()
        // Until the share is reached: another worker racing for the same ones wins some.
        var needed = target - mine.count
        for key in candidates where needed > 0 {
            guard let fence = try await database.acquireLease(key, owner: settings.workerId, ttl: settings.leaseTTL) else { continue }
            needed -= 1
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

    /// Stops what runs under a lease without holding up the tick (the other leases must still be
    /// renewed): the runner is cancelled at once. A lease given back is released once its runner
    /// has finished its cycle (waited for at most the TTL), so the next holder starts after it;
    /// a lease lost needs no wait — the fence refuses whatever the runner still tries to write.
    private func stop(_ key: String, release: Bool) {
        guard let entry = held.removeValue(forKey: key) else { return }
        entry.task.cancel()
        publish {
            if key.hasPrefix("org:") { $0.organizations[String(key.dropFirst(4))] = nil } else { $0.destinations[String(key.dropFirst(12))] = nil }
        }
        guard release else { return }
        let database = self.database
        let worker = settings.workerId
        let limit = settings.leaseTTL
        let logger = self.logger
        let id = UUID()
        releasing[id] = Task {
                await withTaskGroup(of: Void.self) { group in
                    group.addTask { await entry.task.value }
                    group.addTask { try? await Task.sleep(for: limit) }
                    await group.next()
                    group.cancelAll()
                }
                await Self.release(entry.fence, database: database, logger: logger)
                if key.hasPrefix("org:") {
                    try? await database.reportOrganization(String(key.dropFirst(4)), health: "unassigned", detail: "released by \(worker)", worker: worker)
                }
                await self.released(id)
            }
    }

    private func released(_ id: UUID) { releasing[id] = nil }

    /// Releases a lease, trying three times a second apart (a release lost to a busy database
    /// would keep the organisation unworked until the lease expires).
    static func release(_ fence: Fence, database: PostgresDatabase, logger: Logger) async {
        for attempt in 1...3 {
            do {
                try await database.releaseLease(fence)
                return
            } catch {
                if attempt == 3 {
                    logger.warning("lease not released: it expires by itself", metadata: ["lease": "\(fence.name)", "error": "\(error)"])
                } else {
                    try? await Task.sleep(for: .seconds(1))
                }
            }
        }
    }

    /// Graceful shutdown: every runner stopped, every lease released, the worker marked stopped.
    /// Last, whatever the database still holds under this worker's name is released too (an
    /// acquisition whose answer was lost leaves a lease the worker never knew it had).
    public func shutdown() async {
        for key in held.keys.sorted() { stop(key, release: true) }
        for task in Array(releasing.values) { await task.value }
        do {
            let left = try await database.releaseLeases(owner: settings.workerId)
            if !left.isEmpty {
                logger.warning("released leases this worker held without knowing", metadata: ["leases": "\(left.joined(separator: ","))"])
            }
        } catch {
            logger.warning("leases left under this worker not released: they expire by themselves", metadata: ["error": "\(error)"])
        }
        try? await database.stopWorker(settings.workerId)
    }

    private func publish(_ change: (inout FleetHealth) -> Void) {
        published.withLock { change(&$0) }
    }
}
