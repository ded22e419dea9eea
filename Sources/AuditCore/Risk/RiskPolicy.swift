import Foundation

/// Maps permissions to severities. Loaded from JSON (`--risk FILE`), with a shipped default
/// (`RiskPolicy.defaultJSON`, printed by `rbacwatch risk default`).
///
/// Patterns match `domain:entity:action` permissions segment by segment with `*` as a wildcard
/// within a segment; a pattern with fewer segments ending in `*` (`integrations:*`) covers the
/// rest. A permission whose action is `*` matches every pattern for its domain and entity, and is
/// at least `wildcardAction` severe. Legacy flat permissions (`admin`) match whole.
public struct RiskPolicy: Sendable, Equatable {
    public struct Rule: Sendable, Equatable {
        public var patterns: [String]
        public var severity: Severity
        /// Holding this permission lets a principal grant itself or others more access.
        public var escalation: Bool
        public var reason: String
    }

    public struct NameSignal: Sendable, Equatable {
        public var pattern: String
        public var reason: String
    }

    public var rules: [Rule]
    /// Severity of a permission no rule matches.
    public var unmatched: Severity
    /// Least severity of a permission whose action is `*`.
    public var wildcardAction: Severity
    /// Raise a grant or gain made in division `*` (every division, present and future) by one level.
    public var raiseAllDivisions: Bool
    /// Raise grants to, and gains of, OAuth clients by one level.
    public var raiseOAuthClients: Bool
    /// Raise a grant to a group with at least this many members by one level (0: never).
    public var largeGroupMembers: Int
    /// Role names that raise an item by one level — only when its permissions already make it at
    /// least medium: a name is a signal, never the reason on its own.
    public var roleNameSignals: [NameSignal]

    public init(
        rules: [Rule], unmatched: Severity = .low, wildcardAction: Severity = .high, raiseAllDivisions: Bool = true,
        raiseOAuthClients: Bool = true, largeGroupMembers: Int = 50, roleNameSignals: [NameSignal] = []
    ) {
        self.rules = rules
        self.unmatched = unmatched
        self.wildcardAction = wildcardAction
        self.raiseAllDivisions = raiseAllDivisions
        self.raiseOAuthClients = raiseOAuthClients
        self.largeGroupMembers = largeGroupMembers
        self.roleNameSignals = roleNameSignals
    }

    // MARK: Assessing permissions

    public struct Assessment: Sendable, Equatable {
        public var severity: Severity
        public var escalation: Bool
        public var reasons: [String]
    }

    /// What one permission weighs under this policy.
    public struct PermissionRisk: Sendable, Equatable {
        public var severity: Severity
        public var escalates: Bool
        public var reason: String?
    }

    public func risk(of permission: String) -> PermissionRisk {
        var best = unmatched
        var why: String?
        var escalates = false
        if permission.hasSuffix(":*") && permission.split(separator: ":").count == 3 {
            best = max(best, wildcardAction)
            why = "every action (*)"
        }
        for rule in rules where rule.patterns.contains(where: { Self.matches(pattern: $0, permission: permission) }) {
            if rule.severity > best || (rule.severity == best && why == nil) {
                best = rule.severity
                why = rule.reason
            }
            escalates = escalates || rule.escalation
        }
        if escalates { best = .critical }
        return PermissionRisk(severity: best, escalates: escalates, reason: why)
    }

    /// Why holding a role in every division weighs more.
    public static let allDivisionsReason = "in every division, present and future (*)"

    /// The severity of holding a role of `roleSeverity` in `divisionId`: one level higher in
    /// every division (`*`) when the policy says so, with that reason. A principal's risk is the
    /// most severe of these over the roles it holds — the same rule for the users pane, the user's
    /// page and drift.
    public func held(_ roleSeverity: Severity, inDivision divisionId: String) -> (severity: Severity, raisedBecause: String?) {
        guard raiseAllDivisions, divisionId == allDivisionsID, roleSeverity < .critical else { return (roleSeverity, nil) }
        return (roleSeverity.raised, Self.allDivisionsReason)
    }

    /// The severity of holding `permissions`: the most severe permission wins.
    public func assess(_ permissions: [String]) -> Assessment {
        assess(permissions, using: risk(of:))
    }

