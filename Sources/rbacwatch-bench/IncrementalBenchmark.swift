import ArgumentParser
import AuditCore
import AuditTestSupport
import Foundation
import GenesysClient
import GenesysSimulator

/// `rbacwatch-bench incremental`: what a drift check costs when it re-reads only what the audit
/// events name, against a full walk of the same organisation at the same moment — and whether the
/// two snapshots are byte-identical, over many seeded mixes of changes.
struct IncrementalBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "incremental",
        abstract: "Measure incremental collection: requests per drift check against a full walk, and byte-identity over many seeded change mixes.")

    @Option(help: "Seeded change mixes checked for byte-identity with a full walk.")
    var seeds = 200

    @Option(help: "Users in each seeded organisation of the identity check.")
    var mixUsers = 400

    @Option(help: "Changes in each seeded mix.")
    var mixChanges = 40

    @Option(help: "Users in the organisation of the cost check.")
    var users = 10_000

    @Option(help: "Audited changes a minute in the cost check.")
    var changesPerMinute = 12

    @Option(help: "Minutes between drift checks in the cost check.")
    var intervalMinutes = 5

    @Option(help: "Drift checks in the cost check (the median is reported).")
    var checks = 3

    @Option(help: "Also write the results as JSON to this file.")
    var json: String?

    struct Output: Codable {
        var benchmark = "incremental"
        var build: String
        var machine: String
        var seeds: Int
        var mixUsers: Int
        var mixChanges: Int
        var identical: Int
        var failedSeeds: [UInt64]
        var users: Int
        var changesPerCheck: Int
        var daily: Cost
        var uniform: Cost
    }

    struct Cost: Codable {
        var checks: Int
        var fullWalkRequests: [Int]
        var incrementalRequests: [Int]
        var medianFullWalkRequests: Double
        var medianIncrementalRequests: Double
        var medianRatio: Double
        var matchedFullWalk: Int
    }

    static func cost(_ rounds: [IncrementalRound]) -> Cost {
        let full = rounds.map(\.fullRequests)
        let incremental = rounds.map(\.incrementalRequests)
        return Cost(
            checks: rounds.count, fullWalkRequests: full, incrementalRequests: incremental, medianFullWalkRequests: Bench.median(full.map(Double.init)) ?? 0,
            medianIncrementalRequests: Bench.median(incremental.map(Double.init)) ?? 0,
            medianRatio: Bench.median(rounds.map { Double($0.incrementalRequests) / Double(max(1, $0.fullRequests)) }) ?? 0,
            matchedFullWalk: rounds.filter(\.identical).count)
    }

    func validate() throws {
        guard (0...100_000).contains(seeds), (10...200_000).contains(users), (1...10_000).contains(mixUsers) else {
            throw ValidationError("--seeds 0…100000, --users 10…200000, --mix-users 1…10000")
        }
        guard (1...1000).contains(changesPerMinute), (1...1440).contains(intervalMinutes), (1...100).contains(checks), (1...10_000).contains(mixChanges) else {
            throw ValidationError("--changes-per-minute 1…1000, --interval-minutes 1…1440, --checks 1…100, --mix-changes 1…10000")
        }
    }

    func run() async throws {
        // Identity over many seeds.
        var identical = 0
        var failed: [UInt64] = []
        for seed in UInt64(1)...UInt64(max(1, seeds)) where seeds > 0 {
            let round = try await IncrementalRound.run(seed: seed, users: mixUsers, changes: mixChanges)
            if round.identical && !round.partial {
                identical += 1
            } else {
                failed.append(seed)
                Bench.log("seed \(seed): incremental differs from the full walk\(round.partial ? " (partial)" : ""): \(round.differences.prefix(5))")
            }
            if seed % 20 == 0 { Bench.log("\(seed) of \(seeds) seeds: \(identical) identical") }
        }

        // Cost on a big organisation: a full walk, then checks each after a minute-rate of changes.
        let perCheck = changesPerMinute * intervalMinutes
        Bench.log("generating \(users) users")
        var configuration = SimulatorConfiguration()
        configuration.users = users
        configuration.seed = 1
        configuration.rateLimitPerMinute = 0
        let sim = await GenesysSimulator.generating(configuration)
        let checks = self.checks
        let (daily, uniform) = try await sim.withRunning { endpoint in
            try await TestSupport.withClient(endpoint) { client in
                var (base, _) = try await Collector(client: client).collect()
                // The two mixes alternate, check by check, on the same organisation.
                var rounds: [String: [IncrementalRound]] = [:]
                for check in 1...(2 * checks) {
                    let mix = check % 2 == 1 ? "daily" : "uniform"
                    let from = Date().addingTimeInterval(-2)
                    sim.apply(mix == "daily" ? .dailyMix(seed: UInt64(1000 + check), count: perCheck) : .randomMix(seed: UInt64(1000 + check), count: perCheck))
                    let served = sim.requestsByRoute
                    let round = try await IncrementalRound.check(client: client, base: base, eventsFrom: from, afterRefresh: {
                        let now = sim.requestsByRoute
                        let mix = now.filter { $0.value != served[$0.key] ?? 0 }.map { "\($0.key) ×\($0.value - (served[$0.key] ?? 0))" }.sorted()
                        Bench.log("incremental requests: \(mix.joined(separator: ", "))")
                    })
                    Bench.log("check \(check) (\(mix) mix): incremental \(round.incrementalRequests) requests (\(round.changes.summary); \(round.changes.roleSubjects.values.map(\.count).reduce(0, +)) grant subjects), full walk \(round.fullRequests), identical \(round.identical)")
                    rounds[mix, default: []].append(round)
                    base = round.incremental
                    try await Task.sleep(for: .seconds(2.1))  // the next check's events start after this one's
                }
                return (rounds["daily"] ?? [], rounds["uniform"] ?? [])
            }
        }
        let output = Output(
            build: Bench.buildConfiguration, machine: Bench.machine(), seeds: seeds, mixUsers: mixUsers, mixChanges: mixChanges, identical: identical,
            failedSeeds: failed, users: users, changesPerCheck: perCheck, daily: Self.cost(daily), uniform: Self.cost(uniform))
        print("")
        print("incremental: \(output.build) build, \(output.machine)")
        print("identity: \(identical) of \(seeds) seeded mixes (\(mixChanges) changes of every kind each, \(mixUsers) users) byte-identical to a full walk")
        print("cost: \(users) users, \(perCheck) audited changes per check (\(changesPerMinute)/min × \(intervalMinutes) min), \(checks) checks per mix, alternating")
        print("change mix                          full walk (before)   incremental (after)   ratio (median)   equal to full walk")
        print("----------------------------------  ------------------   -------------------   --------------   ------------------")
        for (name, cost) in [("day to day (goal ≤ 5 %)", output.daily), ("every kind alike (worst case)", output.uniform)] {
            print(
                name.padding(toLength: 34, withPad: " ", startingAt: 0)
                    + String(format: "  %18.0f   %19.0f   %12.1f %%   %d of %d", cost.medianFullWalkRequests, cost.medianIncrementalRequests, cost.medianRatio * 100, cost.matchedFullWalk, cost.checks))
        }
        try Bench.writeJSON(output, to: json)
        if identical < seeds { throw ExitCode(1) }
    }
}
