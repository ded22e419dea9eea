import AuditCore
import AuditEngine
import AuditStore
import AuditTestSupport
import Foundation
import Logging
import GenesysSimulator
import Prometheus
import Testing

@Suite("Engine metrics and readiness")
struct MetricsTests {
    /// The value of the sample `line` (name and labels as exposed), if it is there.
    static func value(_ exposition: String, _ sample: String) -> Double? {
        for line in exposition.split(separator: "\n") where line.hasPrefix(sample + " ") {
            return Double(line.dropFirst(sample.count + 1))
        }
        return nil
    }

    @Test("a scripted feed: a finding raises its counter, a 429 storm opens the circuit gauge; promtool accepts every exposition")
    func scripted() async throws {
        try await IngestionTests.withRig { rig in
            let registry = PrometheusCollectorRegistry()
            let metrics = EngineMetrics(registry: registry)
            let ingestor = rig.ingestor(InMemoryAuditStore())
            var updates = ingestor.updates.makeAsyncIterator()
            func poll() async -> PollOutcome {
                let outcome = await ingestor.poll()
                if let update = await updates.next() { metrics.observe(update) }
                return outcome
            }
            #expect(await poll().failed == nil)
            let quiet = registry.emitToString()
            #expect(Self.value(quiet, "rbacwatch_audit_circuit_open") == 0)
            #expect(Self.value(quiet, "rbacwatch_drift_unapproved_items{severity=\"critical\"}") == 0, "every severity from the start")

            // A role that can grant roles: RBW-001 fires once the event is past the lag.
            try await rig.createRole("Grants everything", permissions: ["authorization:grant:add"])
            rig.clock.advance(by: .seconds(90))
            let judged = await poll()
            let finding = try #require(judged.findings.first { $0.ruleId == "RBW-001" })
            let afterFinding = registry.emitToString()
            #expect(Self.value(afterFinding, "rbacwatch_audit_findings_total{rule=\"RBW-001\",severity=\"\(finding.severity.name)\"}") == 1, "\(afterFinding)")
            #expect((Self.value(afterFinding, "rbacwatch_audit_events_judged_total") ?? 0) >= 1)
            #expect((Self.value(afterFinding, "rbacwatch_audit_events_fetched_total") ?? 0) >= 1)
            #expect(Self.value(afterFinding, "rbacwatch_audit_last_success_timestamp_seconds") == rig.clock.date().timeIntervalSince1970)
            #expect((Self.value(afterFinding, "rbacwatch_store_write_seconds_count") ?? 0) >= 1)

            // The storm: two audit requests a minute until the circuit opens.
            rig.sim.faults.auditRateLimitPerMinute = 2
            var throttledFor = 0.0
            while await ingestor.health.mode == .normal {
                let outcome = await poll()
                rig.clock.advance(by: .milliseconds(Int64(outcome.nextDelay * 1000)))
                throttledFor += outcome.nextDelay
                try #require(throttledFor < 3600, "the circuit never opened")
            }
            let stormy = registry.emitToString()
            #expect(Self.value(stormy, "rbacwatch_audit_circuit_open") == 1, "\(stormy)")
            #expect((Self.value(stormy, "rbacwatch_audit_rate_limited_total") ?? 0) >= 2)

            for exposition in [quiet, afterFinding, stormy] {
                let check = await Promtool.check(exposition)
                #expect(check.status == 0, "promtool check metrics: \(check.output)")
            }
        }
    }

    @Test("delivery per destination: queue depth and age, paused, sent, failed and dead-lettered; /readyz names a paused destination")
    func delivery() async {
        let registry = PrometheusCollectorRegistry()
        let metrics = EngineMetrics(registry: registry)
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        var status = DestinationStatus(destination: "splunk")
        status.queued = 120
        status.oldestQueued = now.addingTimeInterval(-240)
        var health = DeliveryHealth(destination: "splunk")
        health.sent = 5
        health.failed = 2
        metrics.observe(delivery: status, health: health, now: now)
        health.sent = 9
        health.deadLettered = 1
        health.paused = "Splunk HEC answered 403 code 4: Invalid token"
        metrics.observe(delivery: status, health: health, now: now)
        let exposition = registry.emitToString()
        #expect(Self.value(exposition, "rbacwatch_delivery_queued{destination=\"splunk\"}") == 120, "\(exposition)")
        #expect(Self.value(exposition, "rbacwatch_delivery_oldest_queued_age_seconds{destination=\"splunk\"}") == 240)
        #expect(Self.value(exposition, "rbacwatch_delivery_sent_total{destination=\"splunk\"}") == 9, "counters add what happened since")
        #expect(Self.value(exposition, "rbacwatch_delivery_failed_total{destination=\"splunk\"}") == 2)
        #expect(Self.value(exposition, "rbacwatch_delivery_dead_lettered_total{destination=\"splunk\"}") == 1)
        #expect(Self.value(exposition, "rbacwatch_delivery_paused{destination=\"splunk\"}") == 1)
        let check = await Promtool.check(exposition)
        #expect(check.status == 0, "promtool check metrics: \(check.output)")
        let readiness = Readiness.evaluate(
            loggedIn: true, health: nil, drift: nil, pollInterval: 60, driftInterval: 900, startedAt: now, now: now, deliveries: [health])
        #expect(!readiness.ready)
        #expect(readiness.reasons == ["delivery to splunk is paused: Splunk HEC answered 403 code 4: Invalid token"])
    }

