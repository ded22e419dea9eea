import AuditCore
import Foundation
import TerminalUI

/// The hand-written readers of outside input, each with seeds to start from. A reader may throw
/// (bad input is expected); it must never trap, hang or run away with memory.
enum Readers {
    struct Reader: Sendable {
        var name: String
        var about: String
        var seeds: @Sendable () -> [[UInt8]]
        var read: @Sendable ([UInt8]) -> Void
    }

    static let all: [Reader] = [snapshot, auditEvents, rules, risk, themes, timestamps]

    static func named(_ name: String) -> Reader? { all.first { $0.name == name } }

    static let snapshot = Reader(
        name: "snapshot", about: "rbacwatch.snapshot/1 files (Snapshot(canonicalBytes:))",
        seeds: { [Seeds.snapshot().canonicalJSON(), Array(#"{"schema":"rbacwatch.snapshot/1"}"#.utf8)] },
        read: { bytes in
            if let snapshot = try? Snapshot(canonicalBytes: bytes) {
                // What is read must write back and read again equal.
                let again = try? Snapshot(canonicalBytes: snapshot.canonicalJSON())
                precondition(again == snapshot, "a snapshot that reads does not round-trip")
            }
        })

    static let auditEvents = Reader(
        name: "audit-events", about: "AuditLogMessages: one event, a JSON array, an audit query page",
        seeds: { Seeds.events().map { $0.canonicalJSON() } + [Seeds.page()] },
        read: { bytes in
            if let event = try? AuditEvent.parse(bytes) {
                let again = try? AuditEvent.parse(event.canonicalJSON())
                precondition(again == event, "an event that reads does not round-trip")
            }
            _ = try? AuditEvent.parseArray(bytes)
            if let page = try? AuditQueryPage.parse(bytes) {
                for record in page.unreadable { _ = record.preview() }
            }
        })

    static let rules = Reader(
        name: "rules", about: "rule files (AuditRule.parseFile)",
        seeds: { [Array(DefaultRules.json.utf8)] },
        read: { bytes in
            if let rules = try? AuditRule.parseFile(Data(bytes), source: "fuzz.json") {
                var engine = RuleEngine(rules: rules)
                for event in Seeds.events() { _ = engine.judge(event) }
                _ = RuleSet(rules: rules).memorySeconds
            }
        })

    static let risk = Reader(
        name: "risk", about: "risk policies (RiskPolicy(json:))",
        seeds: { [Array(RiskPolicy.defaultJSON.utf8)] },
        read: { bytes in
            if let policy = try? RiskPolicy(json: Data(bytes)) {
                _ = policy.assess(["authorization:grant:add", "routing:queue:view", "admin", "*:*:*", "a:b:*"])
            }
        })

    static let themes = Reader(
        name: "themes", about: "theme files (Theme(json:))",
        seeds: { Theme.builtInSources.map { Array($0.utf8) } },
        read: { bytes in
            if let theme = try? Theme(json: bytes) {
                for depth in [ColorDepth.none, .ansi16, .xterm256, .truecolor] {
                    for role in ThemeRole.allCases { _ = theme.adapted(to: depth).style(role) }
                }
            }
        })

    static let timestamps = Reader(
        name: "timestamps", about: "ISO-8601 times, durations and numbers from outside",
        seeds: {
            ["2024-06-01T00:12:56Z", "2024-06-01T00:12:56.123Z", "2024-06-01T00:12:56+02:00", "9999-12-31T23:59:59.999Z", "72h", "1e300d", "inf", "12"]
                .map { Array($0.utf8) }
        },
        read: { bytes in
            let text = String(decoding: bytes, as: UTF8.self)
            if let ms = ISOTimestamp.milliseconds(text) {
                let written = ISOTimestamp.string(epochMilliseconds: ms)
                precondition(ISOTimestamp.milliseconds(written) == ms, "a time that reads does not round-trip: \(written)")
            }
            if let seconds = DurationText.seconds(text, bareUnit: 3600, range: 0...Double.greatestFiniteMagnitude) {
                _ = Bounded.duration(seconds: seconds, clampedTo: 0...86_400)
                _ = DurationText.format(seconds)
            }
            if let number = Bounded.number(text) { _ = Bounded.duration(seconds: number, clampedTo: 0...300) }
            _ = Approval.lifetime(parsing: text)
            _ = TerminalSafe.sanitize(text)
            _ = TerminalSafe.sanitizeJSON(bytes)
        })
}

/// Small, valid inputs of every kind, built with the product's own writers.
enum Seeds {
    static func snapshot() -> Snapshot {
        Snapshot.resolving(
            organization: Organization(id: "org", name: "Fuzz \u{1B}[2J Org"),
            divisions: [Division(id: "d1", name: "Home", isHome: true), Division(id: "d2", name: "Sales")],
            roles: [
                Role(id: "r1", name: "Admin", isBuiltIn: true, policies: [PermissionPolicy(domain: "*", entityName: "*", actions: ["*"])]),
                Role(id: "r2", name: "Agent", policies: [PermissionPolicy(domain: "routing", entityName: "queue", actions: ["join", "view"])]),
            ],
            users: [
                User(id: "u1", name: "Ana 山田", state: "active", divisionId: "d1"), User(id: "u2", name: "Ben", state: "inactive", divisionId: "d2"),
            ],
            groups: [Group(id: "g1", name: "Leads", rolesEnabled: true, memberIds: ["u2"])],
            teams: [Team(id: "t1", name: "Night", divisionId: "d2", memberIds: ["u1"])],
            oauthClients: [OAuthClient(id: "c1", name: "CRM", grantType: "CLIENT-CREDENTIALS")],
            grants: [
                Grant(subjectId: "u1", subjectKind: .user, roleId: "r1", divisionId: "*"),
                Grant(subjectId: "g1", subjectKind: .group, roleId: "r2", divisionId: "d2"),
                Grant(subjectId: "c1", subjectKind: .oauthClient, roleId: "r2", divisionId: "d1"),
            ],
            problems: [CollectionProblem(code: "missing.permissions", endpoint: "GET /api/v2/x", permissions: ["a:b:c"], message: "no")])
    }

    static func events() -> [AuditEvent] {
        let date = Date(timeIntervalSince1970: 1_800_000_000)
        return [
            AuditEvent(
                id: "e1", date: date, serviceName: "PeoplePermissions", entityType: "Role", action: "Update", entityId: "r1", entityName: "Admin",
                userId: "u1", userName: "Ana", clientId: "c1", remoteIp: ["203.0.113.7"],
                changes: [.init(property: "permissions", oldValues: ["a"], newValues: ["a", "authorization:grant:add"])], transactionId: "t1"),
            AuditEvent(
                id: "e2", date: date.addingTimeInterval(1), serviceName: "Directory", entityType: "User", action: "Update", entityId: "u2",
                changes: [.init(property: "divisionId", oldValues: ["d1"], newValues: ["d2"])]),
            AuditEvent(
                id: "e3", date: date.addingTimeInterval(2), serviceName: "PeoplePermissions", entityType: "AuthUser", action: "AuthenticationFailed",
                entityId: "u1", status: "FAILURE"),
        ]
    }

    static func page() -> [UInt8] {
        Array(#"{"pageCount":2,"pageNumber":1,"total":3,"cursor":"abc","entities":["#.utf8) + events().map { $0.canonicalJSON() }
            .joined(separator: Array(",".utf8)) + Array("]}".utf8)
    }
}
