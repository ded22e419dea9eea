import Foundation

/// A rule: what audit events it matches, what must hold of them, who is excepted, how often it
/// may fire, and (for correlation rules) how many events make a finding. Rules are data: JSON
/// files, the shipped defaults (`rbacwatch rules default`) plus the user's rule directories.
public struct AuditRule: Sendable, Hashable, Identifiable {
    public var id: String
    public var title: String
    public var description: String
    public var severity: Severity
    /// Control references, e.g. `CIS 5.1`, `NIST AC-6(1)`, `SOC2 CC6.3`.
    public var controls: [String]
    public var match: Match
    /// All must hold.
    public var conditions: [Condition]
    /// Any one excuses the event.
    public var exceptions: [Exception]
    /// At most one finding per rule and entity within this many seconds (nil: no throttling).
    public var throttleSeconds: Double?
    public var correlation: Correlation?
    /// Where it came from: `default`, or a file path.
    public var source: String
    public var enabled: Bool

    /// Patterns (`*` wildcards, case-insensitive); an empty list matches anything.
    public struct Match: Sendable, Hashable {
        public var services: Patterns = []
        public var entityTypes: Patterns = []
        public var actions: Patterns = []
        /// The event's `status`: SUCCESS unless asked (failures change nothing).
        public var statuses: Patterns = ["SUCCESS"]
        public init() {}
    }

    /// One test of an event.
    public struct Condition: Sendable, Hashable {
        public enum Test: Sendable, Hashable {
            /// A property change whose name matches exists.
            case changed
            /// Some value added (in newValues, not oldValues) matches a pattern.
            case added(Patterns)
            /// Some value removed matches a pattern.
            case removed(Patterns)
            /// Some new value matches a pattern.
            case newValue(Patterns)
            /// Some old value matches a pattern.
            case oldValue(Patterns)
            /// Some new value matches none of the patterns (an allowlist).
            case newValueOutside(Patterns)
            /// An event field (`entityName`, `actor`, `clientId`, `remoteIp`, `level`) matches.
            case field(String, Patterns)
        }

        /// Property name patterns, any of which may match (ignored by `.field`).
        public var property: Patterns
        public var test: Test
        public init(property: Patterns, test: Test) {
            self.property = property
            self.test = test
        }
    }

    /// Events this rule does not judge: by actor (user id or name), OAuth client, entity (id or
    /// name), remote address (exact or `a.b.c.*`). All given lists must match (an AND of ORs).
    public struct Exception: Sendable, Hashable {
        public var actors: Patterns = []
        public var clients: Patterns = []
        public var entities: Patterns = []
        public var remoteIps: Patterns = []
        public var reason: String?
        public init() {}
    }

    public enum Correlation: Sendable, Hashable {
        /// `count` matching events by one actor within `windowSeconds`.
        case burst(count: Int, windowSeconds: Double)
        /// The same entity changed back and forth: a value added then removed (or the reverse)
        /// at least `flips` times within `windowSeconds`.
        case flapping(flips: Int, windowSeconds: Double)
    }

    public init(
        id: String, title: String, description: String = "", severity: Severity, controls: [String] = [], match: Match = Match(),
        conditions: [Condition] = [], exceptions: [Exception] = [], throttleSeconds: Double? = nil, correlation: Correlation? = nil,
        source: String = "default", enabled: Bool = true
    ) {
        self.id = id
        self.title = title
        self.description = description
        self.severity = severity
        self.controls = controls
        self.match = match
        self.conditions = conditions
        self.exceptions = exceptions
        self.throttleSeconds = throttleSeconds
        self.correlation = correlation
        self.source = source
        self.enabled = enabled
    }
}

extension AuditRule {
    /// What a rule file may say: throttles up to 30 days, correlation windows up to 7 days, a
    /// burst or flapping count up to 10,000 (the engine keeps that many events per actor).
    public static let throttleRange: ClosedRange<Double> = 1...(30 * 86_400)
    public static let windowRange: ClosedRange<Double> = 1...(7 * 86_400)
    public static let correlationCountRange: ClosedRange<Int> = 2...10_000
}

