import AuditCore
import Foundation
import Testing

@Suite("Drift: approvals and reports")
struct ApprovalAndReportTests {
    static let now = Date(timeIntervalSince1970: 1_800_000_000)

    static func groupGrant() -> DriftResult {
        var org = Org()
        org.grants.append(Grant(subjectId: "g1", subjectKind: .group, roleId: "r-secadmin", divisionId: "*"))
        org.users[2].state = "inactive"
        return DriftEngine.diff(baseline: Org().snapshot, current: org.snapshot)
    }

    static func approval(_ fingerprint: String, expires: TimeInterval = 3600, revoked: Bool = false) -> Approval {
        Approval(
            fingerprint: fingerprint, ticket: "CHG-1", note: "planned", approver: "ana", createdAt: now.addingTimeInterval(-60),
            expiresAt: now.addingTimeInterval(expires), revokedAt: revoked ? now : nil)
    }

    @Test("approving the cause approves its effects, and nothing else")
    func causeApproval() throws {
        let result = Self.groupGrant()
        let grant = try #require(result.items.first { $0.kind == .grantAdded })
        let review = DriftReview(result: result, approvals: [Self.approval(grant.fingerprint)], now: Self.now)
        for reviewed in review.items {
            switch reviewed.item.kind {
            case .grantAdded: #expect(reviewed.state == .approved(Self.approval(grant.fingerprint), inherited: false))
            case .permissionsGained: #expect(reviewed.state.isApproved)
            default: #expect(reviewed.state == .unapproved, "a different change stays unapproved: \(reviewed.item.summary)")
            }
        }
        #expect(review.unapproved(atLeast: .high).isEmpty)
        #expect(review.unapproved(atLeast: .low).count == 1)
    }

    @Test("an expired approval lapses: the item is unapproved again and the lapse is reported; a revoked one counts for nothing")
    func lapse() throws {
        let result = Self.groupGrant()
        let grant = try #require(result.items.first { $0.kind == .grantAdded })
        let lapsed = DriftReview(result: result, approvals: [Self.approval(grant.fingerprint, expires: -1)], now: Self.now)
        #expect(lapsed.items.first { $0.item.fingerprint == grant.fingerprint }?.state == .lapsed(Self.approval(grant.fingerprint, expires: -1)))
        #expect(lapsed.lapsed.map(\.fingerprint) == [grant.fingerprint])
        #expect(lapsed.unapproved(atLeast: .critical).count == 3)
        let revoked = DriftReview(result: result, approvals: [Self.approval(grant.fingerprint, revoked: true)], now: Self.now)
        #expect(revoked.items.allSatisfy { $0.state == .unapproved })
        #expect(revoked.lapsed.isEmpty)
    }

    @Test("approval lifetimes parse from 90s, 45m, 72h, 3d, 2w")
    func lifetimes() {
        #expect(Approval.lifetime(parsing: "90s") == 90)
        #expect(Approval.lifetime(parsing: "45m") == 2700)
        #expect(Approval.lifetime(parsing: "72h") == 259_200)
        #expect(Approval.lifetime(parsing: "3d") == 259_200)
        #expect(Approval.lifetime(parsing: "2w") == 1_209_600)
        #expect(Approval.lifetime(parsing: "12") == 43_200)
        #expect(Approval.lifetime(parsing: "-1h") == nil)
        #expect(Approval.lifetime(parsing: "soon") == nil)
    }

    func report(_ result: DriftResult, approvals: [Approval] = []) -> DriftReport {
        DriftReport(
            baseline: .init(version: 2, rootHash: result.baselineRoot, acceptedAt: Self.now, acceptedBy: "ana"),
            review: DriftReview(result: result, approvals: approvals, now: Self.now), failOn: .high)
    }

    @Test("JSON: versioned schema, every item, stable bytes")
    func json() throws {
        let result = Self.groupGrant()
        let bytes = report(result).json()
        #expect(bytes == report(result).json())
        let object = try #require(try JSONSerialization.jsonObject(with: Data(bytes)) as? [String: Any])
        #expect(object["schema"] as? String == "rbacwatch.drift/1")
        let items = try #require(object["items"] as? [[String: Any]])
        #expect(items.count == result.items.count)
        #expect(items.first?["severity"] as? String == "critical")
        #expect((object["gate"] as? [String: Any])?["passed"] as? Bool == false)
        #expect(String(decoding: bytes, as: UTF8.self).hasPrefix("{\n\"schema\":\"rbacwatch.drift/1\""))
    }

    @Test("the table names each principal once, says in how many divisions, and agrees in number")
    func foldedPrincipals() {
        var base = Org()
        base.grants.append(Grant(subjectId: "u1", subjectKind: .user, roleId: "r-agent", divisionId: "home"))
        var edited = base
        edited.replaceRole(
            "r-agent",
            with: Role(id: "r-agent", name: "Agent", policies: [PermissionPolicy(domain: "routing", entityName: "queue", actions: ["join", "view", "edit"])]))
        let table = report(DriftEngine.diff(baseline: base.snapshot, current: edited.snapshot)).tableText(expand: false)
        #expect(table.contains("2 principals gain permissions through this change: Ana (in 2 divisions), Ben"), "\(table)")
        #expect(!table.contains("Ana, Ana"))

        var one = base
        one.grants.removeAll { $0.subjectId == "u2" }
        var oneEdited = edited
        oneEdited.grants.removeAll { $0.subjectId == "u2" }
        let single = report(DriftEngine.diff(baseline: one.snapshot, current: oneEdited.snapshot)).tableText(expand: false)
        #expect(single.contains("1 principal gains permissions through this change: Ana (in 2 divisions)"), "\(single)")
    }

