import AuditCore
import AuditEngine
import AuditStore
import AuditTestSupport
import Foundation
import GenesysClient
import GenesysSimulator
import Testing

/// Audit events pushed over a real notification socket, judged by the real ingestor into a real
/// SQLite store; the manual clock moves only when a test polls on purpose.
@Suite("Audit ingestion: pushed events")
struct PushIngestionTests {
    typealias Rig = IngestionTests.Rig

    static func editRole(_ rig: Rig, _ id: String, name: String, permissions: [String]) async throws {
        let list = permissions.map { "\"\($0)\"" }.joined(separator: ",")
        _ = try await rig.admin.send("PUT", "/api/v2/authorization/roles/\(id)", body: Array(#"{"name":"\#(name)","permissions":[\#(list)]}"#.utf8))
    }

    /// A channel subscribed to `roleIds`' audit topics.
    static func channel(_ rig: Rig, roles roleIds: [String]) async throws -> NotificationChannel {
        let channel = try await rig.auditor.createNotificationChannel()
        let answer = try await rig.auditor.subscribe(
            channel: channel.id, topics: roleIds.map { NotificationMessage.auditTopic(entityType: "Role", entityId: $0) }, replace: true)
        #expect(answer.allSatisfy { $0.permitted })
        return channel
    }

    static func storedFindings(_ store: any AuditStore) async throws -> [String] {
        try await store.auditFindings(FindingQuery(limit: 10_000)).map { "\($0.ruleId) \($0.eventIds.last ?? "")" }.sorted()
    }

    @Test("a pushed critical role edit is judged, stored and published with no poll in between; the next poll finds it a duplicate and the store keeps the poll's copy")
    func pushedBeforeThePoll() async throws {
        try await IngestionTests.withRig { rig in
            let store = try rig.store()
            let ingestor = rig.ingestor(store)
            let roleId = try await rig.createRole("Queue Reader")
            _ = await ingestor.poll()
            let channel = try await Self.channel(rig, roles: [roleId])
            try await PushInbox.withSocket(channel) { inbox, _ in
                try await Self.editRole(rig, roleId, name: "Queue Reader", permissions: ["routing:queue:view", "admin"])
                try await inbox.wait("the push") { inbox.audits.count == 1 }
                let pushed = try #require(inbox.audits.first)
                #expect(pushed.transactionId == nil, "the push shape has no transaction")
                let updates = Task { () -> IngestionUpdate? in
                    for await update in ingestor.updates where !update.pushed.isEmpty { return update }
                    return nil
                }
                let findings = await ingestor.ingestPushed(inbox.audits)
                #expect(findings.map(\.ruleId) == ["RBW-001"])
                #expect(findings.first?.eventIds.last == pushed.id)
                let published = await updates.value
                #expect(published?.pushed.map(\.id) == [pushed.id])
                #expect(published?.findings.map(\.ruleId) == ["RBW-001"])
                // Stored before any poll: the clock has not moved.
                #expect(try await Self.storedFindings(store) == ["RBW-001 \(pushed.id)"])
                #expect(try await store.ingestionCheckpoint()?.highWater ?? .distantFuture < pushed.date, "the push leaves the checkpoint to the polls")
                // The same push again (a duplicate) is nothing new.
                #expect(await ingestor.ingestPushed(inbox.audits).isEmpty)

                rig.clock.advance(by: .seconds(200))
                let polled = await ingestor.poll()
                #expect(polled.failed == nil)
                #expect(polled.findings.isEmpty, "the poll does not judge the pushed event again")
                let health = await ingestor.health
                #expect(health.pushesJudged == 1 && health.pushesConfirmed == 1 && health.pushDuplicates == 1)
                #expect(try await Self.storedFindings(store) == ["RBW-001 \(pushed.id)"])
                let stored = try await store.auditEvents(from: pushed.date.addingTimeInterval(-1), to: pushed.date.addingTimeInterval(1))
                let copy = try #require(stored.first { $0.id == pushed.id })
                #expect(copy.transactionId != nil, "the store keeps the poll's fuller copy")
                #expect(copy.samePushedSubstance(as: pushed))
            }
        }
    }

    @Test("a push that never came (dropped) is found by the next poll, exactly once; the findings equal polling alone's")
    func droppedPushAndEquality() async throws {
        try await IngestionTests.withRig { rig in
            let store = try rig.store()
            let ingestor = rig.ingestor(store)
            let first = try await rig.createRole("Night Desk")
            let second = try await rig.createRole("Day Desk")
            _ = await ingestor.poll()
            let channel = try await Self.channel(rig, roles: [first, second])
            try await PushInbox.withSocket(channel) { inbox, _ in
                rig.sim.faults.droppedPushes = 1
                try await Self.editRole(rig, first, name: "Night Desk", permissions: ["routing:queue:view", "authorization:grant:add"])
                #expect(rig.sim.notificationPushCounts.dropped == 1)
                try await Self.editRole(rig, second, name: "Day Desk", permissions: ["routing:queue:view", "admin"])
                try await inbox.wait("the second push") { inbox.audits.count == 1 }
                #expect(await ingestor.ingestPushed(inbox.audits).map(\.ruleId) == ["RBW-001"])
            }
            rig.clock.advance(by: .seconds(200))
            let polled = await ingestor.poll()
            #expect(polled.findings.map(\.ruleId) == ["RBW-001"], "the dropped push's event is judged by the poll")
            rig.clock.advance(by: .seconds(200))
            #expect(await ingestor.poll().findings.isEmpty, "and only once")
            let withPush = try await Self.storedFindings(store)
            #expect(withPush.count == 2)

            // Polling alone, over the same events, into a store of its own.
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("rbw-pollonly-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: directory) }
            let alone = try SQLiteAuditStore(path: directory.appendingPathComponent("state.sqlite").path)
            _ = await rig.ingestor(alone).poll()
            #expect(try await Self.storedFindings(alone) == withPush)
        }
    }
}