    /// As `assess(_:)`, with the per-permission risk supplied (so a caller can memoise it).
    public func assess(_ permissions: [String], using risk: (String) -> PermissionRisk) -> Assessment {
        var severity: Severity = .low
        var escalation = false
        // reason → (severity, permissions it covers)
        var reasons: [String: (Severity, [String])] = [:]
        for permission in permissions {
            let weight = risk(permission)
            escalation = escalation || weight.escalates
            severity = max(severity, weight.severity)
            if let why = weight.reason, weight.severity >= .medium {
                var entry = reasons[why] ?? (weight.severity, [])
                entry.0 = max(entry.0, weight.severity)
                entry.1.append(permission)
                reasons[why] = entry
            }
        }
        if escalation { severity = .critical }
        let ordered = reasons.sorted { $0.value.0 != $1.value.0 ? $0.value.0 > $1.value.0 : $0.key < $1.key }
        let text = ordered.prefix(4).map { reason, entry -> String in
            let listed = entry.1.sorted()
            let shown = listed.prefix(2).joined(separator: ", ") + (listed.count > 2 ? " +\(listed.count - 2)" : "")
            return "\(shown): \(reason)"
        }
        return Assessment(severity: severity, escalation: escalation, reasons: text)
    }

    /// Whether a role name is one of the signals; nil when not.
    public func nameSignal(_ roleName: String) -> String? {
        roleNameSignals.first { Self.glob($0.pattern.lowercased(), roleName.lowercased()) }?.reason
    }

    // MARK: Matching

    static func matches(pattern: String, permission: String) -> Bool {
        let permissionParts = permission.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        var patternParts = pattern.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        if permissionParts.count == 1 || patternParts.count == 1 && !pattern.hasSuffix("*") {
            return permissionParts.count == 1 && patternParts.count == 1 && glob(pattern, permission)
        }
        if patternParts.count < 3, patternParts.last == "*" {
            patternParts += Array(repeating: "*", count: 3 - patternParts.count)
        }
        guard patternParts.count == 3, permissionParts.count == 3 else { return false }
        for (p, s) in zip(patternParts, permissionParts) where s != "*" {
            if !glob(p, s) { return false }
        }
        return true
    }

    /// `*` matches any run of characters; everything else matches itself.
    static func glob(_ pattern: String, _ text: String) -> Bool {
        Glob.matches(tokens: pattern.utf8.map { $0 == UInt8(ascii: "*") ? nil : $0 }, Array(text.utf8))
    }
}

// MARK: File format

public struct RiskPolicyError: Error, CustomStringConvertible, Equatable {
    public var description: String

    public init(description: String) {
        self.description = description
    }
}

extension RiskPolicy {
    private struct File: Decodable {
        struct RuleFile: Decodable {
            var match: [String]
            var severity: String
            var escalation: Bool?
            var reason: String?
        }
        struct SignalFile: Decodable {
            var pattern: String
            var reason: String?
        }
        var version: Int
        var rules: [RuleFile]
        var unmatched: String?
        var wildcardAction: String?
        var raiseAllDivisions: Bool?
        var raiseOAuthClients: Bool?
        var largeGroupMembers: Int?
        var roleNameSignals: [SignalFile]?
    }

