import AuditCore
import AuditEngine
import AuditStore
import AuditTestSupport
import Foundation
import GenesysClient
import Synchronization
import GenesysSimulator
import SIEMClient
import Testing

/// Delivery over real loopback HTTP to the simulated receivers, from a real SQLite outbox, on a
/// manual clock: the tests step the service and move time by what it asks to wait.
@Suite("Delivery to SIEM receivers")
struct DeliveryTests {
    static let org = Organization(id: "org-1", name: "Acme")
    static let t0 = Date(timeIntervalSince1970: 1_800_000_000)

    static func payload(_ index: Int, marker: String = "") -> DeliveryPayload {
        let finding = AuditFinding(
            fingerprint: "fp-\(index)", ruleId: "RBW-003", title: "Role granted in every division", severity: .high, controls: ["NIST AC-6"],
            eventIds: ["ev-\(index)"], date: t0.addingTimeInterval(Double(index)), serviceName: "PeoplePermissions", entityType: "Role",
            entityId: "r-\(index)", entityName: "Role \(index)\(marker)", action: "MemberAdd", actor: "Ana Admin", actorId: "u-1", clientId: nil,
            remoteIp: ["203.0.113.7"], evidence: [], status: .open, approval: nil)
        return DeliveryPayload.finding(finding, event: nil, organization: org)
    }

    final class Services: Sendable {
        let list = Mutex<[DeliveryService]>([])
    }

    struct Rig {
        let services = Services()
        let receivers: SIEMReceivers
        let endpoints: SIEMReceivers.Endpoints
        let store: SQLiteAuditStore
        let clock: ManualClock

        func destination(_ kind: Destination.Kind, batchSize: Int = 10) -> Destination {
            var destination = Destination(name: kind.rawValue, kind: kind)
            destination.batchSize = batchSize
            // Generous: a reply that comes after the deadline is sent again (at least once), and
            // these tests count exactly-once deliveries on a machine the whole suite loads.
            destination.timeout = .seconds(60)
            switch kind {
            case .splunkHEC:
                destination.url = endpoints.hecURL
                destination.acknowledgement = receivers.configuration.hecAck
            case .datadog: destination.url = endpoints.datadogURL
            case .webhook: destination.url = endpoints.webhookURL
            case .file, .syslog: break
            }
            return destination
        }

        func service(_ destination: Destination, settings: DeliverySettings = DeliverySettings()) throws -> DeliveryService {
            let transport = AsyncHTTPClientTransport(connectTimeout: .seconds(5))
            let sender: any DeliverySender =
                switch destination.kind {
                case .splunkHEC: HECSender(transport: transport, destination: destination, token: Secret(receivers.configuration.hecToken), host: "rbw-test")
                case .datadog: DatadogSender(transport: transport, destination: destination, key: Secret(receivers.configuration.datadogKey), host: "rbw-test")
                case .webhook:
                    try WebhookSender(
                        transport: transport, destination: destination, secret: Secret(receivers.configuration.webhookSecret), now: { [clock] in clock.date() })
                case .file, .syslog: JSONLFileSender(path: "/dev/null")
                }
            let service = DeliveryService(destination: destination, sender: sender, store: store, settings: settings, clock: ManualWallClock(clock), seed: 7)
            services.list.withLock { $0.append(service) }
            return service
        }

        func enqueue(_ payloads: [DeliveryPayload], for destination: Destination) async throws {
            try await store.enqueue(payloads.map { OutboxItem(destination: destination.name, payload: $0) }, at: clock.date())
        }

        /// Steps the service until its queue is empty (or `limit` steps), moving the clock by each
        /// wait; returns the simulated seconds that passed and the waits asked for.
        @discardableResult
        func drain(_ service: DeliveryService, _ destination: Destination, limit: Int = 500) async throws -> (seconds: Double, waits: [Double]) {
            var seconds = 0.0
            var waits: [Double] = []
            for _ in 0..<limit {
                if try await store.queuedDeliveries(destination: destination.name, limit: 1).isEmpty { return (seconds, waits) }
                let wait = await service.step() ?? 0
                waits.append(wait)
                seconds += wait
                clock.advance(by: .milliseconds(Int64(wait * 1000)))
            }
            Issue.record("the queue did not drain in \(limit) steps")
            return (seconds, waits)
        }
    }

