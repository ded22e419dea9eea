@testable import AuditCore
import Foundation
import Testing

@Suite("Attribution of drift to audit events")
struct AttributionTests {
    let t0 = Date(timeIntervalSince1970: 1_795_000_000)

    func event(
        _ id: String, at offset: TimeInterval, _ type: String, _ action: String, entity: String, user: String? = "u-admin",
        changes: [AuditEvent.Change] = [], status: String = "SUCCESS"
    ) -> AuditEvent {
        AuditEvent(
            id: id, date: t0.addingTimeInterval(offset), serviceName: type == "User" ? "Directory" : type == "DirectoryGroup" ? "Groups" : "PeoplePermissions",
            entityType: type, action: action, entityId: entity, userId: user, userName: user.map { _ in "Ana Admin" }, clientId: "c-1",
            remoteIp: ["203.0.113.7"], status: status, changes: changes)
    }

    @Test("a grant is explained by the role's MemberAdd naming its subject; a member's gain through its cause; failures and other subjects do not count")
    func grantAndItsEffects() {
        let grant = DriftItem(kind: .grantAdded, subject: EntityRef(.group, "g1", "Ops"), role: EntityRef(.role, "r1"), division: EntityRef(.division, "*"))
        var gain = DriftItem(
            kind: .permissionsGained, subject: EntityRef(.user, "u7"), role: EntityRef(.role, "r1"), division: EntityRef(.division, "*"),
            via: EntityRef(.group, "g1"), permissionsAdded: ["a:b:c"])
        gain.causeFingerprint = grant.fingerprint
        let other = DriftItem(kind: .grantAdded, subject: EntityRef(.user, "u9"), role: EntityRef(.role, "r1"), division: EntityRef(.division, "d1"))
        let events = [
            event("e1", at: 60, "Role", "MemberAdd", entity: "r1", changes: [.init(property: "subjectId", newValues: ["g1"])]),
            event("e2", at: 70, "Role", "MemberAdd", entity: "r1", changes: [.init(property: "subjectId", newValues: ["u8"])]),
            event("e3", at: 80, "Role", "MemberAdd", entity: "r1", changes: [.init(property: "subjectId", newValues: ["u9"])], status: "FAILURE"),
        ]
        let result = Attribution.attribute([grant, gain, other], events: events, from: t0, to: t0.addingTimeInterval(3600))
        #expect(result[grant.fingerprint]?.status == .explained)
        #expect(result[grant.fingerprint]?.events.map(\.id) == ["e1"])
        #expect(result[gain.fingerprint]?.events.map(\.id) == ["e1"], "the member's gain is explained by the grant to its group")
        #expect(result[other.fingerprint]?.status == .unexplained, "a failed attempt does not explain a change")
        #expect(result[grant.fingerprint]?.summary.contains("MemberAdd by Ana Admin") == true)
        #expect(result[grant.fingerprint]?.summary.contains("203.0.113.7") == true)
    }

    @Test("events outside the window, or about another entity or action, leave an item unexplained")
    func windowAndEntity() {
        let created = DriftItem(kind: .roleCreated, subject: EntityRef(.role, "r2"), permissionsAdded: ["x:y:z"])
        let moved = DriftItem(kind: .userDivisionMoved, subject: EntityRef(.user, "u1"), previous: EntityRef(.division, "d0"), division: EntityRef(.division, "d1"))
        let member = DriftItem(kind: .groupMemberAdded, subject: EntityRef(.group, "g1"), member: EntityRef(.user, "u3"))
        let events = [
            event("early", at: -7200, "Role", "Create", entity: "r2"),
            event("wrong-action", at: 10, "Role", "Update", entity: "r2"),
            event("move", at: 20, "User", "Update", entity: "u1", changes: [.init(property: "divisionId", oldValues: ["d0"], newValues: ["d1"])]),
            event("join-other", at: 30, "DirectoryGroup", "MemberAdd", entity: "g1", changes: [.init(property: "group-membership", newValues: ["u4"])]),
        ]
        let result = Attribution.attribute([created, moved, member], events: events, from: t0, to: t0.addingTimeInterval(600))
        #expect(result[created.fingerprint]?.status == .unexplained)
        #expect(result[moved.fingerprint]?.events.map(\.id) == ["move"])
        #expect(result[member.fingerprint]?.status == .unexplained, "the membership event names another user")
        #expect(result[member.fingerprint]?.summary.hasPrefix("unexplained") == true)
        // Events known only up to a minute before the current collection: not unexplained yet.
        let early = Attribution.attribute([created, moved], events: events, from: t0, to: t0.addingTimeInterval(600), coveredUntil: t0.addingTimeInterval(240))
        #expect(early[created.fingerprint]?.status == .pending)
        #expect(early[created.fingerprint]?.summary.hasPrefix("pending: no audit event yet") == true)
        #expect(early[moved.fingerprint]?.status == .explained)
    }

