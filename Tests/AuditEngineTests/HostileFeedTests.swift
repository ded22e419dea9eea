import AuditCore
import AuditEngine
import AuditStore
import AuditTestSupport
import Foundation
import GenesysClient
import GenesysSimulator
import Synchronization
import Testing

/// Ingestion when the audit API misbehaves: the simulator on a manual clock, behind a hostile
/// server that corrupts the audit replies a test chooses. One bad record must never stop the
/// feed, an absurd wait must never stall it, and nothing may be dropped silently.
@Suite("Audit ingestion against a hostile audit API")
struct HostileFeedTests {
    typealias Rig = IngestionTests.Rig

    static func withRig(_ rules: [HostileServer.Rule], _ body: @Sendable (Rig) async throws -> Void) async throws {
        try await IngestionTests.withRig(hostile: rules, { _ in }, body)
    }

    /// Rewrites the realtime query's events whose entity name is `name` (every fetch while `when`
    /// is set, or always).
    static func rewriteEvents(named name: String, when flag: Flag? = nil, _ change: @escaping @Sendable (inout [String: Any]) -> Void) -> HostileServer.Rule {
        HostileServer.Rule.path("/api/v2/audits/query/realtime", method: "POST") { _, reply in
            guard flag?.isSet ?? true else { return }
            HostileServer.rewriteJSON(&reply) { page in
                guard var entities = page["entities"] as? [[String: Any]] else { return }
                for index in entities.indices where (entities[index]["entity"] as? [String: Any])?["name"] as? String == name {
                    change(&entities[index])
                }
                page["entities"] = entities
            }
        }
    }

    @Test("one record whose eventDate does not parse is quarantined with its reason; the rest of the page is judged and the mark moves")
    func poisonRecord() async throws {
        try await Self.withRig([Self.rewriteEvents(named: "Poison") { $0["eventDate"] = "not-a-date" }]) { rig in
            let store = try rig.store()
            let ingestor = rig.ingestor(store)
            #expect(await ingestor.poll().failed == nil)
            let before = try await store.ingestionCheckpoint()
            rig.clock.advance(by: .seconds(2))
            try await rig.createRole("Fine 1")
            try await rig.createRole("Poison", permissions: ["authorization:grant:add"])
            try await rig.createRole("Fine 2", permissions: ["authorization:grant:add"])
            rig.clock.advance(by: .seconds(70))
            let outcome = await ingestor.poll()
            #expect(outcome.failed == nil, "\(outcome.failed ?? "")")
            #expect(outcome.judged == 2, "the two good events beside the poison one are judged")
            #expect(outcome.findings.contains { $0.entityName == "Fine 2" && $0.ruleId == "RBW-001" })
            #expect(outcome.quarantined.count == 1)
            let kept = try await store.quarantinedRecords(limit: 10)
            #expect(kept.count == 1)
            #expect(kept.first?.kind == .unreadable)
            #expect(kept.first?.reason.contains("not-a-date") == true, "\(kept.first?.reason ?? "")")
            #expect(kept.first?.eventId != nil)
            let raw = String(decoding: kept.first?.raw ?? [], as: UTF8.self)
            #expect(raw.contains("Poison"))
            let after = try await store.ingestionCheckpoint()
            #expect(after!.highWater > before!.highWater)
            #expect(await ingestor.health.quarantined == 1)
            #expect(await ingestor.health.summary.contains("1 quarantined"))

            // The overlap fetches it again: kept once.
            rig.clock.advance(by: .seconds(60))
            #expect(await ingestor.poll().failed == nil)
            #expect(try await store.quarantineCount() == 1)
        }
    }

    @Test("an event dated far in the future is judged once held for the lag, counted, and never moves the lag")
    func futureDated() async throws {
        try await Self.withRig([Self.rewriteEvents(named: "From the future") { $0["eventDate"] = "9999-12-31T23:59:59.000Z" }]) { rig in
            let store = try rig.store()
            let ingestor = rig.ingestor(store)
            #expect(await ingestor.poll().failed == nil)
            rig.clock.advance(by: .seconds(2))
            try await rig.createRole("From the future", permissions: ["authorization:grant:add"])
            rig.clock.advance(by: .seconds(30))
            let first = await ingestor.poll()
            #expect(first.new == 1 && first.judged == 0, "held for the lag like any other")
            rig.clock.advance(by: .seconds(61))
            let second = await ingestor.poll()
            #expect(second.judged == 1, "judged after the lag, not at its date")
            #expect(second.findings.map(\.ruleId).contains("RBW-001"))
            let health = await ingestor.health
            #expect(health.futureDated == 1)
            #expect(health.lastEvent.map { $0 <= rig.clock.date() } == true)
            #expect((health.lagSeconds ?? -1) >= 0)
        }
    }

