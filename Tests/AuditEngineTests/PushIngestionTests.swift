import AuditCore
import AuditEngine
import AuditStore
import AuditTestSupport
import Foundation
import GenesysClient
import GenesysSimulator
import Testing

/// Audit events pushed over a real notification socket, judged by the real ingestor into a real
/// SQLite store; the manual clock moves only when a test polls on purpose.
@Suite("Audit ingestion: pushed events")
struct PushIngestionTests {
    typealias Rig = IngestionTests.Rig

    static func editRole(_ rig: Rig, _ id: String, name: String, permissions: [String]) async throws {
        let list = permissions.map { "\"\($0)\"" }.joined(separator: ",")
        _ = try await rig.admin.send("PUT", "/api/v2/authorization/roles/\(id)", body: Array(#"{"name":"\#(name)","permissions":[\#(list)]}"#.utf8))
    }

    /// A channel subscribed to `roleIds`' audit topics.
    static func channel(_ rig: Rig, roles roleIds: [String]) async throws -> NotificationChannel {
        let channel = try await rig.auditor.createNotificationChannel()
        let answer = try await rig.auditor.subscribe(
            channel: channel.id, topics: roleIds.map { NotificationMessage.auditTopic(entityType: "Role", entityId: $0) }, replace: true)
        #expect(answer.allSatisfy { $0.permitted })
        return channel
    }

    static func storedFindings(_ store: any AuditStore) async throws -> [String] {
        try await store.auditFindings(FindingQuery(limit: 10_000)).map { "\($0.ruleId) \($0.eventIds.last ?? "")" }.sorted()
    }

    @Test("a pushed critical role edit is judged, stored and published with no poll in between; the next poll finds it a duplicate and the store keeps the poll's copy")
    func pushedBeforeThePoll() async throws {
        try await IngestionTests.withRig { rig in
            let store = try rig.store()
            let ingestor = rig.ingestor(store)
            let roleId = try await rig.createRole("Queue Reader")
            _ = await ingestor.poll()
            let channel = try await Self.channel(rig, roles: [roleId])
            try await PushInbox.withSocket(channel) { inbox, _ in
                try await Self.editRole(rig, roleId, name: "Queue Reader", permissions: ["routing:queue:view", "admin"])
                try await inbox.wait("the push") { inbox.audits.count == 1 }
                let pushed = try #require(inbox.audits.first)
                #expect(pushed.transactionId == nil, "the push shape has no transaction")
                let updates = Task { () -> IngestionUpdate? in
                    for await update in ingestor.updates where !update.pushed.isEmpty { return update }
                    return nil
                }
                let findings = await ingestor.ingestPushed(inbox.audits)
                #expect(findings.map(\.ruleId) == ["RBW-001"])
                #expect(findings.first?.eventIds.last == pushed.id)
                let published = await updates.value
                #expect(published?.pushed.map(\.id) == [pushed.id])
                #expect(published?.findings.map(\.ruleId) == ["RBW-001"])
                // Stored before any poll: the clock has not moved.
                #expect(try await Self.storedFindings(store) == ["RBW-001 \(pushed.id)"])
                #expect(try await store.ingestionCheckpoint()?.highWater ?? .distantFuture < pushed.date, "the push leaves the checkpoint to the polls")
                // The same push again (a duplicate) is nothing new.
                #expect(await ingestor.ingestPushed(inbox.audits).isEmpty)

                rig.clock.advance(by: .seconds(200))
                let polled = await ingestor.poll()
                #expect(polled.failed == nil)
                #expect(polled.findings.isEmpty, "the poll does not judge the pushed event again")
                let health = await ingestor.health
                #expect(health.pushesJudged == 1 && health.pushesConfirmed == 1 && health.pushDuplicates == 1)
                #expect(try await Self.storedFindings(store) == ["RBW-001 \(pushed.id)"])
                let stored = try await store.auditEvents(from: pushed.date.addingTimeInterval(-1), to: pushed.date.addingTimeInterval(1))
                let copy = try #require(stored.first { $0.id == pushed.id })
                #expect(copy.transactionId != nil, "the store keeps the poll's fuller copy")
                #expect(copy.samePushedSubstance(as: pushed))
            }
        }
    }

    @Test("a push that never came (dropped) is found by the next poll, exactly once; the findings equal polling alone's")
    func droppedPushAndEquality() async throws {
        try await IngestionTests.withRig { rig in
            let store = try rig.store()
            let ingestor = rig.ingestor(store)
            let first = try await rig.createRole("Night Desk")
            let second = try await rig.createRole("Day Desk")
            _ = await ingestor.poll()
            let channel = try await Self.channel(rig, roles: [first, second])
            try await PushInbox.withSocket(channel) { inbox, _ in
                rig.sim.faults.droppedPushes = 1
                try await Self.editRole(rig, first, name: "Night Desk", permissions: ["routing:queue:view", "authorization:grant:add"])
                #expect(rig.sim.notificationPushCounts.dropped == 1)
                try await Self.editRole(rig, second, name: "Day Desk", permissions: ["routing:queue:view", "admin"])
                try await inbox.wait("the second push") { inbox.audits.count == 1 }
                #expect(await ingestor.ingestPushed(inbox.audits).map(\.ruleId) == ["RBW-001"])
            }
            rig.clock.advance(by: .seconds(200))
            let polled = await ingestor.poll()
            #expect(polled.findings.map(\.ruleId) == ["RBW-001"], "the dropped push's event is judged by the poll")
            rig.clock.advance(by: .seconds(200))
            #expect(await ingestor.poll().findings.isEmpty, "and only once")
            let withPush = try await Self.storedFindings(store)
            #expect(withPush.count == 2)

            // Polling alone, over the same events, into a store of its own.
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("rbw-pollonly-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: directory) }
            let alone = try SQLiteAuditStore(path: directory.appendingPathComponent("state.sqlite").path)
            _ = await rig.ingestor(alone).poll()
            #expect(try await Self.storedFindings(alone) == withPush)
        }
    }

    /// Waits (real time, with a ceiling) until `condition` holds.
    static func eventually(_ what: String, timeout: Duration = .seconds(60), _ condition: () async throws -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while try await !condition() {
            guard ContinuousClock.now < deadline else { throw PushInbox.Timeout(what: what) }
            try await Task.sleep(for: .milliseconds(25))
        }
    }

    @Test("the push feed: live on the roles it is given; a closed socket and an expired channel are recovered with no event missed; a role created after start is subscribed")
    func feedRecovers() async throws {
        try await IngestionTests.withRig { rig in
            let store = try rig.store()
            let ingestor = rig.ingestor(store)
            let roleId = try await rig.createRole("Escalation Desk")
            _ = await ingestor.poll()
            var settings = PushSettings()
            settings.firstBackoff = 0.05
            settings.maxBackoff = 0.2
            let feed = AuditPushFeed(
                source: GenesysPushSource(client: rig.auditor, silence: .seconds(30), ping: .milliseconds(200)), ingestor: ingestor,
                clock: SystemWallClock(), settings: settings)
            await feed.want([NotificationMessage.auditTopic(entityType: "Role", entityId: roleId)])
            let running = Task { await feed.run() }
            defer { running.cancel() }
            try await Self.eventually("the feed to go live") { await feed.health.isLive }
            #expect(await feed.health.subscriptions == 1)

            // An edit: pushed, judged and stored with no poll in between (each alternate one
            // adds admin again, a critical finding).
            var edits = 0
            func critical(_ name: String) async throws {
                edits += 1
                let findings = try await Self.storedFindings(store).count
                let permissions = edits % 2 == 1 ? ["routing:queue:view", "admin"] : ["routing:queue:view"]
                try await Self.editRole(rig, roleId, name: name, permissions: permissions)
                try await Self.eventually("the push of \(name)") { await ingestor.health.pushesJudged == edits }
                #expect(try await Self.storedFindings(store).count == findings + (edits % 2 == 1 ? 1 : 0))
            }
            _ = try await critical("first")

            rig.sim.closeNotificationSockets()
            try await Self.eventually("a reconnect") { await feed.health.reconnects >= 1 }
            try await Self.eventually("the feed live again") { await feed.health.isLive }
            _ = try await critical("after-close")

            rig.sim.expireNotificationChannels()
            try await Self.eventually("a new channel") {
                let live = await feed.health.isLive
                return live && rig.sim.notificationSubscriptions.count == 1
            }
            _ = try await critical("after-expiry")

            // A role created now: the poll names it, the feed subscribes, its next edit is pushed.
            let later = try await rig.createRole("Created Later")
            rig.clock.advance(by: .seconds(200))
            let polled = await ingestor.poll()
            await feed.noticed(polled.creations)
            try await Self.eventually("the new role's topic") {
                rig.sim.notificationSubscriptions.values.contains { $0.contains(NotificationMessage.auditTopic(entityType: "Role", entityId: later)) }
            }
            let before = try await Self.storedFindings(store).count
            try await Self.editRole(rig, later, name: "Created Later", permissions: ["admin"])
            do {
                try await Self.eventually("the new role's finding") { try await Self.storedFindings(store).count == before + 1 }
            } catch {
                let subscriptions = rig.sim.notificationSubscriptions
                Issue.record(
                    "pushes sent \(rig.sim.notificationPushCounts), judged \(await ingestor.health.pushesJudged), feed \(await feed.health), channels \(subscriptions)")
                throw error
            }
            #expect(await ingestor.health.pushesJudged == 4)
            #expect(try await Self.storedFindings(store).count == 3, "admin added twice, and to the role created later")
            // Nothing missed: a poll afterwards finds every pushed event a duplicate.
            rig.clock.advance(by: .seconds(200))
            #expect(await ingestor.poll().findings.isEmpty)
            #expect(await ingestor.health.pushesConfirmed == 4)
            // One channel in use, none churned (the simulator's clock is days behind this one's).
            #expect(rig.sim.notificationSubscriptions.count == 1)
        }
    }

    @Test("a critical grant on a subscribed role: its finding and its attributed drift item, with no poll in between (the manual clock never moves)")
    func grantWithoutPoll() async throws {
        try await IngestionTests.withRig { rig in
            let store = try rig.store()
            let ingestor = rig.ingestor(store)
            let client = rig.auditor
            let start = rig.clock.date()
            let (baseline, _) = try await Collector(client: client).collect()
            _ = try await store.acceptBaseline(snapshot: baseline, collectedAt: start, acceptedBy: "test", note: nil, at: start)
            _ = await ingestor.poll()  // the checkpoint an incremental check starts from
            let incremental = IncrementalCollection(fullEvery: .seconds(86_400)) { base, changes in
                try await Collector(client: client).refresh(base, changes: changes).0
            }
            let monitor = DriftMonitor(store: store, interval: .seconds(3600), clock: ManualWallClock(rig.clock), incremental: incremental) {
                try await Collector(client: client).collect().0
            }
            var settings = PushSettings()
            settings.firstBackoff = 0.05
            let feed = AuditPushFeed(
                source: GenesysPushSource(client: client, silence: .seconds(30), ping: .milliseconds(200)), ingestor: ingestor, settings: settings
            ) { events in
                if events.contains(where: AuditPushFeed.movesAccess) { await monitor.refresh() }
            }
            await monitor.observeSnapshots { snapshot in await feed.want(AuditPushFeed.topics(for: snapshot)) }
            let tasks = [Task { await monitor.run() }, Task { await feed.run() }]
            defer { for task in tasks { task.cancel() } }
            try await Self.eventually("the first check, and push live") {
                // The first check done (not the stored baseline shown meanwhile).
                let checked = await monitor.latest.collection != nil
                let live = await feed.health.isLive
                return checked && live
            }
            let firstCycles = await monitor.cycles

            // Master Admin to a user who does not hold it, in every division.
            let truth = rig.sim.groundTruth()
            let role = try #require(truth.roles.values.first { $0.name == "Master Admin" })
            let user = try #require(
                truth.users.keys.sorted().first { id in !truth.grants.contains { $0.subjectId == id && $0.roleId == role.id } })
            _ = try await rig.admin.send("POST", "/api/v2/authorization/subjects/\(user)/divisions/*/roles/\(role.id)?subjectType=PC_USER")

            try await Self.eventually("the finding") { try await Self.storedFindings(store).contains { $0.hasPrefix("RBW-002 ") } }
            try await Self.eventually("the attributed drift item") {
                let latest = await monitor.latest
                return (latest.review?.result.items ?? []).contains { item in
                    item.subject.id == user && item.role?.id == role.id && latest.attribution?[item.fingerprint]?.status == .explained
                }
            }
            let latest = await monitor.latest
            #expect(await monitor.cycles > firstCycles)
            if case .incremental = latest.collection {} else { Issue.record("the pushed grant's check was not incremental: \(String(describing: latest.collection))") }
            let explaining = latest.review?.result.items.first { $0.subject.id == user && $0.role?.id == role.id }.flatMap { latest.attribution?[$0.fingerprint]?.events }
            #expect(explaining?.contains { $0.clientId == rig.endpoint.adminClientId && $0.action == "MemberAdd" } == true)
            #expect(rig.clock.date() == start, "no time passed: no poll, no scheduled check")
            #expect(await ingestor.health.pushesJudged >= 1)
        }
    }

    @Test("a channel is renewed ahead of the expiry the API gave, unless that expiry is implausible against this clock")
    func renewal() {
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        #expect(AuditPushFeed.renewal(expires: now.addingTimeInterval(86_400), now: now, renewBefore: 600) == now.addingTimeInterval(85_800))
        let fallback = now.addingTimeInterval(85_800)
        #expect(AuditPushFeed.renewal(expires: now.addingTimeInterval(-3600), now: now, renewBefore: 600) == fallback, "already past: a skewed clock")
        #expect(AuditPushFeed.renewal(expires: now.addingTimeInterval(30), now: now, renewBefore: 600) == fallback, "too soon to be true")
        #expect(AuditPushFeed.renewal(expires: now.addingTimeInterval(10 * 86_400), now: now, renewBefore: 600) == fallback, "beyond two days")
        #expect(AuditPushFeed.renewal(expires: nil, now: now, renewBefore: 600) == fallback)
    }

    @Test("a client that may not subscribe: the feed says so once and stops; polling is untouched")
    func refusedFallsBack() async throws {
        try await IngestionTests.withRig({ $0.auditorPermissions = SimulatorConfiguration.defaultAuditorPermissions.filter { $0 != "audits:audit:view" } }) { rig in
            let ingestor = rig.ingestor(try rig.store())
            let feed = AuditPushFeed(source: GenesysPushSource(client: rig.auditor), ingestor: ingestor)
            await feed.want([NotificationMessage.auditTopic(entityType: "Role", entityId: "r1")])
            await feed.run()  // returns: refused
            let health = await feed.health
            guard case .off(let reason) = health.state else {
                Issue.record("the feed did not turn off: \(health.state)")
                return
            }
            #expect(reason.contains("audits:audit:view"))
            #expect(health.summary(now: Date()).hasPrefix("audit polling only: "))
        }
    }
}
