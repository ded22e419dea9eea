import AuditCore
import AuditEngine
import AuditStore
import AuditTestSupport
import Foundation
import GenesysClient
import GenesysSimulator
import GRDB
import Synchronization
import Testing

/// Ingestion against the simulator over loopback HTTP, with one manual clock for both sides:
/// time moves only when the test says so, nothing sleeps.
@Suite("Audit ingestion")
struct IngestionTests {
    /// A simulator on the manual clock, an auditor client that surfaces 429s, an admin client to
    /// make changes, and a SQLite store in a temporary directory.
    struct Rig: Sendable {
        let clock: ManualClock
        let sim: GenesysSimulator
        let endpoint: SimulatorEndpoint
        let auditor: GenesysAPIClient
        let admin: GenesysAPIClient
        let statePath: String
        /// The hostile server the auditor talks through, when the test asked for one.
        var server: HostileServer?

        func store() throws -> SQLiteAuditStore { try SQLiteAuditStore(path: statePath) }

        func ingestor(_ store: any AuditStore, settings: IngestionSettings = IngestionSettings()) -> AuditIngestor {
            AuditIngestor(
                source: GenesysAuditSource(client: auditor, pollInterval: .milliseconds(1)), store: store, rules: .defaults(),
                settings: settings, clock: ManualWallClock(clock))
        }

