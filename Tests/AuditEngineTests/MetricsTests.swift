import AuditCore
import AuditEngine
import AuditStore
import AuditTestSupport
import Foundation
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
