/// Sets each drift item's severity, escalation flag and reasons from the permissions it gains —
/// never from role names alone — widened by scope (`*`), by subject (OAuth clients, large groups)
/// and by escalation capability.
final class RiskAssessor {
    let policy: RiskPolicy
    /// Permissions repeat across thousands of items: weigh each once.
    private var memo: [String: RiskPolicy.PermissionRisk] = [:]
    let baseline: Snapshot
    let current: Snapshot
    private let roles: [String: Role]
    private let groupSizes: [String: Int]
    /// Roles each group holds now.
    private let groupRoles: [String: [String]]

    init(policy: RiskPolicy, baseline: Snapshot, current: Snapshot) {
        self.policy = policy
        self.baseline = baseline
        self.current = current
        var roles = Dictionary(baseline.roles.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        for role in current.roles { roles[role.id] = role }
        self.roles = roles
        self.groupSizes = Dictionary(current.groups.map { ($0.id, $0.memberIds.count) }, uniquingKeysWith: { a, _ in a })
        var groupRoles: [String: [String]] = [:]
        for grant in current.grants where grant.subjectKind == .group { groupRoles[grant.subjectId, default: []].append(grant.roleId) }
        self.groupRoles = groupRoles
    }

    func assess(_ item: inout DriftItem) {
        var severity: Severity = .low
        var escalation = false
        var reasons: [String] = []

        func fromPermissions(_ permissions: [String]) {
            let assessment = policy.assess(permissions) { permission in
                if let known = memo[permission] { return known }
                let risk = policy.risk(of: permission)
                memo[permission] = risk
                return risk
            }
            severity = max(severity, assessment.severity)
            escalation = escalation || assessment.escalation
            reasons += assessment.reasons
        }
        func raise(_ reason: String) {
            severity = severity.raised
            reasons.append(reason)
        }
        func widen(division: EntityRef?, subject: EntityRef) {
            if let division, let reason = policy.held(severity, inDivision: division.id).raisedBecause {
                raise(reason)
            }
            if policy.raiseOAuthClients, subject.kind == .oauthClient, severity < .critical {
                raise("held by an OAuth client: non-human credentials")
            }
        }
        func nameSignal(_ role: EntityRef?) {
            guard let role, severity >= .medium, severity < .critical, let reason = policy.nameSignal(role.name) else { return }
            raise(reason)
        }

        switch item.kind {
        case .permissionsGained:
            severity = .low
            fromPermissions(item.permissionsAdded)
            widen(division: item.division, subject: item.subject)
            nameSignal(item.role)
        case .grantAdded:
            severity = .low
            fromPermissions(item.role.flatMap { roles[$0.id]?.permissions } ?? [])
            widen(division: item.division, subject: item.subject)
            if item.subject.kind == .group, policy.largeGroupMembers > 0, let size = groupSizes[item.subject.id],
                size >= policy.largeGroupMembers, severity < .critical
            {
                raise("granted to a group of \(size) members")
            }
            nameSignal(item.role)
        case .roleModified, .roleRecreated:
            severity = .low
            fromPermissions(item.permissionsAdded)
            if item.kind == .roleRecreated { reasons.append("deleted and created again with a new id") }
            nameSignal(item.subject)
        case .roleCreated:
            severity = .low
            fromPermissions(item.permissionsAdded)
            if severity > .high {
                severity = .high
                reasons.append("not yet granted to anyone")
            }
        case .groupMemberAdded:
            // The member's gains carry the full severity; the membership itself is at most high.
            severity = .low
            fromPermissions((groupRoles[item.subject.id] ?? []).flatMap { roles[$0]?.permissions ?? [] })
            severity = min(severity, .high)
        case .groupRolesEnabledChanged:
            severity = item.after == "true" ? .medium : .low
            reasons.append(item.after == "true" ? "the group can now pass roles to its members" : "the group no longer passes roles on")
        case .userStateChanged:
            severity = item.after == "active" ? .medium : .low
            if item.after == "active" { reasons.append("account reactivated") }
        case .userDivisionMoved:
            severity = .medium
            reasons.append("division membership decides who can manage the user")
        case .oauthClientCreated:
            severity = .medium
            reasons.append("new non-human credentials")
        case .permissionsLost, .grantRemoved, .roleDeleted, .roleRenamed, .userAdded, .userRemoved, .groupCreated,
            .groupDeleted, .groupMemberRemoved, .oauthClientDeleted, .divisionCreated, .divisionDeleted, .divisionRenamed:
            severity = .low
        }
        if escalation {
            severity = .critical
            if !reasons.contains(where: { $0.hasPrefix("escalation") }) {
                reasons.insert("escalation: lets the holder grant itself more access", at: 0)
            }
        }
        item.severity = severity
        item.escalation = escalation
        var unique: [String] = []
        for reason in reasons where !unique.contains(reason) { unique.append(reason) }
        item.reasons = unique
    }
}
