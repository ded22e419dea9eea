import AuditCore
import Foundation
import PostgresNIO

/// The delivery outbox in PostgreSQL. An organisation's store sees its own entries; the fleet's
/// outbox (`PostgresDatabase.outbox(fence:)`) sees every organisation's, for the one worker that
/// holds a destination's lease and drains its queue across organisations — in queue order, so in
/// order per organisation. Ids and positions are global; destination health is the fleet's.
public final class PostgresOutbox: OutboxStore {
    let database: PostgresDatabase
    /// nil: every organisation's entries.
    let organization: String?
    let fence: Fence?

    init(database: PostgresDatabase, organization: String?, fence: Fence?) {
        self.database = database
        self.organization = organization
        self.fence = fence
    }

    /// Queues items inside a transaction; an item already queued for its destination (same
    /// payload id, same organisation) is skipped. Returns how many were added.
    @discardableResult
    static func queue(_ items: [OutboxItem], org: String, at date: Date, database: PostgresDatabase, on connection: PostgresConnection) async throws -> Int {
        guard !items.isEmpty else { return 0 }
        let at = date.pgMilliseconds
        var added = 0
        for item in items {
            let payload = item.payload
            added += try await database.run(
                """
                INSERT INTO outbox (org, destination, payload_id, kind, severity, rule, title, payload_time, body, state, position,
                    enqueued_at, attempts, last_error, settled_at)
                VALUES (\(org), \(item.destination), \(payload.id), \(payload.kind.rawValue), \(Int32(payload.severity.rawValue)), \(payload.rule),
                    \(payload.title), \(payload.time.pgMilliseconds), \(Data(payload.body)), \(item.rejected == nil ? "queued" : "dead"),
                    nextval('outbox_position'), \(at), 0, \(item.rejected), \(item.rejected == nil ? nil : at))
                ON CONFLICT DO NOTHING
                RETURNING 1
                """, on: connection)
        }
        return added
    }

    static func entry(_ row: PostgresRandomAccessRow) throws -> OutboxEntry? {
        guard let kind = DeliveryPayload.Kind(rawValue: try row.get("kind")), let state = OutboxEntry.State(rawValue: try row.get("state")) else { return nil }
        let payload = DeliveryPayload(
            kind: kind, id: try row.get("payload_id"), severity: Severity(rawValue: Int(try row.get("severity", as: Int32.self))) ?? .low,
            time: try row.date("payload_time"), rule: try row.get("rule"), title: try row.get("title"), body: Array(try row.get("body", as: Data.self)))
        return OutboxEntry(
            id: try row.get("id"), destination: try row.get("destination"), payload: payload, state: state, enqueuedAt: try row.date("enqueued_at"),
            attempts: Int(try row.get("attempts", as: Int32.self)), lastError: try row.get("last_error"), settledAt: try row.optionalDate("settled_at"))
    }

    func write<T: Sendable>(_ body: @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        try await database.transaction(fence: fence, body)
    }

    @discardableResult
    public func enqueue(_ items: [OutboxItem], at date: Date) async throws -> Int {
        guard let organization else {
            throw StoreError(.notFound, "the fleet's outbox queues nothing itself: each organisation's store queues its own entries")
        }
        return try await write { connection in try await Self.queue(items, org: organization, at: date, database: self.database, on: connection) }
    }

    public func queuedDeliveries(destination: String, limit: Int) async throws -> [OutboxEntry] {
        try await database.rows(
            """
            SELECT * FROM outbox WHERE (org = \(organization) OR \(organization)::text IS NULL) AND destination = \(destination) AND state = 'queued'
            ORDER BY position LIMIT \(Int64(max(0, limit)))
            """
        ).compactMap(Self.entry)
    }

    public func markDelivered(_ ids: [Int64], at date: Date) async throws {
        guard !ids.isEmpty else { return }
        let org = organization
        try await write { connection in
            try await self.database.run(
                """
                UPDATE outbox SET state = 'delivered', settled_at = \(date.pgMilliseconds)
                WHERE id = ANY(\(ids)::bigint[]) AND state = 'queued' AND (org = \(org) OR \(org)::text IS NULL)
                """, on: connection)
        }
    }

