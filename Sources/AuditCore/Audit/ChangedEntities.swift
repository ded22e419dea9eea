/// What a run of audit events says changed in the organisation's access model: the entities an
/// incremental collection reads again. Pure: built from events, no I/O.
///
/// Where an event names exactly what changed (a grant's subject, a membership's users) only that
/// is read; where it does not (the real API's property changes are not always filled in), the
/// whole dependent list is: every holder of the role, every member of the group. Events that
/// cannot change a snapshot (an authentication, a regenerated secret, a queue edit) are ignored.
public struct ChangedEntities: Sendable, Equatable {
    /// Roles whose definitions are read again (created, edited, deleted).
    public var roles: Set<String> = []
    /// Roles whose grants changed, with the subjects the events named.
    public var roleSubjects: [String: Set<String>] = [:]
    /// Subject types the grant events gave (`PC_USER`, `PC_GROUP`, `PC_OAUTH_CLIENT`…).
    public var subjectTypes: [String: String] = [:]
    /// Roles whose grant events did not name the subject: all their holders are read again.
    public var rolesWithAllHolders: Set<String> = []
    /// Groups whose definitions are read again.
    public var groups: Set<String> = []
    /// Groups whose membership changed, with the users the events named.
    public var groupMembers: [String: Set<String>] = [:]
    /// Groups whose membership events did not name the users: all members are read again.
    public var groupsWithAllMembers: Set<String> = []
    /// Users read again (created, edited, moved, deleted, or named by a membership change).
    public var users: Set<String> = []
    /// Users the audit log says were deleted: their grants and memberships are read again too.
    public var removedUsers: Set<String> = []
    public var oauthClients: Set<String> = []
    /// A division was created, renamed or deleted: the division list is read again.
    public var divisions = false
    /// A team changed: the team list is read again.
    public var teams = false
    /// The organisation itself changed (its name).
    public var organization = false
    /// Events that named something in the snapshot.
    public var relevantEvents = 0

    public init() {}

    public init(events: some Sequence<AuditEvent>) {
        self.init()
        for event in events { add(event) }
    }

    public var isEmpty: Bool { relevantEvents == 0 }

    /// Entity types whose events change a snapshot, by what they are.
    public static let roleTypes: Set<String> = ["Role"]
    public static let groupTypes: Set<String> = ["DirectoryGroup", "Group"]
    public static let userTypes: Set<String> = ["User"]
    public static let clientTypes: Set<String> = ["OAuthClient"]
    public static let divisionTypes: Set<String> = ["Division"]
    public static let teamTypes: Set<String> = ["Team"]
    public static let organizationTypes: Set<String> = ["Organization"]
    /// Actions that leave the access model as it was.
    static let inertActions: Set<String> = ["Authenticate", "AuthenticationFailed", "SecretRegenerated", "View", "Read", "Export"]

    public mutating func add(_ event: AuditEvent) {
        // A write the API refused changed nothing.
        guard event.status.uppercased() != "FAILURE", !Self.inertActions.contains(event.action), !event.entityId.isEmpty else { return }
        let id = event.entityId
        let type = event.entityType
        if Self.roleTypes.contains(type) {
            relevantEvents += 1
            switch event.action {
            case "MemberAdd", "MemberRemove":
                let subjects = Set(Self.values(event, "subjectId"))
                if subjects.isEmpty {
                    rolesWithAllHolders.insert(id)
                } else {
                    roleSubjects[id, default: []].formUnion(subjects)
                    if let kind = event.change("subjectType")?.newValues.first ?? event.change("subjectType")?.oldValues.first {
                        for subject in subjects { subjectTypes[subject] = kind }
                    }
                }
            case "Create", "Update", "Delete":
                roles.insert(id)
            default:
                roles.insert(id)
                rolesWithAllHolders.insert(id)
            }
        } else if Self.groupTypes.contains(type) {
            relevantEvents += 1
            switch event.action {
            case "MemberAdd", "MemberRemove":
                let named = Set(Self.values(event, "group-membership"))
                if named.isEmpty {
                    groupsWithAllMembers.insert(id)
                } else {
                    groupMembers[id, default: []].formUnion(named)
                    users.formUnion(named)
                }
            default:
                groups.insert(id)
            }
        } else if Self.userTypes.contains(type) {
            relevantEvents += 1
            users.insert(id)
            if event.action == "Delete" { removedUsers.insert(id) }
        } else if Self.clientTypes.contains(type) {
            relevantEvents += 1
            oauthClients.insert(id)
        } else if Self.divisionTypes.contains(type) {
            relevantEvents += 1
            divisions = true
        } else if Self.teamTypes.contains(type) {
            relevantEvents += 1
            teams = true
        } else if Self.organizationTypes.contains(type) {
            relevantEvents += 1
            organization = true
        }
    }

    /// Old and new values of one property, without empties.
    static func values(_ event: AuditEvent, _ property: String) -> [String] {
        guard let change = event.change(property) else { return [] }
        return (change.oldValues + change.newValues).filter { !$0.isEmpty }
    }

    /// One line for logs: what an incremental check will read.
    public var summary: String {
        var parts: [String] = []
        let holders = Set(roleSubjects.keys).union(rolesWithAllHolders)
        if !roles.isEmpty { parts.append("\(roles.count) role\(roles.count == 1 ? "" : "s")") }
        if !holders.isEmpty { parts.append("grants of \(holders.count) role\(holders.count == 1 ? "" : "s")") }
        let groupCount = groups.union(groupMembers.keys).union(groupsWithAllMembers).count
        if groupCount > 0 { parts.append("\(groupCount) group\(groupCount == 1 ? "" : "s")") }
        if !users.isEmpty { parts.append("\(users.count) user\(users.count == 1 ? "" : "s")") }
        if !oauthClients.isEmpty { parts.append("\(oauthClients.count) OAuth client\(oauthClients.count == 1 ? "" : "s")") }
        if divisions { parts.append("divisions") }
        if teams { parts.append("teams") }
        if organization { parts.append("the organisation") }
        return parts.isEmpty ? "nothing" : parts.joined(separator: ", ")
    }
}
