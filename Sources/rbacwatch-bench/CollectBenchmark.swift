import ArgumentParser
import AuditCore
import Foundation
import GenesysClient
import GenesysSimulator

/// `rbacwatch-bench collect`: the collector against the in-process simulator, beside a per-user
/// strategy (one `authorization/subjects` call per user), with the plan's theoretical minimum and
/// the rate-limit floor of each.
struct CollectBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "collect", abstract: "Measure a full collection against the simulator.")

    @Option(help: "Users in the generated organisation.")
    var users = 10_000

    @Option(help: "Seed of the generated organisation.")
    var seed: UInt64 = 1

    @Option(name: .customLong("latency-ms"), help: "Latency the simulator adds to each reply.")
    var latencyMs = 0

    @Option(name: .customLong("rate-limit"), help: "Requests per minute per token (0: unlimited).")
    var rateLimit = 300

    @Option(help: "Collections to time (the median is reported).")
    var runs = 3

    @Option(help: "Requests in flight at once.")
    var concurrency = 8

    @Option(
        name: .customLong("per-user-budget"),
        help: "Run the per-user strategy for real only if its rate-limit floor is under this many seconds.")
    var perUserBudget = 300.0

    @Option(help: "Also write the results as JSON to this file.")
    var json: String?

    struct Measurement: Codable {
        var requests: Int
        var minimum: Int
        var rateLimited: Int
        var wallSeconds: [Double]
        var medianSeconds: Double?
        /// requests ÷ rate.
        var floorSeconds: Double?
        /// The floor under fixed one-minute windows: a full budget per window, the last one at
        /// its start, so (⌈requests ÷ rate⌉ − 1) minutes.
        var windowFloorSeconds: Double?
        var ran: Bool
    }

    struct Output: Codable {
        var benchmark = "collect"
        var users: Int
        var seed: UInt64
        var rateLimit: Int
        var latencyMs: Int
        var concurrency: Int
        var runs: Int
        var build: String
        var plan: Measurement
        var perUser: Measurement
    }

    func run() async throws {
        var configuration = SimulatorConfiguration()
        configuration.users = users
        configuration.seed = seed
        configuration.rateLimitPerMinute = rateLimit
        configuration.faults.latency = .milliseconds(latencyMs)
        let generationStart = ContinuousClock.now
        let simulator = GenesysSimulator(configuration: configuration)
        let truth = simulator.groundTruth()
        Bench.log("generated \(truth.users.count) users, \(truth.roles.count) roles, \(truth.grants.count) grants in \(Bench.seconds(ContinuousClock.now - generationStart)) s")

        let options = CollectorOptions()
        let minimum = Self.planMinimum(truth, options: options)
        let perUserMinimum = 1 + Bench.pages(truth.users.count, options.userPageSize) + truth.users.count
            + Bench.pages(truth.roles.count, options.pageSize)
        let (runs, concurrency, rateLimit, budget) = (runs, concurrency, rateLimit, perUserBudget)

        let output = try await simulator.withRunning { endpoint in
            var plan = Measurement(requests: 0, minimum: minimum, rateLimited: 0, wallSeconds: [], ran: true)
            for run in 1...runs {
                let client = Bench.client(endpoint, concurrency: concurrency)
                let (snapshot, report) = try await Collector(client: client, options: options).collect()
                await client.shutdown()
                guard !snapshot.isPartial, snapshot.users.count == truth.users.count else {
                    throw ValidationError("collection \(run) was incomplete: \(snapshot.problems.map(\.message))")
                }
                plan.requests = report.statistics.requests + report.logins
                plan.rateLimited += report.statistics.rateLimited
                plan.wallSeconds.append(Bench.seconds(report.elapsed))
                Bench.log("plan run \(run): \(plan.requests) requests, \(report.statistics.rateLimited) × 429, \(Bench.seconds(report.elapsed)) s")
            }
            plan.medianSeconds = Bench.median(plan.wallSeconds)
            plan.floorSeconds = Self.floor(plan.requests, rateLimit)
            plan.windowFloorSeconds = Self.windowFloor(plan.requests, rateLimit)

            var perUser = Measurement(
                requests: perUserMinimum, minimum: perUserMinimum, rateLimited: 0, wallSeconds: [],
                floorSeconds: Self.floor(perUserMinimum, rateLimit), windowFloorSeconds: Self.windowFloor(perUserMinimum, rateLimit),
                ran: false)
            if (perUser.floorSeconds ?? 0) <= budget {
                let client = Bench.client(endpoint, concurrency: concurrency)
                let start = ContinuousClock.now
                let requests = try await PerUserStrategy(client: client, options: options).collect()
                perUser.wallSeconds = [Bench.seconds(ContinuousClock.now - start)]
                perUser.medianSeconds = perUser.wallSeconds.first
                perUser.requests = requests + (await client.logins())
                perUser.rateLimited = client.statistics.rateLimited
                perUser.ran = true
                await client.shutdown()
                Bench.log("per-user: \(perUser.requests) requests, \(perUser.rateLimited) × 429, \(perUser.wallSeconds[0]) s")
            } else {
                Bench.log("per-user strategy not run: its rate-limit floor (\(Int(perUser.floorSeconds ?? 0)) s) exceeds --per-user-budget")
            }
            return Output(
                users: truth.users.count, seed: seed, rateLimit: rateLimit, latencyMs: latencyMs, concurrency: concurrency,
                runs: runs, build: Bench.buildConfiguration, plan: plan, perUser: perUser)
        }
        Self.printTable(output)
        try Bench.writeJSON(output, to: json)
    }

    static func floor(_ requests: Int, _ rate: Int) -> Double? {
        rate > 0 ? Double(requests) * 60 / Double(rate) : nil
    }

    static func windowFloor(_ requests: Int, _ rate: Int) -> Double? {
        rate > 0 ? Double(max(0, Bench.pages(requests, rate) - 1)) * 60 : nil
    }

    /// Requests the plan makes for this org when nothing goes wrong: login, organisation, every list
    /// page, subject grants per role, members per role-holding group, and the confirmation walks.
    static func planMinimum(_ truth: GroundTruth, options: CollectorOptions) -> Int {
        let ps = options.pageSize
        var holders: [String: Set<String>] = [:]
        for grant in truth.grants { holders[grant.roleId, default: []].insert(grant.subjectId) }
        let subjectGrantPages = truth.roles.keys.reduce(0) { $0 + max(1, Bench.pages(holders[$1]?.count ?? 0, ps)) }
        let groupsWithGrants = Set(truth.grants.filter { $0.subjectType == "PC_GROUP" }.map(\.subjectId))
        let memberPages = truth.groups.values.filter { $0.rolesEnabled || groupsWithGrants.contains($0.id) }
            .reduce(0) { $0 + max(1, Bench.pages($1.memberIds.count, ps)) }
        let smallLists = Bench.pages(truth.divisions.count, ps) + Bench.pages(truth.roles.count, ps)
            + Bench.pages(truth.groups.count, ps) + Bench.pages(truth.oauthClients.count, ps)
        return 1 + 1 + smallLists + Bench.pages(truth.users.count, options.userPageSize)
            + max(1, Bench.pages(truth.teams.count, ps)) + subjectGrantPages + memberPages + smallLists
    }

    static func printTable(_ o: Output) {
        print("")
        print("collect: \(o.users) users, rate limit \(o.rateLimit == 0 ? "none" : "\(o.rateLimit)/min"), latency \(o.latencyMs) ms, concurrency \(o.concurrency), \(o.build) build")
        let header = ["strategy", "requests", "minimum", "429s", "wall (median)", "floor (req ÷ rate)", "floor (1-min windows)"]
        var rows = [header]
        func row(_ name: String, _ m: Measurement) -> [String] {
            [
                name, String(m.requests), String(m.minimum), m.ran ? String(m.rateLimited) : "-",
                m.medianSeconds.map { String(format: "%.1f s", $0) } ?? "not run",
                m.floorSeconds.map { String(format: "%.1f s", $0) } ?? "-",
                m.windowFloorSeconds.map { String(format: "%.1f s", $0) } ?? "-",
            ]
        }
        rows.append(row("plan (subject grants per role)", o.plan))
        rows.append(row("per user (subjects per user)", o.perUser))
        let widths = (0..<header.count).map { column in rows.map { $0[column].count }.max() ?? 0 }
        for (index, row) in rows.enumerated() {
            print(row.enumerated().map { column, cell in
                column == 0 ? cell.padding(toLength: widths[column], withPad: " ", startingAt: 0)
                    : String(repeating: " ", count: widths[column] - cell.count) + cell
            }.joined(separator: "  "))
            if index == 0 { print(widths.map { String(repeating: "-", count: $0) }.joined(separator: "  ")) }
        }
        if o.plan.requests > 0 {
            print(String(format: "requests ratio per-user / plan: %.1f×", Double(o.perUser.requests) / Double(o.plan.requests)))
        }
    }
}

/// The naive strategy, for comparison: list users, then ask `authorization/subjects/{id}` for each.
struct PerUserStrategy {
    let client: GenesysAPIClient
    let options: CollectorOptions

    struct UserRow: Decodable, Sendable { var id: String }
    struct Role: Decodable, Sendable { var id: String }
    struct Subject: Decodable, Sendable { var id: String }

    /// Returns the API requests made.
    func collect() async throws -> Int {
        let users = try await client.walkPages(
            "/api/v2/users", query: [("state", "any")], pageSize: options.userPageSize, id: { (u: UserRow) in u.id })
        _ = try await client.walkPages(
            "/api/v2/authorization/roles", query: [("userCount", "false")], pageSize: options.pageSize, id: { (r: Role) in r.id })
        try await withThrowingTaskGroup(of: Void.self) { group in
            for user in users.items {
                group.addTask { _ = try await client.get("/api/v2/authorization/subjects/\(user.id)", as: Subject.self) }
            }
            try await group.waitForAll()
        }
        return client.statistics.requests
    }
}