    @discardableResult
    public func recordAttempt(_ ids: [Int64], error: String, at date: Date) async throws -> [Int64: Int] {
        guard !ids.isEmpty else { return [:] }
        let org = organization
        return try await write { connection in
            var attempts: [Int64: Int] = [:]
            for row in try await self.database.rows(
                """
                UPDATE outbox SET attempts = attempts + 1, last_error = \(error)
                WHERE id = ANY(\(ids)::bigint[]) AND (org = \(org) OR \(org)::text IS NULL) RETURNING id, attempts
                """, on: connection)
            {
                attempts[try row.get("id", as: Int64.self)] = Int(try row.get("attempts", as: Int32.self))
            }
            return attempts
        }
    }

    public func deadLetter(_ ids: [Int64], reason: String, at date: Date) async throws {
        guard !ids.isEmpty else { return }
        let org = organization
        try await write { connection in
            try await self.database.run(
                """
                UPDATE outbox SET state = 'dead', last_error = \(reason), settled_at = \(date.pgMilliseconds)
                WHERE id = ANY(\(ids)::bigint[]) AND state = 'queued' AND (org = \(org) OR \(org)::text IS NULL)
                """, on: connection)
        }
    }

    public func setDestinationHealth(_ destination: String, paused: String?, lastError: String?, lastSuccess: Date?) async throws {
        try await write { connection in
            try await self.database.run(
                """
                INSERT INTO destination_health (destination, paused, last_error, last_success)
                VALUES (\(destination), \(paused), \(lastError), \(lastSuccess?.pgMilliseconds))
                ON CONFLICT (destination) DO UPDATE SET paused = excluded.paused, last_error = excluded.last_error,
                    last_success = COALESCE(excluded.last_success, destination_health.last_success)
                """, on: connection)
        }
    }

    public func destinationStatuses() async throws -> [DestinationStatus] {
        var statuses: [String: DestinationStatus] = [:]
        for row in try await database.rows(
            """
            SELECT destination, state, COUNT(*)::bigint AS n, MIN(enqueued_at) AS oldest FROM outbox
            WHERE org = \(organization) OR \(organization)::text IS NULL GROUP BY destination, state
            """)
        {
            let name: String = try row.get("destination")
            var status = statuses[name] ?? DestinationStatus(destination: name)
            let count = Int(try row.get("n", as: Int64.self))
            switch try row.get("state", as: String.self) {
            case "queued":
                status.queued = count
                status.oldestQueued = try row.optionalDate("oldest")
            case "delivered": status.delivered = count
            default: status.deadLettered = count
            }
            statuses[name] = status
        }
        for row in try await database.rows("SELECT * FROM destination_health") {
            let name: String = try row.get("destination")
            var status = statuses[name] ?? DestinationStatus(destination: name)
            status.paused = try row.get("paused")
            status.lastError = try row.get("last_error")
            status.lastSuccess = try row.optionalDate("last_success")
            statuses[name] = status
        }
        return statuses.values.sorted { $0.destination < $1.destination }
    }

    public func deadLetters(destination: String?, limit: Int) async throws -> [OutboxEntry] {
        try await database.rows(
            """
            SELECT * FROM outbox WHERE state = 'dead' AND (org = \(organization) OR \(organization)::text IS NULL)
              AND (destination = \(destination) OR \(destination)::text IS NULL)
            ORDER BY settled_at DESC, id DESC LIMIT \(Int64(max(0, limit)))
            """
        ).compactMap(Self.entry)
    }

    public func outboxEntry(id: Int64) async throws -> OutboxEntry? {
        try await database.rows("SELECT * FROM outbox WHERE id = \(id) AND (org = \(organization) OR \(organization)::text IS NULL)").first.flatMap(Self.entry)
    }