        /// Creates a role (one `PeoplePermissions/Role/Create` event, dated now on the clock).
        @discardableResult
        func createRole(_ name: String, permissions: [String] = ["routing:queue:view"]) async throws -> String {
            struct Created: Decodable, Sendable { var id: String }
            let list = permissions.map { "\"\($0)\"" }.joined(separator: ",")
            return try await admin.request(
                "POST", "/api/v2/authorization/roles", body: Array(#"{"name":"\#(name)","permissions":[\#(list)]}"#.utf8), decode: Created.self
            ).id
        }

        func moveUser(_ userId: String, to division: String) async throws {
            _ = try await admin.send("POST", "/api/v2/authorization/divisions/\(division)/objects/USER", body: Array(#"["\#(userId)"]"#.utf8))
        }
    }

    /// - Parameter hostile: rules for a hostile server between the auditor and the simulator
    ///   (the admin client always talks to the simulator directly).
    static func withRig(
        hostile: [HostileServer.Rule]? = nil, _ adjust: (inout SimulatorConfiguration) -> Void = { _ in }, _ body: @Sendable (Rig) async throws -> Void
    ) async throws {
        let clock = ManualClock(epoch: Date(timeIntervalSince1970: 1_795_000_000))
        let sim = TestSupport.simulator(users: 40, seed: 11) { config in
            config.wallClock = { clock.date() }
            adjust(&config)
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("rbw-ingest-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        try await sim.withRunning { endpoint in
            let server = hostile.map { HostileServer(upstream: endpoint.apiBaseURL, rules: $0) }
            var audited = endpoint
            if let server {
                let url = try await server.start()
                audited.apiBaseURL = url
                audited.loginBaseURL = url
            }
            var retry = TestSupport.fastRetry
            retry.maxRateLimitRetries = 0
            let auditor = GenesysAPIClient(connection: TestSupport.connection(audited), transport: AsyncHTTPClientTransport(), retry: retry)
            let admin = GenesysAPIClient(
                connection: GenesysConnection(
                    apiBaseURL: endpoint.apiBaseURL, loginBaseURL: endpoint.loginBaseURL, clientId: endpoint.adminClientId,
                    clientSecret: Secret(endpoint.adminClientSecret)),
                transport: AsyncHTTPClientTransport(), retry: TestSupport.fastRetry)
            let rig = Rig(
                clock: clock, sim: sim, endpoint: endpoint, auditor: auditor, admin: admin, statePath: directory.appendingPathComponent("state.sqlite").path,
                server: server)
            do {
                try await body(rig)
            } catch {
                await auditor.shutdown()
                await admin.shutdown()
                await server?.stop()
                throw error
            }
            await auditor.shutdown()
            await admin.shutdown()
            await server?.stop()
        }
    }

    @Test("a restart keeps the rules' memory: throttles still hold for the same trunk and the same account's failed-login burst")
    func restartKeepsRuleState() async throws {
        try await Self.withRig { rig in
            let store = try rig.store()
            var first: AuditIngestor? = rig.ingestor(store)
            #expect(await first!.poll().failed == nil)
            rig.sim.recordAmbient(.trunkEdited, roll: 7)
            rig.sim.recordAmbient(.loginFailures, roll: 3)  // five failures: a burst
            rig.clock.advance(by: .seconds(70))
            let before = await first!.poll()
            #expect(before.findings.map(\.ruleId).sorted() == ["RBW-012", "RBW-013"], "\(before.findings.map(\.ruleId))")
            first = nil  // restart

            // The same trunk again within its 15-minute throttle, the same account failing again.
            rig.clock.advance(by: .seconds(120))
            rig.sim.recordAmbient(.trunkEdited, roll: 7)
            rig.sim.recordAmbient(.loginFailures, roll: 3)
            rig.clock.advance(by: .seconds(70))
            let second = rig.ingestor(try rig.store())
            let after = await second.poll()
            #expect(after.judged == 6)
            #expect(after.findings.isEmpty, "a fresh engine would alert again: \(after.findings.map(\.ruleId))")
        }
    }

    @Test("a restart mid-stream: events waiting in the reorder buffer are fetched again, nothing is judged twice, nothing is missed")
    func restart() async throws {
        try await Self.withRig { rig in
            let store = try rig.store()
            var first: AuditIngestor? = rig.ingestor(store)
            #expect(await first!.poll().failed == nil)
            for index in 1...5 {
                rig.clock.advance(by: .seconds(3))
                try await rig.createRole("Restart \(index)")
            }
            rig.clock.advance(by: .seconds(20))
            let early = await first!.poll()
            #expect(early.new == 5 && early.judged == 0, "younger than the safety lag: held back")
            first = nil  // the process dies with five events in its buffer

            rig.clock.advance(by: .seconds(70))
            let second = rig.ingestor(try rig.store())
            let resumed = await second.poll()
            #expect(resumed.judged == 5)
            for index in 6...8 {
                rig.clock.advance(by: .seconds(20))
                try await rig.createRole("Restart \(index)")
            }
            var skipped = 0
            for _ in 0..<4 {
                rig.clock.advance(by: .seconds(60))
                let outcome = await second.poll()
                #expect(outcome.failed == nil)
                skipped += outcome.skipped
            }
            #expect(skipped > 0, "the overlap's records, known byte for byte, were left unparsed")
            let all = try await store.auditEvents(from: .distantPast, to: .distantFuture)
            #expect(all.count == rig.sim.auditEventCount, "every event once: \(all.count) of \(rig.sim.auditEventCount)")
            #expect(Set(all.map(\.id)).count == all.count)
            #expect(await second.health.duplicatesSkipped > 0, "the overlap did refetch, and dedupe caught it")
            #expect(try await store.ingestionGaps().isEmpty)
        }
    }

    @Test("a two-hour pause is a gap: recorded with its length and backfilled in windows")
    func twoHourPause() async throws {
        try await Self.withRig { rig in
            let store = try rig.store()
            let ingestor = rig.ingestor(store)
            #expect(await ingestor.poll().failed == nil)
            for index in 1...8 {
                rig.clock.advance(by: .seconds(15 * 60))
                try await rig.createRole("Paused \(index)", permissions: index == 4 ? ["authorization:grant:add"] : ["routing:queue:view"])
            }
            rig.clock.advance(by: .seconds(120))
            let outcome = await ingestor.poll()
            #expect(outcome.failed == nil)
            let gap = try #require(outcome.gap)
            #expect(gap.seconds > 7000 && gap.seconds < 7400, "\(gap.seconds)")
            #expect(try await store.ingestionGaps() == [gap])
            #expect(outcome.judged == 8)
            #expect(outcome.findings.contains { $0.ruleId == "RBW-001" && $0.entityName == "Paused 4" })
            #expect(try await store.auditFindings(FindingQuery()).contains { $0.ruleId == "RBW-001" })
        }
    }

    @Test("a backfill window whose write fails (a real SQLite abort, while the next window is judged) loses nothing: the poll says why, and the next one stores and judges it")
    func failedWriteInBackfill() async throws {
        try await Self.withRig { rig in
            let store = try rig.store()
            let ingestor = rig.ingestor(store)
            #expect(await ingestor.poll().failed == nil)
            // Three hours of pause, a role created (and its grant event) in each hour's window.
            var ids: [String] = []
            for index in 1...3 {
                rig.clock.advance(by: .seconds(50 * 60))
                ids.append(try await rig.createRole("Window \(index)", permissions: index == 2 ? ["authorization:grant:add"] : ["routing:queue:view"]))
                rig.clock.advance(by: .seconds(10 * 60))
            }
            rig.clock.advance(by: .seconds(120))
            // The second window's transaction aborts inside SQLite.
            let raw = try DatabaseQueue(path: rig.statePath)
            let refused = ids[1]
            try await raw.write { db in
                try db.execute(
                    sql: "CREATE TRIGGER refuse BEFORE INSERT ON audit_event WHEN NEW.entity_id = '\(refused)' BEGIN SELECT RAISE(ABORT, 'injected failure'); END")
            }
            let failed = await ingestor.poll()
            #expect(failed.failed?.contains("injected failure") == true, "\(failed.failed ?? "no failure")")
            var stored = try await store.auditEvents(from: .distantPast, to: .distantFuture).map(\.entityId)
            #expect(stored.contains(ids[0]) && !stored.contains(ids[1]) && !stored.contains(ids[2]), "the first window only")
            #expect(!failed.findings.contains { $0.entityName == "Window 2" }, "a finding is published only once it is stored")

            try await raw.write { db in try db.execute(sql: "DROP TRIGGER refuse") }
            try raw.close()
            rig.clock.advance(by: .seconds(60))
            let next = await ingestor.poll()
            #expect(next.failed == nil)
            stored = try await store.auditEvents(from: .distantPast, to: .distantFuture).map(\.entityId)
            #expect(ids.allSatisfy { stored.contains($0) }, "every window stored")
            #expect(stored.count == Set(try await store.auditEvents(from: .distantPast, to: .distantFuture).map(\.id)).count, "each event once")
            #expect(next.findings.contains { $0.ruleId == "RBW-001" && $0.entityName == "Window 2" }, "judged again: \(next.findings.map(\.entityName))")
            #expect(try await store.auditFindings(FindingQuery()).contains { $0.entityName == "Window 2" })
        }
    }

    @Test("beyond the realtime query's 14 days the async query backfills")
    func asyncBackfill() async throws {
        try await Self.withRig { rig in
            let store = try rig.store()
            try await rig.createRole("Old role", permissions: ["authorization:role:edit"])
            // A checkpoint from before the event, then twenty days of silence.
            try await store.recordAudit(
                AuditBatch(events: [], findings: [], checkpoint: IngestionCheckpoint(highWater: rig.clock.date().addingTimeInterval(-600), updatedAt: rig.clock.date())))
            rig.clock.advance(by: .seconds(20 * 86_400))
            let outcome = await rig.ingestor(store).poll()
            #expect(outcome.failed == nil)
            #expect(outcome.judged == 1)
            #expect(outcome.findings.map(\.ruleId) == ["RBW-001"])
            #expect((outcome.gap?.seconds ?? 0) > 19 * 86_400)
        }
    }

    @Test("late and out-of-order arrivals are judged in eventDate order")
    func lateEventsInOrder() async throws {
        try await Self.withRig({ $0.auditArrivalDelaySeconds = 50 }) { rig in
            let store = InMemoryAuditStore()
            let ingestor = rig.ingestor(store)
            #expect(await ingestor.poll().failed == nil)
            var order: [String] = []
            for index in 1...12 {
                rig.clock.advance(by: .seconds(5))
                try await rig.createRole("Late \(index)")
                if index % 3 == 0 { order += await ingestor.poll().judgedIds }
            }
            for _ in 0..<4 {
                rig.clock.advance(by: .seconds(60))
                order += await ingestor.poll().judgedIds
            }
            let events = try await store.auditEvents(from: .distantPast, to: .distantFuture)
            #expect(events.count == 12 && order.count == 12)
            let dates = Dictionary(uniqueKeysWithValues: events.map { ($0.id, $0.date) })
            let judged = order.compactMap { dates[$0] }
            #expect(judged == judged.sorted(), "the rules saw them in the order they happened")
            #expect(await ingestor.health.lateEvents == 0)
        }
    }

    @Test("a 429 storm: backoff, then critical-only polling (said in the health line), then recovery with a backfill")
    func rateLimitStorm() async throws {
        try await Self.withRig { rig in
            let store = InMemoryAuditStore()
            let ingestor = rig.ingestor(store)
            #expect(await ingestor.poll().failed == nil)
            let services = await ingestor.health.services
            #expect(services.count > 2 && services.contains("PeoplePermissions"), "servicemapping read: \(services)")

            // Two audit requests a minute: a full poll (one query per service) cannot get through.
            rig.sim.faults.auditRateLimitPerMinute = 2
            var throttledFor = 0.0
            var delays: [Double] = []
            while await ingestor.health.mode == .normal {
                let outcome = await ingestor.poll()
                #expect(outcome.rateLimited)
                delays.append(outcome.nextDelay)
                rig.clock.advance(by: .milliseconds(Int64(outcome.nextDelay * 1000)))
                throttledFor += outcome.nextDelay
                try #require(throttledFor < 3600, "the circuit never opened")
            }
            #expect(delays.count >= 2 && delays[1] > delays[0], "backs off: \(delays)")
            #expect(throttledFor >= 300)
            #expect(await ingestor.health.summary.contains("CRITICAL-ONLY"))

            // Narrowed: a role change (critical) is judged; a user's division move waits.
            let user = try #require(rig.sim.groundTruth().users.values.sorted { $0.id < $1.id }.first)
            let division = try #require(rig.sim.groundTruth().divisions.keys.sorted().first { $0 != user.divisionId })
            try await rig.createRole("During the storm", permissions: ["authorization:grant:add"])
            try await rig.moveUser(user.id, to: division)
            rig.clock.advance(by: .seconds(90))
            var narrowed = await ingestor.poll()
            while narrowed.rateLimited {
                rig.clock.advance(by: .milliseconds(Int64(narrowed.nextDelay * 1000)))
                narrowed = await ingestor.poll()
            }
            #expect(narrowed.findings.contains { $0.ruleId == "RBW-001" })
            #expect(!narrowed.findings.contains { $0.ruleId == "RBW-014" })

            // The API recovers: after five quiet minutes polling widens and backfills the rest.
            rig.sim.faults.auditRateLimitPerMinute = 0
            var recovered: [AuditFinding] = []
            for _ in 0..<12 where await ingestor.health.mode == .criticalOnly || recovered.isEmpty {
                rig.clock.advance(by: .seconds(60))
                recovered += await ingestor.poll().findings
            }
            #expect(await ingestor.health.mode == .normal)
            #expect(recovered.contains { $0.ruleId == "RBW-014" }, "the division move was judged after widening")
            let findings = try await store.auditFindings(FindingQuery())
            #expect(findings.filter { $0.ruleId == "RBW-001" }.count == 1, "judged once, not again by the backfill")
        }
    }
}

/// A window's services read at once: the same events and findings as reading them in turn, a
/// shortened window's reads taken again, a failed read ending the rest.
@Suite("Audit ingestion: a window's reads at once")
struct ConcurrentReadTests {
    /// The real source, watched: how many reads are in flight at most, which were started, and
    /// optionally a stop part-way through one service's first read (as a source that reached a
    /// ceiling would) or a refusal.
    final class Watched: AuditSource {
        let inner: any AuditSource
        let stopService: String?
        let failService: String?
        struct State {
            var inFlight = 0
            var most = 0
            var started: [String] = []
            var stopped = false
        }
        let state = Mutex(State())
        let failing = Mutex(true)

        init(_ inner: any AuditSource, stopService: String? = nil, failService: String? = nil) {
            self.inner = inner
            self.stopService = stopService
            self.failService = failService
        }

        func services() async throws -> [String] { try await inner.services() }

        func fetch(from: Date, to: Date, service: String, entityType: String?, realtime: Bool) async throws -> AuditFetch {
            state.withLock {
                $0.inFlight += 1
                $0.most = max($0.most, $0.inFlight)
                $0.started.append("\(service) to \(Int(to.timeIntervalSince1970))")
            }
            defer { state.withLock { $0.inFlight -= 1 } }
            if service == failService, failing.withLock({ $0 }) { throw AuditSourceError.failed("\(service) refused") }
            var read = try await inner.fetch(from: from, to: to, service: service, entityType: entityType, realtime: realtime)
            let stop = service == stopService && state.withLock { state in
                defer { state.stopped = true }
                return !state.stopped
            }
            if stop {
                // Complete only up to the middle of the window.
                let middle = from.addingTimeInterval(to.timeIntervalSince(from) / 2)
                read.events = read.events.filter { $0.date < middle }
                read.truncation = AuditFetch.Truncation(before: middle, reason: "a ceiling (test)")
            }
            return read
        }
    }

    struct Run {
        var events: [String]
        var services: Set<String>
        var findings: [String]
        var watched: Watched
        var outcomes: [PollOutcome]
    }

    /// Ingests what the rig's simulator holds into a fresh in-memory store, `reads` at once.
    static func ingest(_ rig: IngestionTests.Rig, reads: Int, stopService: String? = nil, failService: String? = nil, polls: Int = 1) async throws -> Run {
        let store = InMemoryAuditStore()
        let watched = Watched(GenesysAuditSource(client: rig.auditor, pollInterval: .milliseconds(1)), stopService: stopService, failService: failService)
        var settings = IngestionSettings()
        settings.concurrentReads = reads
        let ingestor = AuditIngestor(source: watched, store: store, rules: .defaults(), settings: settings, clock: ManualWallClock(rig.clock))
        var outcomes: [PollOutcome] = []
        for _ in 0..<polls { outcomes.append(await ingestor.poll()) }
        let stored = try await store.auditEvents(from: .distantPast, to: .distantFuture)
        let findings = try await store.auditFindings(FindingQuery()).map(\.fingerprint).sorted()
        return Run(events: stored.map(\.id).sorted(), services: Set(stored.map(\.serviceName)), findings: findings, watched: watched, outcomes: outcomes)
    }

    /// A rig whose simulator holds two hours of changes in two services (the first poll looks
    /// back an hour: four role creations and four division moves).
    static func withHistory(_ body: @Sendable (IngestionTests.Rig) async throws -> Void) async throws {
        try await IngestionTests.withRig({ config in config.faults.latency = .milliseconds(5) }) { rig in
            let users = rig.sim.groundTruth().users.values.sorted { $0.id < $1.id }
            let divisions = rig.sim.groundTruth().divisions.keys.sorted()
            for index in 1...8 {
                rig.clock.advance(by: .seconds(15 * 60))
                try await rig.createRole("Read \(index)", permissions: index % 3 == 0 ? ["authorization:grant:add"] : ["routing:queue:view"])
                if let user = users.dropFirst(index).first, let division = divisions.first(where: { $0 != user.divisionId }) {
                    try await rig.moveUser(user.id, to: division)
                }
            }
            rig.clock.advance(by: .seconds(120))
            try await body(rig)
        }
    }

    @Test("read at once, a window's services give the same events and findings as read in turn, with more than one read in flight")
    func sameAsInTurn() async throws {
        try await Self.withHistory { rig in
            let inTurn = try await Self.ingest(rig, reads: 1)
            let atOnce = try await Self.ingest(rig, reads: 4)
            #expect(inTurn.outcomes.allSatisfy { $0.failed == nil } && atOnce.outcomes.allSatisfy { $0.failed == nil })
            #expect(inTurn.events.count >= 8 && inTurn.services.count >= 2, "\(inTurn.events.count) events of \(inTurn.services)")
            #expect(!inTurn.findings.isEmpty)
            #expect(atOnce.events == inTurn.events)
            #expect(atOnce.findings == inTurn.findings)
            #expect(inTurn.watched.state.withLock { $0.most } == 1)
            #expect(atOnce.watched.state.withLock { $0.most } > 1, "the window's services were read at once")
            #expect(atOnce.watched.state.withLock { $0.most } <= 4)
        }
    }

    @Test("a source that stops part-way through one service shortens the window: the reads begun for the rest are taken again for it, and nothing differs")
    func shortenedWindow() async throws {
        try await Self.withHistory { rig in
            let services = try await GenesysAuditSource(client: rig.auditor).services()
            let first = try #require(services.first)
            let inTurn = try await Self.ingest(rig, reads: 1, stopService: first, polls: 2)
            let atOnce = try await Self.ingest(rig, reads: 4, stopService: first, polls: 2)
            #expect(atOnce.outcomes.allSatisfy { $0.failed == nil })
            #expect(atOnce.events == inTurn.events)
            #expect(atOnce.findings == inTurn.findings)
            #expect(inTurn.events.count >= 4 && inTurn.services.count >= 2, "\(inTurn.events.count) events of \(inTurn.services)")
            // A read begun for the second service over the whole window, and again over its first half.
            let second = try #require(services.dropFirst().first)
            let begun = atOnce.watched.state.withLock { $0.started }.filter { $0.hasPrefix("\(second) to ") }
            #expect(begun.count > inTurn.watched.state.withLock { $0.started }.filter { $0.hasPrefix("\(second) to ") }.count, "\(begun)")
        }
    }

    @Test("a refused read ends the poll with its reason and stores nothing; once the source answers, the next poll reads the window whole")
    func refusedRead() async throws {
        try await Self.withHistory { rig in
            let services = try await GenesysAuditSource(client: rig.auditor).services()
            let refused = try #require(services.dropFirst().first)
            let reference = try await Self.ingest(rig, reads: 1)
            let store = InMemoryAuditStore()
            let watched = Watched(GenesysAuditSource(client: rig.auditor, pollInterval: .milliseconds(1)), failService: refused)
            let ingestor = AuditIngestor(source: watched, store: store, rules: .defaults(), clock: ManualWallClock(rig.clock))
            let failed = await ingestor.poll()
            #expect(failed.failed?.contains("\(refused) refused") == true, "\(String(describing: failed.failed))")
            #expect(try await store.auditEvents(from: .distantPast, to: .distantFuture).isEmpty)
            watched.failing.withLock { $0 = false }
            let next = await ingestor.poll()
            #expect(next.failed == nil)
            #expect(try await store.auditEvents(from: .distantPast, to: .distantFuture).map(\.id).sorted() == reference.events)
            #expect(try await store.auditFindings(FindingQuery()).map(\.fingerprint).sorted() == reference.findings)
        }
    }
}