public struct RuleError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ description: String) { self.description = description }
}

// MARK: Matching

public enum Glob {
    /// `*` matches any run of characters, `\*` a literal star; case-insensitive.
    public static func matches(_ pattern: String, _ text: String) -> Bool {
        Patterns([pattern]).matches(text)
    }

    /// The matcher under every glob here: `nil` tokens are wildcards (any run of bytes).
    static func matches(tokens p: [UInt8?], _ t: [UInt8]) -> Bool {
        var pi = 0
        var ti = 0
        var star = -1
        var mark = 0
        while ti < t.count {
            if pi < p.count, let byte = p[pi], byte == t[ti] {
                pi += 1
                ti += 1
            } else if pi < p.count, p[pi] == nil {
                star = pi
                mark = ti
                pi += 1
            } else if star >= 0 {
                pi = star + 1
                mark += 1
                ti = mark
            } else {
                return false
            }
        }
        while pi < p.count, p[pi] == nil { pi += 1 }
        return pi == p.count
    }

    public static func any(_ patterns: [String], _ text: String) -> Bool {
        Patterns(patterns).matches(text)
    }
}

/// Glob patterns compiled once (lower-cased bytes, wildcards marked), matched against text
/// lower-cased once per test: the rule engine runs them for every rule and every event.
public struct Patterns: Sendable, Hashable, RandomAccessCollection, ExpressibleByArrayLiteral {
    enum Compiled: Sendable, Hashable {
        case any
        case literal([UInt8])
        case glob([UInt8?])
    }

    public let texts: [String]
    let compiled: [Compiled]

    public init(_ texts: [String]) {
        self.texts = texts
        compiled = texts.map { pattern in
            if pattern == "*" { return .any }
            var tokens: [UInt8?] = []
            var escaped = false
            var wild = false
            for byte in Patterns.lowercased(pattern) {
                if escaped {
                    tokens.append(byte)
                    escaped = false
                } else if byte == UInt8(ascii: "\\") {
                    escaped = true
                } else if byte == UInt8(ascii: "*") {
                    tokens.append(nil)
                    wild = true
                } else {
                    tokens.append(byte)
                }
            }
            return wild ? .glob(tokens) : .literal(tokens.map { $0! })
        }
    }

    public init(arrayLiteral elements: String...) { self.init(elements) }

    public var startIndex: Int { texts.startIndex }
    public var endIndex: Int { texts.endIndex }
    public subscript(position: Int) -> String { texts[position] }

    /// Whether any pattern matches `text` (case-insensitive).
    public func matches(_ text: String) -> Bool {
        guard !compiled.isEmpty else { return false }
        var lowered: [UInt8]?
        for pattern in compiled {
            switch pattern {
            case .any: return true
            case .literal(let bytes):
                // ASCII text is compared as it stands, lower-cased byte by byte.
                if lowered == nil, let equal = Patterns.equalsLowered(text, bytes) {
                    if equal { return true }
                    continue
                }
                if lowered == nil { lowered = Patterns.lowercased(text) }
                if bytes == lowered! { return true }
            case .glob(let tokens):
                if lowered == nil { lowered = Patterns.lowercased(text) }
                if Glob.matches(tokens: tokens, lowered!) { return true }
            }
        }
        return false
    }

    /// Whether `text` lower-cased is `pattern`, decided without allocating; nil when that needs
    /// Unicode case rules (a byte past ASCII before the first difference).
    static func equalsLowered(_ text: String, _ pattern: [UInt8]) -> Bool? {
        var text = text
        return text.withUTF8 { buffer -> Bool? in
            let common = Swift.min(buffer.count, pattern.count)
            for index in 0..<common {
                var byte = buffer[index]
                if byte >= 0x80 { return nil }
                if byte >= 0x41 && byte <= 0x5A { byte |= 0x20 }
                if byte != pattern[index] { return false }
            }
            if buffer.count == pattern.count { return true }
            // Equal so far and of different lengths: unequal, unless Unicode lower-casing of
            // what follows could change the length.
            for index in common..<buffer.count where buffer[index] >= 0x80 { return nil }
            return false
        }
    }

