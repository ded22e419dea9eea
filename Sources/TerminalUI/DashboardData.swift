import AuditCore
import Foundation

/// The state of the background collector, for the header.
public enum MonitorStatus: Sendable, Equatable {
    case starting
    case collecting
    case ready
    case failed(String)
}

/// What the filter and `:` queries look at in a row.
protocol FilterableRow {
    var id: String { get }
    var search: String { get }
    var filterRisk: Severity? { get }
    var filterState: String? { get }
    var hasDrift: Bool { get }
    var hasUnapproved: Bool { get }
}

extension UserRow: FilterableRow {
    var filterRisk: Severity? { risk }
    var filterState: String? { state }
    var hasDrift: Bool { drift > 0 }
    var hasUnapproved: Bool { drift > 0 }
}

extension RoleRow: FilterableRow {
    var filterRisk: Severity? { risk }
    var filterState: String? { nil }
    var hasDrift: Bool { drift > 0 }
    var hasUnapproved: Bool { drift > 0 }
}

extension InheritanceRow: FilterableRow {
    var filterRisk: Severity? { nil }
    var filterState: String? { nil }
    var hasDrift: Bool { false }
    var hasUnapproved: Bool { false }
}

extension FeedRow: FilterableRow {
    var filterRisk: Severity? { severity }
    var filterState: String? { nil }
    var hasDrift: Bool { true }
    var hasUnapproved: Bool { !state.isApproved }
}

public struct UserRow: Sendable, Equatable, Identifiable {
    public var id: String
    public var name: String
    public var state: String
    public var division: String
    public var permissions: Int
    public var risk: Severity?
    /// Unapproved drift items about this user.
    public var drift: Int
    var search: String
}

public struct RoleRow: Sendable, Equatable, Identifiable {
    public var id: String
    public var name: String
    public var users: Int
    public var groups: Int
    public var clients: Int
    public var permissions: Int
    public var risk: Severity
    /// Other ids of the same role over time (deleted and recreated).
    public var lineage: [String]
    public var builtIn: Bool
    public var drift: Int
    var search: String
}

public struct InheritanceRow: Sendable, Equatable, Identifiable {
    public enum Kind: String, Sendable { case group, team }
    public var kind: Kind
    public var id: String
    public var name: String
    /// Members, when read: the collector reads the members of groups that pass roles on.
    public var members: Int?
    public var rolesEnabled: Bool
    /// `Role @ Division` for each grant the group holds.
    public var grants: [String]
    public var division: String?
    var search: String
}

public struct FeedRow: Sendable, Equatable, Identifiable {
    /// The row: the fingerprint for drift, the finding's id (fingerprint and event) for audit
    /// findings — the same change made twice is two rows with one approval.
    public var id: String { rowId ?? fingerprint }
    /// What an approval names.
    public var fingerprint: String
    public var severity: Severity
    public var escalation: Bool
    public var kind: String
    public var summary: String
    public var state: ReviewState
    public var firstSeen: Date
    /// When it appeared while the dashboard was open (highlighted for a few seconds).
    public var appeared: Date?
    /// Not drift: a collection that failed (shown in the feed, never approvable).
    public var failure: Bool = false
    var search: String
    /// For audit findings: the row id, who acted and the rule that fired.
    public var rowId: String? = nil
    public var actor: String? = nil
    public var rule: String? = nil

    /// An audit finding rather than a drift item.
    public var isFinding: Bool { rule != nil }
}

/// The audit feed as the dashboard shows it: recent findings, the events and rules behind them,
/// and how ingestion is doing.
public struct AuditFeed: Sendable, Equatable {
    public var rows: [FeedRow]
    /// By row id.
    public var details: [String: FindingDetail]
    public var health: IngestionView?

    public init(rows: [FeedRow] = [], details: [String: FindingDetail] = [:], health: IngestionView? = nil) {
        self.rows = rows
        self.details = details
        self.health = health
    }

    public static let empty = AuditFeed()

