import AuditCore
import AuditTestSupport
import Foundation
import GenesysClient
import GenesysSimulator
import Testing

@Suite("Audit rules")
struct RuleTests {
    static let t0 = Date(timeIntervalSince1970: 1_795_000_000)

    static func event(
        _ service: String, _ type: String, _ action: String, entity: String = "Entity", status: String = "SUCCESS",
        user: String = "u-1", client: String? = nil, at seconds: Double = 0, id: String? = nil, _ changes: [AuditEvent.Change] = []
    ) -> AuditEvent {
        AuditEvent(
            id: id ?? "\(service)-\(type)-\(action)-\(seconds)-\(changes.map(\.property).joined())", date: t0.addingTimeInterval(seconds),
            serviceName: service, entityType: type, action: action, entityId: "e-" + entity, entityName: entity, userId: user,
            userName: "Ana Admin", clientId: client, remoteIp: ["203.0.113.7"], status: status, changes: changes)
    }

    static func change(_ property: String, _ old: [String] = [], _ new: [String] = []) -> AuditEvent.Change {
        AuditEvent.Change(property: property, oldValues: old, newValues: new)
    }

    /// Which rules fire on `events`, judged in order by the default rules.
    static func fired(_ events: [AuditEvent]) -> [String] {
        var engine = RuleEngine(rules: .defaults())
        return events.flatMap { engine.judge($0) }.map(\.ruleId)
    }

