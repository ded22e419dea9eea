import AuditCore
import Foundation
import Testing

@Suite("Delivery payloads and receiver formats")
struct DeliveryPayloadTests {
    static let at = Date(timeIntervalSince1970: 1_800_000_000.25)
    static let org = Organization(id: "org-1", name: "Acme | Support = \"EU\"")

    /// A hostile event: names with `|`, `=`, `\`, a newline, non-ASCII and an escape sequence.
    static func event() -> AuditEvent {
        AuditEvent(
            id: "ev-1", date: at, serviceName: "PeoplePermissions", entityType: "Role", action: "Update", entityId: "r-1",
            entityName: "Admins | ops=1 \\ back\nslash 山田 \u{1B}[2J", userId: "u-1", userName: "Zoë O'Brien", clientId: "c-1",
            remoteIp: ["203.0.113.7"], changes: [AuditEvent.Change(property: "permissions", oldValues: ["a"], newValues: ["a", "authorization:grant:add"])])
    }

    static func finding(approved: Bool = false) -> AuditFinding {
        let event = event()
        return AuditFinding(
            fingerprint: "fp-1", ruleId: "RBW-001", title: "Role gains escalation-capable permissions", severity: .critical,
            controls: ["NIST AC-2", "SOC2 CC6.1"], eventIds: [event.id], date: event.date, serviceName: event.serviceName,
            entityType: event.entityType, entityId: event.entityId, entityName: event.entityName, action: event.action, actor: event.actor,
            actorId: event.userId, clientId: event.clientId, remoteIp: event.remoteIp, evidence: ["permissions: authorization:grant:add"],
            status: approved ? .approved : .open,
            approval: approved
                ? Approval(fingerprint: "fp-1", ticket: "CHG-1", note: nil, approver: "ana", createdAt: at, expiresAt: at.addingTimeInterval(3600))
                : nil)
    }

    static func driftItem() -> ReviewedItem {
        var item = DriftItem(
            kind: .grantAdded, subject: EntityRef(.group, "g-1", "Ops|Team"), role: EntityRef(.role, "r-1", "Master Admin"),
            division: EntityRef(.division, "*", ""))
        item.severity = .critical
        item.escalation = true
        item.reasons = ["admin role granted in every division"]
        return ReviewedItem(item: item, state: .unapproved)
    }

    @Test("a finding's and a drift item's payloads meet their schemas; the ids are stable")
    func valid() throws {
        let finding = DeliveryPayload.finding(Self.finding(approved: true), event: Self.event(), organization: Self.org)
        #expect(finding.violations() == [])
        #expect(finding.id == "fp-1:ev-1")
        #expect(finding == DeliveryPayload.finding(Self.finding(approved: true), event: Self.event(), organization: Self.org), "same input, same bytes")
        let json = try #require(JSONValue.parse(finding.body))
        #expect(json["schema"] == .string("rbacwatch.finding/2"))
        #expect(json["organization"]?["name"] == .string(Self.org.name))
        #expect(json["approval"]?["ticket"] == .string("CHG-1"))
        #expect(json["changes"] == .array([.object(["property": .string("permissions"), "before": .array([.string("a")]), "after": .array([.string("a"), .string("authorization:grant:add")])])]))

        let attribution = ItemAttribution(status: .explained, events: [Self.event()], coveredUntil: Self.at)
        let drift = DeliveryPayload.driftItem(Self.driftItem(), attribution: attribution, organization: Self.org, detectedAt: Self.at, baselineVersion: 3)
        #expect(drift.violations() == [])
        #expect(drift.id == Self.driftItem().item.fingerprint)
        let driftJSON = try #require(JSONValue.parse(drift.body))
        #expect(driftJSON["actor"]?["name"] == .string("Zoë O'Brien"), "who made it happen, for correlation")
        #expect(driftJSON["baselineVersion"] == .number(3))
    }