    /// Lower-cased UTF-8: byte arithmetic for ASCII, Unicode rules otherwise.
    static func lowercased(_ text: String) -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        for byte in text.utf8 {
            if byte >= 0x80 { return Array(text.lowercased().utf8) }
            bytes.append(byte >= 0x41 && byte <= 0x5A ? byte | 0x20 : byte)
        }
        return bytes
    }

    public static func == (a: Patterns, b: Patterns) -> Bool { a.texts == b.texts }
    public func hash(into hasher: inout Hasher) { hasher.combine(texts) }
}

extension AuditRule.Match {
    public func matches(_ event: AuditEvent) -> Bool {
        (services.isEmpty || services.matches(event.serviceName))
            && (entityTypes.isEmpty || entityTypes.matches(event.entityType))
            && (actions.isEmpty || actions.matches(event.action))
            && (statuses.isEmpty || statuses.matches(event.status))
    }
}

extension AuditRule.Condition {
    /// Whether it holds, and the values that made it hold (for the finding's evidence).
    public func evaluate(_ event: AuditEvent) -> (holds: Bool, evidence: [String]) {
        if case .field(let name, let patterns) = test {
            let values: [String] =
                switch name {
                case "entityName": [event.entityName]
                case "entityId": [event.entityId]
                case "actor": [event.userId, event.userName].compactMap { $0 }
                case "clientId": event.clientId.map { [$0] } ?? []
                case "remoteIp": event.remoteIp
                case "level": [event.level]
                case "status": [event.status]
                default: []
                }
            let hits = values.filter { patterns.matches($0) }
            return (!hits.isEmpty, hits)
        }
        var evidence: [String] = []
        var holds = false
        for change in event.changes where property.matches(change.property) {
            let hits: [String]
            switch test {
            case .changed: hits = [change.property]
            case .added(let patterns): hits = change.added.filter { patterns.matches($0) }
            case .removed(let patterns): hits = change.removed.filter { patterns.matches($0) }
            case .newValue(let patterns): hits = change.newValues.filter { patterns.matches($0) }
            case .oldValue(let patterns): hits = change.oldValues.filter { patterns.matches($0) }
            case .newValueOutside(let patterns): hits = change.newValues.filter { !$0.isEmpty && !patterns.matches($0) }
            case .field: hits = []
            }
            if !hits.isEmpty {
                holds = true
                evidence += hits.map { "\(change.property): \($0)" }
            }
        }
        return (holds, evidence)
    }
}

extension AuditRule.Exception {
    public func excuses(_ event: AuditEvent) -> Bool {
        if actors.isEmpty && clients.isEmpty && entities.isEmpty && remoteIps.isEmpty { return false }
        if !actors.isEmpty && !([event.userId, event.userName].compactMap { $0 }.contains { actors.matches($0) }) { return false }
        if !clients.isEmpty && !(event.clientId.map { clients.matches($0) } ?? false) { return false }
        if !entities.isEmpty && !(entities.matches(event.entityId) || entities.matches(event.entityName)) { return false }
        if !remoteIps.isEmpty && !event.remoteIp.contains(where: { remoteIps.matches($0) }) { return false }
        return true
    }
}

// MARK: Reading rule files

extension AuditRule {
    /// Reads a rule file: one rule object, an array of them, or `{"rules": [...]}`.
    public static func parseFile(_ data: Data, source: String) throws -> [AuditRule] {
        let object: Any
        do {
            object = try JSONSerialization.jsonObject(with: data)
        } catch {
            throw RuleError("\(source): not valid JSON (\((error as NSError).userInfo[NSDebugDescriptionErrorKey] as? String ?? "parse error"))")
        }
        let list: [Any]
        if let array = object as? [Any] {
            list = array
        } else if let dict = object as? [String: Any], let rules = dict["rules"] as? [Any] {
            list = rules
        } else if object is [String: Any] {
            list = [object]
        } else {
            throw RuleError("\(source): expected a rule object, an array of rules or {\"rules\": [...]}")
        }
        return try list.enumerated().map { index, item in
            guard let dict = item as? [String: Any] else { throw RuleError("\(source): rule \(index + 1) is not an object") }
            return try AuditRule(json: dict, source: source)
        }
    }

