import AuditCore
import Foundation
import GRDB

extension SQLiteAuditStore {
    /// Queues items inside a write transaction; an item already queued for its destination (same
    /// payload id) is skipped. Returns how many were added.
    @discardableResult
    static func queue(_ items: [OutboxItem], at date: Date, in db: Database) throws -> Int {
        guard !items.isEmpty else { return 0 }
        let insert = try db.makeStatement(
            sql: """
                INSERT OR IGNORE INTO outbox (destination, payload_id, kind, severity, rule, title, payload_time, body, state, position,
                    enqueued_at, attempts, last_error, settled_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, (SELECT COALESCE(MAX(position), 0) + 1 FROM outbox), ?, 0, ?, ?)
                """)
        let at = date.storePrecision.timeIntervalSince1970
        var added = 0
        for item in items {
            let payload = item.payload
            try insert.execute(arguments: [
                item.destination, payload.id, payload.kind.rawValue, payload.severity.rawValue, payload.rule, payload.title,
                milliseconds(payload.time), Data(payload.body), item.rejected == nil ? "queued" : "dead", at, item.rejected,
                item.rejected == nil ? nil : at,
            ])
            added += db.changesCount
        }
        return added
    }

    static func outboxEntry(_ row: Row) -> OutboxEntry? {
        guard let kind = DeliveryPayload.Kind(rawValue: row["kind"]), let state = OutboxEntry.State(rawValue: row["state"]) else { return nil }
        let body: Data = row["body"]
        let payload = DeliveryPayload(
            kind: kind, id: row["payload_id"], severity: Severity(rawValue: row["severity"]) ?? .low,
            time: Date(timeIntervalSince1970: Double(row["payload_time"] as Int64) / 1000), rule: row["rule"], title: row["title"], body: Array(body))
        let settled: Double? = row["settled_at"]
        return OutboxEntry(
            id: row["id"], destination: row["destination"], payload: payload, state: state, enqueuedAt: Date(timeIntervalSince1970: row["enqueued_at"]),
            attempts: row["attempts"], lastError: row["last_error"], settledAt: settled.map(Date.init(timeIntervalSince1970:)))
    }

    @discardableResult
    public func enqueue(_ items: [OutboxItem], at date: Date) async throws -> Int {
        try await write { db in try Self.queue(items, at: date, in: db) }
    }

    public func queuedDeliveries(destination: String, limit: Int) async throws -> [OutboxEntry] {
        try await read { db in
            try Row.fetchAll(
                db, sql: "SELECT * FROM outbox WHERE destination = ? AND state = 'queued' ORDER BY position LIMIT ?",
                arguments: [destination, max(0, limit)]
            ).compactMap(Self.outboxEntry)
        }
    }

    public func markDelivered(_ ids: [Int64], at date: Date) async throws {
        guard !ids.isEmpty else { return }
        let at = date.storePrecision.timeIntervalSince1970
        try await write { db in
            for id in ids {
                try db.execute(
                    sql: "UPDATE outbox SET state = 'delivered', settled_at = ? WHERE id = ? AND state = 'queued'", arguments: [at, id])
            }
        }
    }

    @discardableResult
    public func recordAttempt(_ ids: [Int64], error: String, at date: Date) async throws -> [Int64: Int] {
        guard !ids.isEmpty else { return [:] }
        return try await write { db in
            var attempts: [Int64: Int] = [:]
            for id in ids {
                try db.execute(sql: "UPDATE outbox SET attempts = attempts + 1, last_error = ? WHERE id = ?", arguments: [error, id])
                if let count = try Int.fetchOne(db, sql: "SELECT attempts FROM outbox WHERE id = ?", arguments: [id]) { attempts[id] = count }
            }
            return attempts
        }
    }

    public func deadLetter(_ ids: [Int64], reason: String, at date: Date) async throws {
        guard !ids.isEmpty else { return }
        let at = date.storePrecision.timeIntervalSince1970
        try await write { db in
            for id in ids {
                try db.execute(
                    sql: "UPDATE outbox SET state = 'dead', last_error = ?, settled_at = ? WHERE id = ? AND state = 'queued'",
                    arguments: [reason, at, id])
            }
        }
    }

