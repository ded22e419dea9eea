import AuditCore
import AuditStore
import Foundation
import Testing

/// The delivery outbox, against every backend.
@Suite("Outbox contract")
struct OutboxContractTests {
    let at = Date(timeIntervalSince1970: 1_800_000_000)

    static func payload(_ id: String, kind: DeliveryPayload.Kind = .finding, severity: Severity = .high) -> DeliveryPayload {
        DeliveryPayload(
            kind: kind, id: id, severity: severity, time: Date(timeIntervalSince1970: 1_799_999_000.123), rule: "RBW-001", title: "title \(id)",
            body: Array(#"{"id":"\#(id)"}"#.utf8))
    }

    @Test("queued in order per destination, once per payload id; delivered entries leave the queue", arguments: StoreKind.allCases)
    func order(kind: StoreKind) async throws {
        let store = try await kind.make()
        let items = (1...5).map { OutboxItem(destination: "splunk", payload: Self.payload("p\($0)")) } + [OutboxItem(destination: "hook", payload: Self.payload("p1"))]
        #expect(try await store.enqueue(items, at: at) == 6)
        #expect(try await store.enqueue(items, at: at) == 0, "the same payload id for the same destination is queued once")
        let queued = try await store.queuedDeliveries(destination: "splunk", limit: 3)
        #expect(queued.map(\.payload.id) == ["p1", "p2", "p3"])
        #expect(queued.first?.payload == Self.payload("p1").withStorePrecision, "the payload reads back whole")
        #expect(queued.allSatisfy { $0.state == .queued && $0.attempts == 0 && $0.enqueuedAt == at })
        try await store.markDelivered(queued.prefix(2).map(\.id), at: at.addingTimeInterval(5))
        #expect(try await store.queuedDeliveries(destination: "splunk", limit: 10).map(\.payload.id) == ["p3", "p4", "p5"])
        #expect(try await store.queuedDeliveries(destination: "hook", limit: 10).map(\.payload.id) == ["p1"])
        let statuses = try await store.destinationStatuses()
        #expect(statuses.map(\.destination) == ["hook", "splunk"])
        #expect(statuses.last?.queued == 3 && statuses.last?.delivered == 2 && statuses.last?.oldestQueued == at)
        #expect(try await store.pruneDelivered(before: at.addingTimeInterval(4)) == 0)
        #expect(try await store.pruneDelivered(before: at.addingTimeInterval(6)) == 2)
        #expect(try await store.destinationStatuses().last?.delivered == 0)
    }

    @Test("attempts are counted with the last answer; dead letters keep it, replay to the end of the queue with their ids, purge", arguments: StoreKind.allCases)
    func deadLetters(kind: StoreKind) async throws {
        let store = try await kind.make()
        try await store.enqueue((1...3).map { OutboxItem(destination: "hec", payload: Self.payload("p\($0)")) }, at: at)
        try await store.enqueue([OutboxItem(destination: "hec", payload: Self.payload("bad"), rejected: "schema: $.id missing")], at: at)
        let first = try #require(try await store.queuedDeliveries(destination: "hec", limit: 1).first)
        for attempt in 1...5 {
            let counted = try await store.recordAttempt([first.id], error: "400 invalid data format (6)", at: at)
            #expect(counted[first.id] == attempt)
        }
        try await store.deadLetter([first.id], reason: "400 invalid data format (6) after 5 attempts", at: at.addingTimeInterval(10))
        #expect(try await store.queuedDeliveries(destination: "hec", limit: 10).map(\.payload.id) == ["p2", "p3"])
        let dead = try await store.deadLetters(destination: nil, limit: 10)
        #expect(Set(dead.map(\.payload.id)) == ["p1", "bad"])
        #expect(dead.first { $0.payload.id == "bad" }?.lastError == "schema: $.id missing", "rejected at enqueue: dead at once, with why")
        let p1 = try #require(try await store.outboxEntry(id: first.id))
        #expect(p1.state == .dead && p1.attempts == 5 && p1.lastError?.hasSuffix("after 5 attempts") == true)
        #expect(try await store.destinationStatuses().first?.deadLettered == 2)

        #expect(try await store.replayDeadLetters(ids: [first.id], at: at.addingTimeInterval(20)) == 1)
        let requeued = try await store.queuedDeliveries(destination: "hec", limit: 10)
        #expect(requeued.map(\.payload.id) == ["p2", "p3", "p1"], "replayed at the end of its queue")
        #expect(requeued.last?.id == first.id && requeued.last?.attempts == 0, "the same entry and payload id")
        let bad = try #require(try await store.deadLetters(destination: "hec", limit: 10).first)
        #expect(try await store.purgeDeadLetter(id: bad.id))
        #expect(try await store.purgeDeadLetter(id: bad.id) == false)
        #expect(try await store.purgeDeadLetter(id: first.id) == false, "only dead letters are purged")
        #expect(try await store.replayDeadLetters(ids: nil, at: at) == 0)
    }

    @Test("destination health: paused with why, last error, last success kept when not given", arguments: StoreKind.allCases)
    func health(kind: StoreKind) async throws {
        let store = try await kind.make()
        try await store.setDestinationHealth("hec", paused: nil, lastError: nil, lastSuccess: at)
        try await store.setDestinationHealth("hec", paused: "401 invalid authorization (3)", lastError: "401 invalid authorization (3)", lastSuccess: nil)
        var status = try #require(try await store.destinationStatuses().first)
        #expect(status.paused == "401 invalid authorization (3)" && status.lastSuccess == at && status.queued == 0)
        try await store.setDestinationHealth("hec", paused: nil, lastError: nil, lastSuccess: at.addingTimeInterval(60))
        status = try #require(try await store.destinationStatuses().first)
        #expect(status.paused == nil && status.lastError == nil && status.lastSuccess == at.addingTimeInterval(60))
    }

    @Test("a finding's payloads are queued with its event, only when the event is new", arguments: StoreKind.allCases)
    func withTheAuditBatch(kind: StoreKind) async throws {
        let store = try await kind.make()
        let event = AuditEvent(id: "e1", date: at, serviceName: "PeoplePermissions", entityType: "Role", action: "Update", entityId: "r1")
        let checkpoint = IngestionCheckpoint(highWater: at, updatedAt: at)
        let item = OutboxItem(destination: "hec", payload: Self.payload("f:e1"), trigger: "e1")
        try await store.recordAudit(AuditBatch(events: [event], findings: [], checkpoint: checkpoint, deliveries: [item]))
        #expect(try await store.queuedDeliveries(destination: "hec", limit: 10).count == 1)
        let queued = try await store.queuedDeliveries(destination: "hec", limit: 10)
        try await store.markDelivered(queued.map(\.id), at: at)
        try await store.pruneDelivered(before: at.addingTimeInterval(1))
        // The same event again (an overlap after the delivered entry was pruned): nothing queued.
        try await store.recordAudit(AuditBatch(events: [event], findings: [], checkpoint: checkpoint, deliveries: [item]))
        #expect(try await store.queuedDeliveries(destination: "hec", limit: 10).isEmpty)
    }

    @Test("a drift item's payloads are queued with the findings, once per fingerprint ever", arguments: StoreKind.allCases)
    func withTheDriftFindings(kind: StoreKind) async throws {
        let store = try await kind.make()
        let item = DriftItem(kind: .grantAdded, subject: EntityRef(.user, "u1", "Ana"))
        let delivery = OutboxItem(destination: "hec", payload: Self.payload(item.fingerprint, kind: .driftItem))
        try await store.recordFindings([item], baselineVersion: 1, at: at, deliveries: [delivery])
        var queued = try await store.queuedDeliveries(destination: "hec", limit: 10)
        #expect(queued.map(\.payload.id) == [item.fingerprint])
        try await store.markDelivered(queued.map(\.id), at: at)
        try await store.pruneDelivered(before: at.addingTimeInterval(1))
        try await store.recordFindings([item], baselineVersion: 1, at: at.addingTimeInterval(60), deliveries: [delivery])
        queued = try await store.queuedDeliveries(destination: "hec", limit: 10)
        #expect(queued.isEmpty, "the next check sees the same item: not queued again")
    }
}

extension DeliveryPayload {
    /// The payload as a store gives it back (times to the millisecond).
    var withStorePrecision: DeliveryPayload {
        var copy = self
        copy.time = Date(timeIntervalSince1970: (time.timeIntervalSince1970 * 1000).rounded() / 1000)
        return copy
    }
}