    static let knownKeys: Set<String> = [
        "id", "title", "description", "severity", "controls", "match", "conditions", "exceptions", "throttle", "correlation", "enabled",
    ]

    init(json: [String: Any], source: String) throws {
        guard let id = json["id"] as? String, !id.isEmpty, id.allSatisfy({ $0.isLetter || $0.isNumber || "-_.".contains($0) }) else {
            throw RuleError("\(source): every rule needs an \"id\" of letters, digits, '-', '_' or '.'")
        }
        func fail(_ text: String) -> RuleError { RuleError("\(source): rule \(id): \(text)") }
        if let unknown = json.keys.first(where: { !Self.knownKeys.contains($0) }) {
            throw fail("unknown key \"\(unknown)\" (known: \(Self.knownKeys.sorted().joined(separator: ", ")))")
        }
        guard let title = json["title"] as? String, !title.isEmpty else { throw fail("\"title\" is required") }
        guard let severityName = json["severity"] as? String, let severity = Severity(name: severityName) else {
            throw fail("\"severity\" must be low, medium, high or critical")
        }
        func strings(_ value: Any?, _ what: String) throws -> Patterns {
            guard let value else { return [] }
            if let one = value as? String { return [one] }
            guard let list = value as? [String] else { throw fail("\(what) must be a string or a list of strings") }
            return Patterns(list)
        }
        var match = Match()
        if let m = json["match"] {
            guard let m = m as? [String: Any] else { throw fail("\"match\" must be an object") }
            for key in m.keys where !["service", "entityType", "action", "status"].contains(key) {
                throw fail("unknown match key \"\(key)\" (known: action, entityType, service, status)")
            }
            match.services = try strings(m["service"], "match.service")
            match.entityTypes = try strings(m["entityType"], "match.entityType")
            match.actions = try strings(m["action"], "match.action")
            if m["status"] != nil { match.statuses = try strings(m["status"], "match.status") }
        }
        var conditions: [Condition] = []
        if let list = json["conditions"] {
            guard let list = list as? [[String: Any]] else { throw fail("\"conditions\" must be a list of objects") }
            for c in list {
                if let field = c["field"] as? String {
                    let known = ["entityName", "entityId", "actor", "clientId", "remoteIp", "level", "status"]
                    guard known.contains(field) else { throw fail("condition field \"\(field)\" is not one of \(known.joined(separator: ", "))") }
                    conditions.append(Condition(property: [], test: .field(field, try strings(c["matches"], "matches"))))
                    continue
                }
                let property = try strings(c["property"], "condition.property")
                guard !property.isEmpty else { throw fail("each condition needs \"property\" (or \"field\")") }
                if let unknown = c.keys.first(where: { !["property", "added", "removed", "newValue", "oldValue", "newValueOutside"].contains($0) }) {
                    throw fail("unknown condition key \"\(unknown)\"")
                }
                let tests: [(String, (Patterns) -> Condition.Test)] = [
                    ("added", { .added($0) }), ("removed", { .removed($0) }), ("newValue", { .newValue($0) }),
                    ("oldValue", { .oldValue($0) }), ("newValueOutside", { .newValueOutside($0) }),
                ]
                var found = false
                for (key, make) in tests where c[key] != nil {
                    conditions.append(Condition(property: property, test: make(try strings(c[key], key))))
                    found = true
                }
                if !found { conditions.append(Condition(property: property, test: .changed)) }
            }
        }
        var exceptions: [Exception] = []
        if let list = json["exceptions"] {
            guard let list = list as? [[String: Any]] else { throw fail("\"exceptions\" must be a list of objects") }
            for e in list {
                var exception = Exception()
                exception.actors = try strings(e["actor"], "exception.actor")
                exception.clients = try strings(e["client"], "exception.client")
                exception.entities = try strings(e["entity"], "exception.entity")
                exception.remoteIps = try strings(e["remoteIp"], "exception.remoteIp")
                exception.reason = e["reason"] as? String
                if exception.actors.isEmpty && exception.clients.isEmpty && exception.entities.isEmpty && exception.remoteIps.isEmpty {
                    throw fail("an exception needs actor, client, entity or remoteIp")
                }
                exceptions.append(exception)
            }
        }
        var throttle: Double?
        if let t = json["throttle"] {
            guard let text = t as? String, let seconds = DurationText.seconds(text, range: AuditRule.throttleRange) else {
                throw fail("\"throttle\" must be a duration such as 90s, 10m, 1h, \(DurationText.describe(AuditRule.throttleRange))")
            }
            throttle = seconds
        }
        var correlation: Correlation?
        if let c = json["correlation"] {
            guard let c = c as? [String: Any], let type = c["type"] as? String else { throw fail("\"correlation\" needs a \"type\" (burst or flapping)") }
            guard let windowText = c["window"] as? String, let window = DurationText.seconds(windowText, range: AuditRule.windowRange) else {
                throw fail("correlation needs a \"window\" such as 5m, \(DurationText.describe(AuditRule.windowRange))")
            }
            switch type {
            case "burst":
                guard let count = c["count"] as? Int, AuditRule.correlationCountRange.contains(count) else {
                    throw fail("a burst needs a \"count\" from 2 to \(AuditRule.correlationCountRange.upperBound)")
                }
                correlation = .burst(count: count, windowSeconds: window)
            case "flapping":
                guard let flips = c["flips"] as? Int, AuditRule.correlationCountRange.contains(flips) else {
                    throw fail("flapping needs \"flips\" from 2 to \(AuditRule.correlationCountRange.upperBound)")
                }
                correlation = .flapping(flips: flips, windowSeconds: window)
            default: throw fail("correlation type \"\(type)\" is not burst or flapping")
            }
        }
        self.init(
            id: id, title: title, description: json["description"] as? String ?? "", severity: severity,
            controls: try strings(json["controls"], "controls").texts, match: match, conditions: conditions, exceptions: exceptions,
            throttleSeconds: throttle, correlation: correlation, source: source, enabled: json["enabled"] as? Bool ?? true)
    }
}

