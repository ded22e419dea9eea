import Foundation

/// Who made a drift item happen: the audit events about the same entity, inside the span the
/// comparison covers (from a little before the baseline was collected to a little after the
/// current state was). Permission items are explained through the item that caused them (a
/// grant to a group explains each member's gain).
///
/// An item with no explaining event is *unexplained*: a change the audit log does not show —
/// made outside the API, by a path the feed does not watch, or in a span it did not cover.
public struct ItemAttribution: Sendable, Equatable {
    public enum Status: String, Sendable, Equatable {
        case explained, unexplained
        /// No event yet, and the audit feed has not reached the current collection: an event
        /// may still arrive.
        case pending
    }

    public var status: Status
    /// The explaining events, oldest first (at most `Attribution.maximumEvents`).
    public var events: [AuditEvent]

    /// With `.pending`: how far the audit feed reached.
    public var coveredUntil: Date?

    public init(status: Status, events: [AuditEvent], coveredUntil: Date? = nil) {
        self.status = status
        self.events = events
        self.coveredUntil = coveredUntil
    }

    /// The latest explaining event: who, when, from where.
    public var latest: AuditEvent? { events.last }

    /// "by Ana Admin at 2026-11-22T06:12:56Z via client 9c00… from 203.0.113.7", or "unexplained".
    public var summary: String {
        guard let event = latest else {
            if status == .pending, let coveredUntil {
                return "pending: no audit event yet (the feed reaches \(ISOTimestamp.string(coveredUntil)))"
            }
            return "unexplained: no audit event for this change"
        }
        return Attribution.describe(event) + (events.count > 1 ? " (+\(events.count - 1) more)" : "")
    }
}

/// What the audit feed covered when items were attributed.
public struct AttributionCoverage: Sendable, Equatable {
    /// The span events were looked for in.
    public var from: Date
    public var to: Date
    /// Events that span held.
    public var events: Int
    /// Where those events came from ("the state store", "the audit API and the state store").
    public var source: String

    public init(from: Date, to: Date, events: Int, source: String) {
        self.from = from
        self.to = to
        self.events = events
        self.source = source
    }
}

/// Links drift items to the audit events that explain them.
public enum Attribution {
    /// Events kept per item (the most recent).
    public static let maximumEvents = 5
    /// How far before the baseline's collection an explaining event may lie: a collection takes
    /// time, and an event may land while it walks the organisation.
    public static let leadIn: TimeInterval = 600
    /// How far after the current collection: the same, at the other end.
    public static let trail: TimeInterval = 300

    /// The span to look for events in, for a baseline collected at `baselineAt` (nil: unknown,
    /// the last 30 days) and a current state collected at `currentAt`.
    public static func window(baselineAt: Date?, currentAt: Date) -> (from: Date, to: Date) {
        let from = (baselineAt ?? currentAt.addingTimeInterval(-30 * 86_400)).addingTimeInterval(-leadIn)
        return (from, max(from, currentAt.addingTimeInterval(trail)))
    }

    /// One attribution per item, by fingerprint. Events outside `from...to` are ignored.
    /// `coveredUntil`: how far the events reach; an item without an event is `pending` rather
    /// than `unexplained` while that is short of the current collection (`to - trail`).
    public static func attribute(
        _ items: [DriftItem], events: [AuditEvent], from: Date, to: Date, coveredUntil: Date? = nil
    ) -> [String: ItemAttribution] {
        let complete = coveredUntil.map { $0 >= to.addingTimeInterval(-trail) } ?? true
        let inWindow = events.filter { $0.date >= from && $0.date <= to && $0.status.uppercased() != "FAILURE" }
        var byEntity: [String: [AuditEvent]] = [:]
        for event in inWindow { byEntity[event.entityId, default: []].append(event) }
        for key in byEntity.keys { byEntity[key]!.sort { ($0.date, $0.id) < ($1.date, $1.id) } }
        let byFingerprint = Dictionary(items.map { ($0.fingerprint, $0) }, uniquingKeysWith: { a, _ in a })

        var result: [String: ItemAttribution] = [:]
        func explain(_ item: DriftItem, depth: Int) -> [AuditEvent] {
            var found = matches(item, byEntity)
            // A consequence is explained by its cause (a member's gain by the grant to the group).
            if found.isEmpty, depth < 4, let cause = item.causeFingerprint, let causeItem = byFingerprint[cause] {
                found = explain(causeItem, depth: depth + 1)
            }
            return found
        }
        for item in items {
            var events = explain(item, depth: 0)
            var seen = Set<String>()
            events = events.filter { seen.insert($0.id).inserted }.sorted { ($0.date, $0.id) < ($1.date, $1.id) }
            result[item.fingerprint] = ItemAttribution(
                status: !events.isEmpty ? .explained : complete ? .unexplained : .pending, events: Array(events.suffix(maximumEvents)),
                coveredUntil: complete ? nil : coveredUntil)
        }
        return result
    }

