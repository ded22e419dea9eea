import AuditCore
import AuditStore
import Foundation
import GRDB
import Testing

@Suite("SQLite store: files")
struct SQLiteStoreTests {
    @Test("the state file and its directory are private, and the state survives reopening")
    func privateAndPersistent() async throws {
        let dir = try StoreFiles.temporary().appendingPathComponent("nested/state")
        let path = dir.appendingPathComponent("state.sqlite").path
        let store = try SQLiteAuditStore(path: path)
        let baseline = try await store.acceptBaseline(
            snapshot: StoreFiles.snapshot(), collectedAt: Date(), acceptedBy: "ana", note: nil, at: Date())
        #expect(try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int == 0o600)
        #expect(try FileManager.default.attributesOfItem(atPath: dir.path)[.posixPermissions] as? Int == 0o700)
        for suffix in ["-wal", "-shm"] where FileManager.default.fileExists(atPath: path + suffix) {
            #expect(try FileManager.default.attributesOfItem(atPath: path + suffix)[.posixPermissions] as? Int == 0o600)
        }
        let reopened = try SQLiteAuditStore(path: path)
        #expect(try await reopened.currentBaseline() == baseline)
    }

    /// Runs SQL on a file directly, outside rbacwatch.
    static func execute(_ path: String, _ sql: String) throws {
        let queue = try DatabaseQueue(path: path)
        try queue.writeWithoutTransaction { try $0.execute(sql: sql) }
        try queue.close()
    }

    static func digest(_ path: String) throws -> String {
        ContentHash.sha256Hex(Array(try Data(contentsOf: URL(fileURLWithPath: path))))
    }

    @Test("a file that is not SQLite is refused with a clear error and left untouched")
    func notSQLite() throws {
        let path = try StoreFiles.temporary().appendingPathComponent("state.sqlite").path
        try Data("these are my notes, not a database\n".utf8).write(to: URL(fileURLWithPath: path))
        let before = try Self.digest(path)
        do {
            _ = try SQLiteAuditStore(path: path)
            Issue.record("a text file was opened as a store")
        } catch {
            #expect(error.kind == .foreign)
            #expect(error.description.contains("not an rbacwatch state file"))
        }
        #expect(try Self.digest(path) == before)
    }

    @Test("another program's SQLite database is refused and left untouched")
    func foreignSQLite() throws {
        let path = try StoreFiles.temporary().appendingPathComponent("other.sqlite").path
        try Self.execute(path, "CREATE TABLE invoices (id INTEGER PRIMARY KEY, total REAL); INSERT INTO invoices (total) VALUES (12.5)")
        let before = try Self.digest(path)
        do {
            _ = try SQLiteAuditStore(path: path)
            Issue.record("a foreign database was opened as a store")
        } catch {
            #expect(error.kind == .foreign)
            #expect(error.description.contains("another program"))
        }
        #expect(try Self.digest(path) == before)
    }

    @Test("a damaged state file gives a clear error, never a crash, and is not overwritten")
    func corrupt() async throws {
        let path = try StoreFiles.temporary().appendingPathComponent("state.sqlite").path
        do {
            let store = try SQLiteAuditStore(path: path)
            try await store.acceptBaseline(snapshot: StoreFiles.snapshot(users: 200), collectedAt: Date(), acceptedBy: "a", note: nil, at: Date())
        }
        // Checkpoint the WAL into the main file, then damage the pages after the header.
        try Self.execute(path, "PRAGMA wal_checkpoint(TRUNCATE)")
        var bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        for index in stride(from: 100, to: bytes.count, by: 7) { bytes[index] = 0xA5 }
        try bytes.write(to: URL(fileURLWithPath: path))
        let before = try Self.digest(path)
        do {
            let store = try SQLiteAuditStore(path: path)
            _ = try await store.baselineSnapshot()
            Issue.record("a damaged file was read without error")
        } catch let error as StoreError {
            #expect([.corrupt, .foreign].contains(error.kind))
            #expect(error.description.contains(path))
        }
        #expect(try Self.digest(path) == before)
    }