    /// One case per default rule: events that make it fire, and near misses that must not.
    static var cases: [(rule: String, fires: [AuditEvent], quiet: [AuditEvent])] {
        var cases: [(rule: String, fires: [AuditEvent], quiet: [AuditEvent])] = []
        do {
            let fires: [AuditEvent] = [event("PeoplePermissions", "Role", "Update", [change("permissions", ["routing:queue:view"], ["routing:queue:view", "authorization:grant:add"])])]
            let quiet: [AuditEvent] = [event("PeoplePermissions", "Role", "Update", [change("permissions", ["authorization:grant:add"], ["authorization:grant:add", "routing:queue:view"])])]
            cases.append(("RBW-001", fires, quiet))
        }
        do {
            let fires: [AuditEvent] = [event("PeoplePermissions", "Role", "MemberAdd", entity: "Master Admin", [change("subjectId", [], ["u-2"]), change("divisionId", [], ["d-1"])])]
            let quiet: [AuditEvent] = [event("PeoplePermissions", "Role", "MemberAdd", entity: "Queue Viewer", [change("subjectId", [], ["u-2"]), change("divisionId", [], ["d-1"])])]
            cases.append(("RBW-002", fires, quiet))
        }
        do {
            let fires: [AuditEvent] = [event("PeoplePermissions", "Role", "MemberAdd", entity: "Queue Viewer", [change("divisionId", [], ["*"])])]
            let quiet: [AuditEvent] = [event("PeoplePermissions", "Role", "MemberRemove", entity: "Queue Viewer", [change("divisionId", ["*"], [])])]
            cases.append(("RBW-003", fires, quiet))
        }
        do {
            let fires: [AuditEvent] = [event("PeoplePermissions", "Role", "MemberAdd", entity: "Queue Viewer", [change("subjectType", [], ["PC_GROUP"])])]
            let quiet: [AuditEvent] = [event("PeoplePermissions", "Role", "MemberAdd", entity: "Queue Viewer", [change("subjectType", [], ["PC_USER"])])]
            cases.append(("RBW-004", fires, quiet))
        }
        do {
            let fires: [AuditEvent] = [event("PeoplePermissions", "OAuthClient", "Create", entity: "Exporter")]
            let quiet: [AuditEvent] = [event("PeoplePermissions", "OAuthClient", "Create", entity: "Exporter", status: "FAILURE")]
            cases.append(("RBW-005", fires, quiet))
        }
        do {
            let fires: [AuditEvent] = [event("PeoplePermissions", "OAuthClient", "Update", entity: "Exporter", [change("roleIds", ["r1"], ["r1", "r2"])])]
            let quiet: [AuditEvent] = [event("PeoplePermissions", "OAuthClient", "Update", entity: "Exporter", [change("description", ["a"], ["b"])])]
            cases.append(("RBW-006", fires, quiet))
        }
        do {
            let fires: [AuditEvent] = [event("PeoplePermissions", "OAuthClient", "SecretRegenerated", entity: "Exporter")]
            let quiet: [AuditEvent] = [event("PeoplePermissions", "OAuthClient", "Delete", entity: "Exporter")]
            cases.append(("RBW-007", fires, quiet))
        }
        do {
            let fires: [AuditEvent] = [event("Webhooks", "Webhook", "Create", entity: "Exfil", [change("url", [], ["https://attacker.test/collect"])])]
            let quiet: [AuditEvent] = [event("Webhooks", "Webhook", "Create", entity: "Ours", [change("url", [], ["https://hooks.example.com/genesys"])])]
            cases.append(("RBW-008", fires, quiet))
        }
        do {
            let fires: [AuditEvent] = [event("ContactCenter", "Queue", "Update", entity: "Support", [change("skillEvaluationMethod", ["BEST"], ["NONE"])])]
            let quiet: [AuditEvent] = [event("ContactCenter", "Queue", "Update", entity: "Support", [change("skillEvaluationMethod", ["NONE"], ["BEST"])])]
            cases.append(("RBW-009", fires, quiet))
        }
        do {
            let fires: [AuditEvent] = [event("ContactCenter", "Queue", "Update", entity: "Support", [change("overflowQueueId", ["q1"], ["q2"])])]
            let quiet: [AuditEvent] = [event("ContactCenter", "Queue", "Update", entity: "Support", [change("name", ["Support"], ["Support EU"])])]
            cases.append(("RBW-010", fires, quiet))
        }
        do {
            let fires: [AuditEvent] = [event("Quality", "RecordingSettings", "Update", entity: "Org recording", [change("recordingEnabled", ["true"], ["false"])])]
            let quiet: [AuditEvent] = [event("Quality", "RecordingSettings", "Update", entity: "Org recording", [change("recordingEnabled", ["false"], ["true"])])]
            cases.append(("RBW-011", fires, quiet))
        }
        do {
            let fires: [AuditEvent] = [event("Telephony", "Trunk", "Update", entity: "SIP trunk 1", [change("host", ["a"], ["b"])])]
            let quiet: [AuditEvent] = [event("Telephony", "Trunk", "Update", entity: "SIP trunk 1", status: "FAILURE")]
            cases.append(("RBW-012", fires, quiet))
        }
        do {
            let fires: [AuditEvent] = (0..<5).map { event("PeoplePermissions", "AuthUser", "AuthenticationFailed", status: "FAILURE", user: "u-9", at: Double($0 * 30)) }
            let quiet: [AuditEvent] = (0..<5).map { event("PeoplePermissions", "AuthUser", "AuthenticationFailed", status: "FAILURE", user: "u-9", at: Double($0 * 120)) }
            cases.append(("RBW-013", fires, quiet))
        }
        do {
            let fires: [AuditEvent] = [event("Directory", "User", "Update", entity: "Bo", [change("divisionId", ["d1"], ["d2"])])]
            let quiet: [AuditEvent] = [event("Directory", "User", "Update", entity: "Bo", [change("name", ["Bo"], ["Bob"])])]
            cases.append(("RBW-014", fires, quiet))
        }
        do {
            var fires: [AuditEvent] = []
            var quiet: [AuditEvent] = []
            for n in 0..<4 {
                let adding = n % 2 == 0
                let flip = change("group-membership", adding ? [] : ["u-5"], adding ? ["u-5"] : [])
                fires.append(event("Groups", "DirectoryGroup", adding ? "MemberAdd" : "MemberRemove", entity: "Admins", at: Double(n * 60), [flip]))
                quiet.append(event("Groups", "DirectoryGroup", "MemberAdd", entity: "Admins", at: Double(n * 60), [change("group-membership", [], ["u-\(n)"])]))
            }
            cases.append(("RBW-015", fires, quiet))
        }
        do {
            let fires: [AuditEvent] = (0..<20).map { event("Directory", "User", "Update", entity: "User \($0)", user: "u-3", at: Double($0 * 20), [change("title", ["a"], ["b"])]) }
            let quiet: [AuditEvent] = (0..<20).map { event("Directory", "User", "Update", entity: "User \($0)", user: "u-3", at: Double($0 * 60), [change("title", ["a"], ["b"])]) }
            cases.append(("RBW-016", fires, quiet))
        }
        return cases
    }