    static func withRig(_ adjust: (inout SIEMReceivers.Configuration) -> Void = { _ in }, _ body: @Sendable (Rig) async throws -> Void) async throws {
        let clock = ManualClock(epoch: t0)
        var configuration = SIEMReceivers.Configuration()
        configuration.clock = { clock.date() }
        adjust(&configuration)
        let receivers = SIEMReceivers(configuration: configuration)
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("rbw-deliver-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let store = try SQLiteAuditStore(path: directory.appendingPathComponent("state.sqlite").path)
        try await receivers.withRunning { endpoints in
            let rig = Rig(receivers: receivers, endpoints: endpoints, store: store, clock: clock)
            do {
                try await body(rig)
            } catch {
                for service in rig.services.list.withLock({ $0 }) { await service.shutdown() }
                throw error
            }
            for service in rig.services.list.withLock({ $0 }) { await service.shutdown() }
        }
    }

    /// One step of a service that sleeps on the manual clock inside it (waiting for an ack):
    /// the clock moves a second each time the service sleeps, until the step is over. Alone it
    /// takes a tenth of a second; under the whole suite on two cores each turn of this loop can
    /// wait a second or more for a pool thread (a run measured 48 turns and 7 of the 11 clock
    /// moves in 60 s), so the ceiling, there only to end a step that never finishes, is 300 s.
    static func stepping(_ service: DeliveryService, clock: ManualClock) async throws {
        let finished = Atomic<Bool>(false)
        let task = Task {
            _ = await service.step()
            finished.store(true, ordering: .sequentiallyConsistent)
        }
        let start = ContinuousClock.now
        let deadline = start + .seconds(300)
        var turns = 0
        var advances: [Duration] = []
        while !finished.load(ordering: .sequentiallyConsistent) {
            guard ContinuousClock.now < deadline else {
                task.cancel()
                Issue.record(
                    "the step did not finish in 300 s: \(turns) turns, the clock advanced \(advances.count) times (at \(advances.suffix(12).map { "\($0)" })), \(clock.sleeping) sleeping now")
                throw CancellationError()
            }
            turns += 1
            if clock.sleeping >= 1 {
                clock.advance(by: .seconds(1))
                advances.append(ContinuousClock.now - start)
            }
            try await Task.sleep(for: .milliseconds(1))
        }
        await task.value
    }

    @Test("a receiver down for 30 simulated minutes, then back: every payload delivered once, in order, with backoff to its ceiling")
    func downThenBack() async throws {
        try await Self.withRig { rig in
            let destination = rig.destination(.splunkHEC, batchSize: 7)
            let service = try rig.service(destination)
            let payloads = (0..<40).map { Self.payload($0) }
            try await rig.enqueue(payloads, for: destination)
            rig.receivers.plan(.hec) { $0.down = true }
            var down = 0.0
            var waits: [Double] = []
            while down < 1800 {
                let wait = await service.step() ?? 0
                waits.append(wait)
                down += wait
                rig.clock.advance(by: .milliseconds(Int64(wait * 1000)))
            }
            #expect(rig.receivers.received(.hec).isEmpty)
            #expect(try await rig.store.queuedDeliveries(destination: destination.name, limit: 100).count == 40, "nothing dropped while down")
            #expect(waits.prefix(3).allSatisfy { $0 < 10 } && (waits.max() ?? 0) <= 300, "exponential from a second, capped at 5 minutes: \(waits)")
            #expect((waits.max() ?? 0) >= 240, "the backoff reached its ceiling: \(waits)")
            #expect(await service.health.lastError?.contains("503") == true)
            rig.receivers.plan(.hec) { $0.down = false }
            try await rig.drain(service, destination)
            #expect(rig.receivers.received(.hec).map(\.id) == payloads.map(\.id), "each once, in order")
            let status = try #require(try await rig.store.destinationStatuses().first)
            #expect(status.delivered == 40 && status.queued == 0 && status.deadLettered == 0 && status.lastError == nil)
            #expect(await service.health.sent == 40)
        }
    }

    @Test("a poison payload reaches the dead-letter queue after 5 attempts while the rest flows; replayed once fixed, it is delivered with its id")
    func poison() async throws {
        try await Self.withRig { rig in
            let destination = rig.destination(.splunkHEC, batchSize: 5)
            let service = try rig.service(destination)
            let payloads = (0..<12).map { Self.payload($0, marker: $0 == 6 ? " POISON" : "") }
            try await rig.enqueue(payloads, for: destination)
            rig.receivers.plan(.hec) { $0.poison = "POISON" }
            try await rig.drain(service, destination)
            let good = payloads.filter { $0.id != payloads[6].id }
            #expect(rig.receivers.received(.hec).map(\.id) == good.map(\.id), "the rest flows, in order")
            let dead = try await rig.store.deadLetters(destination: nil, limit: 10)
            #expect(dead.map(\.payload.id) == [payloads[6].id])
            #expect(dead.first?.attempts == 5)
            #expect(dead.first?.lastError?.contains("400 code 6") == true, "\(dead.first?.lastError ?? "")")
            #expect(dead.first?.lastError?.contains("after 5 attempts") == true)

            rig.receivers.plan(.hec) { $0.poison = nil }
            #expect(try await rig.store.replayDeadLetters(ids: nil, at: rig.clock.date()) == 1)
            try await rig.drain(service, destination)
            #expect(rig.receivers.received(.hec).map(\.id) == good.map(\.id) + [payloads[6].id], "delivered once, with the same id")
            #expect(try await rig.store.deadLetters(destination: nil, limit: 10).isEmpty)
        }
    }

    @Test("401/403 pauses the destination without consuming or dead-lettering; it resumes on its own once the receiver accepts")
    func pauseAndResume() async throws {
        try await Self.withRig { rig in
            let destination = rig.destination(.datadog)
            let service = try rig.service(destination)
            let payloads = (0..<5).map { Self.payload($0) }
            try await rig.enqueue(payloads, for: destination)
            rig.receivers.plan(.datadog) { $0.unauthorized = true }
            var probes: [Double] = []
            for _ in 0..<8 {
                let wait = await service.step() ?? 0
                probes.append(wait)
                rig.clock.advance(by: .milliseconds(Int64(wait * 1000)))
            }
            let paused = try #require(await service.health.paused)
            #expect(paused.contains("403"), "\(paused)")
            #expect(probes == probes.sorted() && probes.last == 256, "probes back off: \(probes)")
            let queued = try await rig.store.queuedDeliveries(destination: destination.name, limit: 10)
            #expect(queued.count == 5 && queued.allSatisfy { $0.attempts == 0 }, "nothing consumed, nothing counted")
            #expect(try await rig.store.deadLetters(destination: nil, limit: 10).isEmpty)
            #expect(try await rig.store.destinationStatuses().first?.paused == paused, "the pause is in the store for deliveries status and /readyz")
            #expect(rig.receivers.received(.datadog).isEmpty)

            rig.receivers.plan(.datadog) { $0.unauthorized = false }
            try await rig.drain(service, destination)
            #expect(await service.health.paused == nil)
            #expect(try await rig.store.destinationStatuses().first?.paused == nil)
            #expect(rig.receivers.received(.datadog).map(\.id) == payloads.map(\.id))
            #expect(rig.receivers.gzippedRequests >= 1, "Datadog bodies go gzip-compressed")
        }
    }

    @Test("HEC with indexer acknowledgement: an unacknowledged batch is never counted delivered; sent again, the duplicates carry the same ids")
    func hecAcknowledgement() async throws {
        try await Self.withRig({ $0.hecAck = true }) { rig in
            let destination = rig.destination(.splunkHEC)
            var settings = DeliverySettings()
            settings.ackTimeout = 10
            let service = try rig.service(destination, settings: settings)
            let payloads = (0..<3).map { Self.payload($0) }
            try await rig.enqueue(payloads, for: destination)
            rig.receivers.plan(.hec) { $0.ackAfterPolls = nil }
            // The service polls the ack every simulated second until its 10 s deadline.
            try await Self.stepping(service, clock: rig.clock)
            #expect(rig.receivers.received(.hec).count == 3 && rig.receivers.received(.hec).allSatisfy { !$0.indexed })
            #expect(try await rig.store.queuedDeliveries(destination: destination.name, limit: 10).count == 3, "not acknowledged: still queued")
            #expect(await service.health.sent == 0)
            #expect(await service.health.lastError?.contains("did not acknowledge") == true)

            rig.receivers.plan(.hec) { $0.ackAfterPolls = 1 }
            try await Self.stepping(service, clock: rig.clock)
            #expect(try await rig.store.queuedDeliveries(destination: destination.name, limit: 10).isEmpty)
            let received = rig.receivers.received(.hec)
            #expect(received.map(\.id) == payloads.map(\.id) + payloads.map(\.id), "sent twice, the same ids both times")
            #expect(received.suffix(3).allSatisfy { $0.indexed })
        }
    }

    @Test("webhooks: signed per the specification (the receiver verifies), one per request; a replay keeps its webhook-id and is deduped")
    func webhooks() async throws {
        try await Self.withRig { rig in
            let destination = rig.destination(.webhook)
            let service = try rig.service(destination)
            let payloads = (0..<3).map { Self.payload($0) }
            try await rig.enqueue(payloads, for: destination)
            try await rig.drain(service, destination)
            #expect(rig.receivers.received(.webhook).map(\.id) == payloads.map(\.id))
            #expect(rig.receivers.requests(.webhook) == 3)
            // Sent again (a crash between the send and its record): the same webhook-id, so the
            // receiver dedupes.
            let sender = try WebhookSender(
                transport: AsyncHTTPClientTransport(), destination: destination, secret: Secret(rig.receivers.configuration.webhookSecret),
                now: { [clock = rig.clock] in clock.date() })
            #expect(await sender.send([payloads[1]]) == .delivered)
            await sender.shutdown()
            #expect(rig.receivers.duplicateWebhooks == 1)
            #expect(rig.receivers.received(.webhook).count == 3)

            // A wrong secret: the receiver refuses the signature, and the destination pauses.
            var wrong = destination
            wrong.name = "wrong-secret"
            let transport = AsyncHTTPClientTransport()
            let impostor = DeliveryService(
                destination: wrong,
                sender: try WebhookSender(
                    transport: transport, destination: wrong, secret: Secret("whsec_" + Data("another key, 24 bytes!!".utf8).base64EncodedString()),
                    now: { [clock = rig.clock] in clock.date() }),
                store: rig.store, clock: ManualWallClock(rig.clock))
            try await rig.enqueue([Self.payload(9)], for: wrong)
            _ = await impostor.step()
            await impostor.shutdown()
            #expect(await impostor.health.paused?.contains("401") == true)
        }
    }
}

extension DeliveryTests {
    @Test("a name that does not resolve pauses the destination (the operator's to fix); a port nobody listens on is retried")
    func nameResolution() async throws {
        var unresolvable = Destination(name: "nowhere", kind: .splunkHEC)
        unresolvable.url = "http://rbacwatch-no-such-host.invalid:8088"
        let sender = HECSender(transport: AsyncHTTPClientTransport(connectTimeout: .seconds(5)), destination: unresolvable, token: Secret("t"), host: "h")
        let result = await sender.send([Self.payload(1)])
        await sender.shutdown()
        guard case .configuration(let why) = result else {
            Issue.record("expected a pause, got \(result)")
            return
        }
        #expect(why.contains("does not resolve"), "\(why)")
        var closed = unresolvable
        closed.url = "http://127.0.0.1:1"
        let refused = HECSender(transport: AsyncHTTPClientTransport(connectTimeout: .seconds(5)), destination: closed, token: Secret("t"), host: "h")
        let retried = await refused.send([Self.payload(1)])
        await refused.shutdown()
        guard case .transient = retried else {
            Issue.record("expected a retry, got \(retried)")
            return
        }
    }
}

@Suite("Delivery policy")
struct DeliveryPolicyTests {
    @Test("backoff doubles from a second to five minutes with ±20 % jitter; Retry-After is honoured up to ten minutes")
    func backoff() {
        let settings = DeliverySettings()
        #expect(DeliveryPolicy.backoff(attempt: 1, retryAfter: nil, jitter: 0.5, settings: settings) == 1)
        #expect(DeliveryPolicy.backoff(attempt: 4, retryAfter: nil, jitter: 0.5, settings: settings) == 8)
        #expect(abs(DeliveryPolicy.backoff(attempt: 4, retryAfter: nil, jitter: 0, settings: settings) - 6.4) < 1e-9)
        #expect(abs(DeliveryPolicy.backoff(attempt: 4, retryAfter: nil, jitter: 1, settings: settings) - 9.6) < 1e-9)
        #expect(DeliveryPolicy.backoff(attempt: 40, retryAfter: nil, jitter: 1, settings: settings) == 300)
        #expect(DeliveryPolicy.backoff(attempt: 1, retryAfter: 42, jitter: 0.5, settings: settings) == 42)
        #expect(DeliveryPolicy.backoff(attempt: 1, retryAfter: 1e300, jitter: 0.5, settings: settings) == 600)
        #expect(DeliveryPolicy.backoff(attempt: 1, retryAfter: .infinity, jitter: 0.5, settings: settings) == 600)
    }

