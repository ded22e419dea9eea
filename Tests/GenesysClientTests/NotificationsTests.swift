import AuditCore
import AuditTestSupport
import Foundation
@testable import GenesysClient
import GenesysSimulator
import Synchronization
import Testing

@Suite("Notifications API: channels, topics and pushed audit events over a real WebSocket")
struct NotificationsTests {
    static func simulator(_ adjust: (inout SimulatorConfiguration) -> Void = { _ in }) -> GenesysSimulator {
        TestSupport.simulator(users: 30, seed: 15) { configuration in
            configuration.notifications.heartbeatSeconds = 0.2
            configuration.notifications.tickSeconds = 0.05
            adjust(&configuration)
        }
    }

    /// An admin client for the write endpoints.
    static func withAdmin<T: Sendable>(_ endpoint: SimulatorEndpoint, _ body: (GenesysAPIClient) async throws -> T) async throws -> T {
        var admin = endpoint
        admin.clientId = endpoint.adminClientId
        admin.clientSecret = endpoint.adminClientSecret
        return try await TestSupport.withClient(admin, body)
    }

    static func editRole(_ admin: GenesysAPIClient, _ role: GroundTruth.Role, name: String) async throws {
        _ = try await admin.send(
            "PUT", "/api/v2/authorization/roles/\(role.id)",
            body: Array(#"{"name":"\#(name)","permissions":["directory:user:view"]}"#.utf8))
    }

    static func customRole(_ sim: GenesysSimulator) throws -> GroundTruth.Role {
        try #require(sim.groundTruth().roles.values.filter { !$0.isDefault && $0.name != "rbacwatch Auditor" }.sorted { $0.id < $1.id }.first)
    }

    static func withSocket<T: Sendable>(
        _ channel: NotificationChannel, _ body: (PushInbox, Task<NotificationSocketEnd, any Error>) async throws -> T
    ) async throws -> T {
        try await PushInbox.withSocket(channel, body)
    }

    @Test("an audited write on a subscribed role is pushed at once, with the id and date the audit query gives")
    func pushOnWrite() async throws {
        let sim = Self.simulator()
        let role = try Self.customRole(sim)
        let other = try #require(sim.groundTruth().roles.values.filter { !$0.isDefault && $0.id != role.id && $0.name != "rbacwatch Auditor" }.first)
        try await sim.withRunning { endpoint in
            try await TestSupport.withClient(endpoint) { client in
                let channel = try await client.createNotificationChannel()
                #expect(channel.connectUri.hasPrefix("ws://127.0.0.1:\(endpoint.port)/channels/"))
                #expect(channel.expires.map { $0.timeIntervalSinceNow > 86_000 } == true)
                let topic = NotificationMessage.auditTopic(entityType: "Role", entityId: role.id)
                let answer = try await client.subscribe(channel: channel.id, topics: [topic], replace: true)
                #expect(answer == [TopicSubscription(topic: topic, permitted: true, rejectionReason: nil, missingPermissions: [])])
                #expect(try await client.subscriptions(channel: channel.id).map(\.topic) == [topic])
                try await Self.withSocket(channel) { received, _ in
                    try await Self.withAdmin(endpoint) { admin in
                        try await Self.editRole(admin, other, name: "Not subscribed")
                        try await Self.editRole(admin, role, name: "Pushed Role")
                    }
                    try await received.wait("the push") { !received.audits.isEmpty }
                    let pushed = try #require(received.audits.first)
                    #expect(received.audits.count == 1, "the unsubscribed role's edit is not pushed")
                    #expect(pushed.entityId == role.id && pushed.entityType == "Role" && pushed.action == "Update")
                    #expect(pushed.serviceName == "PeoplePermissions")
                    #expect(pushed.clientId == endpoint.adminClientId)
                    #expect(pushed.changes.contains { $0.property == "name" && $0.newValues == ["Pushed Role"] })
                    // The audit query holds the same event: same id, same date.
                    let polled = try await IncrementalRound.auditEvents(client, from: Date().addingTimeInterval(-60))
                    let same = try #require(polled.first { $0.id == pushed.id })
                    #expect(same.date == pushed.date)
                    #expect(received.unreadable.withLock { $0 }.isEmpty)
                }
            }
        }
    }

    @Test("limits: 1,000 topics a channel (400 past it), 20 channels a client (the least recently used goes), unknown topics refused")
    func limits() async throws {
        let sim = Self.simulator { $0.notifications.maxChannelsPerClient = 2 }
        try await sim.withRunning { endpoint in
            try await TestSupport.withClient(endpoint) { client in
                let first = try await client.createNotificationChannel()
                let topics = (0..<1000).map { NotificationMessage.auditTopic(entityType: "Role", entityId: "r\($0)") }
                #expect(try await client.subscribe(channel: first.id, topics: topics, replace: true).count == 1000)
                do {
                    _ = try await client.subscribe(channel: first.id, topics: [NotificationMessage.auditTopic(entityType: "Role", entityId: "one-more")], replace: false)
                    Issue.record("the 1,001st topic was accepted")
                } catch let error as GenesysAPIError {
                    #expect(error.status == 400)
                    #expect(error.code == "notification.topic.limit.exceeded")
                }
                #expect(try await client.subscriptions(channel: first.id).count == 1000, "a refused request changes nothing")
                do {
                    _ = try await client.subscribe(channel: first.id, topics: topics + ["v2.audits.entitytype.Role.entityid.x"], replace: true)
                    Issue.record("1,001 topics were sent")
                } catch let error as GenesysClientError {
                    #expect(error.kind == .configuration)
                }
                do {
                    _ = try await client.subscribe(channel: first.id, topics: ["v2.users.x.presence"], replace: false)
                    Issue.record("a topic the simulator does not know was accepted")
                } catch let error as GenesysAPIError {
                    #expect(error.status == 400)
                }
                let second = try await client.createNotificationChannel()
                #expect(try await client.notificationChannelExists(first.id))
                let third = try await client.createNotificationChannel()
                #expect(try await client.notificationChannelExists(first.id) == false, "the third channel of two allowed removes the oldest")
                #expect(try await client.notificationChannelExists(second.id))
                #expect(try await client.notificationChannelExists(third.id))
            }
        }
    }

    @Test("heartbeats and pongs arrive; an expiring channel warns with socket_closing, closes, and is gone (on the simulator's clock)")
    func heartbeatsAndExpiry() async throws {
        final class Uptime: Sendable { let seconds = Mutex(0.0) }
        let uptime = Uptime()
        let sim = Self.simulator { configuration in
            configuration.uptime = { uptime.seconds.withLock { $0 } }
            configuration.notifications.heartbeatSeconds = 30
            configuration.notifications.channelLifetimeSeconds = 600
            configuration.notifications.closingWarningSeconds = 60
        }
        try await sim.withRunning { endpoint in
            try await TestSupport.withClient(endpoint) { client in
                let channel = try await client.createNotificationChannel()
                try await Self.withSocket(channel) { received, task in
                    #expect(received.count(.heartbeat) == 0, "no heartbeat before its time")
                    uptime.seconds.withLock { $0 = 31 }
                    try await received.wait("a heartbeat") { received.count(.heartbeat) == 1 }
                    try await received.wait("a pong") { received.count(.pong) > 0 }
                    #expect(received.count(.socketClosing) == 0)
                    uptime.seconds.withLock { $0 = 541 }
                    try await received.wait("the closing warning") { received.count(.socketClosing) == 1 }
                    #expect(try await client.notificationChannelExists(channel.id), "warned, not yet gone")
                    uptime.seconds.withLock { $0 = 601 }
                    let end = try await task.value
                    #expect(end == .closed(warned: true))
                    #expect(received.count(.socketClosing) == 1)
                }
                #expect(try await client.notificationChannelExists(channel.id) == false)
            }
        }
    }

    @Test("a socket closed by the server ends the run; its channel and topics stay for a reconnect")
    func closedSocket() async throws {
        let sim = Self.simulator()
        let role = try Self.customRole(sim)
        try await sim.withRunning { endpoint in
            try await TestSupport.withClient(endpoint) { client in
                let channel = try await client.createNotificationChannel()
                let topic = NotificationMessage.auditTopic(entityType: "Role", entityId: role.id)
                _ = try await client.subscribe(channel: channel.id, topics: [topic], replace: true)
                try await Self.withSocket(channel) { received, task in
                    sim.closeNotificationSockets()
                    let end = try await task.value
                    #expect(end == .closed(warned: false))
                    #expect(received.count(.socketClosing) == 0)
                }
                #expect(try await client.notificationChannelExists(channel.id))
                // Reconnected: pushes flow again on the same channel.
                try await Self.withSocket(channel) { received, _ in
                    try await Self.withAdmin(endpoint) { try await Self.editRole($0, role, name: "After reconnect") }
                    try await received.wait("the push after reconnecting") { received.audits.count == 1 }
                }
            }
        }
    }

    @Test("fault plans: a dropped push never comes, a duplicated one comes twice, one ahead of the query is pushed before the query sees it")
    func pushFaults() async throws {
        let sim = Self.simulator()
        let role = try Self.customRole(sim)
        try await sim.withRunning { endpoint in
            try await TestSupport.withClient(endpoint) { client in
                let channel = try await client.createNotificationChannel()
                _ = try await client.subscribe(channel: channel.id, topics: [NotificationMessage.auditTopic(entityType: "Role", entityId: role.id)], replace: true)
                try await Self.withSocket(channel) { received, _ in
                    try await Self.withAdmin(endpoint) { admin in
                        sim.faults.droppedPushes = 1
                        try await Self.editRole(admin, role, name: "Dropped")
                        sim.faults.duplicatedPushes = 1
                        try await Self.editRole(admin, role, name: "Twice")
                        try await received.wait("the duplicated push") { received.audits.count == 2 }
                        let twice = received.audits
                        #expect(twice[0] == twice[1])
                        #expect(twice[0].changes.contains { $0.newValues == ["Twice"] })
                        #expect(sim.notificationPushCounts.dropped == 1)

                        sim.faults.pushesAhead = 1
                        sim.faults.pushLeadSeconds = 600
                        try await Self.editRole(admin, role, name: "Ahead")
                        try await received.wait("the push ahead of the query") { received.audits.count == 3 }
                    }
                    let ahead = try #require(received.audits.last)
                    let polled = try await IncrementalRound.auditEvents(client, from: Date().addingTimeInterval(-60))
                    #expect(!polled.contains { $0.id == ahead.id }, "the query does not see the event yet")
                    #expect(polled.contains { $0.changes.contains { $0.newValues == ["Dropped"] } }, "the dropped push's event is in the query")
                }
            }
        }
    }

    @Test("a socket's task ends promptly when cancelled (a stopping engine never waits on it)")
    func cancelled() async throws {
        let sim = Self.simulator()
        try await sim.withRunning { endpoint in
            try await TestSupport.withClient(endpoint) { client in
                let channel = try await client.createNotificationChannel()
                let task = try await Self.withSocket(channel) { _, task in task }
                task.cancel()
                let started = ContinuousClock.now
                _ = await task.result
                #expect(ContinuousClock.now - started < .seconds(10))
            }
        }
    }

    @Test("a client without audits:audit:view gets its audit topics Rejected, naming the permission")
    func rejectedTopics() async throws {
        let sim = Self.simulator { $0.auditorPermissions = SimulatorConfiguration.defaultAuditorPermissions.filter { $0 != "audits:audit:view" } }
        try await sim.withRunning { endpoint in
            try await TestSupport.withClient(endpoint) { client in
                let channel = try await client.createNotificationChannel()
                let topic = NotificationMessage.auditTopic(entityType: "Role", entityId: "r1")
                let answer = try await client.subscribe(channel: channel.id, topics: [topic], replace: true)
                #expect(answer == [TopicSubscription(topic: topic, permitted: false, rejectionReason: "missing permissions", missingPermissions: ["audits:audit:view"])])
                #expect(try await client.subscriptions(channel: channel.id).isEmpty)
            }
        }
    }

    @Test("a connectUri elsewhere than the API is refused before anything connects")
    func foreignSocketHost() async throws {
        let client = GenesysAPIClient(
            connection: GenesysConnection(apiBaseURL: "https://api.mypurecloud.com", loginBaseURL: "https://login.mypurecloud.com", clientId: "c", clientSecret: Secret("s")),
            transport: AsyncHTTPClientTransport(connectTimeout: .seconds(1)))
        defer { Task { await client.shutdown() } }
        #expect(throws: Never.self) { try client.checkSocketURI("wss://streaming.mypurecloud.com/channels/streaming-0-x") }
        #expect(throws: GenesysClientError.self) { try client.checkSocketURI("wss://streaming.example.net/channels/x") }
        #expect(throws: GenesysClientError.self) { try client.checkSocketURI("ws://streaming.mypurecloud.com/channels/x") }
        #expect(throws: GenesysClientError.self) { try client.checkSocketURI("wss://evilmypurecloud.com/channels/x") }
    }
}
