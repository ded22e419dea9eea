import AuditCore
import Foundation
import PostgresNIO

/// One organisation's state in a PostgreSQL database: every statement names the organisation,
/// so nothing another organisation wrote is ever read. Given a fence (the organisation's lease),
/// every write checks inside its transaction that the lease is still held at that token.
public final class PostgresAuditStore: AuditStore {
    public let database: PostgresDatabase
    public let organization: String
    public let fence: Fence?

    init(database: PostgresDatabase, organization: String, fence: Fence?) {
        self.database = database
        self.organization = organization
        self.fence = fence
    }

    func write<T: Sendable>(_ body: @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        try await database.transaction(fence: fence, body)
    }

    func read(_ query: PostgresQuery) async throws -> [PostgresRandomAccessRow] {
        try await database.rows(query)
    }

    // MARK: Snapshots

    @discardableResult
    public func storeSnapshot(_ snapshot: Snapshot, document: [UInt8]?, collectedAt: Date) async throws -> StoredSnapshot {
        let record = SnapshotRecord(snapshot, document: document, collectedAt: collectedAt)
        let org = organization
        try await write { connection in try await self.insert(record, org: org, on: connection) }
        return record.info
    }

    func insert(_ record: SnapshotRecord, org: String, on connection: PostgresConnection) async throws {
        try await database.run(
            """
            INSERT INTO snapshot (org, root_hash, schema, collected_at, stored_at, organization_name, users, partial, content, preview)
            VALUES (\(org), \(record.rootHash), \(Snapshot.schema), \(record.collectedAt.pgMilliseconds), \(Date().pgMilliseconds),
                \(record.organizationName), \(Int64(record.users)), \(record.partial), \(Data.sharing(record.content)), \(Data(record.preview)))
            ON CONFLICT (org, root_hash) DO UPDATE SET preview = excluded.preview WHERE snapshot.preview IS NULL
            """, on: connection)
    }

    public func snapshot(rootHash: String) async throws -> Snapshot? {
        guard let content = try await snapshotDocument(rootHash: rootHash) else { return nil }
        do {
            return try Snapshot(canonicalBytes: content)
        } catch {
            throw StoreError(.corrupt, "snapshot \(rootHash) of \(organization) in \(database.location) cannot be read: \(error)")
        }
    }

    public func snapshotDocument(rootHash: String) async throws -> [UInt8]? {
        let rows = try await read("SELECT content FROM snapshot WHERE org = \(organization) AND root_hash = \(rootHash)")
        guard let row = rows.first else { return nil }
        return [UInt8](try row.get("content", as: Data.self))
    }

    public func snapshotPreview(rootHash: String) async throws -> SnapshotPreview? {
        let rows = try await read("SELECT preview FROM snapshot WHERE org = \(organization) AND root_hash = \(rootHash)")
        guard let row = rows.first, let bytes = try row.get("preview", as: Data?.self) else { return nil }
        return SnapshotPreview(encoded: [UInt8](bytes))
    }

    public func snapshots() async throws -> [StoredSnapshot] {
        try await read(
            """
            SELECT root_hash, collected_at, organization_name, users, partial, octet_length(content)::bigint AS bytes
            FROM snapshot WHERE org = \(organization) ORDER BY collected_at DESC, stored_at DESC
            """
        ).map { row in
            StoredSnapshot(
                rootHash: try row.get("root_hash"), collectedAt: try row.date("collected_at"), organizationName: try row.get("organization_name"),
                users: Int(try row.get("users", as: Int64.self)), partial: try row.get("partial"), byteCount: Int(try row.get("bytes", as: Int64.self)))
        }
    }

    @discardableResult
    public func pruneSnapshots(keepLatest: Int) async throws -> Int {
        let org = organization
        return try await write { connection in
            try await self.database.run(
                """
                DELETE FROM snapshot s WHERE s.org = \(org)
                  AND s.root_hash NOT IN (SELECT root_hash FROM baseline WHERE org = \(org))
                  AND s.root_hash NOT IN (
                    SELECT root_hash FROM snapshot WHERE org = \(org) ORDER BY collected_at DESC, stored_at DESC LIMIT \(Int64(max(0, keepLatest))))
                RETURNING 1
                """, on: connection)
        }
    }