    /// Reads a policy file; the error says what is wrong and where.
    public init(json data: Data) throws(RiskPolicyError) {
        let file: File
        do {
            file = try JSONDecoder().decode(File.self, from: data)
        } catch {
            throw RiskPolicyError(description: "invalid risk policy: \(DecodingErrorText.describe(error))")
        }
        guard file.version == 1 else {
            throw RiskPolicyError(description: "risk policy version \(file.version) is not supported (this rbacwatch reads version 1)")
        }
        func severity(_ name: String?, _ fallback: Severity, _ place: String) throws(RiskPolicyError) -> Severity {
            guard let name else { return fallback }
            guard let value = Severity(name: name) else {
                throw RiskPolicyError(description: "invalid risk policy: \(place) has severity \"\(name)\"; use low, medium, high or critical")
            }
            return value
        }
        var rules: [Rule] = []
        for (index, rule) in file.rules.enumerated() {
            guard !rule.match.isEmpty else {
                throw RiskPolicyError(description: "invalid risk policy: rules[\(index)] matches nothing")
            }
            rules.append(
                Rule(
                    patterns: rule.match, severity: try severity(rule.severity, .low, "rules[\(index)]"),
                    escalation: rule.escalation ?? false, reason: rule.reason ?? rule.match.joined(separator: ", ")))
        }
        self.init(
            rules: rules, unmatched: try severity(file.unmatched, .low, "unmatched"),
            wildcardAction: try severity(file.wildcardAction, .high, "wildcardAction"),
            raiseAllDivisions: file.raiseAllDivisions ?? true, raiseOAuthClients: file.raiseOAuthClients ?? true,
            largeGroupMembers: file.largeGroupMembers ?? 50,
            roleNameSignals: (file.roleNameSignals ?? []).map {
                NameSignal(pattern: $0.pattern, reason: $0.reason ?? "role name matches \($0.pattern)")
            })
    }

    /// The shipped policy.
    public static let standard: RiskPolicy = {
        do {
            return try RiskPolicy(json: Data(defaultJSON.utf8))
        } catch {
            preconditionFailure("the built-in risk policy does not parse: \(error)")
        }
    }()

    /// The shipped policy, as a file users can copy and edit.
    public static let defaultJSON = """
        {
          "version": 1,
          "unmatched": "low",
          "wildcardAction": "high",
          "raiseAllDivisions": true,
          "raiseOAuthClients": true,
          "largeGroupMembers": 50,
          "rules": [
            {"match": ["authorization:grant:add"], "severity": "critical", "escalation": true,
             "reason": "can grant any role, in any division, to anyone including itself"},
            {"match": ["authorization:role:add", "authorization:role:edit"], "severity": "critical", "escalation": true,
             "reason": "can create or widen roles"},
            {"match": ["admin", "directory:organization:admin"], "severity": "critical", "escalation": true,
             "reason": "organisation administrator"},
            {"match": ["sso:provider:add", "sso:provider:edit", "sso:provider:delete"], "severity": "critical", "escalation": true,
             "reason": "can change single sign-on: account takeover"},
            {"match": ["oauth:client:add", "oauth:client:edit"], "severity": "high",
             "reason": "can create or change OAuth clients: non-human credentials"},
            {"match": ["oauth:client:*"], "severity": "medium", "reason": "OAuth client administration"},
            {"match": ["directory:user:add", "directory:user:setPassword"], "severity": "high",
             "reason": "can create accounts or set passwords"},
            {"match": ["directory:user:delete", "directory:user:edit", "directory:group:add", "directory:group:edit", "directory:group:delete"],
             "severity": "medium", "reason": "user and group administration"},
            {"match": ["integrations:*"], "severity": "high",
             "reason": "integrations and data actions reach outside systems and can exfiltrate data"},
            {"match": ["recording:recording:delete", "recording:recording:editRetention", "recording:retentionPolicy:*"],
             "severity": "high", "reason": "can destroy recordings or shorten retention"},
            {"match": ["telephony:trunk:*", "telephony:plugin:all"], "severity": "high",
             "reason": "telephony trunks and edges: toll fraud and call interception"},
            {"match": ["analytics:dataExport:*"], "severity": "high", "reason": "bulk data export"},
            {"match": ["authorization:role:delete", "authorization:grant:delete", "authorization:division:*"],
             "severity": "medium", "reason": "access-control administration"},
            {"match": ["architect:flow:publish", "architect:flow:delete", "routing:queue:delete", "outbound:dnclist:edit"],
             "severity": "medium", "reason": "changes what customers reach"},
            {"match": ["recording:recording:view", "recording:screenRecording:view", "conversation:call:monitor"],
             "severity": "medium", "reason": "access to recorded or live customer conversations"},
            {"match": ["audits:audit:view"], "severity": "low", "reason": "reads the audit trail"}
          ],
          "roleNameSignals": [
            {"pattern": "*admin*", "reason": "the role's name suggests administration"},
            {"pattern": "*security*", "reason": "the role's name suggests security administration"}
          ]
        }
        """
}
