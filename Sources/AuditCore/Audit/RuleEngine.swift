import Foundation

/// What a rule found: who did what to which entity, when, why it matters, and whether someone
/// has approved it.
public struct AuditFinding: Sendable, Hashable, Identifiable {
    public enum Status: String, Sendable, Hashable {
        /// Alert: nobody approved this change.
        case open
        /// Matched an active approval: recorded as approved drift, not alerted.
        case approved
    }

    /// Semantic: rule, entity and what changed (not the action: a permission added by a Create
    /// or by a later Update is the same change) (or, for correlation, the rule, the actor
    /// or entity, and the first event) — the same change seen again has the same fingerprint,
    /// so an approval covers it.
    public var fingerprint: String
    public var ruleId: String
    public var title: String
    public var severity: Severity
    public var controls: [String]
    /// The events behind it (one, or a correlation's window), oldest first.
    public var eventIds: [String]
    /// `eventDate` of the event that fired it.
    public var date: Date
    public var serviceName: String
    public var entityType: String
    public var entityId: String
    public var entityName: String
    public var action: String
    public var actor: String
    public var actorId: String?
    public var clientId: String?
    public var remoteIp: [String]
    /// What made the conditions hold (`permissions: authorization:grant:add`).
    public var evidence: [String]
    public var status: Status
    public var approval: Approval?

    public var id: String { fingerprint + ":" + (eventIds.last ?? "") }

    public init(
        fingerprint: String, ruleId: String, title: String, severity: Severity, controls: [String], eventIds: [String], date: Date,
        serviceName: String, entityType: String, entityId: String, entityName: String, action: String, actor: String, actorId: String?,
        clientId: String?, remoteIp: [String], evidence: [String], status: Status, approval: Approval?
    ) {
        self.fingerprint = fingerprint
        self.ruleId = ruleId
        self.title = title
        self.severity = severity
        self.controls = controls
        self.eventIds = eventIds
        self.date = date
        self.serviceName = serviceName
        self.entityType = entityType
        self.entityId = entityId
        self.entityName = entityName
        self.action = action
        self.actor = actor
        self.actorId = actorId
        self.clientId = clientId
        self.remoteIp = remoteIp
        self.evidence = evidence
        self.status = status
        self.approval = approval
    }

    /// One line for people.
    public var summary: String {
        let target = entityName.isEmpty ? entityId : entityName
        var text = "\(title): \(actor) \(action) \(entityType) \(target)"
        if !evidence.isEmpty { text += " (\(evidence.prefix(3).joined(separator: "; "))\(evidence.count > 3 ? "; …" : ""))" }
        return text
    }
}

/// Judges audit events against rules, in `eventDate` order (the reorder buffer sees to it).
/// Stateful for throttling and correlation; its clock is the events' own dates, so replaying
/// the same events gives the same findings.
public struct RuleEngine: Sendable {
    public let rules: [AuditRule]
    /// The rules by the services they name: an event is tried against its service's rules only.
    private let index: RuleIndex
    /// Last time each (rule, key) fired.
    private var fired: [String: Date] = [:]
    /// Per (rule, actor): recent matching events.
    private var bursts: [String: [(date: Date, id: String)]] = [:]
    /// Per (rule, entity, value): recent signed changes.
    private var flaps: [String: [(date: Date, sign: Int, id: String)]] = [:]
    public private(set) var statistics = Statistics()
    /// How far back the state must reach (the longest throttle or window), the newest event
    /// date seen, and events since the state was last pruned: state older than the memory is
    /// dropped every few thousand events, so a feed of ever-new entities and actors cannot grow
    /// it without end.
    private let memory: TimeInterval
    private var previous = Date.distantPast
    private var sincePrune = 0

    public struct Statistics: Sendable, Equatable {
        public var events = 0
        public var matched = 0
        public var excused = 0
        public var throttled = 0
        public var findings = 0
    }

    public init(rules: RuleSet) {
        self.init(rules: rules.rules)
    }

    public init(rules: [AuditRule]) {
        self.rules = rules.filter(\.enabled)
        self.index = RuleIndex(self.rules)
        self.memory = RuleSet(rules: rules).memorySeconds
    }

    /// Entries of the engine's memory, for tests of its bound.
    public var stateSize: Int { fired.count + bursts.count + flaps.count }

    /// Drops throttles and correlation state older than the rules' memory, as seen from `newest`.
    mutating func prune(from newest: Date) {
        sincePrune = 0
        fired = fired.filter { newest.timeIntervalSince($0.value) < memory }
        bursts = bursts.filter { entry in entry.value.last.map { newest.timeIntervalSince($0.date) < memory } ?? false }
        flaps = flaps.filter { entry in entry.value.last.map { newest.timeIntervalSince($0.date) < memory } ?? false }
    }