    // MARK: Baselines

    public func acceptBaseline(rootHash: String, acceptedBy: String, note: String?, at date: Date) async throws -> Baseline {
        let org = organization
        let location = database.location
        let date = date.storePrecision
        return try await write { connection in
            guard try await self.database.run("SELECT 1 FROM snapshot WHERE org = \(org) AND root_hash = \(rootHash)", on: connection) > 0 else {
                throw StoreError(.notFound, "\(location) holds no snapshot \(rootHash) for \(org)")
            }
            return try await self.insertBaseline(rootHash: rootHash, acceptedBy: acceptedBy, note: note, at: date, on: connection)
        }
    }

    public func acceptBaseline(snapshot: Snapshot, collectedAt: Date, acceptedBy: String, note: String?, at date: Date) async throws -> Baseline {
        let record = SnapshotRecord(snapshot, collectedAt: collectedAt)
        let org = organization
        let date = date.storePrecision
        return try await write { connection in
            try await self.insert(record, org: org, on: connection)
            return try await self.insertBaseline(rootHash: record.rootHash, acceptedBy: acceptedBy, note: note, at: date, on: connection)
        }
    }

    func insertBaseline(rootHash: String, acceptedBy: String, note: String?, at date: Date, on connection: PostgresConnection) async throws -> Baseline {
        let org = organization
        // Versions per organisation; the organisation's row is locked so two accepts queue.
        try await database.run("SELECT pg_advisory_xact_lock(hashtext(\(org))::bigint) IS NULL", on: connection)
        let rows = try await database.rows(
            """
            INSERT INTO baseline (org, version, root_hash, accepted_at, accepted_by, note)
            SELECT \(org), COALESCE(MAX(version), 0) + 1, \(rootHash), \(date.pgMilliseconds), \(acceptedBy), \(note) FROM baseline WHERE org = \(org)
            RETURNING version
            """, on: connection)
        let version = try rows.first?.get("version", as: Int64.self) ?? 0
        return Baseline(version: Int(version), rootHash: rootHash, acceptedAt: date, acceptedBy: acceptedBy, note: note)
    }

    public func currentBaseline() async throws -> Baseline? {
        try await read("SELECT * FROM baseline WHERE org = \(organization) ORDER BY version DESC LIMIT 1").first.map(Self.baseline)
    }

    public func baselines() async throws -> [Baseline] {
        try await read("SELECT * FROM baseline WHERE org = \(organization) ORDER BY version").map(Self.baseline)
    }

    static func baseline(_ row: PostgresRandomAccessRow) throws -> Baseline {
        Baseline(
            version: Int(try row.get("version", as: Int64.self)), rootHash: try row.get("root_hash"), acceptedAt: try row.date("accepted_at"),
            acceptedBy: try row.get("accepted_by"), note: try row.get("note"))
    }

    // MARK: Lineage

    public func roleLineage() async throws -> RoleLineage {
        var links: [String: String] = [:]
        for row in try await read("SELECT role_id, lineage_id FROM role_lineage WHERE org = \(organization)") {
            links[try row.get("role_id", as: String.self)] = try row.get("lineage_id", as: String.self)
        }
        return RoleLineage(links: links)
    }

    public func recordLineage(_ links: [String: String], at date: Date) async throws {
        guard !links.isEmpty else { return }
        let org = organization
        let sorted = links.sorted { $0.key < $1.key }
        try await write { connection in
            try await self.database.run(
                """
                INSERT INTO role_lineage (org, role_id, lineage_id, linked_at)
                SELECT \(org), r, l, \(date.pgMilliseconds) FROM unnest(\(sorted.map(\.key))::text[], \(sorted.map(\.value))::text[]) AS t(r, l)
                ON CONFLICT DO NOTHING
                """, on: connection)
        }
    }

    // MARK: Approvals

    public func addApproval(_ approval: Approval) async throws {
        let approval = approval.storePrecision
        let org = organization
        try await write { connection in
            try await self.database.run(
                """
                INSERT INTO approval (org, fingerprint, ticket, note, approver, created_at, expires_at, revoked_at)
                VALUES (\(org), \(approval.fingerprint), \(approval.ticket), \(approval.note), \(approval.approver),
                    \(approval.createdAt.pgMilliseconds), \(approval.expiresAt.pgMilliseconds), \(approval.revokedAt?.pgMilliseconds))
                """, on: connection)
        }
    }