    @Test("the validator rejects what the schema forbids, each with its path")
    func invalid() throws {
        let good = DeliveryPayload.finding(Self.finding(), event: nil, organization: Self.org)
        guard case .object(var members) = try #require(JSONValue.parse(good.body)) else { return }
        let schema = PayloadSchemas.finding
        var missing = members
        missing["id"] = nil
        #expect(schema.violations(.object(missing)) == ["$: missing id"])
        var wrong = members
        wrong["severity"] = .string("urgent")
        #expect(schema.violations(.object(wrong)).first?.hasPrefix("$.severity: must be one of") == true)
        wrong = members
        wrong["eventDate"] = .string("yesterday")
        #expect(schema.violations(.object(wrong)) == ["$.eventDate: not an RFC 3339 date-time"])
        wrong = members
        wrong["extra"] = .bool(true)
        #expect(schema.violations(.object(wrong)) == ["$: unexpected member extra"])
        members["actor"] = .string("someone")
        #expect(schema.violations(.object(members)) == ["$.actor: expected object, found string"])
        let noOrganization = DeliveryPayload.finding(Self.finding(), event: nil, organization: nil)
        #expect(noOrganization.violations() == ["$: missing organization"], "a payload without its organisation is not delivered")
        #expect(schema.validate(Array("{not json".utf8)) == ["$: not JSON"])
        #expect(throws: JSONSchema.SchemaError.self) { try JSONSchema(Array(#"{"type":"object","patternProperties":{}}"#.utf8)) }
    }