    @Test("readiness: ready when logged in and both loops are recent; otherwise 503 with each reason")
    func readiness() {
        let now = Date(timeIntervalSince1970: 1_800_000_000)
        var health = IngestionHealth()
        health.lastSuccess = now.addingTimeInterval(-30)
        var drift = MonitorUpdate(
            status: .ready, snapshot: nil, review: nil, baselineVersion: 1, lineage: RoleLineage(), firstSeen: [:], appeared: [:],
            collectedAt: now.addingTimeInterval(-100), nextRefresh: nil)
        func evaluate(loggedIn: Bool = true, _ health: IngestionHealth?, _ drift: MonitorUpdate?) -> Readiness {
            Readiness.evaluate(
                loggedIn: loggedIn, health: health, drift: drift, pollInterval: 60, driftInterval: 900, startedAt: now.addingTimeInterval(-3600), now: now)
        }
        #expect(evaluate(health, drift) == Readiness(ready: true, reasons: []))
        #expect(evaluate(nil, nil).ready, "nothing followed, nothing late")
        #expect(String(decoding: evaluate(health, drift).json, as: UTF8.self) == #"{"ready":true,"reasons":[]}"#)
        // Push down is said, never a reason: polling is the source of truth.
        var push = PushHealth()
        push.state = .pollingOnly(reason: "socket closed", since: now.addingTimeInterval(-120))
        let withPush = Readiness.evaluate(
            loggedIn: true, health: health, drift: drift, pollInterval: 60, driftInterval: 900, startedAt: now.addingTimeInterval(-3600), now: now, push: push)
        #expect(String(decoding: withPush.json, as: UTF8.self) == #"{"push":"audit polling only: socket closed 2m ago","ready":true,"reasons":[]}"#)
        push.state = .live
        #expect(
            Readiness.evaluate(
                loggedIn: true, health: health, drift: drift, pollInterval: 60, driftInterval: 900, startedAt: now.addingTimeInterval(-3600), now: now,
                push: push
            ).push == "audit push")

        var failing = health
        failing.lastError = "GET /api/v2/audits/query/realtime failed after 2 attempts: cannot connect to 127.0.0.1:9"
        let unreachable = evaluate(failing, drift)
        #expect(!unreachable.ready && unreachable.reasons == ["the last audit poll failed: \(failing.lastError!)"])

        var late = health
        late.lastSuccess = now.addingTimeInterval(-181)
        #expect(evaluate(late, drift).reasons == ["the last successful audit poll was 181 s ago"])

        drift.status = .failed("login failed: cannot connect")
        #expect(evaluate(health, drift).reasons == ["the last drift check failed: login failed: cannot connect"])
        drift.status = .ready
        drift.collectedAt = now.addingTimeInterval(-1861)
        #expect(evaluate(health, drift).reasons == ["the last collection was 1861 s ago"])
        #expect(evaluate(loggedIn: false, health, nil).reasons == ["not logged in to the Platform API"])

        // Reasons quote the API: they reach the JSON terminal-safe.
        var hostile = health
        hostile.lastError = "bad\u{1B}]52;c;AAAA\u{07}"
        let body = String(decoding: evaluate(hostile, nil).json, as: UTF8.self)
        #expect(!body.contains("\u{1B}") && !body.contains("\u{07}"), "\(body)")
    }
}

@Suite("Ingestion notes: what the edge logs")
struct IngestionNoteTests {
    @Test("a gap, a quarantine, a stopped query, the circuit opening and closing, a failure: one note each at its level; a quiet poll none")
    func notes() {
        let t0 = Date(timeIntervalSince1970: 1_800_000_000)
        var quiet = IngestionHealth()
        quiet.lastPoll = t0
        #expect(IngestionNote.notes(outcome: PollOutcome(), health: quiet, previous: nil).isEmpty)

        var outcome = PollOutcome()
        outcome.gap = IngestionGap(start: t0.addingTimeInterval(-7200), end: t0, detectedAt: t0)
        outcome.quarantined = [QuarantinedRecord(kind: .unreadable, eventId: "e1", reason: "eventDate does not parse", raw: Array("{}".utf8), receivedAt: t0)]
        outcome.failed = "cancelled"
        var health = quiet
        health.truncated = "the same page twice"
        let notes = IngestionNote.notes(outcome: outcome, health: health, previous: quiet)
        #expect(notes.map(\.level) == [Logger.Level.warning, .warning, .warning])
        #expect(notes[0].message == "audit gap backfilled" && notes[0].metadata["seconds"] == "7200")
        #expect(notes[1].metadata == ["count": "1", "first": "eventDate does not parse"])
        #expect(notes[2].metadata == ["reason": "the same page twice"], "a stop (cancelled) is not a failure")

        var throttled = quiet
        throttled.mode = .criticalOnly
        throttled.throttledSince = t0.addingTimeInterval(-300)
        throttled.services = ["PeoplePermissions"]
        let opened = IngestionNote.notes(outcome: PollOutcome(), health: throttled, previous: quiet)
        #expect(opened == [IngestionNote(.warning, "audit API throttled for 300 s: circuit open, polling only the critical services", ["services": "PeoplePermissions"])])
        #expect(IngestionNote.notes(outcome: PollOutcome(), health: throttled, previous: throttled).isEmpty, "said once, not every poll")
        #expect(IngestionNote.notes(outcome: PollOutcome(), health: quiet, previous: throttled).map(\.level) == [Logger.Level.notice])

        var failed = PollOutcome()
        failed.failed = "GET /api/v2/audits/query/servicemapping answered 403"
        #expect(IngestionNote.notes(outcome: failed, health: quiet, previous: quiet) == [IngestionNote(.error, "audit poll failed: GET /api/v2/audits/query/servicemapping answered 403")])
    }
}
