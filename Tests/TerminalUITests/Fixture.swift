import AuditCore
import AuditEngine
import Foundation
import Testing

@testable import TerminalUI

/// A small contact centre with known drift, and a dashboard state built from it: the same input
/// for every render and reducer test.
enum Fixture {
    static let now = Date(timeIntervalSince1970: 1_800_000_000)  // 2027-01-15T08:00:00Z
    static let collectedAt = now.addingTimeInterval(-42)
    /// A name that tries to clear the screen and recolour it, and two that are wide.
    static let hostileName = "Mallory\u{1B}[2J\u{1B}[31mRed\u{07}"
    static let wideName = "山田太郎"
    static let emojiName = "Zoë 👩‍💻 Dev"

    static var divisions: [Division] {
        [
            Division(id: "home", name: "Home", isHome: true), Division(id: "d-sup", name: "Support"),
            Division(id: "d-sal", name: "Sales"),
        ]
    }

    static func roles(reportingEdited: Bool) -> [Role] {
        var reporting = [PermissionPolicy(domain: "analytics", entityName: "conversationDetail", actions: ["view"])]
        if reportingEdited { reporting.append(PermissionPolicy(domain: "recording", entityName: "recording", actions: ["view"])) }
        return [
            Role(id: "r-admin", name: "Master Admin", isBuiltIn: true, policies: [PermissionPolicy(domain: "*", entityName: "*", actions: ["*"])]),
            Role(id: "r-agent", name: "Agent", policies: [PermissionPolicy(domain: "routing", entityName: "queue", actions: ["join", "view"])]),
            Role(
                id: "r-sec", name: "Security Admin",
                policies: [
                    PermissionPolicy(domain: "authorization", entityName: "grant", actions: ["add", "delete"]),
                    PermissionPolicy(domain: "authorization", entityName: "role", actions: ["view", "edit"]),
                ]),
            Role(id: "r-report", name: "Reporting", policies: reporting),
            Role(id: "r-sup", name: "Supervisor", policies: [PermissionPolicy(domain: "quality", entityName: "evaluation", actions: ["view", "edit"])]),
        ]
    }

    static var users: [User] {
        [
            User(id: "u01", name: "Ana Silva", username: "ana@example.com", state: "active", divisionId: "d-sup"),
            User(id: "u02", name: "Ben Okafor", state: "active", divisionId: "d-sup"),
            User(id: "u03", name: "Cai Wen", state: "inactive", divisionId: "home"),
            User(id: "u04", name: hostileName, state: "active", divisionId: "d-sal"),
            User(id: "u05", name: wideName, state: "active", divisionId: "d-sal"),
            User(id: "u06", name: emojiName, state: "active", divisionId: "home"),
            User(id: "u07", name: "Dana Ruiz", state: "active", divisionId: "d-sal"),
            User(id: "u08", name: "Eli Novak", state: "active", divisionId: "d-sup"),
        ]
    }

    static func snapshot(drifted: Bool) -> Snapshot {
        var grants = [
            Grant(subjectId: "u01", subjectKind: .user, roleId: "r-agent", divisionId: "d-sup"),
            Grant(subjectId: "u02", subjectKind: .user, roleId: "r-agent", divisionId: "d-sup"),
            Grant(subjectId: "u03", subjectKind: .user, roleId: "r-report", divisionId: "home"),
            Grant(subjectId: "u04", subjectKind: .user, roleId: "r-agent", divisionId: "d-sal"),
            Grant(subjectId: "u05", subjectKind: .user, roleId: "r-sup", divisionId: "d-sal"),
            Grant(subjectId: "u06", subjectKind: .user, roleId: "r-report", divisionId: "home"),
            Grant(subjectId: "u07", subjectKind: .user, roleId: "r-admin", divisionId: "*"),
            Grant(subjectId: "g-leads", subjectKind: .group, roleId: "r-sup", divisionId: "d-sup"),
            Grant(subjectId: "c-crm", subjectKind: .oauthClient, roleId: "r-report", divisionId: "d-sup"),
        ]
        if drifted {
            grants.append(Grant(subjectId: "g-leads", subjectKind: .group, roleId: "r-sec", divisionId: "*"))
            grants.removeAll { $0.subjectId == "u02" }
        }
        return Snapshot.resolving(
            organization: Organization(id: "org", name: "Acme Contact Centre"), divisions: divisions,
            roles: roles(reportingEdited: drifted), users: users,
            groups: [
                Group(id: "g-leads", name: "Team Leads", type: "official", rolesEnabled: true, memberIds: ["u01", "u04", "u05"]),
                Group(id: "g-all", name: "Everyone", rolesEnabled: false, memberIds: users.map(\.id)),
            ],
            teams: [Team(id: "t-night", name: "Night Shift", divisionId: "d-sup", memberIds: ["u02", "u08"])],
            oauthClients: [OAuthClient(id: "c-crm", name: "CRM Sync", grantType: "CLIENT-CREDENTIALS")], grants: grants, problems: [])
    }

    static var result: DriftResult {
        DriftEngine.diff(baseline: snapshot(drifted: false), current: snapshot(drifted: true))
    }

    /// The review with one item approved (ticket CHG-1042), the rest open.
    static func review(approving fingerprint: String? = nil) -> DriftReview {
        let result = self.result
        let chosen = fingerprint ?? result.items.first { $0.kind == .roleModified }!.fingerprint
        let approval = Approval(
            fingerprint: chosen, ticket: "CHG-1042", note: "quarterly review", approver: "ana", createdAt: now.addingTimeInterval(-600),
            expiresAt: now.addingTimeInterval(3 * 86_400))
        return DriftReview(result: result, approvals: [approval], now: now)
    }

    /// Items first seen at two moments (so ages differ), the newest few still highlighted.
    static func data(failures: [CollectionFailure] = [], review: DriftReview? = nil) -> DashboardData {
        let review = review ?? self.review()
        var firstSeen: [String: Date] = [:]
        var appeared: [String: Date] = [:]
        for (index, reviewed) in review.items.enumerated() {
            let fingerprint = reviewed.item.fingerprint
            if reviewed.item.kind == .grantAdded || reviewed.item.causeFingerprint != nil && index % 2 == 0 {
                firstSeen[fingerprint] = now.addingTimeInterval(-2)
                appeared[fingerprint] = now.addingTimeInterval(-2)
            } else {
                firstSeen[fingerprint] = now.addingTimeInterval(-360)
            }
        }
        let current = snapshot(drifted: true)
        return DashboardBuilder.build(
            snapshot: current, review: review, baselineVersion: 3, lineage: RoleLineage(), firstSeen: firstSeen,
            appeared: appeared, failures: failures, risk: RiskRollup(snapshot: current, policy: .standard, review: review), status: .ready,
            collectedAt: collectedAt,
            nextRefresh: now.addingTimeInterval(258))
    }

    static func state(width: Int = 110, height: Int = 30, pane: Pane = .users, readOnly: Bool = false) -> AppState {
        var state = AppState(theme: .standard, readOnly: readOnly, now: now, width: width, height: height)
        _ = reduce(&state, .data(data()))
        state.pane = pane
        return state
    }
}

/// Sends keys through the reducer, collecting the effects.
@discardableResult
func press(_ state: inout AppState, _ keys: Key...) -> [Effect] {
    keys.flatMap { reduce(&state, .key($0)) }
}

@discardableResult
func type(_ state: inout AppState, _ text: String) -> [Effect] {
    text.flatMap { reduce(&state, .key(.character($0))) }
}
