import AuditCore
import AuditStore
import AuditTestSupport
import Foundation
import GenesysClient
import GenesysSimulator
import Testing

/// A fleet on one machine, as in production: a real PostgreSQL server, the simulator serving
/// many organisations from one port, and `rbacwatch watch --orgs` worker processes that are
/// killed with SIGKILL and frozen with SIGSTOP.
@Suite("Fleet of workers on PostgreSQL", .serialized)
struct FleetTests {
    struct Setup {
        var directory: URL
        var orgsFile: String
        var destinationsFile: String
        var deliveredFile: String
        var url: String
        var names: [String]
    }

    static func prepare(_ endpoints: [SimulatorEndpoint], location: PostgresLocation) throws -> Setup {
        let directory = try CommandRunner.temporaryDirectory()
        let names = SimulatorFleet.names(count: endpoints.count)
        let orgsFile = directory.appendingPathComponent("orgs.json").path
        try Data(try SimulatorFleet.organizationsFile(endpoints, names: names, secretDirectory: directory.appendingPathComponent("secrets").path))
            .write(to: URL(fileURLWithPath: orgsFile))
        let delivered = directory.appendingPathComponent("delivered.jsonl").path
        let destinations = directory.appendingPathComponent("destinations.json").path
        try Data(#"{"destinations": [{"name": "archive", "kind": "file", "path": "\#(delivered)"}]}"#.utf8).write(to: URL(fileURLWithPath: destinations))
        let url = "postgres://\(location.user)@\(location.host):\(location.port)/\(location.database)?sslmode=disable"
        return Setup(directory: directory, orgsFile: orgsFile, destinationsFile: destinations, deliveredFile: delivered, url: url, names: names)
    }

    static func start(_ name: String, _ setup: Setup, ttl: Int, extra: [String] = []) throws -> ChildProcess {
        try ChildProcess(
            name: name, executable: CommandRunner.binary,
            arguments: [
                "watch", "--orgs", setup.orgsFile, "--store", setup.url, "--worker-id", name, "--lease-ttl", "\(ttl)s", "--poll-interval", "1s",
                "--lag", "1s", "--overlap", "10s", "--lookback", "10m", "--drift-interval", "1h", "--destinations", setup.destinationsFile,
                "--log-level", "info",
            ] + extra,
            environment: ["PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin", "HOME": setup.directory.path, "LANG": "C.UTF-8"],
            directory: setup.directory)
    }

    /// Polls `condition` every 100 ms until it holds or `limit` passes.
    static func eventually(within limit: Duration, _ what: String, _ condition: () async throws -> Bool) async throws {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            if try await condition() { return }
            try await Task.sleep(for: .milliseconds(100))
        }
        Issue.record("not within \(limit): \(what)")
        throw CancellationError()
    }

    /// Every organisation's store holds every event its simulator recorded, each once.
    static func allEventsStored(_ fleet: SimulatorFleet, _ setup: Setup, _ database: PostgresDatabase) async throws -> Bool {
        for (simulator, name) in zip(fleet.simulators, setup.names) {
            let ids = simulator.auditEventIds
            let stored = try await database.store(organization: name).recordedAuditEvents(ids: ids, datedFrom: .distantPast, to: .distantFuture)
            if stored.count != ids.count { return false }
        }
        return true
    }

    static func configuration() -> SimulatorConfiguration {
        var configuration = SimulatorConfiguration()
        configuration.users = 40
        configuration.rateLimitPerMinute = 0
        return configuration
    }