    @Test("the defaults parse, and every default rule has a firing and a non-firing case")
    func everyDefaultRule() throws {
        let ids = RuleSet.defaults().rules.map(\.id)
        #expect(ids.count == 16)
        #expect(Set(Self.cases.map(\.rule)) == Set(ids), "a default rule without a test")
        for (rule, fires, quiet) in Self.cases {
            #expect(Self.fired(fires).contains(rule), "\(rule) should fire")
            #expect(!Self.fired(quiet).contains(rule), "\(rule) should stay quiet")
        }
    }

    @Test("globs: * is any run, \\* a literal star, case ignored")
    func globs() {
        #expect(Glob.matches("authorization:*", "Authorization:Grant:Add"))
        #expect(Glob.matches("\\*:\\*:\\*", "*:*:*"))
        #expect(!Glob.matches("\\*:\\*:\\*", "routing:queue:view"))
        #expect(Glob.matches("https://*.example.com/*", "https://hooks.example.com/x"))
        #expect(!Glob.matches("https://*.example.com/*", "https://example.com.evil.test/x"))
        #expect(Glob.matches("\\*", "*") && !Glob.matches("\\*", "d-1"))
        // Literals: ASCII compared in place, anything else by Unicode's lower case.
        #expect(Glob.matches("PeoplePermissions", "peoplepermissions") && !Glob.matches("People", "PeoplePermissions"))
        #expect(!Glob.matches("PeoplePermissions", "People") && !Glob.matches("abc", "abd"))
        #expect(Glob.matches("ÉQUIPE", "équipe") && Glob.matches("équipe", "ÉQUIPE") && !Glob.matches("équipe", "equipe"))
        #expect(Glob.matches("straße", "STRASSE") == ("STRASSE".lowercased() == "straße"))
        #expect(Glob.matches("k", "\u{212A}"), "the Kelvin sign lower-cases to k")
    }

    @Test("rules are tried by service: a literal service, in any case, a pattern, or none, fire as a full scan would")
    func serviceIndex() {
        func rule(_ id: String, services: Patterns) -> AuditRule {
            var rule = RuleSet.defaults().rules[0]
            rule.id = id
            rule.match = AuditRule.Match()
            rule.match.services = services
            rule.match.statuses = []
            rule.conditions = []
            rule.exceptions = []
            rule.correlation = nil
            rule.throttleSeconds = nil
            return rule
        }
        var engine = RuleEngine(rules: [
            rule("literal", services: ["peoplepermissions"]), rule("glob", services: ["People*"]), rule("any", services: []),
            rule("other", services: ["Groups"]), rule("both", services: ["Groups", "PEOPLEPERMISSIONS"]),
        ])
        let event = AuditEvent(id: "e", date: Date(), serviceName: "PeoplePermissions", entityType: "Role", action: "Update", entityId: "r")
        #expect(engine.judge(event).map(\.ruleId) == ["literal", "glob", "any", "both"], "in the rules' order")
        var groups = event
        groups.serviceName = "Groups"
        groups.id = "g"
        #expect(engine.judge(groups).map(\.ruleId) == ["any", "other", "both"])
        var unknown = event
        unknown.serviceName = "Telephony"
        unknown.id = "t"
        #expect(engine.judge(unknown).map(\.ruleId) == ["any"])
    }

    @Test("throttling: one finding per rule and entity within the window")
    func throttling() {
        let events = (0..<4).map {
            Self.event("Telephony", "Trunk", "Update", entity: "SIP trunk 1", at: Double($0 * 60), [Self.change("host", ["a\($0)"], ["b\($0)"])])
        }
        #expect(Self.fired(events).filter { $0 == "RBW-012" }.count == 1)
        let later = events + [Self.event("Telephony", "Trunk", "Update", entity: "SIP trunk 1", at: 3600, [Self.change("host", ["x"], ["y"])])]
        #expect(Self.fired(later).filter { $0 == "RBW-012" }.count == 2)
    }

