import AuditCore
import Foundation

/// Turns a snapshot and its review into rows: names resolved, counts and risks computed, sorted.
public enum DashboardBuilder {
    public static func build(
        snapshot: Snapshot, review: DriftReview?, baselineVersion: Int?, lineage: RoleLineage, firstSeen: [String: Date],
        appeared: [String: Date] = [:], failures: [CollectionFailure] = [], risk: RiskRollup, status: MonitorUpdate.Status, collectedAt: Date?,
        nextRefresh: Date?, attribution: [String: ItemAttribution] = [:]
    ) -> DashboardData {
        let divisions = DivisionNames(snapshot.divisions)
        func divisionName(_ id: String?) -> String { divisions.name(id) }
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

        // The users as the stored preview lists them (order, divisions, permission counts), with
        // risk and drift: the first frame and the full one show the same rows.
        let users = SnapshotPreview(snapshot).users.map { user in
            UserRow(user, risk: risk.principal(user.id), drift: driftBySubject[user.id] ?? 0)
        }

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
    /// A change a full walk found that no audit event explains: high, in the feed with the drift.
    public static func unauditedRow(_ change: UnauditedChange) -> FeedRow {
        let summary = change.summary
        return FeedRow(
            fingerprint: "unaudited:\(change.item.fingerprint)", severity: max(.high, change.item.severity), escalation: false,
            kind: "unauditedChange", summary: summary, state: .unapproved, firstSeen: change.confirmedAt, appeared: change.confirmedAt, failure: true,
            search: summary.lowercased())
    }

    public static func failureRow(_ failure: CollectionFailure) -> FeedRow {
        let summary = "collection failed\(failure.count > 1 ? " \(failure.count) times" : ""): \(failure.message)"
        return FeedRow(
            fingerprint: "failure:\(Int(failure.first.timeIntervalSince1970 * 1000))", severity: .high, escalation: false,
            kind: "collectionFailed", summary: summary, state: .unapproved, firstSeen: failure.at, appeared: failure.at, failure: true,
            search: summary.lowercased())
    }
}

/// Feed order: newest first, then the most severe, then by fingerprint (stable across runs).
public func newestFirst(_ a: FeedRow, _ b: FeedRow) -> Bool {
    if a.firstSeen != b.firstSeen { return a.firstSeen > b.firstSeen }
    if a.severity != b.severity { return a.severity > b.severity }
    return a.fingerprint < b.fingerprint
}