    @Test("an event id seen again with different content is quarantined as rewritten, with what changed")
    func rewritten() async throws {
        let tamper = Flag()
        try await Self.withRig([Self.rewriteEvents(named: "Tampered", when: tamper) { $0["action"] = "Delete" }]) { rig in
            let store = try rig.store()
            let ingestor = rig.ingestor(store)
            #expect(await ingestor.poll().failed == nil)
            rig.clock.advance(by: .seconds(2))
            try await rig.createRole("Tampered")
            rig.clock.advance(by: .seconds(70))
            #expect(await ingestor.poll().judged == 1)
            tamper.set()
            rig.clock.advance(by: .seconds(30))
            let outcome = await ingestor.poll()
            #expect(outcome.judged == 0)
            #expect(outcome.quarantined.map(\.kind) == [.rewritten])
            #expect(outcome.quarantined.first?.reason.contains("action Create → Delete") == true, "\(outcome.quarantined.first?.reason ?? "")")
            #expect(try await store.quarantineCount() == 1)
            // The recorded event stays what was judged.
            let events = try await store.auditEvents(from: .distantPast, to: .distantFuture).filter { $0.entityName == "Tampered" }
            #expect(events.map(\.action) == ["Create"])
        }
    }

    @Test("a 429 asking for 999999 s waits the ceiling (5 min) and the health line says so; inf, nan and 1e300 never trap")
    func absurdRetryAfter() async throws {
        for (value, expected) in [("999999", 300.0), ("1e300", 300.0), ("inf", nil), ("nan", nil), ("-3", nil)] {
            let limited = Flag()
            let rule = HostileServer.Rule.path("/api/v2/audits/query/realtime", method: "POST") { _, reply in
                guard limited.isSet else { return }
                reply = .init(status: 429, json: #"{"message":"Rate limit exceeded","code":"too.many.requests.retry.after","status":429}"#)
                reply.set("Retry-After", value)
            }
            try await Self.withRig([rule]) { rig in
                let ingestor = rig.ingestor(try rig.store())
                #expect(await ingestor.poll().failed == nil)
                limited.set()
                rig.clock.advance(by: .seconds(60))
                let outcome = await ingestor.poll()
                #expect(outcome.rateLimited)
                #expect(outcome.nextDelay.isFinite && outcome.nextDelay <= 600, "\(value): \(outcome.nextDelay)")
                let health = await ingestor.health
                if let expected {
                    #expect(outcome.nextDelay == expected, "\(value): \(outcome.nextDelay)")
                    #expect(health.summary.contains("waiting 5m (the ceiling)"), "\(value): \(health.summary)")
                } else {
                    #expect(health.retryAfterCapped == nil)
                }
            }
        }
    }

    @Test("a realtime query whose pages repeat the first under a pageCount of a billion stops at once and keeps what it read")
    func repeatingPages() async throws {
        let firstPage = Mutex<[UInt8]>([])
        let rule = HostileServer.Rule.path("/api/v2/audits/query/realtime", method: "POST") { request, reply in
            let page = (try? JSONSerialization.jsonObject(with: Data(request.body)) as? [String: Any])?["pageNumber"] as? Int ?? 1
            HostileServer.rewriteJSON(&reply) { body in
                body["pageCount"] = 1_000_000_000
                body["total"] = 1_000_000_000
            }
            if page == 1 {
                let body = reply.body
                firstPage.withLock { $0 = body }
            } else {
                // The server ignores the page asked for and sends the first again.
                reply.body = firstPage.withLock { $0 }
            }
        }
        try await Self.withRig([rule]) { rig in
            let store = try rig.store()
            let ingestor = rig.ingestor(store)
            #expect(await ingestor.poll().failed == nil)
            rig.clock.advance(by: .seconds(2))
            for index in 1...3 { try await rig.createRole("Paged \(index)") }
            rig.clock.advance(by: .seconds(70))
            let outcome = await ingestor.poll()
            #expect(outcome.failed == nil)
            #expect(outcome.judged == 3)
            let requests = rig.server?.requests("/api/v2/audits/query/realtime") ?? -1
            // Two polls of a few windows, one query per service each: tens, never thousands.
            #expect(requests < 60, "\(requests) realtime requests")
        }
    }
}
