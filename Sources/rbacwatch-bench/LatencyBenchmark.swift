import ArgumentParser
import AuditCore
import AuditEngine
import AuditStore
import Foundation
import GenesysClient
import GenesysSimulator
import Synchronization

/// `rbacwatch-bench latency`: how long after a write endpoint's reply a critical change is (a)
/// a stored finding and (b) an attributed drift item published, with audit push and with
/// polling alone. Both engines run at once on the same simulator, each with its own SQLite
/// state, and see the same changes: the comparison is of the same moments.
struct LatencyBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "latency",
        abstract: "Measure write-to-finding and write-to-drift-item latency, with push and with polling alone, in the same run.")

    @Option(help: "Critical role edits made (each adds a permission RBW-001 flags).")
    var changes = 200
    @Option(help: "Seconds the changes are spread over.")
    var spread = 120.0
    @Option(help: "Users in the simulated organisation.")
    var users = 2000
    @Option(help: "Seconds between audit polls (the product's default: 60).")
    var pollInterval = 60.0
    @Option(help: "Seconds the reorder buffer holds an event (the product's default: 60).")
    var lag = 60.0
    @Option(help: "Seconds between scheduled drift checks (incremental between full walks).")
    var driftInterval = 300.0
    @Option(help: "Also write the results as JSON to this file.")
    var json: String?

    func validate() throws {
        guard (1...10_000).contains(changes), (1...86_400).contains(spread), (10...200_000).contains(users) else {
            throw ValidationError("--changes 1…10000, --spread 1…86400, --users 10…200000")
        }
        guard (1...3600).contains(pollInterval), (0...3600).contains(lag), (1...86_400).contains(driftInterval) else {
            throw ValidationError("--poll-interval 1…3600, --lag 0…3600, --drift-interval 1…86400")
        }
    }

    struct Percentiles: Codable {
        var count: Int
        var missing: Int
        var p50: Double?
        var p95: Double?
        var max: Double?
    }

    struct Output: Codable {
        var build: String
        var machine: String
        var changes: Int
        var spreadSeconds: Double
        var users: Int
        var pollInterval: Double
        var lag: Double
        var driftInterval: Double
        var pushFinding: Percentiles
        var pushDriftItem: Percentiles
        var pollingFinding: Percentiles
        var pollingDriftItem: Percentiles
        var pushes: Int
    }

    /// One change: which role, which permission, when the write endpoint replied.
    struct Change: Sendable {
        var roleId: String
        var permission: String
        var repliedAt: ContinuousClock.Instant
    }

    /// The changes made so far.
    final class Made: Sendable {
        let changes = Mutex<[Change]>([])
    }

    /// Latencies one engine showed, by change index.
    final class Seen: Sendable {
        let findings = Mutex<[Int: Double]>([:])
        let driftItems = Mutex<[Int: Double]>([:])
    }

    /// One engine: store, ingestor, monitor, and the push feed when `push`.
    struct Engine {
        var ingestor: AuditIngestor
        var monitor: DriftMonitor
        var push: AuditPushFeed?
        var client: GenesysAPIClient
    }

    func run() async throws {
        var configuration = SimulatorConfiguration()
        configuration.users = users
        configuration.seed = 1
        configuration.rateLimitPerMinute = 0
        Bench.log("generating \(users) users")
        let sim = await GenesysSimulator.generating(configuration)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("rbw-latency-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let settings = (poll: pollInterval, lag: lag, drift: driftInterval, changes: changes, spread: spread)

        let output: Output = try await sim.withRunning { endpoint in
            let admin = GenesysAPIClient(
                connection: GenesysConnection(
                    apiBaseURL: endpoint.apiBaseURL, loginBaseURL: endpoint.loginBaseURL, clientId: endpoint.adminClientId,
                    clientSecret: Secret(endpoint.adminClientSecret)),
                transport: AsyncHTTPClientTransport())
            defer { Task { await admin.shutdown() } }
            // The roles changed: custom ones, each edited in turn.
            let truth = sim.groundTruth()
            let roles = truth.roles.values.filter { !$0.isDefault && $0.name != "rbacwatch Auditor" }.sorted { $0.id < $1.id }
            guard !roles.isEmpty else { throw ValidationError("the organisation has no custom roles") }

            var engines: [(name: String, engine: Engine, seen: Seen)] = []
            for (name, push) in [("push", true), ("polling", false)] {
                let engine = try await Self.engine(endpoint, directory: directory.appendingPathComponent(name), push: push, settings: settings)
                engines.append((name, engine, Seen()))
            }
            let changesMade = Made()
            return try await withThrowingTaskGroup(of: Void.self) { group in
                for (_, engine, seen) in engines {
                    group.addTask { await engine.ingestor.run() }
                    group.addTask { await engine.monitor.run() }
                    if let push = engine.push { group.addTask { await push.run() } }
                    group.addTask {
                        for await update in engine.ingestor.updates {
                            let now = ContinuousClock.now
                            let made = changesMade.changes.withLock { $0 }
                            for finding in update.findings where finding.ruleId == "RBW-001" {
                                guard let index = made.firstIndex(where: { $0.roleId == finding.entityId && finding.evidence.joined(separator: " ").contains($0.permission) })
                                else { continue }
                                seen.findings.withLock { if $0[index] == nil { $0[index] = Bench.seconds(now - made[index].repliedAt) } }
                            }
                        }
                    }
                    group.addTask {
                        for await update in engine.monitor.updates {
                            let now = ContinuousClock.now
                            guard let items = update.review?.result.items, let attribution = update.attribution else { continue }
                            let made = changesMade.changes.withLock { $0 }
                            for item in items where attribution[item.fingerprint]?.status == .explained {
                                for permission in item.permissionsAdded {
                                    guard let index = made.firstIndex(where: { $0.permission == permission }) else { continue }
                                    seen.driftItems.withLock { if $0[index] == nil { $0[index] = Bench.seconds(now - made[index].repliedAt) } }
                                }
                            }
                        }
                    }
                }
                // Both engines ready: a first poll and a first drift check each, push live.
                let deadline = ContinuousClock.now + .seconds(300)
                for (name, engine, _) in engines {
                    while ContinuousClock.now < deadline {
                        let polled = await engine.ingestor.health.lastSuccess != nil
                        let checked = await engine.monitor.latest.collectedAt != nil
                        let live = await engine.push?.health.isLive ?? true
                        if polled && checked && live { break }
                        try await Task.sleep(for: .milliseconds(100))
                    }
                    Bench.log("\(name) engine ready")
                }
                // The changes, spread evenly.
                let gap = Duration.milliseconds(Int(settings.spread * 1000 / Double(settings.changes)))
                var permissions: [String: [String]] = [:]
                for role in roles { permissions[role.id] = role.permissions }
                for index in 0..<settings.changes {
                    let role = roles[index % roles.count]
                    let permission = "authorization:bench\(index):edit"
                    permissions[role.id, default: []].append(permission)
                    let list = permissions[role.id, default: []].map { "\"\($0)\"" }.joined(separator: ",")
                    _ = try await admin.send(
                        "PUT", "/api/v2/authorization/roles/\(role.id)", body: Array(#"{"name":"\#(role.name)","permissions":[\#(list)]}"#.utf8))
                    changesMade.changes.withLock { $0.append(Change(roleId: role.id, permission: permission, repliedAt: .now)) }
                    try await Task.sleep(for: gap)
                }
                Bench.log("\(settings.changes) changes made; waiting for both engines to show them")
                // Until every change is seen by both, or the slowest path's ceiling passes.
                let ceiling = ContinuousClock.now + .seconds(Int(2 * (settings.poll + settings.lag + settings.drift) + 120))
                while ContinuousClock.now < ceiling {
                    let done = engines.allSatisfy { engine in
                        engine.seen.findings.withLock { $0.count } >= settings.changes && engine.seen.driftItems.withLock { $0.count } >= settings.changes
                    }
                    if done { break }
                    try await Task.sleep(for: .seconds(1))
                }
                group.cancelAll()
                func percentiles(_ values: [Int: Double]) -> Percentiles {
                    let sorted = values.values.sorted()
                    func at(_ p: Double) -> Double? {
                        sorted.isEmpty ? nil : sorted[min(sorted.count - 1, Int((p * Double(sorted.count)).rounded(.up)) - 1)].rounded(toPlaces: 3)
                    }
                    return Percentiles(count: sorted.count, missing: settings.changes - sorted.count, p50: at(0.5), p95: at(0.95), max: sorted.last?.rounded(toPlaces: 3))
                }
                let pushSeen = engines[0].seen
                let pollSeen = engines[1].seen
                let pushes = await engines[0].engine.push?.health.pushes ?? 0
                for (_, engine, _) in engines { await engine.client.shutdown() }
                return Output(
                    build: Bench.buildConfiguration, machine: Bench.machine(), changes: settings.changes, spreadSeconds: settings.spread, users: users,
                    pollInterval: settings.poll, lag: settings.lag, driftInterval: settings.drift,
                    pushFinding: percentiles(pushSeen.findings.withLock { $0 }), pushDriftItem: percentiles(pushSeen.driftItems.withLock { $0 }),
                    pollingFinding: percentiles(pollSeen.findings.withLock { $0 }), pollingDriftItem: percentiles(pollSeen.driftItems.withLock { $0 }),
                    pushes: pushes)
            }
        }
        print("")
        print("latency: \(output.build) build, \(output.machine)")
        print("\(output.changes) critical role edits over \(Int(output.spreadSeconds)) s, \(output.users) users; polls every \(Int(output.pollInterval)) s with a \(Int(output.lag)) s lag, drift checks every \(Int(output.driftInterval)) s; both engines at once")
        print("from the write's reply to              p50 s      p95 s      max s   seen")
        print("-----------------------------------   --------   --------   --------   ------")
        func row(_ name: String, _ p: Percentiles) {
            func f(_ v: Double?) -> String { v.map { String(format: "%8.3f", $0) } ?? "       —" }
            print(name.padding(toLength: 35, withPad: " ", startingAt: 0) + "   \(f(p.p50))   \(f(p.p95))   \(f(p.max))   \(p.count)/\(p.count + p.missing)")
        }
        row("finding stored, push (goal p95 ≤ 2)", output.pushFinding)
        row("drift item published, push (≤ 2)", output.pushDriftItem)
        row("finding stored, polling alone", output.pollingFinding)
        row("drift item published, polling alone", output.pollingDriftItem)
        print("pushes judged: \(output.pushes)")
        try Bench.writeJSON(output, to: json)
    }

    static func engine(
        _ endpoint: SimulatorEndpoint, directory: URL, push: Bool, settings: (poll: Double, lag: Double, drift: Double, changes: Int, spread: Double)
    ) async throws -> Engine {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let store = try SQLiteAuditStore(path: directory.appendingPathComponent("state.sqlite").path)
        let client = Bench.client(endpoint, concurrency: 8)
        let (baseline, _) = try await Collector(client: client).collect()
        _ = try await store.acceptBaseline(snapshot: baseline, collectedAt: Date(), acceptedBy: "bench", note: nil, at: Date())
        var ingestion = IngestionSettings()
        ingestion.pollInterval = settings.poll
        ingestion.lag = settings.lag
        let ingestor = AuditIngestor(source: GenesysAuditSource(client: client), store: store, rules: .defaults(), settings: ingestion)
        let incremental = IncrementalCollection(fullEvery: .seconds(86_400)) { base, changes in
            try await Collector(client: client).refresh(base, changes: changes).0
        }
        let monitor = DriftMonitor(store: store, interval: .milliseconds(Int(settings.drift * 1000)), incremental: incremental) {
            try await Collector(client: client).collect().0
        }
        var feed: AuditPushFeed?
        if push {
            let pushFeed = AuditPushFeed(source: GenesysPushSource(client: client), ingestor: ingestor) { events in
                if events.contains(where: AuditPushFeed.movesAccess) { await monitor.refresh() }
            }
            await monitor.observeSnapshots { snapshot in await pushFeed.want(AuditPushFeed.topics(for: snapshot)) }
            await ingestor.observeCreations { events in await pushFeed.noticed(events) }
            feed = pushFeed
        }
        return Engine(ingestor: ingestor, monitor: monitor, push: feed, client: client)
    }
}