    public func setDestinationHealth(_ destination: String, paused: String?, lastError: String?, lastSuccess: Date?) async throws {
        try await write { db in
            try db.execute(
                sql: """
                    INSERT INTO destination_health (destination, paused, last_error, last_success) VALUES (?, ?, ?, ?)
                    ON CONFLICT(destination) DO UPDATE SET paused = excluded.paused, last_error = excluded.last_error,
                        last_success = COALESCE(excluded.last_success, destination_health.last_success)
                    """,
                arguments: [destination, paused, lastError, lastSuccess?.storePrecision.timeIntervalSince1970])
        }
    }

    public func destinationStatuses() async throws -> [DestinationStatus] {
        try await read { db in
            var statuses: [String: DestinationStatus] = [:]
            for row in try Row.fetchAll(
                db, sql: "SELECT destination, state, COUNT(*) AS n, MIN(enqueued_at) AS oldest FROM outbox GROUP BY destination, state")
            {
                let name: String = row["destination"]
                var status = statuses[name] ?? DestinationStatus(destination: name)
                let count: Int = row["n"]
                switch row["state"] as String {
                case "queued":
                    status.queued = count
                    status.oldestQueued = (row["oldest"] as Double?).map(Date.init(timeIntervalSince1970:))
                case "delivered": status.delivered = count
                default: status.deadLettered = count
                }
                statuses[name] = status
            }
            for row in try Row.fetchAll(db, sql: "SELECT * FROM destination_health") {
                let name: String = row["destination"]
                var status = statuses[name] ?? DestinationStatus(destination: name)
                status.paused = row["paused"]
                status.lastError = row["last_error"]
                status.lastSuccess = (row["last_success"] as Double?).map(Date.init(timeIntervalSince1970:))
                statuses[name] = status
            }
            return statuses.values.sorted { $0.destination < $1.destination }
        }
    }

    public func deadLetters(destination: String?, limit: Int) async throws -> [OutboxEntry] {
        try await read { db in
            try Row.fetchAll(
                db,
                sql: "SELECT * FROM outbox WHERE state = 'dead' AND (? IS NULL OR destination = ?) ORDER BY settled_at DESC, id DESC LIMIT ?",
                arguments: [destination, destination, max(0, limit)]
            ).compactMap(Self.outboxEntry)
        }
    }

    public func outboxEntry(id: Int64) async throws -> OutboxEntry? {
        try await read { db in try Row.fetchOne(db, sql: "SELECT * FROM outbox WHERE id = ?", arguments: [id]).flatMap(Self.outboxEntry) }
    }

    @discardableResult
    public func replayDeadLetters(ids: [Int64]?, at date: Date) async throws -> Int {
        try await write { db in
            let chosen =
                try ids
                ?? Int64.fetchAll(db, sql: "SELECT id FROM outbox WHERE state = 'dead' ORDER BY position")
            var count = 0
            for id in chosen {
                try db.execute(
                    sql: """
                        UPDATE outbox SET state = 'queued', attempts = 0, settled_at = NULL,
                            position = (SELECT MAX(position) + 1 FROM outbox) WHERE id = ? AND state = 'dead'
                        """, arguments: [id])
                count += db.changesCount
            }
            return count
        }
    }

    @discardableResult
    public func purgeDeadLetter(id: Int64) async throws -> Bool {
        try await write { db in
            try db.execute(sql: "DELETE FROM outbox WHERE id = ? AND state = 'dead'", arguments: [id])
            return db.changesCount > 0
        }
    }

    @discardableResult
    public func pruneDelivered(before date: Date) async throws -> Int {
        try await write { db in
            try db.execute(
                sql: "DELETE FROM outbox WHERE state = 'delivered' AND settled_at < ?", arguments: [date.storePrecision.timeIntervalSince1970])
            return db.changesCount
        }
    }
}