    /// The entities whose events could explain `items` (theirs and their causes'): what to ask
    /// the store for, instead of every event in the window.
    public static func entityIds(_ items: [DriftItem]) -> Set<String> {
        var ids = Set<String>()
        for item in items { for expectation in expectations(item) { ids.insert(expectation.entityId) } }
        return ids
    }

    /// The (service, entity type) pairs whose events explain drift: one audit query each, so a
    /// live fetch does not read every login in the window.
    public static let auditedTypes: [(service: String, entityType: String)] = [
        ("PeoplePermissions", "Role"), ("PeoplePermissions", "OAuthClient"), ("Directory", "User"), ("Groups", "DirectoryGroup"),
    ]

    /// A test on an event: entity types (case-insensitive), actions, and an optional check of
    /// its property changes.
    struct Expectation {
        var entityId: String
        var entityTypes: Set<String>
        var actions: Set<String>
        var check: ((AuditEvent) -> Bool)?

        init(_ entityId: String, _ entityTypes: Set<String>, _ actions: Set<String>, check: ((AuditEvent) -> Bool)? = nil) {
            self.entityId = entityId
            self.entityTypes = entityTypes
            self.actions = actions
            self.check = check
        }
    }

    static let userTypes: Set<String> = ["user"]
    static let roleTypes: Set<String> = ["role"]
    static let groupTypes: Set<String> = ["directorygroup", "group"]
    static let clientTypes: Set<String> = ["oauthclient"]
    static let divisionTypes: Set<String> = ["division", "authorizationdivision"]

    /// Whether an event's property `name` lists `value` among its old (`removed`) or new values.
    static func mentions(_ event: AuditEvent, _ names: [String], _ value: String, removed: Bool) -> Bool? {
        let changes = event.changes.filter { names.contains($0.property) }
        guard !changes.isEmpty else { return nil }  // the event does not say: do not rule it out
        return changes.contains { (removed ? $0.oldValues : $0.newValues).contains(value) }
    }