    @Test("a batch stops at its size and bytes, and always holds one")
    func batches() {
        let entries = (0..<10).map { index in
            OutboxEntry(
                id: Int64(index), destination: "d", payload: DeliveryPayload(kind: .finding, id: "p\(index)", severity: .low, time: Date(), rule: "r", title: "t", body: Array(repeating: 0x20, count: 400)),
                state: .queued, enqueuedAt: Date(), attempts: 0, lastError: nil, settledAt: nil)
        }
        #expect(DeliveryPolicy.batch(entries, batchSize: 4, batchBytes: 1_000_000).count == 4)
        #expect(DeliveryPolicy.batch(entries, batchSize: 100, batchBytes: 1000).count == 2)
        #expect(DeliveryPolicy.batch(entries, batchSize: 100, batchBytes: 10).count == 1)
    }

    @Test("answers decide: delivered, wait for the ack, retry, isolate a refused batch, count an attempt, pause")
    func decisions() {
        let settings = DeliverySettings()
        func decide(_ result: DeliveryResult, _ count: Int = 1) -> DeliveryPolicy.Decision {
            DeliveryPolicy.decide(result, batchCount: count, transientAttempt: 3, jitter: 0.5, settings: settings)
        }
        #expect(decide(.delivered) == .delivered)
        #expect(decide(.awaitingAck(4)) == .awaitAck(4))
        #expect(decide(.transient("503", retryAfter: nil)) == .retry(after: 4))
        #expect(decide(.rejected("400 code 6"), 5) == .isolate)
        #expect(decide(.rejected("400 code 6")) == .attempt(reason: "400 code 6"))
        #expect(decide(.configuration("403 code 4")) == .pause(reason: "403 code 4"))
    }