    /// The findings `event` gives rise to (approvals not yet applied: status `.open`).
    public mutating func judge(_ event: AuditEvent) -> [AuditFinding] {
        statistics.events += 1
        sincePrune += 1
        // Pruned from an ordinary event's date, never from one that jumps ahead (a future-dated
        // event would make everything look old).
        if sincePrune >= 4096, event.date.timeIntervalSince(previous) < 3600 { prune(from: event.date) }
        previous = event.date
        var findings: [AuditFinding] = []
        let index = self.index
        for position in index.candidates(service: event.serviceName) {
            let box = index.boxes[position]
            guard box.rule.match.matches(event) else { continue }
            let rule = box
            var evidence: [String] = []
            var holds = true
            for condition in rule.conditions {
                let (ok, hits) = condition.evaluate(event)
                if !ok {
                    holds = false
                    break
                }
                evidence += hits
            }
            guard holds else { continue }
            statistics.matched += 1
            if rule.exceptions.contains(where: { $0.excuses(event) }) {
                statistics.excused += 1
                continue
            }
            var eventIds = [event.id]
            var throttleKey = rule.id + "\u{1}" + event.entityType + "\u{1}" + event.entityId
            var fingerprintParts = [event.entityType, event.entityId] + evidence.sorted()
            switch rule.correlation {
            case nil: break
            case .burst(let count, let window)?:
                let key = rule.id + "\u{1}" + event.actorKey
                var recent = bursts[key, default: []].filter { abs(event.date.timeIntervalSince($0.date)) < window }
                recent.append((event.date, event.id))
                guard recent.count >= count else {
                    bursts[key] = recent
                    continue
                }
                bursts[key] = []
                eventIds = recent.map(\.id)
                throttleKey = key
                fingerprintParts = ["burst", event.actorKey, recent[0].id]
                evidence = ["\(recent.count) events by \(event.actor) within \(Int(window))s"] + evidence.prefix(3)
            case .flapping(let flips, let window)?:
                var fire: (value: String, events: [String])?
                for change in event.changes {
                    for (values, sign) in [(change.added, 1), (change.removed, -1)] {
                        for value in values {
                            let key = rule.id + "\u{1}" + event.entityId + "\u{1}" + change.property + "\u{1}" + value
                            var recent = flaps[key, default: []].filter { abs(event.date.timeIntervalSince($0.date)) < window }
                            recent.append((event.date, sign, event.id))
                            let changes = zip(recent, recent.dropFirst()).filter { $0.sign != $1.sign }.count
                            if changes >= flips {
                                fire = ("\(change.property) \(value)", recent.map(\.id))
                                flaps[key] = []
                            } else {
                                flaps[key] = recent
                            }
                        }
                    }
                }
                guard let fire else { continue }
                eventIds = fire.events
                fingerprintParts = ["flapping", event.entityId, fire.value, fire.events[0]]
                evidence = ["\(fire.value) flipped \(fire.events.count - 1) times within \(Int(window))s"]
            }
            if let throttle = rule.throttleSeconds, let last = fired[throttleKey], event.date.timeIntervalSince(last) < throttle, event.date >= last {
                statistics.throttled += 1
                continue
            }
            fired[throttleKey] = event.date
            statistics.findings += 1
            findings.append(
                AuditFinding(
                    fingerprint: Self.fingerprint(rule: rule.id, parts: fingerprintParts), ruleId: rule.id, title: rule.title,
                    severity: rule.severity, controls: rule.controls, eventIds: eventIds, date: event.date, serviceName: event.serviceName,
                    entityType: event.entityType, entityId: event.entityId, entityName: event.entityName, action: event.action,
                    actor: event.actor, actorId: event.userId, clientId: event.clientId, remoteIp: event.remoteIp, evidence: evidence,
                    status: .open, approval: nil))
        }
        return findings
    }

    static func fingerprint(rule: String, parts: [String]) -> String {
        var w = CanonicalJSONWriter(reservingCapacity: 256)
        w.beginObject()
        w.field("parts", parts)
        w.field("rule", rule)
        w.field("v", 1)
        w.endObject()
        return ContentHash.sha256Hex(w.bytes)
    }

    /// Applies approvals: a finding whose fingerprint has an active approval at `now` is approved.
    public static func applyApprovals(_ findings: [AuditFinding], approvals: [Approval], now: Date) -> [AuditFinding] {
        var latest: [String: Approval] = [:]
        for approval in approvals where approval.revokedAt == nil && approval.status(at: now) == .active {
            if let existing = latest[approval.fingerprint], existing.createdAt > approval.createdAt { continue }
            latest[approval.fingerprint] = approval
        }
        return findings.map { finding in
            var finding = finding
            if let approval = latest[finding.fingerprint] {
                finding.status = .approved
                finding.approval = approval
            }
            return finding
        }
    }
}

/// The enabled rules, each in a box of its own (a rule handed around is then one reference),
/// with which rules each service's events can match: a rule naming its services by exact name
/// (no `*`) is tried only on their events; one naming none, or a pattern, on every event. The
/// lists keep the rules' order, so findings come out as before.
final class RuleIndex: Sendable {
    final class Box: Sendable {
        let rule: AuditRule
        // The fields `judge` reads, at hand.
        var id: String { rule.id }
        var conditions: [AuditRule.Condition] { rule.conditions }
        var exceptions: [AuditRule.Exception] { rule.exceptions }
        var correlation: AuditRule.Correlation? { rule.correlation }
        var throttleSeconds: Double? { rule.throttleSeconds }
        var title: String { rule.title }
        var severity: Severity { rule.severity }
        var controls: [String] { rule.controls }
        init(_ rule: AuditRule) { self.rule = rule }
    }

    let boxes: [Box]
    /// Rules that may match any service.
    let always: [Int]
    /// By lower-cased service name: the rules naming it, merged with `always`, in order.
    let byService: [[UInt8]: [Int]]

    init(_ rules: [AuditRule]) {
        boxes = rules.map(Box.init)
        var always: [Int] = []
        var named: [[UInt8]: [Int]] = [:]
        for (position, rule) in rules.enumerated() {
            let literals = rule.match.services.compiled.compactMap { pattern -> [UInt8]? in
                if case .literal(let bytes) = pattern { return bytes }
                return nil
            }
            if rule.match.services.isEmpty || literals.count != rule.match.services.compiled.count {
                always.append(position)
            } else {
                for service in Set(literals) { named[service, default: []].append(position) }
            }
        }
        self.always = always
        byService = named.mapValues { ($0 + always).sorted() }
    }

    /// The positions of the rules an event of `service` can match, in order.
    func candidates(service: String) -> [Int] {
        if byService.isEmpty { return always }
        return byService[Patterns.lowercased(service)] ?? always
    }
}