    /// Rows for findings, newest first; `appeared` marks those that arrived while the dashboard was open.
    public static func rows(_ findings: [AuditFinding], appeared: [String: Date] = [:]) -> [FeedRow] {
        findings.map { finding in
            let state: ReviewState = finding.approval.map { .approved($0, inherited: false) } ?? .unapproved
            let target = finding.entityName.isEmpty ? finding.entityId : finding.entityName
            var text = "\(finding.ruleId) \(finding.title): \(finding.action) \(finding.entityType) \(target)"
            if !finding.evidence.isEmpty { text += " (\(finding.evidence.prefix(2).joined(separator: "; "))\(finding.evidence.count > 2 ? "; …" : ""))" }
            return FeedRow(
                fingerprint: finding.fingerprint, severity: finding.severity, escalation: false, kind: "audit:\(finding.ruleId)",
                summary: text, state: state, firstSeen: finding.date, appeared: appeared[finding.id],
                search: "\(text) \(finding.fingerprint.prefix(12)) \(finding.severity.name) \(finding.actor)".lowercased(), rowId: finding.id,
                actor: shortActor(finding.actor), rule: finding.ruleId)
        }
    }
}

/// An actor short enough for a row: an OAuth client's id cut to its first block.
func shortActor(_ actor: String) -> String {
    guard actor.hasPrefix("client "), actor.count > 16 else { return actor }
    return String(actor.prefix(15)) + "…"
}

/// Behind one finding row: the finding, the raw event that fired it, the rule.
public struct FindingDetail: Sendable, Equatable {
    public var finding: AuditFinding
    public var event: AuditEvent?
    public var rule: AuditRule?

    public init(finding: AuditFinding, event: AuditEvent?, rule: AuditRule?) {
        self.finding = finding
        self.event = event
        self.rule = rule
    }
}

/// Ingestion health for the header.
public struct IngestionView: Sendable, Equatable {
    public enum Mode: String, Sendable, Equatable { case normal, throttled, criticalOnly, failing, starting }
    public var mode: Mode
    /// How far behind now the feed's high-water mark is.
    public var lagSeconds: Double?
    public var lastEvent: Date?
    public var message: String?

    public init(mode: Mode, lagSeconds: Double?, lastEvent: Date?, message: String? = nil) {
        self.mode = mode
        self.lagSeconds = lagSeconds
        self.lastEvent = lastEvent
        self.message = message
    }
}

/// Everything the dashboard shows, computed off the UI loop from a snapshot and its review, then
/// handed to the reducer whole.
public struct DashboardData: Sendable {
    public var organization: String
    public var collectedAt: Date?
    public var nextRefresh: Date?
    public var status: MonitorStatus
    public var baselineVersion: Int?
    /// Unapproved drift items by severity.
    public var unapproved: [Severity: Int]
    public var users: [UserRow]
    public var roles: [RoleRow]
    public var inheritance: [InheritanceRow]
    public var feed: [FeedRow]
    public var snapshot: Snapshot?
    public var review: DriftReview?
    public var lineage: RoleLineage
    /// Risk as the engine rolled it up (the dashboard computes none).
    public var risk: RiskRollup
    /// Who made each drift item happen, by fingerprint.
    public var attribution: [String: ItemAttribution] = [:]
    /// The audit feed merged in (rows also in `feed`), by the reducer.
    public var audit: AuditFeed = .empty

    public static let empty = DashboardData(
        organization: "", collectedAt: nil, nextRefresh: nil, status: .starting, baselineVersion: nil, unapproved: [:], users: [],
        roles: [], inheritance: [], feed: [], snapshot: nil, review: nil, lineage: RoleLineage(), risk: RiskRollup())

    /// What the header counts: unapproved drift items and open (unapproved) audit findings, by
    /// severity.
    public var openBySeverity: [Severity: Int] {
        var counts = unapproved
        for row in audit.rows where !row.state.isApproved { counts[row.severity, default: 0] += 1 }
        return counts
    }
}