    @Test("a recreated role is explained by the old one's Delete and the new one's Create; a deleted role explains its lost grants")
    func recreationAndDeletion() {
        let recreated = DriftItem(kind: .roleRecreated, subject: EntityRef(.role, "new"), previous: EntityRef(.role, "old"))
        let lost = DriftItem(kind: .grantRemoved, subject: EntityRef(.user, "u1"), role: EntityRef(.role, "old"), division: EntityRef(.division, "d1"))
        let events = [event("del", at: 5, "Role", "Delete", entity: "old"), event("new", at: 6, "Role", "Create", entity: "new")]
        let result = Attribution.attribute([recreated, lost], events: events, from: t0, to: t0.addingTimeInterval(60))
        #expect(result[recreated.fingerprint]?.events.map(\.id) == ["del", "new"])
        #expect(result[lost.fingerprint]?.events.map(\.id) == ["del"])
    }

    @Test("the window reaches a little before the baseline and after the current collection; reports carry attribution in table, JSON and CSV")
    func windowAndReports() throws {
        let (from, to) = Attribution.window(baselineAt: t0, currentAt: t0.addingTimeInterval(3600))
        #expect(from == t0.addingTimeInterval(-Attribution.leadIn))
        #expect(to == t0.addingTimeInterval(3600 + Attribution.trail))

        let explained = DriftItem(kind: .roleDeleted, subject: EntityRef(.role, "r1", "Old"))
        let unexplained = DriftItem(kind: .userAdded, subject: EntityRef(.user, "u1", "Eve"))
        let result = DriftResult(baselineRoot: "a", currentRoot: "b", items: [explained, unexplained], newLineage: [:], changedEntities: 2, principalsCompared: 0)
        let review = DriftReview(result: result, approvals: [], now: t0)
        let attribution = Attribution.attribute(
            [explained, unexplained], events: [event("d", at: 10, "Role", "Delete", entity: "r1", user: nil)], from: from, to: to)
        let report = DriftReport(
            baseline: .init(version: 1, rootHash: "a", acceptedAt: nil, acceptedBy: nil), review: review, failOn: nil, attribution: attribution,
            coverage: AttributionCoverage(from: from, to: to, events: 1, source: "the state store"))
        #expect(report.unexplained.map(\.item.fingerprint) == [unexplained.fingerprint])
        let table = report.tableText()
        #expect(table.contains("1 change UNEXPLAINED"))
        #expect(table.contains("Delete by client c-1"), "an OAuth client acting alone is named as the actor")
        let json = try #require(try? JSONSerialization.jsonObject(with: Data(report.json())) as? [String: Any])
        #expect((json["attribution"] as? [String: Any])?["unexplained"] as? Int == 1)
        let items = try #require(json["items"] as? [[String: Any]])
        let statuses = items.compactMap { ($0["attribution"] as? [String: Any])?["status"] as? String }.sorted()
        #expect(statuses == ["explained", "unexplained"])
        #expect(report.csv().components(separatedBy: "\r\n").first?.hasSuffix("attribution,changed_by") == true)
    }
}
