import AuditCore
import Foundation
import Testing

@Suite("Notification messages: the WebSocket's envelope and the audit push body")
struct NotificationMessageTests {
    static func parse(_ text: String) throws -> NotificationMessage { try NotificationMessage.parse(Array(text.utf8)) }

    @Test("heartbeat, pong and socket_closing read as themselves; other metadata and topics as other")
    func metadata() throws {
        #expect(try Self.parse(#"{"topicName":"channel.metadata","eventBody":{"message":"WebSocket Heartbeat"}}"#) == .heartbeat)
        #expect(try Self.parse(#" {"eventBody":{"message":"pong"},"topicName":"channel.metadata"} "#) == .pong)
        #expect(try Self.parse(#"{"topicName":"v2.system.socket_closing","eventBody":{"message":"bye"}}"#) == .socketClosing)
        #expect(try Self.parse(#"{"topicName":"channel.metadata","eventBody":{"message":"hello"}}"#) == .other(topic: "channel.metadata"))
        #expect(try Self.parse(#"{"topicName":"v2.users.u1.presence","eventBody":{"presenceDefinition":{}}}"#) == .other(topic: "v2.users.u1.presence"))
    }

    @Test("an audit push reads into the same event the audit query gives (eventTime, userId, username, clientId{id})")
    func auditPush() throws {
        let push = #"""
            {"topicName":"v2.audits.entitytype.Role.entityid.r1","version":"2","eventBody":{"id":"e1","userId":"u1","userHomeOrgId":"o1",
            "username":{"id":"u1","name":"Ana Admin"},"userDisplay":"Ana Admin","clientId":{"id":"c1"},"remoteIp":["203.0.113.7"],
            "serviceName":"PeoplePermissions","level":"USER","eventTime":"2026-12-02T10:00:01.5Z","message":{"message":"x"},"action":"MemberAdd",
            "entityType":"Role","entity":{"id":"r1","name":"Admin"},"propertyChanges":[{"property":"grant","oldValues":[],"newValues":["u2"]}],
            "context":{}},"metadata":{"CorrelationId":"k"}}
            """#
        guard case .audit(let topic, let event) = try Self.parse(push) else {
            Issue.record("not read as an audit push")
            return
        }
        #expect(topic == "v2.audits.entitytype.Role.entityid.r1")
        #expect(topic == NotificationMessage.auditTopic(entityType: "Role", entityId: "r1"))
        let expected = AuditEvent(
            id: "e1", date: try #require(ISOTimestamp.date("2026-12-02T10:00:01.5Z")), serviceName: "PeoplePermissions", entityType: "Role",
            action: "MemberAdd", entityId: "r1", entityName: "Admin", userId: "u1", userName: "Ana Admin", clientId: "c1",
            remoteIp: ["203.0.113.7"], changes: [.init(property: "grant", oldValues: [], newValues: ["u2"])])
        #expect(event == expected)
    }

    @Test("what is not a notification fails with one clear reason")
    func refused() {
        for bad in ["", "[]", "{nope", #"{"eventBody":{}}"#, #"{"topicName":"v2.audits.entitytype.Role.entityid.r1"}"#,
            #"{"topicName":"v2.audits.entitytype.Role.entityid.r1","eventBody":{"id":"e1"}}"#, #"{"topicName":"x"} trailing"#]
        {
            #expect(throws: AuditEventError.self, "\(bad)") { try Self.parse(bad) }
        }
        #expect(throws: AuditEventError.self) { try NotificationMessage.parse([UInt8](repeating: 0x20, count: (1 << 20) + 1)) }
    }
}
