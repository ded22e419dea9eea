import AuditCore
import Foundation
import PostgresNIO

extension PostgresAuditStore {
    public func ingestionCheckpoint() async throws -> IngestionCheckpoint? {
        try await read("SELECT * FROM ingestion_checkpoint WHERE org = \(organization)").first.map { row in
            IngestionCheckpoint(highWater: try row.date("high_water"), criticalHighWater: try row.optionalDate("critical_high_water"), updatedAt: try row.date("updated_at"))
        }
    }

    public func recordedAuditEvents(ids: [String], datedFrom from: Date, to: Date) async throws -> [String: AuditEvent] {
        guard !ids.isEmpty else { return [:] }
        var found: [String: AuditEvent] = [:]
        for row in try await read(
            """
            SELECT content FROM audit_event WHERE org = \(organization) AND id = ANY(\(ids)::text[])
              AND event_date >= \(from.pgMilliseconds) AND event_date < \(to.pgMilliseconds)
            """)
        {
            let event = try Self.event(try row.get("content", as: Data.self))
            found[event.id] = event
        }
        return found
    }

    @discardableResult
    public func recordAudit(_ batch: AuditBatch) async throws -> Int {
        let org = organization
        let token = fence?.token
        let now = Date().pgMilliseconds
        return try await write { connection in
            var fresh = Set<String>()
            // Events in one statement; the ids it returns are the new ones.
            let events = batch.events
            if !events.isEmpty {
                let rows = try await self.database.rows(
                    """
                    INSERT INTO audit_event (org, id, event_date, service, entity_type, entity_id, action, actor, content, recorded_at, fence)
                    SELECT \(org), i, d, s, t, e, a, NULLIF(u, ''), decode(c, 'base64'), \(now), \(token)
                    FROM unnest(\(events.map(\.id))::text[], \(events.map { $0.date.pgMilliseconds })::bigint[], \(events.map(\.serviceName))::text[],
                        \(events.map(\.entityType))::text[], \(events.map(\.entityId))::text[], \(events.map(\.action))::text[],
                        \(events.map { $0.userId ?? $0.clientId ?? "" })::text[], \(events.map { Data($0.canonicalJSON()).base64EncodedString() })::text[])
                        AS t(i, d, s, t, e, a, u, c)
                    ON CONFLICT DO NOTHING
                    RETURNING id
                    """, on: connection)
                for row in rows { fresh.insert(try row.get("id")) }
            }
            for finding in batch.findings {
                guard let trigger = finding.eventIds.last, fresh.contains(trigger) else { continue }
                try await self.database.run(
                    """
                    INSERT INTO audit_finding (org, rule_id, event_id, fingerprint, title, severity, controls, event_ids, event_date,
                        service, entity_type, entity_id, entity_name, action, actor, actor_id, client_id, remote_ip, evidence, status,
                        approval_ticket, approval_approver, approval_expires, fence)
                    VALUES (\(org), \(finding.ruleId), \(trigger), \(finding.fingerprint), \(finding.title), \(Int32(finding.severity.rawValue)),
                        \(FindingColumns.list(finding.controls)), \(FindingColumns.list(finding.eventIds)), \(finding.date.pgMilliseconds),
                        \(finding.serviceName), \(finding.entityType), \(finding.entityId), \(finding.entityName), \(finding.action), \(finding.actor),
                        \(finding.actorId), \(finding.clientId), \(FindingColumns.list(finding.remoteIp)), \(FindingColumns.list(finding.evidence)),
                        \(finding.status.rawValue), \(finding.approval?.ticket), \(finding.approval?.approver),
                        \(finding.approval?.expiresAt.pgMilliseconds), \(token))
                    ON CONFLICT DO NOTHING
                    """, on: connection)
            }
            for event in batch.replacing {
                try await self.database.run(
                    """
                    UPDATE audit_event SET service = \(event.serviceName), entity_type = \(event.entityType), entity_id = \(event.entityId),
                        action = \(event.action), actor = \(event.userId ?? event.clientId), content = \(Data(event.canonicalJSON())), fence = \(token)
                    WHERE org = \(org) AND event_date = \(event.date.pgMilliseconds) AND id = \(event.id)
                    """, on: connection)
            }
            let checkpoint = batch.checkpoint
            if !batch.keepsCheckpoint {
                try await self.database.run(
                    """
                    INSERT INTO ingestion_checkpoint (org, high_water, critical_high_water, updated_at, fence)
                    VALUES (\(org), \(checkpoint.highWater.pgMilliseconds), \(checkpoint.criticalHighWater?.pgMilliseconds), \(checkpoint.updatedAt.pgMilliseconds), \(token))
                    ON CONFLICT (org) DO UPDATE SET high_water = excluded.high_water, critical_high_water = excluded.critical_high_water,
                        updated_at = excluded.updated_at, fence = excluded.fence
                    """, on: connection)
            }
            try await PostgresOutbox.queue(
                batch.deliveries.filter { item in item.trigger.map { fresh.contains($0) } ?? true }, org: org, at: checkpoint.updatedAt,
                database: self.database, on: connection)
            if let gap = batch.gap {
                // The same span again (a retried batch) is the same gap.
                try await self.database.run(
                    """
                    INSERT INTO ingestion_gap (org, start_ms, end_ms, detected_at)
                    VALUES (\(org), \(gap.start.pgMilliseconds), \(gap.end.pgMilliseconds), \(gap.detectedAt.pgMilliseconds))
                    ON CONFLICT DO NOTHING
                    """, on: connection)
            }
            if !batch.quarantined.isEmpty {
                for record in batch.quarantined {
                    try await self.database.run(
                        """
                        INSERT INTO audit_quarantine (org, digest, kind, event_id, reason, raw, raw_truncated, received_at)
                        VALUES (\(org), \(record.digest), \(record.kind.rawValue), \(record.eventId), \(record.reason), \(Data(record.raw)),
                            \(record.rawTruncated), \(record.receivedAt.pgMilliseconds))
                        ON CONFLICT DO NOTHING
                        """, on: connection)
                }
                try await self.database.run(
                    """
                    DELETE FROM audit_quarantine WHERE org = \(org) AND digest IN
                        (SELECT digest FROM audit_quarantine WHERE org = \(org) ORDER BY received_at DESC, digest COLLATE "C" OFFSET \(Int64(quarantineLimit)))
                    """, on: connection)
            }
            return fresh.count
        }
    }