    @Test("a snapshot stored without a preview (an older rbacwatch) has none until stored again; a damaged preview is none, not an error")
    func previewUpgrade() async throws {
        let path = try StoreFiles.temporary().appendingPathComponent("state.sqlite").path
        let snapshot = StoreFiles.snapshot(users: 5)
        let store = try SQLiteAuditStore(path: path)
        let stored = try await store.storeSnapshot(snapshot, collectedAt: Date())
        try Self.execute(path, "DELETE FROM snapshot_preview")
        #expect(try await store.snapshotPreview(rootHash: stored.rootHash) == nil)
        #expect(try await store.snapshot(rootHash: stored.rootHash) == snapshot)
        try await store.storeSnapshot(snapshot, collectedAt: Date())
        #expect(try await store.snapshotPreview(rootHash: stored.rootHash) == SnapshotPreview(snapshot))
        try Self.execute(path, "UPDATE snapshot_preview SET preview = x'72626163'")
        #expect(try await store.snapshotPreview(rootHash: stored.rootHash) == nil)
        #expect(try await store.snapshots().count == 1)
    }

    @Test("a development build's preview column is moved into its own table when the file is opened")
    func previewColumnMoved() async throws {
        let path = try StoreFiles.temporary().appendingPathComponent("state.sqlite").path
        let snapshot = StoreFiles.snapshot(users: 4)
        let root: String
        do {
            let store = try SQLiteAuditStore(path: path)
            root = try await store.storeSnapshot(snapshot, collectedAt: Date()).rootHash
        }
        // The schema that build left: the preview in `snapshot`, no table of its own.
        try Self.execute(path, "ALTER TABLE snapshot ADD COLUMN preview BLOB")
        try Self.execute(path, "UPDATE snapshot SET preview = (SELECT preview FROM snapshot_preview)")
        try Self.execute(path, "DROP TABLE snapshot_preview")
        try Self.execute(path, "DELETE FROM grdb_migrations WHERE identifier = 'v6-snapshot-preview-table'")
        let store = try SQLiteAuditStore(path: path)
        #expect(try await store.snapshotPreview(rootHash: root) == SnapshotPreview(snapshot))
        #expect(try await store.snapshot(rootHash: root) == snapshot)
        let queue = try DatabaseQueue(path: path)
        let columns = try await queue.read { try $0.columns(in: "snapshot").map(\.name) }
        #expect(!columns.contains("preview") && columns.contains("content"))
        try queue.close()
    }