    @Test("3 workers share 20 organisations, each leased exactly once; kill -9 of one hands its organisations to the others within the lease TTL, no event missed, no finding or delivery twice")
    func shareAndTakeOver() async throws {
        let location = try await PostgresServer.createDatabase(prefix: "fleet")
        let database = try await PostgresDatabase.open(location, password: nil)
        defer { Task { await database.close() } }
        let fleet = SimulatorFleet(count: 20, configuration: Self.configuration())
        try await fleet.withRunning { endpoints in
            let setup = try Self.prepare(endpoints, location: location)
            // Changes before the workers start: each organisation has events to backfill.
            for simulator in fleet.simulators { simulator.apply(.grantRoleToGroup) }
            let ttl = 6
            let workers = try (1...3).map { try Self.start("w\($0)", setup, ttl: ttl) }
            var killed: String?
            do {
                try await Self.eventually(within: .seconds(60), "all 20 organisations leased") {
                    try await database.leases(prefix: "org:").filter(\.held).count == 20
                }
                let history = try await database.leaseHistory(prefix: "org:")
                #expect(history.count == 20, "each organisation was leased exactly once: \(history.map { "\($0.name)@\($0.owner)" })")
                #expect(Set(history.map(\.name)).count == 20)
                let byOwner = Dictionary(grouping: history, by: \.owner)
                #expect(byOwner.count == 3 && byOwner.values.allSatisfy { $0.count <= 7 }, "a fair share each: \(byOwner.mapValues(\.count))")
                try await Self.eventually(within: .seconds(60), "every organisation's first events stored") {
                    try await Self.allEventsStored(fleet, setup, database)
                }

                // Kill the worker holding the most: its organisations move once their leases expire.
                let victimName = try #require(byOwner.max { $0.value.count < $1.value.count }?.key)
                let victim = try #require(workers.first { $0.name == victimName })
                let orphans = Set(byOwner[victimName, default: []].map(\.name))
                let killedAt = ContinuousClock.now
                await victim.kill9()
                // Its leases as it left them (read once it is gone: it may renew up to the end).
                let expiries = Dictionary(
                    try await database.leases(prefix: "org:").filter { orphans.contains($0.name) }.map { ($0.name, $0.expiresAt) }, uniquingKeysWith: { a, _ in a })
                killed = victimName
                // Changes while the organisations are orphaned, and after.
                for simulator in fleet.simulators { simulator.apply(.addGroupMember) }
                try await Self.eventually(within: .seconds(Int64(ttl * 4)), "the killed worker's organisations taken over") {
                    let leases = try await database.leases(prefix: "org:")
                    return leases.filter { orphans.contains($0.name) }.allSatisfy { $0.held && $0.owner != victimName && $0.token == 2 }
                }
                let takeover = ContinuousClock.now - killedAt
                // The others wake when its leases expire — within the TTL of its last renewal —
                // and take them at once (by the database's clock; a second and a half of slack
                // for a loaded machine).
                #expect(takeover < .milliseconds(Int64((Double(ttl) + 2) * 1000)), "taken over within the TTL: \(takeover)")
                for grant in try await database.leaseHistory(prefix: "org:") where orphans.contains(grant.name) && grant.token == 2 {
                    let expiry = try #require(expiries[grant.name])
                    #expect(grant.acquiredAt.timeIntervalSince(expiry) < 1.5, "\(grant.name) taken \(grant.acquiredAt.timeIntervalSince(expiry)) s after its lease expired")
                }
                for simulator in fleet.simulators { simulator.apply(.grantRoleToGroup) }
                try await Self.eventually(within: .seconds(90), "every event of every organisation stored, none missed across the takeover") {
                    try await Self.allEventsStored(fleet, setup, database)
                }
                // No finding twice, and each delivered once.
                var findings = 0
                for name in setup.names {
                    let list = try await database.store(organization: name).auditFindings(FindingQuery(limit: 10_000))
                    #expect(Set(list.map { "\($0.ruleId)/\($0.eventIds.last ?? "")" }).count == list.count)
                    findings += list.count
                }
                #expect(findings >= 20, "the grants raised findings in every organisation (\(findings))")
                try await Self.eventually(within: .seconds(60), "every queued payload delivered") {
                    try await database.outbox(fence: nil).destinationStatuses().first?.queued == 0
                }
                let lines = try String(contentsOfFile: setup.deliveredFile, encoding: .utf8).split(separator: "\n")
                let ids = lines.compactMap { line -> String? in
                    guard case .object(let members)? = JSONValue.parse(Array(line.utf8)) else { return nil }
                    return members["id"]?.string
                }
                #expect(ids.count == lines.count)
                #expect(Set(ids).count == ids.count, "no payload delivered twice")
                #expect(ids.count >= findings, "every finding delivered (\(ids.count) of \(findings))")
                #expect(victim.log.contains("organisation leased"))
            } catch {
                for worker in workers { Issue.record("\(worker.name):\n\(worker.log.suffix(3000))") }
                for worker in workers { await worker.stop() }
                throw error
            }
            // Graceful stops release every lease at once.
            for worker in workers where worker.name != killed { #expect(await worker.stop(), "\(worker.name) stopped by itself on SIGTERM") }
            let left = try await database.leases(prefix: "org:").filter(\.held)
            #expect(left.isEmpty, "leases released on graceful shutdown; still held: \(left.map { "\($0.name) by \($0.owner ?? "-") at \($0.token)" })")
            if !left.isEmpty { for worker in workers { Issue.record("\(worker.name):\n\(worker.log.suffix(3000))") } }
        }
    }

    @Test("a worker stopped with SIGSTOP past its lease cannot write once resumed (fencing), and rejoins cleanly")
    func pausedWorkerIsFenced() async throws {
        let location = try await PostgresServer.createDatabase(prefix: "fleet")
        let database = try await PostgresDatabase.open(location, password: nil)
        defer { Task { await database.close() } }
        let fleet = SimulatorFleet(count: 4, configuration: Self.configuration())
        try await fleet.withRunning { endpoints in
            let setup = try Self.prepare(endpoints, location: location)
            let ttl = 4
            let first = try Self.start("p1", setup, ttl: ttl)
            let second = try Self.start("p2", setup, ttl: ttl)
            do {
                try await Self.eventually(within: .seconds(60), "both workers hold two organisations") {
                    let held = try await database.leases(prefix: "org:").filter(\.held)
                    return held.count == 4 && Set(held.compactMap(\.owner)) == ["p1", "p2"]
                }
                let paused = Set(try await database.leases(prefix: "org:").filter { $0.owner == "p1" }.map(\.name))
                first.signal(SIGSTOP)
                try await Self.eventually(within: .seconds(Int64(ttl * 4)), "the paused worker's organisations taken over") {
                    try await database.leases(prefix: "org:").filter { paused.contains($0.name) }.allSatisfy { $0.held && $0.owner == "p2" }
                }
                let takenOver = try await database.leases(prefix: "org:").filter { paused.contains($0.name) }
                // Events while it is paused, stored by the new holder.
                for simulator in fleet.simulators { simulator.apply(.grantRoleToGroup) }
                try await Self.eventually(within: .seconds(60), "the events stored by the new holder") {
                    try await Self.allEventsStored(fleet, setup, database)
                }
                first.signal(SIGCONT)
                // It finds its leases gone, stops those organisations, and takes a fair share again.
                try await Self.eventually(within: .seconds(Int64(ttl * 6)), "the resumed worker noticed and rejoined") {
                    let held = try await database.leases(prefix: "org:").filter(\.held)
                    return first.log.contains("lease lost") && held.filter { $0.owner == "p1" }.count == 2 && held.count == 4
                }
                for simulator in fleet.simulators { simulator.apply(.addGroupMember) }
                try await Self.eventually(within: .seconds(60), "every event stored after the rejoin") {
                    try await Self.allEventsStored(fleet, setup, database)
                }
                // Fencing: nothing carries the paused worker's old tokens after the takeover.
                for lease in takenOver {
                    let name = String(lease.name.dropFirst(4))
                    let old = lease.token - 1
                    let late = try await database.rowsWritten(organization: name, fence: old, after: lease.acquiredAt)
                    #expect(late == 0, "\(name): \(late) rows written with the superseded token \(old) after the takeover")
                    let history = try await database.leaseHistory(prefix: lease.name)
                    #expect(history.map(\.token) == Array(1...Int64(history.count)), "one holder per token")
                }
            } catch {
                for worker in [first, second] { Issue.record("\(worker.name):\n\(worker.log.suffix(3000))") }
                await first.stop()
                await second.stop()
                throw error
            }
            #expect(await first.stop())
            #expect(await second.stop())
        }
    }

    @Test("a misconfigured organisation is reported and the others carry on; orgs list shows each, /metrics labels each organisation and the worker")
    func misconfiguredAndObservable() async throws {
        let location = try await PostgresServer.createDatabase(prefix: "fleet")
        let database = try await PostgresDatabase.open(location, password: nil)
        defer { Task { await database.close() } }
        let fleet = SimulatorFleet(count: 2, configuration: Self.configuration())
        try await fleet.withRunning { endpoints in
            var setup = try Self.prepare(endpoints, location: location)
            // Two broken entries beside the two good ones: a secret variable nobody set, and an
            // entry with a member the file format does not know.
            let good = try String(contentsOfFile: setup.orgsFile, encoding: .utf8)
            let broken = """
                {"name": "no-secret", "apiUrl": "\(endpoints[0].apiBaseURL)", "clientId": "x", "clientSecretEnv": "RBW_TEST_UNSET_SECRET"},
                  {"name": "typo", "apiUrl": "\(endpoints[0].apiBaseURL)", "clientId": "x", "clientSecretEnv": "X", "pollIntervalSecs": 5},
                  
                """
            try Data(good.replacingOccurrences(of: "{\"organizations\": [\n  ", with: "{\"organizations\": [\n  " + broken).utf8)
                .write(to: URL(fileURLWithPath: setup.orgsFile))
            setup.names += ["no-secret", "typo"]
            let worker = try Self.start("m1", setup, ttl: 6, extra: ["--http", "127.0.0.1:0"])
            let transport = AsyncHTTPClientTransport(connectTimeout: .seconds(5))
            do {
                try await Self.eventually(within: .seconds(60), "the good organisations polled, the broken ones reported") {
                    let statuses = try await database.organizations()
                    let polled = statuses.filter { $0.lastPoll != nil }.map(\.name)
                    return Set(polled) == Set(setup.names.prefix(2)) && statuses.first { $0.name == "no-secret" }?.health == "misconfigured"
                }
                let list = try await CommandRunner.run(
                    ["orgs", "list", "--store", setup.url, "--orgs", setup.orgsFile, "--workers"], environment: ["HOME": setup.directory.path])
                #expect(list.status == 0, "\(list.stderr)")
                let lines = list.stdout.split(separator: "\n")
                #expect(lines.contains { $0.hasPrefix("no-secret") && $0.contains("misconfigured") && $0.contains("RBW_TEST_UNSET_SECRET is not set") }, "\(list.stdout)")
                #expect(lines.contains { $0.hasPrefix("typo") && $0.contains("misconfigured: unknown member pollIntervalSecs") }, "\(list.stdout)")
                for name in setup.names.prefix(2) {
                    #expect(lines.contains { $0.hasPrefix(name) && $0.contains("m1") && $0.contains("ok") }, "\(list.stdout)")
                }
                #expect(lines.contains { $0.hasPrefix("m1") && $0.hasSuffix("live") }, "\(list.stdout)")

                // The worker's endpoint: every organisation's series labelled with it, the worker's own.
                var base: String?
                try await Self.eventually(within: .seconds(30), "the worker says where it serves") {
                    if let range = worker.log.range(of: #"http://127\.0\.0\.1:[0-9]+"#, options: .regularExpression) { base = String(worker.log[range]) }
                    return base != nil
                }
                let url = try #require(base)
                // It holds the two good organisations and the two misconfigured ones it reports on.
                let metrics = try await WatchHTTPTests.until("both organisations and the worker in the metrics", transport, url + "/metrics") { status, body in
                    status == 200 && setup.names.prefix(2).allSatisfy { body.contains("rbacwatch_audit_last_success_timestamp_seconds{organization=\"\($0)\"}") }
                        && body.contains("rbacwatch_fleet_organizations_held{worker=\"m1\"} 4.0")
                }.body
                #expect(metrics.contains("rbacwatch_fleet_live_workers{worker=\"m1\"} 1.0"))
                let check = await Promtool.check(metrics)
                #expect(check.status == 0, "promtool check metrics: \(check.output)")
                #expect(await WatchHTTPTests.get(transport, url + "/readyz").status == 200)
            } catch {
                Issue.record("m1:\n\(worker.log.suffix(3000))")
                await transport.shutdown()
                await worker.stop()
                throw error
            }
            await transport.shutdown()
            #expect(await worker.stop())
        }
    }
}
