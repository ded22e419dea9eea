import AuditCore
import Foundation
import GRDB
import GRDBSQLite

extension SQLiteAuditStore {
    // MARK: Snapshots

    @discardableResult
    public func storeSnapshot(_ snapshot: Snapshot, document: [UInt8]?, collectedAt: Date) async throws -> StoredSnapshot {
        let record = SnapshotRecord(snapshot, document: document, collectedAt: collectedAt)
        try await write { db in try record.insert(db) }
        return record.info
    }

    public func snapshot(rootHash: String) async throws -> Snapshot? {
        guard let content = try await snapshotDocument(rootHash: rootHash) else { return nil }
        do {
            return try Snapshot(canonicalBytes: content)
        } catch {
            throw StoreError(.corrupt, "snapshot \(rootHash) in \(path) cannot be read: \(error)")
        }
    }

    public func snapshotDocument(rootHash: String) async throws -> [UInt8]? {
        // Read from the row a megabyte at a time into the one array the reader scans: fetched as
        // a column, SQLite would first assemble the whole document (100 MB and more) itself.
        try await read { db in
            guard let row = try Int64.fetchOne(db, sql: "SELECT rowid FROM snapshot WHERE root_hash = ?", arguments: [rootHash]) else { return nil }
            return try SnapshotRecord.readBlob(db, table: "snapshot", column: "content", row: row)
        }
    }

    public func snapshotPreview(rootHash: String) async throws -> SnapshotPreview? {
        let bytes = try await read { db in
            try Data.fetchOne(db, sql: "SELECT preview FROM snapshot_preview WHERE root_hash = ?", arguments: [rootHash])
        }
        return bytes.flatMap { SnapshotPreview(encoded: [UInt8]($0)) }
    }

    public func snapshots() async throws -> [StoredSnapshot] {
        try await read { db in
            try Row.fetchAll(
                db,
                sql: """
                    SELECT root_hash, collected_at, organization_name, users, partial, length(content) AS bytes
                    FROM snapshot ORDER BY collected_at DESC, stored_at DESC
                    """
            ).map { row in
                StoredSnapshot(
                    rootHash: row["root_hash"], collectedAt: Date(timeIntervalSince1970: row["collected_at"]),
                    organizationName: row["organization_name"], users: row["users"], partial: row["partial"],
                    byteCount: row["bytes"])
            }
        }
    }

    @discardableResult
    public func pruneSnapshots(keepLatest: Int) async throws -> Int {
        try await write { db in
            try db.execute(
                sql: """
                    DELETE FROM snapshot
                    WHERE root_hash NOT IN (SELECT root_hash FROM baseline)
                      AND root_hash NOT IN (
                        SELECT root_hash FROM snapshot ORDER BY collected_at DESC, stored_at DESC LIMIT ?)
                    """,
                arguments: [max(0, keepLatest)])
            let pruned = db.changesCount
            try db.execute(sql: "DELETE FROM snapshot_preview WHERE root_hash NOT IN (SELECT root_hash FROM snapshot)")
            return pruned
        }
    }

    // MARK: Baselines

    public func acceptBaseline(rootHash: String, acceptedBy: String, note: String?, at date: Date) async throws -> Baseline {
        let path = self.path
        let date = date.storePrecision
        return try await write { db in
            guard try Bool.fetchOne(db, sql: "SELECT 1 FROM snapshot WHERE root_hash = ?", arguments: [rootHash]) == true else {
                throw StoreError(.notFound, "\(path) holds no snapshot \(rootHash)")
            }
            return try Self.insertBaseline(db, rootHash: rootHash, acceptedBy: acceptedBy, note: note, at: date)
        }
    }

    public func acceptBaseline(
        snapshot: Snapshot, collectedAt: Date, acceptedBy: String, note: String?, at date: Date
    ) async throws -> Baseline {
        let record = SnapshotRecord(snapshot, collectedAt: collectedAt)
        let date = date.storePrecision
        return try await write { db in
            try record.insert(db)
            return try Self.insertBaseline(db, rootHash: record.rootHash, acceptedBy: acceptedBy, note: note, at: date)
        }
    }

    static func insertBaseline(_ db: Database, rootHash: String, acceptedBy: String, note: String?, at date: Date) throws -> Baseline {
        try db.execute(
            sql: "INSERT INTO baseline (root_hash, accepted_at, accepted_by, note) VALUES (?, ?, ?, ?)",
            arguments: [rootHash, date.timeIntervalSince1970, acceptedBy, note])
        return Baseline(
            version: Int(db.lastInsertedRowID), rootHash: rootHash, acceptedAt: date, acceptedBy: acceptedBy, note: note)
    }

    public func currentBaseline() async throws -> Baseline? {
        try await read { db in
            try Row.fetchOne(db, sql: "SELECT * FROM baseline ORDER BY version DESC LIMIT 1").map(Self.baseline)
        }
    }