    @Test("audit events are indexed date first (a file with the entity-keyed index is moved over); entity lookups scan only the window's index entries")
    func auditEventIndexes() async throws {
        let path = try StoreFiles.temporary().appendingPathComponent("state.sqlite").path
        let at = Date(timeIntervalSince1970: 1_800_000_000)
        let events = (0..<6).map { n in
            AuditEvent(id: "e\(n)", date: at.addingTimeInterval(Double(n) * 60), serviceName: "PeoplePermissions", entityType: "Role", action: "Update", entityId: "r\(n % 2)")
        }
        do {
            let store = try SQLiteAuditStore(path: path)
            try await store.recordAudit(AuditBatch(events: events, findings: [], checkpoint: IngestionCheckpoint(highWater: at, updatedAt: at)))
        }
        // The indexes an older rbacwatch left.
        try Self.execute(path, "DROP INDEX audit_event_by_date_entity")
        try Self.execute(path, "CREATE INDEX audit_event_by_date ON audit_event(event_date)")
        try Self.execute(path, "CREATE INDEX audit_event_by_entity ON audit_event(entity_id)")
        try Self.execute(path, "DELETE FROM grdb_migrations WHERE identifier = 'v7-audit-event-date-first'")
        let store = try SQLiteAuditStore(path: path)
        let found = try await store.auditEvents(from: at.addingTimeInterval(60), to: at.addingTimeInterval(300), entityIds: ["r1"])
        #expect(found.map(\.id) == ["e1", "e3"])
        #expect(try await store.auditEvents(from: at, to: at.addingTimeInterval(120)).map(\.id) == ["e0", "e1"])
        let queue = try DatabaseQueue(path: path)
        let indexes = try await queue.read { db in try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'audit_event' AND sql IS NOT NULL ORDER BY name") }
        #expect(indexes == ["audit_event_by_date_entity", "audit_event_key"])
        let plan = try await queue.read { db in
            try Row.fetchAll(db, sql: "EXPLAIN QUERY PLAN SELECT content FROM audit_event WHERE entity_id IN (?, ?) AND event_date >= ? AND event_date < ?", arguments: ["r1", "r2", 0, 1])
                .map { $0["detail"] as String }.joined(separator: "; ")
        }
        #expect(plan.contains("USING INDEX audit_event_by_date_entity (event_date>? AND event_date<?)"), "\(plan)")
        try queue.close()
    }

    @Test("audit events are keyed by (date, id) with no index of the id alone (a file keyed by id is moved over, its findings kept); lookups name the span")
    func auditEventKeyedByDate() async throws {
        let path = try StoreFiles.temporary().appendingPathComponent("state.sqlite").path
        let at = Date(timeIntervalSince1970: 1_800_000_000)
        let events = (0..<4).map { n in
            AuditEvent(id: "e\(n)", date: at.addingTimeInterval(Double(n) * 60), serviceName: "PeoplePermissions", entityType: "Role", action: "Update", entityId: "r\(n)")
        }
        let trigger = events[2]
        let finding = AuditFinding(
            fingerprint: "fp-1", ruleId: "RBW-001", title: "Rule", severity: .high, controls: [], eventIds: [trigger.id], date: trigger.date,
            serviceName: trigger.serviceName, entityType: trigger.entityType, entityId: trigger.entityId, entityName: "", action: trigger.action,
            actor: "Ana", actorId: nil, clientId: nil, remoteIp: [], evidence: [], status: .open, approval: nil)
        let checkpoint = IngestionCheckpoint(highWater: at, updatedAt: at)
        do {
            let store = try SQLiteAuditStore(path: path)
            try await store.recordAudit(AuditBatch(events: events, findings: [finding], checkpoint: checkpoint))
        }
        // The tables as v2–v7 made them: the id the primary key, the findings' key to it alone.
        try Self.execute(
            path,
            """
            PRAGMA foreign_keys = OFF;
            CREATE TABLE old_event AS SELECT * FROM audit_event;
            CREATE TABLE old_finding AS SELECT * FROM audit_finding;
            DROP TABLE audit_finding;
            DROP TABLE audit_event;
            CREATE TABLE audit_event (id TEXT PRIMARY KEY NOT NULL, event_date INTEGER NOT NULL, service TEXT NOT NULL, entity_type TEXT NOT NULL,
                entity_id TEXT NOT NULL, action TEXT NOT NULL, actor TEXT, content BLOB NOT NULL, recorded_at REAL NOT NULL);
            CREATE INDEX audit_event_by_date_entity ON audit_event(event_date, entity_id);
            CREATE TABLE audit_finding (rule_id TEXT NOT NULL, event_id TEXT NOT NULL REFERENCES audit_event(id), fingerprint TEXT NOT NULL,
                title TEXT NOT NULL, severity INTEGER NOT NULL, controls TEXT NOT NULL, event_ids TEXT NOT NULL, event_date INTEGER NOT NULL,
                service TEXT NOT NULL, entity_type TEXT NOT NULL, entity_id TEXT NOT NULL, entity_name TEXT NOT NULL, action TEXT NOT NULL,
                actor TEXT NOT NULL, actor_id TEXT, client_id TEXT, remote_ip TEXT NOT NULL, evidence TEXT NOT NULL, status TEXT NOT NULL,
                approval_ticket TEXT, approval_approver TEXT, approval_expires REAL, PRIMARY KEY (rule_id, event_id));
            CREATE INDEX audit_finding_by_date ON audit_finding(event_date);
            CREATE INDEX audit_finding_by_fingerprint ON audit_finding(fingerprint);
            INSERT INTO audit_event SELECT * FROM old_event;
            INSERT INTO audit_finding SELECT * FROM old_finding;
            DROP TABLE old_event;
            DROP TABLE old_finding;
            DELETE FROM grdb_migrations WHERE identifier = 'v8-audit-event-keyed-by-date';
            """)
        let store = try SQLiteAuditStore(path: path)
        #expect(try await store.auditEvents(from: .distantPast, to: .distantFuture).map(\.id) == ["e0", "e1", "e2", "e3"])
        #expect(try await store.auditFindings(FindingQuery()).map(\.ruleId) == ["RBW-001"], "the finding survives the move")
        #expect(try await store.auditEvent(id: "e2", near: trigger.date)?.entityId == "r2")
        #expect(try await store.recordAudit(AuditBatch(events: events, findings: [finding], checkpoint: checkpoint)) == 0, "still deduplicated")
        let later = AuditEvent(id: "e9", date: at.addingTimeInterval(600), serviceName: "PeoplePermissions", entityType: "Role", action: "Update", entityId: "r9")
        var laterFinding = finding
        laterFinding.eventIds = ["e9"]
        laterFinding.date = later.date
        #expect(try await store.recordAudit(AuditBatch(events: [later], findings: [laterFinding], checkpoint: checkpoint)) == 1)
        #expect(try await store.auditFindings(FindingQuery()).count == 2, "a new finding satisfies the (date, id) foreign key")

        let queue = try DatabaseQueue(path: path)
        try await queue.read { db in
            let indexes = try Row.fetchAll(db, sql: "PRAGMA index_list(audit_event)")
            let keyed = try indexes.map { row in
                (try String.fetchAll(db, sql: "SELECT name FROM pragma_index_info(?) ORDER BY seqno", arguments: [row["name"] as String]), row["unique"] as Int)
            }
            #expect(keyed.contains { $0.0 == ["event_date", "id"] && $0.1 == 1 }, "\(keyed)")
            #expect(!keyed.contains { $0.0.first == "id" }, "no index starts with the random id: \(keyed)")
            let foreign = try Row.fetchAll(db, sql: "PRAGMA foreign_key_list(audit_finding)").map { "\($0["from"] as String)->\($0["to"] as String)" }
            #expect(Set(foreign) == ["event_date->event_date", "event_id->id"], "\(foreign)")
            #expect(try Row.fetchAll(db, sql: "PRAGMA foreign_key_check").isEmpty)
            let plan = try Row.fetchAll(
                db, sql: "EXPLAIN QUERY PLAN SELECT content FROM audit_event INDEXED BY audit_event_key WHERE event_date >= ? AND event_date < ? AND id IN (?, ?)",
                arguments: [0, 1, "a", "b"]
            ).map { $0["detail"] as String }.joined(separator: "; ")
            #expect(plan.contains("USING INDEX audit_event_key (event_date>? AND event_date<?)"), "the ids are checked in the key's entries: \(plan)")
        }
        try queue.close()
    }

    @Test("a state file from a newer rbacwatch is refused")
    func newerSchema() throws {
        let path = try StoreFiles.temporary().appendingPathComponent("state.sqlite").path
        _ = try SQLiteAuditStore(path: path)
        try Self.execute(path, "INSERT INTO grdb_migrations (identifier) VALUES ('v99-from-the-future')")
        do {
            _ = try SQLiteAuditStore(path: path)
            Issue.record("a newer schema was accepted")
        } catch {
            #expect(error.kind == .newerSchema)
        }
    }
}