    public func approvals() async throws -> [Approval] {
        try await read("SELECT * FROM approval WHERE org = \(organization) ORDER BY created_at, id").map { row in
            Approval(
                fingerprint: try row.get("fingerprint"), ticket: try row.get("ticket"), note: try row.get("note"), approver: try row.get("approver"),
                createdAt: try row.date("created_at"), expiresAt: try row.date("expires_at"), revokedAt: try row.optionalDate("revoked_at"))
        }
    }

    public func revokeApprovals(fingerprint: String, at date: Date) async throws -> Int {
        let org = organization
        return try await write { connection in
            try await self.database.run(
                """
                UPDATE approval SET revoked_at = \(date.pgMilliseconds)
                WHERE org = \(org) AND fingerprint = \(fingerprint) AND revoked_at IS NULL RETURNING 1
                """, on: connection)
        }
    }

    // MARK: Findings

    public func recordFindings(_ items: [DriftItem], baselineVersion: Int?, at date: Date, deliveries: [OutboxItem]) async throws {
        guard !items.isEmpty || !deliveries.isEmpty else { return }
        let org = organization
        let at = date.pgMilliseconds
        let version = baselineVersion.map(Int64.init)
        try await write { connection in
            if !items.isEmpty {
                try await self.database.run(
                    """
                    INSERT INTO finding (org, fingerprint, kind, severity, summary, cause, first_seen, last_seen, baseline_version)
                    SELECT \(org), f, k, s, m, c, \(at), \(at), \(version)
                    FROM unnest(\(items.map(\.fingerprint))::text[], \(items.map(\.kind.rawValue))::text[], \(items.map { Int64($0.severity.rawValue) })::bigint[],
                        \(items.map(\.summary))::text[], \(items.map { $0.causeFingerprint ?? "" })::text[]) AS t(f, k, s, m, c0)
                    CROSS JOIN LATERAL (SELECT NULLIF(c0, '') AS c) AS n
                    ON CONFLICT (org, fingerprint) DO UPDATE SET
                        severity = excluded.severity, summary = excluded.summary, cause = excluded.cause,
                        last_seen = excluded.last_seen, baseline_version = excluded.baseline_version
                    """, on: connection)
            }
            // Each drift item's payloads are queued once ever: the finding row remembers it.
            guard !deliveries.isEmpty else { return }
            let ids = Array(Set(deliveries.map(\.payload.id)))
            var queued = Set<String>()
            for row in try await self.database.rows(
                "SELECT fingerprint FROM finding WHERE org = \(org) AND fingerprint = ANY(\(ids)::text[]) AND queued_at IS NOT NULL", on: connection)
            {
                queued.insert(try row.get("fingerprint"))
            }
            let due = deliveries.filter { !queued.contains($0.payload.id) }
            try await PostgresOutbox.queue(due, org: org, at: date, database: self.database, on: connection)
            let marked = Array(Set(due.map(\.payload.id)))
            if !marked.isEmpty {
                try await self.database.run(
                    "UPDATE finding SET queued_at = \(at) WHERE org = \(org) AND fingerprint = ANY(\(marked)::text[])", on: connection)
            }
        }
    }

    public func findings(fingerprintPrefix prefix: String) async throws -> [Finding] {
        try await read(
            """
            SELECT * FROM finding WHERE org = \(organization) AND starts_with(fingerprint, \(prefix))
            ORDER BY fingerprint COLLATE "C"
            """
        ).map { row in
            Finding(
                fingerprint: try row.get("fingerprint"), kind: try row.get("kind"),
                severity: Severity(rawValue: Int(try row.get("severity", as: Int32.self))) ?? .low, summary: try row.get("summary"),
                causeFingerprint: try row.get("cause"), firstSeen: try row.date("first_seen"), lastSeen: try row.date("last_seen"),
                baselineVersion: try row.get("baseline_version", as: Int64?.self).map(Int.init))
        }
    }
}