    public func baselines() async throws -> [Baseline] {
        try await read { db in try Row.fetchAll(db, sql: "SELECT * FROM baseline ORDER BY version").map(Self.baseline) }
    }

    static func baseline(_ row: Row) -> Baseline {
        Baseline(
            version: row["version"], rootHash: row["root_hash"], acceptedAt: Date(timeIntervalSince1970: row["accepted_at"]),
            acceptedBy: row["accepted_by"], note: row["note"])
    }

    // MARK: Lineage

    public func roleLineage() async throws -> RoleLineage {
        let links = try await read { db in
            try Row.fetchAll(db, sql: "SELECT role_id, lineage_id FROM role_lineage").map { ($0["role_id"] as String, $0["lineage_id"] as String) }
        }
        return RoleLineage(links: Dictionary(links, uniquingKeysWith: { a, _ in a }))
    }

    public func recordLineage(_ links: [String: String], at date: Date) async throws {
        guard !links.isEmpty else { return }
        try await write { db in
            for (role, lineage) in links.sorted(by: { $0.key < $1.key }) {
                try db.execute(
                    sql: "INSERT OR IGNORE INTO role_lineage (role_id, lineage_id, linked_at) VALUES (?, ?, ?)",
                    arguments: [role, lineage, date.timeIntervalSince1970])
            }
        }
    }

    // MARK: Approvals