    @Test("CSV cells that a spreadsheet would evaluate are neutralised")
    func csvInjection() {
        #expect(DriftReport.csvCell("=HYPERLINK(\"http://x\")") == "\"'=HYPERLINK(\"\"http://x\"\")\"")
        #expect(DriftReport.csvCell("+1") == "'+1")
        #expect(DriftReport.csvCell("-2") == "'-2")
        #expect(DriftReport.csvCell("@SUM(A1)") == "'@SUM(A1)")
        // Control characters are shown as escapes (so a leading tab no longer reaches a spreadsheet).
        #expect(DriftReport.csvCell("\tx") == "\\x09x")
        #expect(DriftReport.csvCell("\u{1B}]52;c;ZXZpbA==\u{07}") == "\\x1B]52;c;ZXZpbA==\\x07")
        #expect(DriftReport.csvCell("name\u{202E}gnp.exe") == "name\\u{202E}gnp.exe")
        #expect(DriftReport.csvCell("a,b") == "\"a,b\"")
        #expect(DriftReport.csvCell("plain") == "plain")
        var org = Org()
        org.users[0].name = "=cmd|' /C calc'!A0"
        org.grants.append(Grant(subjectId: "u1", subjectKind: .user, roleId: "r-secadmin", divisionId: "d1"))
        let csv = report(DriftEngine.diff(baseline: Org().snapshot, current: org.snapshot)).csv()
        #expect(!csv.contains(",=cmd"))
        #expect(csv.contains("'=cmd"))
        #expect(csv.split(separator: "\r\n").first?.hasPrefix("fingerprint,severity") == true)
    }

    @Test("OCSF: Compliance Finding events with deterministic uids")
    func ocsf() throws {
        let result = Self.groupGrant()
        let lines = String(decoding: report(result).ocsf(), as: UTF8.self).split(separator: "\n")
        #expect(lines.count == result.items.count)
        let event = try #require(try JSONSerialization.jsonObject(with: Data(lines[0].utf8)) as? [String: Any])
        #expect(event["class_uid"] as? Int == 2003)
        #expect(event["category_uid"] as? Int == 2)
        #expect(event["type_uid"] as? Int == 200_301)
        #expect(event["severity_id"] as? Int == 5)
        #expect((event["metadata"] as? [String: Any])?["version"] as? String == "1.7.0")
        let info = try #require(event["finding_info"] as? [String: Any])
        #expect(info["uid"] as? String == "rbacwatch-drift-\(result.items[0].fingerprint)")
        #expect((event["compliance"] as? [String: Any])?["status_id"] as? Int == 3)
        let again = String(decoding: report(result).ocsf(), as: UTF8.self).split(separator: "\n")
        #expect(lines == again)
    }

    @Test("the table folds members' gains under their cause, shows approvals and the gate, and is terminal-safe")
    func table() throws {
        var org = Org()
        org.grants.append(Grant(subjectId: "g1", subjectKind: .group, roleId: "r-secadmin", divisionId: "*"))
        org.groups[0].name = "Leads\u{1B}[2J"
        let result = DriftEngine.diff(baseline: Org().snapshot, current: org.snapshot)
        let grant = try #require(result.items.first { $0.kind == .grantAdded })
        let text = report(result, approvals: [Self.approval(grant.fingerprint)]).tableText()
        #expect(text.contains("2 principals gain permissions through this change"))
        #expect(text.contains("ok CHG-1"))
        #expect(text.contains("Gate --fail-on high: pass"))
        #expect(!text.contains("\u{1B}"))
        let expanded = report(result).tableText(expand: true)
        #expect(expanded.contains("Ana gained"))
        #expect(expanded.contains("Gate --fail-on high: FAIL"))
        let empty = report(DriftEngine.diff(baseline: Org().snapshot, current: Org().snapshot)).tableText()
        #expect(empty.contains("No drift"))
    }
}

@Suite("Risk rolled up once")
struct RiskRollupTests {
    @Test("roles, their permission groups, permissions and what each principal holds equal the policy's own answers")
    func rollup() {
        var org = Org()
        org.grants.append(Grant(subjectId: "u3", subjectKind: .user, roleId: "r-report", divisionId: "*"))
        let snapshot = org.snapshot
        let policy = RiskPolicy.standard
        let rollup = RiskRollup(snapshot: snapshot, policy: policy, extraPermissions: ["directory:user:delete"])
        for role in snapshot.roles {
            #expect(rollup.role(role.id) == policy.assess(role.permissions))
            #expect(rollup.rolePolicies[role.id] == role.policies.map { policy.assess($0.permissions).severity })
            for permission in role.permissions { #expect(rollup.permission(permission) == policy.assess([permission]).severity) }
        }
        #expect(rollup.permission("directory:user:delete") == policy.assess(["directory:user:delete"]).severity, "extra permissions too")
        // Cai holds Reporting in Home and in every division: there, one level more.
        let report = policy.assess(snapshot.roles.first { $0.id == "r-report" }!.permissions).severity
        let cai = rollup.held["u3"] ?? []
        #expect(report < .critical)
        #expect(cai.contains { $0.access.divisionId == "*" && $0.severity == report.raised && $0.raisedBecause != nil }, "\(cai)")
        #expect(cai.contains { $0.access.divisionId == "home" && $0.severity == report && $0.raisedBecause == nil })
        #expect(rollup.principal("u3") == cai.map(\.severity).max())
        #expect(rollup.principal("nobody") == nil)
        #expect(rollup.held["c1"]?.isEmpty == false, "OAuth clients are principals too")
        #expect(rollup.role("no-such-role").severity == .low)
    }
}
