import AuditCore
import AuditEngine
import Foundation
import Testing

@testable import TerminalUI

@Suite("Dashboard: the audit feed")
struct AuditFeedTests {
    static func finding(_ n: Int, minutesAgo: Double, severity: Severity = .critical) -> (AuditFinding, AuditEvent) {
        let date = Fixture.now.addingTimeInterval(-minutesAgo * 60)
        let event = AuditEvent(
            id: "ev-\(n)", date: date, serviceName: "PeoplePermissions", entityType: "Role", action: "Update", entityId: "role-\(n)",
            entityName: "Sneaky \(n)", userId: "u-ana", userName: "Ana Admin", clientId: "c-9", remoteIp: ["203.0.113.7"],
            changes: [.init(property: "permissions", oldValues: ["a:b:c"], newValues: ["a:b:c", "authorization:grant:add"])])
        let finding = AuditFinding(
            fingerprint: String(repeating: "\(n)", count: 16), ruleId: "RBW-001", title: "Role gains escalation-capable or admin permissions",
            severity: severity, controls: ["NIST AC-6(1)"], eventIds: [event.id], date: date, serviceName: event.serviceName,
            entityType: event.entityType, entityId: event.entityId, entityName: event.entityName, action: event.action, actor: event.actor,
            actorId: event.userId, clientId: event.clientId, remoteIp: event.remoteIp, evidence: ["permissions: authorization:grant:add"],
            status: .open, approval: nil)
        return (finding, event)
    }

    static func feed(_ pairs: [(AuditFinding, AuditEvent)], health: IngestionView? = nil) -> AuditFeed {
        let rule = RuleSet.defaults().rules.first { $0.id == "RBW-001" }
        var details: [String: FindingDetail] = [:]
        for (finding, event) in pairs { details[finding.id] = FindingDetail(finding: finding, event: event, rule: rule) }
        return AuditFeed(rows: AuditFeed.rows(pairs.map(\.0)), details: details, health: health)
    }

    @Test("findings merge into the feed by time beside drift, survive the next drift update, and carry actor and rule")
    func merge() {
        var state = Fixture.state(pane: .feed)
        let drift = state.data.feed.count
        _ = reduce(&state, .audit(Self.feed([Self.finding(1, minutesAgo: 0), Self.finding(2, minutesAgo: 600)])))
        #expect(state.data.feed.count == drift + 2)
        #expect(state.data.feed.first?.rule == "RBW-001", "the newest row is the finding of this instant")
        #expect(state.data.feed.last?.rule == "RBW-001", "the ten-hour-old finding is the oldest row")
        #expect(state.data.feed.first?.actor == "Ana Admin")
        // A BY column appears once someone can be named; the finding's row names its actor there.
        let screen = render(state).text.split(separator: "\n").map(String.init)
        #expect(screen[2].contains(" BY ") && screen[3].contains("Ana Admin") && screen[3].contains("RBW-001"), "\(screen.prefix(4))")
        #expect(!render(Fixture.state(pane: .feed)).text.contains(" BY "), "no column while nobody can be named")
        // The monitor's next update replaces drift, not findings.
        _ = reduce(&state, .data(Fixture.data()))
        #expect(state.data.feed.filter(\.isFinding).count == 2)
        #expect(state.data.feed.count == drift + 2)
        // Only the newest of several pending audit updates is reduced.
        let batch = coalesced([.audit(Self.feed([])), .key(.character("j")), .audit(Self.feed([Self.finding(3, minutesAgo: 1)]))])
        #expect(batch.count == 2)
    }

    @Test("Enter on a finding shows the rule that fired and the raw event; a approves the finding's fingerprint")
    func detailAndApproval() throws {
        var state = Fixture.state(pane: .feed)
        let (finding, _) = Self.finding(1, minutesAgo: 0)
        _ = reduce(&state, .audit(Self.feed([(finding, Self.finding(1, minutesAgo: 0).1)])))
        press(&state, .character("g"))
        #expect(state.selectedRow(.feed).map { state.data.feed[$0].isFinding } == true)
        press(&state, .enter)
        let page = try #require(state.details.last)
        let text = page.lines.map { $0.map(\.text).joined() }
        #expect(page.title.hasPrefix("Finding RBW-001"))
        #expect(text.contains { $0.contains("Rule RBW-001") })
        #expect(text.contains { $0.contains("NIST AC-6(1)") })
        #expect(text.contains { $0.contains("\"propertyChanges\"") }, "the raw event")
        #expect(text.contains { $0.contains("Ana Admin") && $0.contains("u-ana") })
        press(&state, .character("a"))
        guard case .approve(let draft) = state.mode else {
            Issue.record("no approval dialog: \(state.mode)")
            return
        }
        #expect(draft.fingerprint == finding.fingerprint && draft.finding)
        #expect(render(state).text.contains("Approve finding"))
    }

    func headerLine(_ state: AppState) -> String {
        String(render(state).text.split(separator: "\n").first ?? "")
    }

    @Test("the header says when ingestion is throttled or narrowed to critical services, and shows the lag when all is well")
    func header() {
        var state = Fixture.state(width: 160)
        _ = reduce(&state, .audit(Self.feed([], health: IngestionView(mode: .normal, lagSeconds: 65, lastEvent: Fixture.now))))
        #expect(headerLine(state).contains("audit lag 1m"))
        _ = reduce(&state, .audit(Self.feed([], health: IngestionView(mode: .criticalOnly, lagSeconds: 400, lastEvent: nil))))
        #expect(headerLine(state).contains("audit CRITICAL-ONLY lag 6m"))
        _ = reduce(&state, .audit(Self.feed([], health: IngestionView(mode: .throttled, lagSeconds: nil, lastEvent: nil))))
        #expect(headerLine(state).contains("audit THROTTLED"))
    }

    @Test("a drift item's page says who changed it, or that no audit event explains it")
    func attributionOnItemPage() throws {
        var data = Fixture.data()
        let items = try #require(data.review?.items)
        try #require(items.count > 1, "the fixture has an explained and an unexplained item")
        let explainedItem = items[0].item
        let event = Self.finding(4, minutesAgo: 3).1
        data.attribution = [explainedItem.fingerprint: ItemAttribution(status: .explained, events: [event])]
        data.attribution[items[1].item.fingerprint] = ItemAttribution(status: .unexplained, events: [])
        let page = try #require(Details.build(.item(explainedItem.fingerprint), data))
        #expect(page.lines.contains { $0.map(\.text).joined().contains("Update by Ana Admin at") })
        let other = try #require(Details.build(.item(items[1].item.fingerprint), data))
        #expect(other.lines.contains { $0.map(\.text).joined().contains("UNEXPLAINED") })
        // The rows say it too, in the BY column.
        let rebuilt = DashboardBuilder.build(
            snapshot: try #require(data.snapshot), review: data.review, baselineVersion: 3, lineage: RoleLineage(), firstSeen: [:],
            risk: data.risk, status: .ready, collectedAt: Fixture.now, nextRefresh: nil, attribution: data.attribution)
        #expect(rebuilt.feed.first { $0.fingerprint == explainedItem.fingerprint }?.actor == "Ana Admin")
        #expect(rebuilt.feed.first { $0.fingerprint == items[1].item.fingerprint }?.actor == "UNEXPLAINED")
    }
}