    public func addApproval(_ approval: Approval) async throws {
        let approval = approval.storePrecision
        try await write { db in
            try db.execute(
                sql: """
                    INSERT INTO approval (fingerprint, ticket, note, approver, created_at, expires_at, revoked_at)
                    VALUES (?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    approval.fingerprint, approval.ticket, approval.note, approval.approver,
                    approval.createdAt.timeIntervalSince1970, approval.expiresAt.timeIntervalSince1970,
                    approval.revokedAt?.timeIntervalSince1970,
                ])
        }
    }

    public func approvals() async throws -> [Approval] {
        try await read { db in
            try Row.fetchAll(db, sql: "SELECT * FROM approval ORDER BY created_at, id").map { row in
                Approval(
                    fingerprint: row["fingerprint"], ticket: row["ticket"], note: row["note"], approver: row["approver"],
                    createdAt: Date(timeIntervalSince1970: row["created_at"]), expiresAt: Date(timeIntervalSince1970: row["expires_at"]),
                    revokedAt: (row["revoked_at"] as Double?).map(Date.init(timeIntervalSince1970:)))
            }
        }
    }

    public func revokeApprovals(fingerprint: String, at date: Date) async throws -> Int {
        let date = date.storePrecision
        return try await write { db in
            try db.execute(
                sql: "UPDATE approval SET revoked_at = ? WHERE fingerprint = ? AND revoked_at IS NULL",
                arguments: [date.timeIntervalSince1970, fingerprint])
            return db.changesCount
        }
    }

    // MARK: Findings

    public func recordFindings(_ items: [DriftItem], baselineVersion: Int?, at date: Date, deliveries: [OutboxItem]) async throws {
        guard !items.isEmpty || !deliveries.isEmpty else { return }
        let rows = items.map { ($0.fingerprint, $0.kind.rawValue, $0.severity.rawValue, $0.summary, $0.causeFingerprint) }
        let date = date.storePrecision
        try await write { db in
            let statement = try db.makeStatement(
                sql: """
                    INSERT INTO finding (fingerprint, kind, severity, summary, cause, first_seen, last_seen, baseline_version)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT(fingerprint) DO UPDATE SET
                        severity = excluded.severity, summary = excluded.summary, cause = excluded.cause,
                        last_seen = excluded.last_seen, baseline_version = excluded.baseline_version
                    """)
            for row in rows {
                try statement.execute(arguments: [
                    row.0, row.1, row.2, row.3, row.4, date.timeIntervalSince1970, date.timeIntervalSince1970, baselineVersion,
                ])
            }
            // Each drift item's payloads are queued once ever: the finding row remembers it.
            var due: [OutboxItem] = []
            for item in deliveries {
                let queued = try Double.fetchOne(db, sql: "SELECT queued_at FROM finding WHERE fingerprint = ?", arguments: [item.payload.id])
                if queued == nil { due.append(item) }
            }
            try Self.queue(due, at: date, in: db)
            for fingerprint in Set(due.map(\.payload.id)) {
                try db.execute(sql: "UPDATE finding SET queued_at = ? WHERE fingerprint = ?", arguments: [date.timeIntervalSince1970, fingerprint])
            }
        }
    }

    public func findings(fingerprintPrefix prefix: String) async throws -> [Finding] {
        try await read { db in
            try Row.fetchAll(
                db, sql: "SELECT * FROM finding WHERE fingerprint >= ? AND fingerprint < ? ORDER BY fingerprint",
                arguments: [prefix, prefix + "\u{10FFFF}"]
            ).map { row in
                Finding(
                    fingerprint: row["fingerprint"], kind: row["kind"], severity: Severity(rawValue: row["severity"]) ?? .low,
                    summary: row["summary"], causeFingerprint: row["cause"], firstSeen: Date(timeIntervalSince1970: row["first_seen"]),
                    lastSeen: Date(timeIntervalSince1970: row["last_seen"]), baselineVersion: row["baseline_version"])
            }
        }
    }
}

/// A snapshot ready to be written: canonical bytes and the columns that describe it.
struct SnapshotRecord: Sendable {
    var rootHash: String
    var content: [UInt8]
    var collectedAt: Date
    var organizationName: String?
    var users: Int
    var partial: Bool
    var preview: [UInt8]

    init(_ snapshot: Snapshot, document: [UInt8]? = nil, collectedAt: Date) {
        rootHash = SnapshotDigest.root(of: snapshot)
        content = document ?? snapshot.canonicalJSON()
        preview = SnapshotPreview(snapshot).encoded()
        self.collectedAt = collectedAt.storePrecision
        organizationName = snapshot.organization?.name
        users = snapshot.users.count
        partial = snapshot.isPartial
    }

    var info: StoredSnapshot {
        StoredSnapshot(
            rootHash: rootHash, collectedAt: collectedAt, organizationName: organizationName, users: users, partial: partial,
            byteCount: content.count)
    }

    /// Inserts the snapshot unless the same content is already stored (then only a missing
    /// preview is added: one stored by an older rbacwatch). The document is written into its row
    /// a megabyte at a time: bound as a whole, SQLite would take a copy of it (100 MB and more).
    func insert(_ db: Database) throws {
        if try Bool.fetchOne(db, sql: "SELECT 1 FROM snapshot WHERE root_hash = ?", arguments: [rootHash]) != true {
            try db.execute(
                sql: """
                    INSERT INTO snapshot (root_hash, schema, collected_at, stored_at, organization_name, users, partial, content)
                    VALUES (?, ?, ?, ?, ?, ?, ?, zeroblob(?))
                    """,
                arguments: [
                    rootHash, Snapshot.schema, collectedAt.timeIntervalSince1970, Date().timeIntervalSince1970, organizationName,
                    users, partial, content.count,
                ])
            try Self.writeBlob(db, table: "snapshot", column: "content", row: db.lastInsertedRowID, content)
        }
        try db.execute(sql: "INSERT OR IGNORE INTO snapshot_preview (root_hash, preview) VALUES (?, ?)", arguments: [rootHash, Data(preview)])
    }

    /// Reads a whole blob, in pieces, into one array.
    static func readBlob(_ db: Database, table: String, column: String, row: Int64) throws -> [UInt8] {
        var blob: OpaquePointer?
        let opened = sqlite3_blob_open(db.sqliteConnection, "main", table, column, row, 0, &blob)
        defer { sqlite3_blob_close(blob) }
        guard opened == SQLITE_OK, let blob else {
            throw DatabaseError(resultCode: ResultCode(rawValue: opened), message: "cannot open the \(table) row for reading")
        }
        let size = Int(sqlite3_blob_bytes(blob))
        return try [UInt8](unsafeUninitializedCapacity: size) { buffer, initialized in
            var offset = 0
            while offset < size {
                let count = min(1 << 20, size - offset)
                let read = sqlite3_blob_read(blob, buffer.baseAddress! + offset, Int32(count), Int32(offset))
                guard read == SQLITE_OK else {
                    throw DatabaseError(resultCode: ResultCode(rawValue: read), message: "cannot read the \(table) row")
                }
                offset += count
            }
            initialized = size
        }
    }

    /// Writes `bytes` into a blob already sized for them (`zeroblob`), in pieces.
    static func writeBlob(_ db: Database, table: String, column: String, row: Int64, _ bytes: [UInt8]) throws {
        guard !bytes.isEmpty else { return }
        // (SQLite's own limit, a billion bytes, refuses larger ones at the insert.)
        guard bytes.count <= Int(Int32.max) else { throw DatabaseError(resultCode: .SQLITE_TOOBIG, message: "\(bytes.count) bytes") }
        var blob: OpaquePointer?
        let opened = sqlite3_blob_open(db.sqliteConnection, "main", table, column, row, 1, &blob)
        defer { sqlite3_blob_close(blob) }
        guard opened == SQLITE_OK, let blob else {
            throw DatabaseError(resultCode: ResultCode(rawValue: opened), message: "cannot open the \(table) row for writing")
        }
        try bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let count = min(1 << 20, raw.count - offset)
                let written = sqlite3_blob_write(blob, raw.baseAddress! + offset, Int32(count), Int32(offset))
                guard written == SQLITE_OK else {
                    throw DatabaseError(resultCode: ResultCode(rawValue: written), message: "cannot write the \(table) row")
                }
                offset += count
            }
        }
    }
}