/// The rules in force: the defaults, then more rules merged in order; a rule with an id already
/// loaded replaces it (so a user can retune or disable a default). Reading rule files is the
/// edge's (`RuleFiles` in AuditCLI): this stays pure.
public struct RuleSet: Sendable {
    public private(set) var rules: [AuditRule]

    public init(rules: [AuditRule]) {
        self.rules = rules
    }

    public static func defaults() -> RuleSet {
        // The shipped file is tested to parse; a failure here is a build defect.
        RuleSet(rules: try! AuditRule.parseFile(Data(DefaultRules.json.utf8), source: "default"))
    }

    public mutating func merge(_ more: [AuditRule]) {
        for rule in more {
            if let index = rules.firstIndex(where: { $0.id == rule.id }) {
                rules[index] = rule
            } else {
                rules.append(rule)
            }
        }
    }

    public var enabled: [AuditRule] { rules.filter(\.enabled) }

    /// How far back the engine's state reaches: the longest throttle or correlation window of
    /// the enabled rules (what a restarted engine must replay to decide as before).
    public var memorySeconds: Double {
        enabled.reduce(0) { longest, rule in
            var window = rule.throttleSeconds ?? 0
            switch rule.correlation {
            case .burst(_, let seconds)?, .flapping(_, let seconds)?: window = max(window, seconds)
            case nil: break
            }
            return max(longest, window)
        }
    }

    /// The services the enabled rules look at (`*` when one matches any service).
    public var services: [String] {
        var names = Set<String>()
        for rule in enabled {
            if rule.match.services.isEmpty { return ["*"] }
            names.formUnion(rule.match.services)
        }
        return names.sorted()
    }
}
