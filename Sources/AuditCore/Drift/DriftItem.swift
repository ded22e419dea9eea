/// How dangerous a change is. Ordered: `.low < .critical`.
public enum Severity: Int, Sendable, Hashable, Comparable, CaseIterable, CustomStringConvertible {
    case low = 1, medium = 2, high = 3, critical = 4

    public init?(name: String) {
        switch name.lowercased() {
        case "low": self = .low
        case "medium": self = .medium
        case "high": self = .high
        case "critical": self = .critical
        default: return nil
        }
    }

    public var name: String {
        switch self {
        case .low: "low"
        case .medium: "medium"
        case .high: "high"
        case .critical: "critical"
        }
    }

    public var description: String { name }

    /// One level up, at most critical.
    public var raised: Severity { Severity(rawValue: min(rawValue + 1, Severity.critical.rawValue))! }

    public static func < (a: Severity, b: Severity) -> Bool { a.rawValue < b.rawValue }
}

/// Something a drift item is about.
public struct EntityRef: Sendable, Hashable {
    public enum Kind: String, Sendable, Hashable {
        case user, group, oauthClient, role, division, trustee, unknown
    }

    public var kind: Kind
    public var id: String
    public var name: String

    public init(_ kind: Kind, _ id: String, _ name: String = "") {
        self.kind = kind
        self.id = id
        self.name = name
    }

    static func kind(of subject: SubjectKind) -> Kind {
        switch subject {
        case .user: .user
        case .group: .group
        case .oauthClient: .oauthClient
        case .trusteeUser, .trusteeGroup: .trustee
        case .other: .unknown
        }
    }
}

/// One difference between the approved baseline and the current state, with a stable fingerprint.
public struct DriftItem: Sendable, Hashable, Identifiable {
    public enum Kind: String, Sendable, Hashable, CaseIterable {
        case userAdded, userRemoved, userStateChanged, userDivisionMoved
        case permissionsGained, permissionsLost
        case roleCreated, roleDeleted, roleRenamed, roleModified, roleRecreated
        case grantAdded, grantRemoved
        case groupCreated, groupDeleted, groupMemberAdded, groupMemberRemoved, groupRolesEnabledChanged
        case oauthClientCreated, oauthClientDeleted
        case divisionCreated, divisionDeleted, divisionRenamed
    }

    public var kind: Kind
    /// Who or what changed: the principal for permission items, the role for role items, …
    public var subject: EntityRef
    public var role: EntityRef?
    /// What the subject had before: the deleted role for `roleRecreated`, the old division for
    /// `userDivisionMoved`.
    public var previous: EntityRef?
    public var division: EntityRef?
    /// For permission items: how the permissions reach (or reached) the principal.
    public var via: EntityRef?
    /// For membership items: the user who joined or left.
    public var member: EntityRef?
    public var permissionsAdded: [String]
    public var permissionsRemoved: [String]
    /// For state, division, name and flag changes.
    public var before: String?
    public var after: String?

    /// Hash of the semantic content (`Fingerprint.of`); the same change always has the same one.
    public var fingerprint: String
    /// The item that caused this one (a grant to a group for each member's gain, say).
    public var causeFingerprint: String?
    public var severity: Severity
    /// The change lets a principal grant itself (or anyone) more access.
    public var escalation: Bool
    /// Why the severity is what it is.
    public var reasons: [String]

    public var id: String { fingerprint }

    public init(
        kind: Kind, subject: EntityRef, role: EntityRef? = nil, previous: EntityRef? = nil, division: EntityRef? = nil,
        via: EntityRef? = nil, member: EntityRef? = nil, permissionsAdded: [String] = [], permissionsRemoved: [String] = [],
        before: String? = nil, after: String? = nil
    ) {
        self.kind = kind
        self.subject = subject
        self.role = role
        self.previous = previous
        self.division = division
        self.via = via
        self.member = member
        self.permissionsAdded = permissionsAdded.sorted()
        self.permissionsRemoved = permissionsRemoved.sorted()
        self.before = before
        self.after = after
        self.fingerprint = ""
        self.causeFingerprint = nil
        self.severity = .low
        self.escalation = false
        self.reasons = []
        self.fingerprint = Fingerprint.of(self)
    }