    @discardableResult
    public func replayDeadLetters(ids: [Int64]?, at date: Date) async throws -> Int {
        let org = organization
        return try await write { connection in
            let chosen: [Int64]
            if let ids {
                chosen = ids
            } else {
                chosen = try await self.database.rows(
                    "SELECT id FROM outbox WHERE state = 'dead' AND (org = \(org) OR \(org)::text IS NULL) ORDER BY position", on: connection
                ).map { try $0.get("id", as: Int64.self) }
            }
            var count = 0
            // One at a time, in order: each goes to the end of its queue after the one before.
            for id in chosen {
                count += try await self.database.run(
                    """
                    UPDATE outbox SET state = 'queued', attempts = 0, settled_at = NULL, position = nextval('outbox_position')
                    WHERE id = \(id) AND state = 'dead' AND (org = \(org) OR \(org)::text IS NULL) RETURNING 1
                    """, on: connection)
            }
            return count
        }
    }

    @discardableResult
    public func purgeDeadLetter(id: Int64) async throws -> Bool {
        let org = organization
        return try await write { connection in
            try await self.database.run(
                "DELETE FROM outbox WHERE id = \(id) AND state = 'dead' AND (org = \(org) OR \(org)::text IS NULL) RETURNING 1", on: connection) > 0
        }
    }

    @discardableResult
    public func pruneDelivered(before date: Date) async throws -> Int {
        let org = organization
        return try await write { connection in
            try await self.database.run(
                """
                DELETE FROM outbox WHERE state = 'delivered' AND settled_at < \(date.pgMilliseconds) AND (org = \(org) OR \(org)::text IS NULL) RETURNING 1
                """, on: connection)
        }
    }
}

extension PostgresDatabase {
    /// Every organisation's outbox, for the worker that holds a destination's lease (`fence`):
    /// its writes are refused once another worker took the destination over.
    public func outbox(fence: Fence?) -> PostgresOutbox {
        PostgresOutbox(database: self, organization: nil, fence: fence)
    }
}

extension PostgresAuditStore {
    var outbox: PostgresOutbox { PostgresOutbox(database: database, organization: organization, fence: fence) }

    @discardableResult
    public func enqueue(_ items: [OutboxItem], at date: Date) async throws -> Int { try await outbox.enqueue(items, at: date) }
    public func queuedDeliveries(destination: String, limit: Int) async throws -> [OutboxEntry] {
        try await outbox.queuedDeliveries(destination: destination, limit: limit)
    }
    public func markDelivered(_ ids: [Int64], at date: Date) async throws { try await outbox.markDelivered(ids, at: date) }
    @discardableResult
    public func recordAttempt(_ ids: [Int64], error: String, at date: Date) async throws -> [Int64: Int] {
        try await outbox.recordAttempt(ids, error: error, at: date)
    }
    public func deadLetter(_ ids: [Int64], reason: String, at date: Date) async throws { try await outbox.deadLetter(ids, reason: reason, at: date) }
    public func setDestinationHealth(_ destination: String, paused: String?, lastError: String?, lastSuccess: Date?) async throws {
        try await outbox.setDestinationHealth(destination, paused: paused, lastError: lastError, lastSuccess: lastSuccess)
    }
    public func destinationStatuses() async throws -> [DestinationStatus] { try await outbox.destinationStatuses() }
    public func deadLetters(destination: String?, limit: Int) async throws -> [OutboxEntry] {
        try await outbox.deadLetters(destination: destination, limit: limit)
    }
    public func outboxEntry(id: Int64) async throws -> OutboxEntry? { try await outbox.outboxEntry(id: id) }
    @discardableResult
    public func replayDeadLetters(ids: [Int64]?, at date: Date) async throws -> Int { try await outbox.replayDeadLetters(ids: ids, at: date) }
    @discardableResult
    public func purgeDeadLetter(id: Int64) async throws -> Bool { try await outbox.purgeDeadLetter(id: id) }
    @discardableResult
    public func pruneDelivered(before date: Date) async throws -> Int { try await outbox.pruneDelivered(before: date) }
}