    /// The events that explain `item` directly.
    static func expectations(_ item: DriftItem) -> [Expectation] {
        let subject = item.subject.id
        switch item.kind {
        case .userAdded: return [Expectation(subject, userTypes, ["Create"])]
        case .userRemoved: return [Expectation(subject, userTypes, ["Delete"])]
        case .userStateChanged: return [Expectation(subject, userTypes, ["Update", "Delete", "Create"])]
        case .userDivisionMoved:
            return [Expectation(subject, userTypes, ["Update"]) { $0.change("divisionId") != nil || $0.changes.isEmpty }]
        case .roleCreated: return [Expectation(subject, roleTypes, ["Create"])]
        case .roleDeleted: return [Expectation(subject, roleTypes, ["Delete"])]
        case .roleRenamed, .roleModified: return [Expectation(subject, roleTypes, ["Update"])]
        case .roleRecreated:
            var expected = [Expectation(subject, roleTypes, ["Create"])]
            if let previous = item.previous { expected.append(Expectation(previous.id, roleTypes, ["Delete"])) }
            return expected
        case .grantAdded, .grantRemoved:
            guard let role = item.role else { return [] }
            let removed = item.kind == .grantRemoved
            var expected = [
                Expectation(role.id, roleTypes, [removed ? "MemberRemove" : "MemberAdd"]) { event in
                    mentions(event, ["subjectId", "userId", "groupId", "clientId", "members"], subject, removed: removed) ?? true
                },
                // The subject's own record of it ("AuthorizationChanged" on the user).
                Expectation(subject, userTypes.union(groupTypes).union(clientTypes), ["AuthorizationChanged", "Update"]) { event in
                    event.action == "AuthorizationChanged" || event.changes.contains { $0.property.lowercased().contains("role") }
                },
            ]
            // Deleting a role takes its grants with it.
            if removed { expected.append(Expectation(role.id, roleTypes, ["Delete"])) }
            return expected
        case .groupCreated: return [Expectation(subject, groupTypes, ["Create"])]
        case .groupDeleted: return [Expectation(subject, groupTypes, ["Delete"])]
        case .groupMemberAdded, .groupMemberRemoved:
            let removed = item.kind == .groupMemberRemoved
            let member = item.member?.id ?? ""
            return [
                Expectation(subject, groupTypes, [removed ? "MemberRemove" : "MemberAdd", "Update"]) { event in
                    mentions(event, ["group-membership", "memberIds", "members"], member, removed: removed) ?? (event.action != "Update")
                }
            ]
        case .groupRolesEnabledChanged: return [Expectation(subject, groupTypes, ["Update"])]
        case .oauthClientCreated: return [Expectation(subject, clientTypes, ["Create"])]
        case .oauthClientDeleted: return [Expectation(subject, clientTypes, ["Delete"])]
        case .divisionCreated: return [Expectation(subject, divisionTypes, ["Create"])]
        case .divisionDeleted: return [Expectation(subject, divisionTypes, ["Delete"])]
        case .divisionRenamed: return [Expectation(subject, divisionTypes, ["Update"])]
        case .permissionsGained, .permissionsLost:
            // Without a cause item: the role's edit, or the grant or membership that carries it.
            var expected: [Expectation] = []
            if let role = item.role {
                expected.append(Expectation(role.id, roleTypes, ["Update", "Create", "Delete"]))
                let removed = item.kind == .permissionsLost
                let holder = item.via?.kind == .group ? item.via!.id : subject
                expected.append(
                    Expectation(role.id, roleTypes, [removed ? "MemberRemove" : "MemberAdd"]) { event in
                        mentions(event, ["subjectId", "userId", "groupId", "clientId", "members"], holder, removed: removed) ?? true
                    })
                if let via = item.via, via.kind == .group {
                    expected.append(
                        Expectation(via.id, groupTypes, [removed ? "MemberRemove" : "MemberAdd"]) { event in
                            mentions(event, ["group-membership", "memberIds", "members"], subject, removed: removed) ?? true
                        })
                }
            }
            return expected
        }
    }

    static func matches(_ item: DriftItem, _ byEntity: [String: [AuditEvent]]) -> [AuditEvent] {
        var found: [AuditEvent] = []
        for expectation in expectations(item) {
            for event in byEntity[expectation.entityId] ?? []
            where expectation.entityTypes.contains(event.entityType.lowercased()) && expectation.actions.contains(event.action)
                && (expectation.check?(event) ?? true)
            {
                found.append(event)
            }
        }
        return found
    }

    /// "by Ana Admin at 2026-11-22T06:12:56Z via client 9c00… from 203.0.113.7"
    public static func describe(_ event: AuditEvent) -> String {
        var text = "\(event.action) by \(TerminalSafe.sanitize(event.actor)) at \(ISOTimestamp.string(event.date))"
        if event.userId != nil, let client = event.clientId, !client.isEmpty { text += " via client \(TerminalSafe.sanitize(client))" }
        if let ip = event.remoteIp.first, !ip.isEmpty { text += " from \(TerminalSafe.sanitize(ip))" }
        return text
    }
}