/// Turns a snapshot and its review into rows: names resolved, counts and risks computed, sorted.
public enum DashboardBuilder {
    public static func build(
        snapshot: Snapshot, review: DriftReview?, baselineVersion: Int?, lineage: RoleLineage, firstSeen: [String: Date],
        appeared: [String: Date] = [:], failures: [CollectionFailure] = [], risk: RiskRollup, status: MonitorStatus, collectedAt: Date?,
        nextRefresh: Date?, attribution: [String: ItemAttribution] = [:]
    ) -> DashboardData {
        let divisions = Dictionary(snapshot.divisions.map { ($0.id, $0.name) }, uniquingKeysWith: { a, _ in a })
        func divisionName(_ id: String?) -> String {
            guard let id else { return "" }
            return id == allDivisionsID ? "*" : divisions[id] ?? id
        }
        let roles = Dictionary(snapshot.roles.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        var rolePermissions: [String: Set<String>] = [:]
        for role in snapshot.roles { rolePermissions[role.id] = Set(role.permissions) }

        // Drift per subject.
        var driftBySubject: [String: Int] = [:]
        var driftByRole: [String: Int] = [:]
        for reviewed in review?.items ?? [] where !reviewed.state.isApproved {
            let item = reviewed.item
            if item.subject.kind == .role {
                driftByRole[item.subject.id, default: 0] += 1
            } else {
                driftBySubject[item.subject.id, default: 0] += 1
                if item.kind == .grantAdded || item.kind == .grantRemoved, let role = item.role { driftByRole[role.id, default: 0] += 1 }
            }
        }

        // Distinct effective permissions depend only on the set of roles a user holds: count
        // each distinct set once, over interned permission ids (no string sets per user).
        var permissionIds: [String: Int] = [:]
        var rolePermissionIds: [String: [Int]] = [:]
        for role in snapshot.roles {
            rolePermissionIds[role.id] = role.permissions.map { permission in
                if let id = permissionIds[permission] { return id }
                let id = permissionIds.count
                permissionIds[permission] = id
                return id
            }
        }
        var stamps = [Int](repeating: -1, count: permissionIds.count)
        var countsByRoleSet: [[String]: Int] = [:]
        func distinctPermissions(_ roleIds: [String]) -> Int {
            if let known = countsByRoleSet[roleIds] { return known }
            let stamp = countsByRoleSet.count
            var count = 0
            for roleId in roleIds {
                for id in rolePermissionIds[roleId] ?? [] where stamps[id] != stamp {
                    stamps[id] = stamp
                    count += 1
                }
            }
            countsByRoleSet[roleIds] = count
            return count
        }

        let users = snapshot.users.map { user -> (key: String, row: UserRow) in
            let division = divisionName(user.divisionId)
            let row = UserRow(
                id: user.id, name: user.name, state: user.state, division: division,
                permissions: distinctPermissions(Array(Set(user.access.map(\.roleId))).sorted()),
                risk: risk.principal(user.id), drift: driftBySubject[user.id] ?? 0,
                search: "\(user.name) \(user.username ?? "") \(division) \(user.state)".lowercased())
            return (user.name.lowercased(), row)
        }.sorted { ($0.key, $0.row.id) < ($1.key, $1.row.id) }.map(\.row)

        var holders: [String: (users: Set<String>, groups: Set<String>, clients: Set<String>)] = [:]
        // Mutated in place: copying an entry out and back would copy its sets on every grant.
        for grant in snapshot.grants {
            switch grant.subjectKind {
            case .user: holders[grant.roleId, default: ([], [], [])].users.insert(grant.subjectId)
            case .group: holders[grant.roleId, default: ([], [], [])].groups.insert(grant.subjectId)
            case .oauthClient: holders[grant.roleId, default: ([], [], [])].clients.insert(grant.subjectId)
            default: break
            }
        }
        var lineageMembers: [String: [String]] = [:]
        for (role, root) in lineage.links { lineageMembers[lineage.lineage(of: root), default: []].append(role) }
        let roleRows = snapshot.roles.map { role -> RoleRow in
            let root = lineage.lineage(of: role.id)
            let family = Set((lineageMembers[root] ?? []) + [root]).subtracting([role.id]).sorted()
            let held = holders[role.id]
            return RoleRow(
                id: role.id, name: role.name, users: held?.users.count ?? 0, groups: held?.groups.count ?? 0,
                clients: held?.clients.count ?? 0, permissions: rolePermissions[role.id]?.count ?? 0,
                risk: risk.roles[role.id]?.severity ?? .low, lineage: family, builtIn: role.isBuiltIn, drift: driftByRole[role.id] ?? 0,
                search: role.name.lowercased())
        }.sorted { ($0.name.lowercased(), $0.id) < ($1.name.lowercased(), $1.id) }

        var grantsBySubject: [String: [String]] = [:]
        for grant in snapshot.grants where grant.subjectKind == .group {
            let name = roles[grant.roleId]?.name ?? grant.roleId
            grantsBySubject[grant.subjectId, default: []].append("\(name) @ \(divisionName(grant.divisionId))")
        }
        var inheritance = snapshot.groups.map { group -> InheritanceRow in
            let grants = (grantsBySubject[group.id] ?? []).sorted()
            return InheritanceRow(
                kind: .group, id: group.id, name: group.name,
                members: group.rolesEnabled || !grants.isEmpty || !group.memberIds.isEmpty ? group.memberIds.count : nil,
                rolesEnabled: group.rolesEnabled,
                grants: grants, division: nil, search: "\(group.name) \(grants.joined(separator: " "))".lowercased())
        }
        // Groups that pass roles on first, then by name.
        inheritance.sort { a, b in
            a.grants.isEmpty != b.grants.isEmpty ? !a.grants.isEmpty : a.name.lowercased() < b.name.lowercased()
        }
        inheritance += snapshot.teams.map { team in
            InheritanceRow(
                kind: .team, id: team.id, name: team.name, members: team.memberIds.count, rolesEnabled: false, grants: [],
                division: divisionName(team.divisionId), search: "\(team.name) \(divisionName(team.divisionId))".lowercased())
        }.sorted { $0.name.lowercased() < $1.name.lowercased() }

        var feed = (review?.items ?? []).map { reviewed -> FeedRow in
            let attributed = attribution[reviewed.item.fingerprint]
            let by: String? =
                switch attributed?.status {
                case .explained: attributed?.latest.map { shortActor($0.actor) }
                case .unexplained: "UNEXPLAINED"
                case .pending, nil: nil
                }
            let summary = reviewed.item.summary
            return FeedRow(
                fingerprint: reviewed.item.fingerprint, severity: reviewed.item.severity, escalation: reviewed.item.escalation,
                kind: reviewed.item.kind.rawValue, summary: summary, state: reviewed.state,
                firstSeen: firstSeen[reviewed.item.fingerprint] ?? collectedAt ?? Date(timeIntervalSince1970: 0),
                appeared: appeared[reviewed.item.fingerprint],
                search: "\(summary) \(reviewed.item.fingerprint.prefix(12)) \(reviewed.item.severity.name) \(by ?? "")".lowercased(), actor: by)
        }
        feed += failures.map(DashboardBuilder.failureRow)
        feed.sort(by: newestFirst)

        var unapproved: [Severity: Int] = [:]
        for reviewed in review?.items ?? [] where !reviewed.state.isApproved { unapproved[reviewed.item.severity, default: 0] += 1 }
        var data = DashboardData(
            organization: snapshot.organization?.name ?? "", collectedAt: collectedAt, nextRefresh: nextRefresh, status: status,
            baselineVersion: baselineVersion, unapproved: unapproved, users: users, roles: roleRows, inheritance: inheritance,
            feed: feed, snapshot: snapshot, review: review, lineage: lineage, risk: risk)
        data.attribution = attribution
        return data
    }
}

extension DashboardBuilder {
    public static func failureRow(_ failure: CollectionFailure) -> FeedRow {
        let summary = "collection failed\(failure.count > 1 ? " \(failure.count) times" : ""): \(failure.message)"
        return FeedRow(
            fingerprint: "failure:\(Int(failure.first.timeIntervalSince1970 * 1000))", severity: .high, escalation: false,
            kind: "collectionFailed", summary: summary, state: .unapproved, firstSeen: failure.at, appeared: failure.at, failure: true,
            search: summary.lowercased())
    }
}

/// Feed order: newest first, then the most severe, then by fingerprint (stable across runs).
func newestFirst(_ a: FeedRow, _ b: FeedRow) -> Bool {
    if a.firstSeen != b.firstSeen { return a.firstSeen > b.firstSeen }
    if a.severity != b.severity { return a.severity > b.severity }
    return a.fingerprint < b.fingerprint
}