    @Test("the schemas in schemas/ are the ones the validator uses", arguments: DeliveryPayload.Kind.allCases)
    func schemaFiles(kind: DeliveryPayload.Kind) throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let file = try String(contentsOf: root.appendingPathComponent("schemas").appendingPathComponent(PayloadSchemas.fileName(kind)), encoding: .utf8)
        #expect(file.trimmingCharacters(in: .newlines) == PayloadSchemas.text(kind).trimmingCharacters(in: .newlines))
    }

    @Test("OCSF 1.7 where JSON goes: a finding as a Detection Finding, a drift item as a Compliance Finding, ids and organisation kept")
    func ocsf() throws {
        let finding = DeliveryPayload.finding(Self.finding(approved: true), event: Self.event(), organization: Self.org)
        let detection = try #require(OCSFPayload.event(finding).flatMap(JSONValue.parse))
        #expect(detection["class_uid"] == .number(2004) && detection["type_uid"] == .number(200_401))
        #expect(detection["finding_info"]?["uid"] == .string("rbacwatch-finding-fp-1:ev-1"))
        #expect(detection["finding_info"]?["analytic"]?["uid"] == .string("RBW-001"))
        #expect(detection["severity_id"] == .number(5) && detection["status"] == .string("Suppressed"), "critical, approved")
        #expect(detection["actor"]?["user"]?["name"] == .string("Zoë O'Brien") && detection["src_endpoint"]?["ip"] == .string("203.0.113.7"))
        #expect(detection["time"] == .number(1_800_000_000_250))
        #expect(detection["unmapped"]?["organization_id"] == .string("org-1") && detection["unmapped"]?["ticket"] == .string("CHG-1"))
        let drift = DeliveryPayload.driftItem(Self.driftItem(), attribution: nil, organization: Self.org, detectedAt: Self.at, baselineVersion: 1)
        let compliance = try #require(OCSFPayload.event(drift).flatMap(JSONValue.parse))
        #expect(compliance["class_uid"] == .number(2003) && compliance["compliance"]?["status"] == .string("Fail"))
        guard case .array(let resources)? = compliance["resources"] else {
            Issue.record("no resources")
            return
        }
        #expect(resources.count == 3 && resources[0]["uid"] == .string("g-1"))
        #expect(throws: DestinationsFile.ParseError.self, "OCSF goes where JSON goes, not into CEF") {
            try DestinationsFile.parse(Array(#"{"destinations":[{"name":"x","kind":"syslog","url":"tcp://h:1","format":"cef","ocsf":true}]}"#.utf8))
        }
    }

    @Test("HEC: one envelope per payload with time in seconds and milliseconds, the payload as event, routing fields")
    func hec() throws {
        let payload = DeliveryPayload.finding(Self.finding(), event: nil, organization: Self.org)
        let envelope = SplunkHEC.event(payload, SplunkHEC.Envelope(host: "rbw-1", index: "security"))
        let json = try #require(JSONValue.parse(envelope))
        #expect(json["time"] == .number(1_800_000_000.25))
        #expect(json["index"] == .string("security") && json["sourcetype"] == .string("rbacwatch:json") && json["host"] == .string("rbw-1"))
        #expect(json["event"] == JSONValue.parse(payload.body))
        #expect(json["fields"]?["severity"] == .string("critical") && json["fields"]?["id"] == .string("fp-1:ev-1"))
        #expect(JSONValue.parse(SplunkHEC.event(payload, SplunkHEC.Envelope(host: "h")))?["index"] == nil, "no index: the token's default")
    }

    @Test("Datadog: an array of log objects with status, tags, message and the payload as attributes")
    func datadog() throws {
        let payloads = [DeliveryPayload.finding(Self.finding(), event: nil, organization: Self.org)]
        let body = DatadogLogs.batch(payloads.map { DatadogLogs.log($0, DatadogLogs.Tags(hostname: "rbw-1", tags: ["env:prod"])) })
        guard case .array(let logs)? = JSONValue.parse(body) else {
            Issue.record("not an array")
            return
        }
        #expect(logs.count == 1)
        #expect(logs[0]["status"] == .string("critical"))
        #expect(logs[0]["ddtags"] == .string("env:prod,kind:finding,rule:RBW-001,severity:critical"))
        #expect(logs[0]["service"] == .string("rbacwatch") && logs[0]["ddsource"] == .string("genesys-cloud"))
        #expect(logs[0]["rbacwatch"]?["id"] == .string("fp-1:ev-1"))
    }

    @Test("Standard Webhooks: the specification's test vector, and verification with its tolerance")
    func webhookSignature() throws {
        let key = try StandardWebhooks.key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
        let body = Array(#"{"test": 2432232314}"#.utf8)
        // Computed independently with Python's hmac from the specification's inputs.
        let signature = StandardWebhooks.signature(key: key, id: "msg_p5jXN8AQM9LWM0D4loKWxJek", timestamp: 1_614_265_330, body: body)
        #expect(signature == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
        let now = Date(timeIntervalSince1970: 1_614_265_330 + 200)
        #expect(StandardWebhooks.verify(key: key, id: "msg_p5jXN8AQM9LWM0D4loKWxJek", timestamp: 1_614_265_330, body: body, header: "v1,bogus " + signature, now: now))
        #expect(!StandardWebhooks.verify(key: key, id: "msg_other", timestamp: 1_614_265_330, body: body, header: signature, now: now))
        #expect(!StandardWebhooks.verify(key: key, id: "msg_p5jXN8AQM9LWM0D4loKWxJek", timestamp: 1_614_265_330, body: body, header: signature, now: now.addingTimeInterval(400)), "outside the 5-minute tolerance")
        #expect(throws: StandardWebhooks.SecretError.self) { try StandardWebhooks.key("whsec_short") }
    }

    @Test("syslog: RFC 5424 header with PRI from facility and severity, octet counting in bytes, JSON or CEF as the message")
    func syslog() throws {
        let payload = DeliveryPayload.finding(Self.finding(), event: nil, organization: Self.org)
        let message = Syslog.message(payload, Syslog.Header(facility: 13, hostname: "rbw host", appName: "rbacwatch", procId: "42"), as: .json)
        let text = String(decoding: message, as: UTF8.self)
        #expect(text.hasPrefix("<106>1 2027-01-15T08:00:00.250Z rbwhost rbacwatch 42 finding - {"), "13×8 + 2 (critical); spaces dropped from the hostname: \(text.prefix(60))")
        #expect(text.hasSuffix(String(decoding: payload.body, as: UTF8.self)))
        let framed = Syslog.framed(message)
        #expect(String(decoding: framed, as: UTF8.self).hasPrefix("\(message.count) <106>"))
        #expect(message.count > text.count, "the length counts bytes, not characters (山田, Zoë)")
        #expect(!message.contains(0x1B), "no raw escape in a log line")
    }

    @Test("CEF: header fields escape \\ and |, extension values escape \\ and = and newlines; non-ASCII passes whole")
    func cef() throws {
        let payload = DeliveryPayload.finding(Self.finding(), event: nil, organization: Self.org)
        let line = CEF.line(payload)
        #expect(line.hasPrefix("CEF:0|rbacwatch|rbacwatch|2|RBW-001|RBW-001 Role gains escalation-capable permissions: Update Role Admins \\| ops=1 \\\\ back slash 山田"))
        #expect(line.contains("|10|rt=1800000000250 externalId=fp-1:ev-1 cat=finding"), "critical is 10")
        #expect(line.contains("duser=Admins | ops\\=1 \\\\ back\\nslash 山田"))
        #expect(line.contains("suser=Zoë O'Brien suid=u-1 src=203.0.113.7 act=Update"))
        #expect(line.contains("cs1=org-1 cs1Label=organizationId"))
        #expect(!line.contains("\n"), "one line")
        #expect(!line.unicodeScalars.contains("\u{1B}") && line.contains("\\\\x1B[2J"), "the escape sequence is inert text")
        #expect(CEF.header("a|b\\c\nd") == "a\\|b\\\\c d")
        #expect(CEF.value("k=v\\x\ny\r") == "k\\=v\\\\x\\ny\\r")
    }
}