    @Test("routing: destinations by kind, severity and rule pattern; a payload that fails its schema is queued dead with why")
    func routing() {
        var splunk = Destination(name: "splunk", kind: .splunkHEC)
        splunk.minimumSeverity = .high
        var hook = Destination(name: "hook", kind: .webhook)
        hook.rules = ["RBW-00*"]
        hook.kinds = [.finding]
        let router = DeliveryRouter(destinations: [splunk, hook])
        let high = DeliveryTests.payload(1)
        #expect(router.items(for: high).map(\.destination) == ["splunk", "hook"])
        var low = high
        low.severity = .low
        #expect(router.items(for: low).map(\.destination) == ["hook"])
        var other = high
        other.rule = "RBW-013"
        #expect(router.items(for: other).map(\.destination) == ["splunk"])
        var lake = Destination(name: "lake", kind: .file)
        lake.ocsf = true
        let mixed = DeliveryRouter(destinations: [splunk, lake]).items(for: high)
        #expect(mixed.map(\.destination) == ["splunk", "lake"])
        #expect(mixed[0].payload.body == high.body && mixed[1].payload.id == high.id, "the same id either way")
        #expect(JSONValue.parse(mixed[1].payload.body)?["class_uid"] == .number(2004), "OCSF for the destination that takes it")
        var broken = high
        broken.body = Array(#"{"schema":"rbacwatch.finding/2"}"#.utf8)
        let items = router.items(for: broken)
        #expect(items.count == 2 && items.allSatisfy { $0.rejected?.hasPrefix("schema rbacwatch.finding/2: $: missing") == true })
    }
}