    /// One line for people.
    public var summary: String {
        let who = subject.name.isEmpty ? subject.id : subject.name
        let roleName = role.map { $0.name.isEmpty ? $0.id : $0.name } ?? ""
        let where_ = division.map { $0.id == allDivisionsID ? "all divisions (*)" : ($0.name.isEmpty ? $0.id : $0.name) } ?? ""
        let path = via.map { $0.kind == .group ? "via group \($0.name.isEmpty ? $0.id : $0.name)" : "directly" } ?? ""
        func list(_ permissions: [String]) -> String {
            permissions.count <= 3
                ? permissions.joined(separator: ", ") : permissions.prefix(3).joined(separator: ", ") + " and \(permissions.count - 3) more"
        }
        switch kind {
        case .userAdded: return "user \(who) added"
        case .userRemoved: return "user \(who) removed"
        case .userStateChanged: return "user \(who) went from \(before ?? "?") to \(after ?? "?")"
        case .userDivisionMoved:
            let from = previous.map { $0.name.isEmpty ? $0.id : $0.name } ?? "?"
            return "user \(who) moved from division \(from) to \(where_)"
        case .permissionsGained: return "\(who) gained \(list(permissionsAdded)) in \(where_) \(path) (role \(roleName))"
        case .permissionsLost: return "\(who) lost \(list(permissionsRemoved)) in \(where_) \(path) (role \(roleName))"
        case .roleCreated: return "role \(who) created with \(permissionsAdded.count) permissions"
        case .roleDeleted: return "role \(who) deleted"
        case .roleRenamed: return "role renamed from \(before ?? "?") to \(after ?? "?")"
        case .roleModified:
            var parts: [String] = []
            if !permissionsAdded.isEmpty { parts.append("+\(list(permissionsAdded))") }
            if !permissionsRemoved.isEmpty { parts.append("-\(list(permissionsRemoved))") }
            if parts.isEmpty { parts.append("policy conditions changed") }
            return "role \(who) modified: \(parts.joined(separator: "; "))"
        case .roleRecreated:
            let old = previous.map { $0.name.isEmpty ? $0.id : $0.name } ?? "?"
            var text = "role \(old) deleted and recreated as \(who)"
            if !permissionsAdded.isEmpty { text += " (+\(list(permissionsAdded)))" }
            if !permissionsRemoved.isEmpty { text += " (-\(list(permissionsRemoved)))" }
            return text
        case .grantAdded: return "\(subject.kind.rawValue) \(who) granted role \(roleName) in \(where_)"
        case .grantRemoved: return "\(subject.kind.rawValue) \(who) no longer holds role \(roleName) in \(where_)"
        case .groupCreated: return "group \(who) created"
        case .groupDeleted: return "group \(who) deleted"
        case .groupMemberAdded: return "\(member.map { $0.name.isEmpty ? $0.id : $0.name } ?? "?") joined group \(who)"
        case .groupMemberRemoved: return "\(member.map { $0.name.isEmpty ? $0.id : $0.name } ?? "?") left group \(who)"
        case .groupRolesEnabledChanged: return "group \(who) rolesEnabled \(before ?? "?") → \(after ?? "?")"
        case .oauthClientCreated: return "OAuth client \(who) created"
        case .oauthClientDeleted: return "OAuth client \(who) deleted"
        case .divisionCreated: return "division \(who) created"
        case .divisionDeleted: return "division \(who) deleted"
        case .divisionRenamed: return "division renamed from \(before ?? "?") to \(after ?? "?")"
        }
    }
}

/// Fingerprints hash what a change *is* — kind, ids, divisions, permissions, before and after — and
/// nothing that can vary between two sightings of it (names, severity, cause, time).
public enum Fingerprint {
    public static func of(_ item: DriftItem) -> String {
        var w = CanonicalJSONWriter(reservingCapacity: 256)
        w.beginObject()
        w.field("added", item.permissionsAdded)
        w.field("after", item.after)
        w.field("before", item.before)
        w.field("division", item.division?.id)
        w.field("kind", item.kind.rawValue)
        w.field("member", item.member?.id)
        w.field("previous", item.previous?.id)
        w.field("removed", item.permissionsRemoved)
        w.field("role", item.role?.id)
        w.field("subject", item.subject.kind.rawValue + ":" + item.subject.id)
        w.field("v", 1)
        w.field("via", item.via.map { $0.kind.rawValue + ":" + $0.id })
        w.endObject()
        return ContentHash.sha256Hex(w.bytes)
    }
}