    public func auditEvents(from: Date, to: Date) async throws -> [AuditEvent] {
        try await read(
            """
            SELECT content FROM audit_event WHERE org = \(organization) AND event_date >= \(from.pgMilliseconds) AND event_date < \(to.pgMilliseconds)
            ORDER BY event_date, id COLLATE "C"
            """
        ).map { try Self.event(try $0.get("content", as: Data.self)) }
    }

    public func auditEvents(from: Date, to: Date, entityIds: Set<String>) async throws -> [AuditEvent] {
        guard !entityIds.isEmpty else { return [] }
        return try await read(
            """
            SELECT content FROM audit_event WHERE org = \(organization) AND entity_id = ANY(\(entityIds.sorted())::text[])
              AND event_date >= \(from.pgMilliseconds) AND event_date < \(to.pgMilliseconds)
            """
        ).map { try Self.event(try $0.get("content", as: Data.self)) }.sorted { ($0.date, $0.id) < ($1.date, $1.id) }
    }

    static func event(_ content: Data) throws -> AuditEvent { try AuditEvent.stored(content) }

    public func auditFindings(_ query: FindingQuery) async throws -> [AuditFinding] {
        try await read(
            """
            SELECT * FROM audit_finding WHERE org = \(organization) AND event_date >= \(query.since?.pgMilliseconds ?? Int64.min)
              AND severity >= \(Int32(query.minimumSeverity.rawValue))
            ORDER BY event_date DESC, rule_id COLLATE "C" LIMIT \(Int64(max(0, query.limit)))
            """
        ).map { row in
            let expires = try row.optionalDate("approval_expires")
            let fingerprint: String = try row.get("fingerprint")
            let ticket: String? = try row.get("approval_ticket")
            let approver: String? = try row.get("approval_approver")
            return AuditFinding(
                fingerprint: fingerprint, ruleId: try row.get("rule_id"), title: try row.get("title"),
                severity: Severity(rawValue: Int(try row.get("severity", as: Int32.self))) ?? .low,
                controls: FindingColumns.unlist(try row.get("controls")), eventIds: FindingColumns.unlist(try row.get("event_ids")),
                date: try row.date("event_date"), serviceName: try row.get("service"), entityType: try row.get("entity_type"),
                entityId: try row.get("entity_id"), entityName: try row.get("entity_name"), action: try row.get("action"), actor: try row.get("actor"),
                actorId: try row.get("actor_id"), clientId: try row.get("client_id"), remoteIp: FindingColumns.unlist(try row.get("remote_ip")),
                evidence: FindingColumns.unlist(try row.get("evidence")),
                status: AuditFinding.Status(rawValue: try row.get("status")) ?? .open,
                approval: expires.map {
                    Approval(fingerprint: fingerprint, ticket: ticket, approver: approver ?? "", createdAt: Date(timeIntervalSince1970: 0), expiresAt: $0)
                })
        }
    }

    public func ingestionGaps() async throws -> [IngestionGap] {
        try await read("SELECT * FROM ingestion_gap WHERE org = \(organization) ORDER BY id").map { row in
            IngestionGap(start: try row.date("start_ms"), end: try row.date("end_ms"), detectedAt: try row.date("detected_at"))
        }
    }

    public func quarantinedRecords(limit: Int) async throws -> [QuarantinedRecord] {
        try await read(
            """
            SELECT * FROM audit_quarantine WHERE org = \(organization) ORDER BY received_at DESC, digest COLLATE "C" LIMIT \(Int64(max(0, limit)))
            """
        ).map { row in
            var record = QuarantinedRecord(
                kind: QuarantinedRecord.Kind(rawValue: try row.get("kind")) ?? .unreadable, eventId: try row.get("event_id"),
                reason: try row.get("reason"), raw: Array(try row.get("raw", as: Data.self)), receivedAt: try row.date("received_at"))
            record.digest = try row.get("digest")
            record.rawTruncated = try row.get("raw_truncated")
            return record
        }
    }

    public func quarantineCount() async throws -> Int {
        Int(try await read("SELECT COUNT(*)::bigint AS n FROM audit_quarantine WHERE org = \(organization)").first?.get("n", as: Int64.self) ?? 0)
    }
}
