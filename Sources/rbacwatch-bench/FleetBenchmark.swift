import ArgumentParser
import AuditCore
import AuditStore
import AuditTestSupport
import Foundation
import GenesysSimulator

/// A fleet on this machine: a PostgreSQL server of its own (pg_stat_statements loaded), the
/// simulator serving N organisations from one port with Genesys's rate limits, and W
/// `rbacwatch watch --orgs` worker processes. Measures the time until every organisation has a
/// baseline and a first audit poll, the steady state (requests per minute per organisation
/// against the 300/min limit, statements per second the server executed), and the takeover
/// after the busiest worker is killed with SIGKILL.
struct FleetBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fleet", abstract: "Measure a fleet of workers on PostgreSQL: time to cover every organisation, steady-state load, takeover after kill -9.")

    @Option(help: "Organisations the simulator serves.")
    var orgs = 100

    @Option(help: "Worker processes.")
    var workers = 4

    @Option(help: "Users per organisation.")
    var users = 500

    @Option(name: .customLong("lease-ttl"), help: "Workers' lease TTL, seconds.")
    var leaseTTL = 15

    @Option(name: .customLong("poll-interval"), help: "Workers' audit poll interval, seconds.")
    var pollInterval = 60

    @Option(help: "Seconds of steady state measured.")
    var window = 120

    @Option(help: "The rbacwatch executable (default: the one beside this bench).")
    var binary: String?

    @Option(help: "Also write the results as JSON to this file.")
    var json: String?

    func validate() throws {
        guard (1...1000).contains(orgs), (1...32).contains(workers), (1...100_000).contains(users) else {
            throw ValidationError("--orgs 1…1000, --workers 1…32, --users 1…100,000.")
        }
        guard (3...600).contains(leaseTTL), (1...3600).contains(pollInterval), (10...3600).contains(window) else {
            throw ValidationError("--lease-ttl 3…600, --poll-interval 1…3600, --window 10…3600.")
        }
    }

    struct Output: Codable {
        var benchmark = "fleet"
        var build: String
        var machine: String
        var organizations: Int
        var workers: Int
        var users: Int
        var leaseTTLSeconds: Int
        var pollIntervalSeconds: Int
        var secondsToFirstLeaseAll: Double
        var secondsToBaselineAndPollAll: Double
        var windowSeconds: Double
        var requestsPerMinutePerOrgMedian: Double
        var requestsPerMinutePerOrgMax: Double
        var rateLimitPerMinute: Int
        var statementsPerSecond: Double?
        var killedWorkerOrganizations: Int
        var takeoverSeconds: Double
        var eventsMissedAfterTakeover: Int
    }

    func run() async throws {
        let executable = binary ?? URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("rbacwatch").path
        guard FileManager.default.isExecutableFile(atPath: executable) else {
            throw ValidationError("no rbacwatch executable at \(executable): build it (swift build -c release) or pass --binary")
        }
        Bench.log("starting PostgreSQL (pg_stat_statements loaded)")
        let server = try await PostgresServer.launch(options: "-c shared_preload_libraries=pg_stat_statements -c pg_stat_statements.track=all")
        let location = try await PostgresServer.createDatabase(prefix: "fleet", on: server)
        let database = try await PostgresDatabase.open(location, password: nil)
        try await database.execute(unsafeSQL: "CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        Bench.log("generating \(orgs) organisations of \(users) users")
        var configuration = SimulatorConfiguration()
        configuration.users = users
        let fleet = await SimulatorFleet.generating(count: orgs, configuration: configuration)
        let limit = configuration.rateLimitPerMinute
        let (orgs, workers, users, leaseTTL, pollInterval, window) = (self.orgs, self.workers, self.users, self.leaseTTL, self.pollInterval, self.window)
        let output: Output = try await fleet.withRunning { endpoints in
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("rbw-fleet-\(UUID().uuidString.prefix(8))")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: directory) }
            let names = SimulatorFleet.names(count: orgs)
            let orgsFile = directory.appendingPathComponent("orgs.json").path
            try Data(try SimulatorFleet.organizationsFile(endpoints, names: names, secretDirectory: directory.appendingPathComponent("secrets").path))
                .write(to: URL(fileURLWithPath: orgsFile))
            let url = "postgres://\(location.user)@\(location.host):\(location.port)/\(location.database)?sslmode=disable"
            let started = ContinuousClock.now
            let processes = try (1...workers).map { index in
                try ChildProcess(
                    name: "worker-\(index)", executable: executable,
                    arguments: [
                        "watch", "--orgs", orgsFile, "--store", url, "--worker-id", "worker-\(index)", "--lease-ttl", "\(leaseTTL)s",
                        "--poll-interval", "\(pollInterval)s", "--drift-interval", "15m", "--log-level", "warning",
                    ],
                    environment: ["PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin", "HOME": directory.path], directory: directory)
            }
            do {
                // Coverage: every organisation leased, then with a baseline and a first poll.
                var allLeased: Duration?
                var covered: Duration?
                while covered == nil {
                    let elapsed = ContinuousClock.now - started
                    guard elapsed < .seconds(3600) else { throw ValidationError("the fleet did not cover every organisation within an hour") }
                    if allLeased == nil, try await database.leases(prefix: "org:").filter(\.held).count == orgs { allLeased = elapsed }
                    let progress = try await database.fleetProgress()
                    if progress.baselines == orgs && progress.polled == orgs { covered = elapsed }
                    if Int(Bench.seconds(elapsed)) % 10 == 0 {
                        Bench.log("\(Int(Bench.seconds(elapsed)))s: \(progress.baselines) baselines, \(progress.polled) polled of \(orgs)")
                    }
                    try await Task.sleep(for: .milliseconds(500))
                }
                Bench.log("covered in \(Bench.seconds(covered!)) s; steady state for \(window) s")
                // Steady state.
                let requestsBefore = fleet.requestCounts
                let statementsBefore = try await database.serverStatementCount()
                let windowStart = ContinuousClock.now
                try await Task.sleep(for: .seconds(window))
                let measured = Bench.seconds(ContinuousClock.now - windowStart)
                let requestsAfter = fleet.requestCounts
                let statementsAfter = try await database.serverStatementCount()
                let perMinute = zip(requestsAfter, requestsBefore).map { Double($0 - $1) / measured * 60 }
                var statementsPerSecond: Double?
                if let before = statementsBefore, let after = statementsAfter { statementsPerSecond = (Double(after - before) / measured).rounded(toPlaces: 1) }

                // Takeover: kill -9 the busiest worker.
                let leases = try await database.leases(prefix: "org:").filter(\.held)
                let counts = Dictionary(grouping: leases, by: { $0.owner ?? "" }).mapValues(\.count)
                let busiest = counts.max { $0.value < $1.value }?.key ?? "worker-1"
                let orphans = Set(leases.filter { $0.owner == busiest }.map(\.name))
                let victim = processes.first { $0.name == busiest } ?? processes[0]
                Bench.log("killing \(busiest) (\(orphans.count) organisations) with SIGKILL")
                let killedAt = ContinuousClock.now
                await victim.kill9()
                // Changes while orphaned: each must reach the store through the new holder.
                let orphanIndexes = names.enumerated().filter { orphans.contains("org:\($0.element)") }.map(\.offset)
                for index in orphanIndexes { fleet.simulators[index].apply(.grantRoleToGroup) }
                var takeover: Duration?
                while takeover == nil, ContinuousClock.now - killedAt < .seconds(Int64(leaseTTL * 10)) {
                    let now = try await database.leases(prefix: "org:").filter { orphans.contains($0.name) }
                    if now.count == orphans.count && now.allSatisfy({ $0.held && $0.owner != busiest }) { takeover = ContinuousClock.now - killedAt }
                    try await Task.sleep(for: .milliseconds(100))
                }
                // Every event of the orphaned organisations stored after the takeover (bounded wait).
                var missed = 0
                let deadline = ContinuousClock.now + .seconds(Int64(pollInterval * 3 + 120))
                repeat {
                    missed = 0
                    for index in orphanIndexes {
                        let ids = fleet.simulators[index].auditEventIds
                        let stored = try await database.store(organization: names[index]).recordedAuditEvents(ids: ids, datedFrom: .distantPast, to: .distantFuture)
                        missed += ids.count - stored.count
                    }
                    if missed > 0 { try await Task.sleep(for: .seconds(1)) }
                } while missed > 0 && ContinuousClock.now < deadline
                for process in processes { await process.stop() }
                let sorted = perMinute.sorted()
                return Output(
                    build: Bench.buildConfiguration, machine: Bench.machine(), organizations: orgs, workers: workers, users: users, leaseTTLSeconds: leaseTTL,
                    pollIntervalSeconds: pollInterval, secondsToFirstLeaseAll: Bench.seconds(allLeased ?? covered!),
                    secondsToBaselineAndPollAll: Bench.seconds(covered!), windowSeconds: measured,
                    requestsPerMinutePerOrgMedian: (Bench.median(sorted) ?? 0).rounded(toPlaces: 1), requestsPerMinutePerOrgMax: (sorted.last ?? 0).rounded(toPlaces: 1),
                    rateLimitPerMinute: limit, statementsPerSecond: statementsPerSecond, killedWorkerOrganizations: orphans.count,
                    takeoverSeconds: takeover.map(Bench.seconds) ?? -1, eventsMissedAfterTakeover: missed)
            } catch {
                for process in processes {
                    await process.stop()
                    Bench.log("\(process.name): \(process.log.suffix(2000))")
                }
                throw error
            }
        }
        await database.close()
        print("fleet: \(output.organizations) organisations × \(output.users) users, \(output.workers) workers, lease TTL \(output.leaseTTLSeconds) s, poll every \(output.pollIntervalSeconds) s — \(output.build) build, \(output.machine)")
        let rows: [(String, String)] = [
            ("every organisation leased", "\(output.secondsToFirstLeaseAll) s"),
            ("every one with a baseline and a first poll", "\(output.secondsToBaselineAndPollAll) s"),
            ("requests/min per organisation (median, max)", "\(output.requestsPerMinutePerOrgMedian), \(output.requestsPerMinutePerOrgMax) of \(output.rateLimitPerMinute) allowed"),
            ("PostgreSQL statements/s (steady state)", output.statementsPerSecond.map { "\($0)" } ?? "n/a (pg_stat_statements not loaded)"),
            ("takeover after kill -9 (\(output.killedWorkerOrganizations) organisations)", "\(output.takeoverSeconds) s (lease TTL \(output.leaseTTLSeconds) s)"),
            ("events missed across the takeover", "\(output.eventsMissedAfterTakeover)"),
        ]
        print("MEASURE".padding(toLength: 52, withPad: " ", startingAt: 0) + "VALUE")
        for (name, value) in rows { print(name.padding(toLength: 52, withPad: " ", startingAt: 0) + value) }
        try Bench.writeJSON(output, to: json)
    }
}