    @Test("exceptions excuse named actors; rule files replace defaults by id and reject mistakes in one line")
    func filesAndExceptions() throws {
        let custom = #"""
            {"rules": [{"id": "RBW-014", "title": "Division move by anyone but HR sync", "severity": "low",
              "match": {"service": "Directory", "entityType": "User", "action": "Update"},
              "conditions": [{"property": "divisionId"}],
              "exceptions": [{"client": "hr-sync", "reason": "the HR feed moves people nightly"}]}]}
            """#
        var set = RuleSet.defaults()
        set.merge(try AuditRule.parseFile(Data(custom.utf8), source: "mine.json"))
        #expect(set.rules.count == 16)
        let rule = try #require(set.rules.first { $0.id == "RBW-014" })
        #expect(rule.severity == .low && rule.source == "mine.json")
        var engine = RuleEngine(rules: set)
        let byHR = Self.event("Directory", "User", "Update", client: "hr-sync", [Self.change("divisionId", ["a"], ["b"])])
        let byAna = Self.event("Directory", "User", "Update", at: 1, [Self.change("divisionId", ["a"], ["b"])])
        #expect(engine.judge(byHR).isEmpty)
        #expect(engine.judge(byAna).map(\.ruleId) == ["RBW-014"])

        for (text, message) in [
            (#"{"id": "x", "title": "t", "severity": "urgent"}"#, "severity"),
            (#"{"id": "x", "title": "t", "severity": "low", "match": {"entity": "Role"}}"#, "unknown match key"),
            (#"{"id": "x", "title": "t", "severity": "low", "throttle": "often"}"#, "throttle"),
            (#"{"id": "x", "title": "t", "severity": "low", "correlation": {"type": "burst", "count": 1, "window": "1m"}}"#, "from 2 to"),
            (#"{"id": "x", "title": "t", "severity": "low", "correlation": {"type": "burst", "count": 100000000, "window": "1m"}}"#, "from 2 to 10000"),
            (#"{"id": "x", "title": "t", "severity": "low", "throttle": "1e300d"}"#, "between 1s and 30d"),
            (#"{"id": "x", "title": "t", "severity": "low", "throttle": "inf"}"#, "throttle"),
            (#"{"id": "x", "title": "t", "severity": "low", "correlation": {"type": "burst", "count": 5, "window": "nanm"}}"#, "between 1s and 1w"),
            (#"{"title": "t"}"#, "\"id\""),
            ("[1,", "not valid JSON"),
        ] {
            #expect(throws: RuleError.self) { try AuditRule.parseFile(Data(text.utf8), source: "bad.json") }
            do {
                _ = try AuditRule.parseFile(Data(text.utf8), source: "bad.json")
            } catch {
                #expect("\(error)".contains(message) && "\(error)".hasPrefix("bad.json"), "\(error)")
            }
        }
    }

    @Test("approvals: a finding whose fingerprint is approved is recorded as approved, and the same change again has the same fingerprint")
    func approvals() {
        let grant = Self.event("PeoplePermissions", "Role", "MemberAdd", entity: "Queue Viewer", [Self.change("divisionId", [], ["*"])])
        var again = grant
        again.id = "another-event"
        again.date = grant.date.addingTimeInterval(7200)
        var engine = RuleEngine(rules: .defaults())
        let first = engine.judge(grant)
        let second = engine.judge(again)
        #expect(first.map(\.fingerprint) == second.map(\.fingerprint))
        let approval = Approval(fingerprint: first[0].fingerprint, ticket: "CHG-1", approver: "ana", createdAt: Self.t0, expiresAt: Self.t0.addingTimeInterval(72 * 3600))
        #expect(RuleEngine.applyApprovals(second, approvals: [approval], now: Self.t0.addingTimeInterval(3600)).allSatisfy { $0.status == .approved })
        #expect(RuleEngine.applyApprovals(second, approvals: [approval], now: Self.t0.addingTimeInterval(80 * 3600)).allSatisfy { $0.status == .open })
    }

    @Test("AuditLogMessage parsing: empty values, expand=user, round trip through the canonical form")
    func parsing() throws {
        let wire = #"""
            {"id":"583cae9f","userHomeOrgId":"f711","user":{"id":"11f2","name":"Ana Admin","selfUri":"/api/v2/users/11f2"},
             "client":{"id":"9c00"},"remoteIp":["203.0.113.7"],"serviceName":"PeoplePermissions","level":"USER",
             "eventDate":"2024-06-01T00:12:56.5Z","message":{"localizableMessageCode":"","message":"","messageWithParams":"","messageParams":{}},
             "action":"Update","entity":{"id":"e3","name":"Supervisor"},"entityType":"Role","status":"SUCCESS","application":"",
             "initiatingAction":{"transactionId":"t-1","actionContext":""},"transactionInitiator":true,
             "propertyChanges":[{"property":"permissions","oldValues":["a"],"newValues":["a","b"]}],"context":{},"entityChanges":[]}
            """#
        let event = try AuditEvent.parse(Array(wire.utf8))
        #expect(event.id == "583cae9f" && event.userName == "Ana Admin" && event.clientId == "9c00" && event.entityName == "Supervisor")
        #expect(ISOTimestamp.string(event.date) == "2024-06-01T00:12:56.500Z")
        #expect(event.changes == [AuditEvent.Change(property: "permissions", oldValues: ["a"], newValues: ["a", "b"])])
        #expect(try AuditEvent.parse(event.canonicalJSON()) == event)
        #expect(throws: AuditEventError.self) { try AuditEvent.parse(Array(#"{"id":"x","eventDate":"yesterday"}"#.utf8)) }
        #expect(throws: AuditEventError.self) { try AuditEvent.parse(Array(#"{"eventDate":"2024-06-01T00:00:00Z"}"#.utf8)) }
        #expect(ISOTimestamp.milliseconds("2024-02-29T23:59:59+01:00") == ISOTimestamp.milliseconds("2024-02-29T22:59:59Z"))
        #expect(ISOTimestamp.milliseconds("1970-01-01T00:00:00Z") == 0)
    }
}

/// The simulator's ambient activity, read back over the audit API and judged by the default
/// rules: the routine kinds stay quiet, each dangerous kind fires the rule written for it.
@Suite("Simulated activity against the default rules")
struct AmbientActivityTests {
    @Test("each kind of ambient event fires exactly the rule meant for it, routine ones none")
    func ambientKinds() async throws {
        let expected: [GenesysSimulator.AmbientEvent: [String]] = [
            .login: [], .queueEdited: [], .webhookAllowed: [], .integrationEdited: [],
            .queueSkillRoutingOff: ["RBW-009"], .queueOverflowChanged: ["RBW-010"], .webhookOutside: ["RBW-008"],
            .trunkEdited: ["RBW-012"], .recordingDisabled: ["RBW-011"], .clientSecretRegenerated: ["RBW-007"], .loginFailures: ["RBW-013"],
        ]
        #expect(Set(expected.keys) == Set(GenesysSimulator.AmbientEvent.allCases))
        let sim = TestSupport.simulator(users: 30, seed: 5)
        try await sim.withRunning { endpoint in
            try await TestSupport.withClient(endpoint) { client in
                let source = GenesysAuditSource(client: client)
                #expect(try await source.services().contains("Recording"))
                var seen = Set<String>()
                for (n, kind) in GenesysSimulator.AmbientEvent.allCases.enumerated() {
                    let start = Date().addingTimeInterval(-5)
                    sim.recordAmbient(kind, roll: UInt64(n))
                    let events = try await source.events(from: start, to: Date().addingTimeInterval(1), service: "*", realtime: true)
                        .filter { seen.insert($0.id).inserted }
                    #expect(!events.isEmpty, "\(kind)")
                    var engine = RuleEngine(rules: .defaults())
                    let fired = Set(events.sorted { ($0.date, $0.id) < ($1.date, $1.id) }.flatMap { engine.judge($0) }.map(\.ruleId))
                    // RBW-016 counts many changes by one actor; not what these single events are about.
                    #expect(fired.subtracting(["RBW-016"]) == Set(expected[kind] ?? []), "\(kind): \(fired.sorted())")
                }
            }
        }
    }
}
