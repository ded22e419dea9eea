import AuditCore
import Foundation
import GRDB

extension SQLiteAuditStore {
    static func milliseconds(_ date: Date) -> Int64 { Bounded.epochMilliseconds(date) }
    static func date(milliseconds: Int64) -> Date { Date(timeIntervalSince1970: Double(milliseconds) / 1000) }

    public func ingestionCheckpoint() async throws -> IngestionCheckpoint? {
        try await read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM ingestion_checkpoint WHERE id = 1").map { row in
                IngestionCheckpoint(
                    highWater: Self.date(milliseconds: row["high_water"]),
                    criticalHighWater: (row["critical_high_water"] as Int64?).map { Self.date(milliseconds: $0) },
                    updatedAt: Date(timeIntervalSince1970: row["updated_at"]))
            }
        }
    }

    public func recordedAuditEvents(ids: [String], datedFrom from: Date, to: Date) async throws -> [String: AuditEvent] {
        guard !ids.isEmpty, from < to else { return [:] }
        let rows = try await read { db in
            var rows: [Data] = []
            // The `(event_date, id)` key's entries for the span, their ids checked in the index. In
            // chunks: SQLite limits the number of bound parameters (32,766).
            for start in stride(from: 0, to: ids.count, by: 10_000) {
                let chunk = Array(ids[start..<min(ids.count, start + 10_000)])
                let marks = Array(repeating: "?", count: chunk.count).joined(separator: ",")
                var arguments: StatementArguments = [Self.milliseconds(from), Self.milliseconds(to)]
                arguments += StatementArguments(chunk)
                rows += try Data.fetchAll(
                    db, sql: "SELECT content FROM audit_event INDEXED BY audit_event_key WHERE event_date >= ? AND event_date < ? AND id IN (\(marks))", arguments: arguments)
            }
            return rows
        }
        var found: [String: AuditEvent] = [:]
        for row in rows {
            let event = try Self.event(row)
            found[event.id] = event
        }
        return found
    }

    @discardableResult
    public func recordAudit(_ batch: AuditBatch) async throws -> Int {
        let now = Date().timeIntervalSince1970
        return try await write { db in
            let insertEvent = try db.makeStatement(
                sql: """
                    INSERT OR IGNORE INTO audit_event (id, event_date, service, entity_type, entity_id, action, actor, content, recorded_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """)
            // The new events' dates by id: a finding is keyed to its trigger's (date, id).
            var fresh: [String: Int64] = [:]
            for event in batch.events {
                let date = Self.milliseconds(event.date)
                try insertEvent.execute(arguments: [
                    event.id, date, event.serviceName, event.entityType, event.entityId, event.action, event.userId ?? event.clientId,
                    Data(event.canonicalJSON()), now,
                ])
                if db.changesCount > 0 { fresh[event.id] = date }
            }
            let insertFinding = try db.makeStatement(
                sql: """
                    INSERT OR IGNORE INTO audit_finding (rule_id, event_id, fingerprint, title, severity, controls, event_ids, event_date,
                        service, entity_type, entity_id, entity_name, action, actor, actor_id, client_id, remote_ip, evidence, status,
                        approval_ticket, approval_approver, approval_expires)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """)
            for finding in batch.findings {
                guard let trigger = finding.eventIds.last, let date = fresh[trigger] else { continue }
                try insertFinding.execute(arguments: [
                    finding.ruleId, trigger, finding.fingerprint, finding.title, finding.severity.rawValue, FindingColumns.list(finding.controls),
                    FindingColumns.list(finding.eventIds), date, finding.serviceName, finding.entityType,
                    finding.entityId, finding.entityName, finding.action, finding.actor, finding.actorId, finding.clientId,
                    FindingColumns.list(finding.remoteIp), FindingColumns.list(finding.evidence), finding.status.rawValue,
                    finding.approval?.ticket, finding.approval?.approver, finding.approval?.expiresAt.timeIntervalSince1970,
                ])
            }
            if !batch.replacing.isEmpty {
                let replace = try db.makeStatement(
                    sql: "UPDATE audit_event SET service = ?, entity_type = ?, entity_id = ?, action = ?, actor = ?, content = ? WHERE event_date = ? AND id = ?")
                for event in batch.replacing {
                    try replace.execute(arguments: [
                        event.serviceName, event.entityType, event.entityId, event.action, event.userId ?? event.clientId, Data(event.canonicalJSON()),
                        Self.milliseconds(event.date), event.id,
                    ])
                }
            }
            if !batch.keepsCheckpoint {
                try db.execute(
                    sql: """
                        INSERT INTO ingestion_checkpoint (id, high_water, critical_high_water, updated_at) VALUES (1, ?, ?, ?)
                        ON CONFLICT(id) DO UPDATE SET high_water = excluded.high_water,
                            critical_high_water = excluded.critical_high_water, updated_at = excluded.updated_at
                        """,
                    arguments: [
                        Self.milliseconds(batch.checkpoint.highWater), batch.checkpoint.criticalHighWater.map(Self.milliseconds),
                        batch.checkpoint.updatedAt.timeIntervalSince1970,
                    ])
            }
            try Self.queue(batch.deliveries.filter { item in item.trigger.map { fresh[$0] != nil } ?? true }, at: batch.checkpoint.updatedAt, in: db)
            if let gap = batch.gap {
                try db.execute(
                    // The same span again (a retried batch) is the same gap.
                    sql: """
                        INSERT INTO ingestion_gap (start_ms, end_ms, detected_at)
                        SELECT ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM ingestion_gap WHERE start_ms = ? AND end_ms = ?)
                        """,
                    arguments: [
                        Self.milliseconds(gap.start), Self.milliseconds(gap.end), gap.detectedAt.timeIntervalSince1970, Self.milliseconds(gap.start),
                        Self.milliseconds(gap.end),
                    ])
            }
            if !batch.quarantined.isEmpty {
                let insert = try db.makeStatement(
                    sql: """
                        INSERT OR IGNORE INTO audit_quarantine (digest, kind, event_id, reason, raw, raw_truncated, received_at)
                        VALUES (?, ?, ?, ?, ?, ?, ?)
                        """)
                for record in batch.quarantined {
                    try insert.execute(arguments: [
                        record.digest, record.kind.rawValue, record.eventId, record.reason, Data(record.raw), record.rawTruncated,
                        record.receivedAt.timeIntervalSince1970,
                    ])
                }
                try db.execute(
                    sql: """
                        DELETE FROM audit_quarantine WHERE digest IN
                            (SELECT digest FROM audit_quarantine ORDER BY received_at DESC, digest LIMIT -1 OFFSET ?)
                        """, arguments: [quarantineLimit])
            }
            return fresh.count
        }
    }

    public func auditEvents(from: Date, to: Date) async throws -> [AuditEvent] {
        let rows = try await read { db in
            try Data.fetchAll(
                db, sql: "SELECT content FROM audit_event WHERE event_date >= ? AND event_date < ? ORDER BY event_date, id",
                arguments: [Self.milliseconds(from), Self.milliseconds(to)])
        }
        return try rows.map { try Self.event($0) }
    }

    public func auditEvents(from: Date, to: Date, entityIds: Set<String>) async throws -> [AuditEvent] {
        guard !entityIds.isEmpty else { return [] }
        let ids = entityIds.sorted()
        let rows = try await read { db in
            var rows: [Data] = []
            // The date-first index finds the window; its entity column is checked without reading
            // the rows. In chunks (each a pass over the window), large ones: SQLite limits the number
            // of bound parameters (32,766).
            for start in stride(from: 0, to: ids.count, by: 10_000) {
                let chunk = Array(ids[start..<min(ids.count, start + 10_000)])
                let marks = Array(repeating: "?", count: chunk.count).joined(separator: ",")
                var arguments = StatementArguments(chunk)
                arguments += [Self.milliseconds(from), Self.milliseconds(to)]
                rows += try Data.fetchAll(
                    db, sql: "SELECT content FROM audit_event WHERE entity_id IN (\(marks)) AND event_date >= ? AND event_date < ?",
                    arguments: arguments)
            }
            return rows
        }
        return try rows.map { try Self.event($0) }.sorted { ($0.date, $0.id) < ($1.date, $1.id) }
    }

    static func event(_ content: Data) throws -> AuditEvent { try AuditEvent.stored(content) }

    public func auditFindings(_ query: FindingQuery) async throws -> [AuditFinding] {
        try await read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT * FROM audit_finding WHERE event_date >= ? AND severity >= ?
                    ORDER BY event_date DESC, rule_id LIMIT ?
                    """,
                arguments: [query.since.map(Self.milliseconds) ?? Int64.min, query.minimumSeverity.rawValue, query.limit]
            ).map { row in
                let expires = row["approval_expires"] as Double?
                return AuditFinding(
                    fingerprint: row["fingerprint"], ruleId: row["rule_id"], title: row["title"],
                    severity: Severity(rawValue: row["severity"]) ?? .low, controls: FindingColumns.unlist(row["controls"]),
                    eventIds: FindingColumns.unlist(row["event_ids"]), date: Self.date(milliseconds: row["event_date"]),
                    serviceName: row["service"], entityType: row["entity_type"], entityId: row["entity_id"], entityName: row["entity_name"],
                    action: row["action"], actor: row["actor"], actorId: row["actor_id"], clientId: row["client_id"],
                    remoteIp: FindingColumns.unlist(row["remote_ip"]), evidence: FindingColumns.unlist(row["evidence"]),
                    status: AuditFinding.Status(rawValue: row["status"]) ?? .open,
                    approval: expires.map {
                        Approval(
                            fingerprint: row["fingerprint"], ticket: row["approval_ticket"], approver: row["approval_approver"] ?? "",
                            createdAt: Date(timeIntervalSince1970: 0), expiresAt: Date(timeIntervalSince1970: $0))
                    })
            }
        }
    }

    public func ingestionGaps() async throws -> [IngestionGap] {
        try await read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM ingestion_gap ORDER BY id").map { row in
                IngestionGap(
                    start: Self.date(milliseconds: row["start_ms"]), end: Self.date(milliseconds: row["end_ms"]),
                    detectedAt: Date(timeIntervalSince1970: row["detected_at"]))
            }
        }
    }

    public func quarantinedRecords(limit: Int) async throws -> [QuarantinedRecord] {
        try await read { db in
            try Row.fetchAll(
                db, sql: "SELECT * FROM audit_quarantine ORDER BY received_at DESC, digest LIMIT ?", arguments: [max(0, limit)]
            ).map { row in
                var record = QuarantinedRecord(
                    kind: QuarantinedRecord.Kind(rawValue: row["kind"]) ?? .unreadable, eventId: row["event_id"], reason: row["reason"],
                    raw: Array(row["raw"] as Data), receivedAt: Date(timeIntervalSince1970: row["received_at"]))
                record.digest = row["digest"]
                record.rawTruncated = row["raw_truncated"]
                return record
            }
        }
    }

    public func quarantineCount() async throws -> Int {
        try await read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM audit_quarantine") ?? 0 }
    }
}
