import AuditCore
import Foundation
import GRDB

/// The default store: one SQLite file (WAL mode, mode 0600), versioned migrations, every write a
/// transaction, so a crash at any moment leaves the previous state readable and intact. A file that
/// is not an rbacwatch state file is refused, and never written to.
public final class SQLiteAuditStore: AuditStore {
    /// `PRAGMA application_id` of rbacwatch state files ("RBWA").
    public static let applicationID: Int32 = 0x5242_5741

    /// Pauses inside write transactions, after the writes and before the commit — a fault-injection
    /// seam for crash tests (set by `RBACWATCH_FAULT_WRITE_PAUSE_MS` in the CLI). `announce` runs
    /// when the pause begins.
    public struct WritePause: Sendable {
        public var duration: Duration
        public var announce: @Sendable () -> Void

        public init(duration: Duration, announce: @escaping @Sendable () -> Void) {
            self.duration = duration
            self.announce = announce
        }
    }

    public let path: String
    let pool: DatabasePool
    let writePause: WritePause?

    public init(path: String, writePause: WritePause? = nil) throws(StoreError) {
        self.path = path
        self.writePause = writePause
        let created = try Self.prepareFile(at: path)
        // One process migrates at a time: two opening a new file at once would otherwise both
        // create its tables. A directory where no lock file can be made (read-only) has no
        // second writer to fear.
        let migrationLock = try? StateLock.acquire(StateLock.migrationPath(path), role: "rbacwatch (opening the state file)", timeout: .seconds(30))
        defer { withExtendedLifetime(migrationLock) {} }
        try Self.inspect(path)
        // Only now, with the file known to be ours (or new, or empty), is it made private.
        if !created { Self.makePrivate(path) }
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        configuration.label = "rbacwatch.state"
        // WAL with synchronous=NORMAL: a killed process loses nothing committed; a power cut may
        // lose the last commits whole (never half of one) — for the audit feed that rolls the
        // high-water mark back with its events, which the next poll fetches again. It spares an
        // fsync per window (measured: the SQLite pipeline of rbacwatch-bench rules).
        configuration.prepareDatabase { db in try db.execute(sql: "PRAGMA synchronous = NORMAL") }
        do {
            pool = try DatabasePool(path: path, configuration: configuration)
        } catch {
            throw Self.map(error, path: path)
        }
        try Self.migrate(pool, path: path)
        for suffix in ["-wal", "-shm"] { Self.makePrivate(path + suffix) }
    }

    // MARK: Opening

    /// Makes a regular file private (0600); anything else (a link planted in its place) is left alone.
    static func makePrivate(_ path: String) {
        var info = stat()
        guard lstat(path, &info) == 0, (info.st_mode & S_IFMT) == S_IFREG else { return }
        chmod(path, 0o600)
    }

    /// Creates the file (and its directory, private) if absent; returns whether it did. An
    /// existing path must be a regular file: a symbolic link, a directory or a device is refused
    /// before anything touches it (its mode included).
    static func prepareFile(at path: String, racing: Bool = false) throws(StoreError) -> Bool {
        let manager = FileManager.default
        var info = stat()
        if lstat(path, &info) == 0 {
            switch info.st_mode & S_IFMT {
            case S_IFREG: break
            case S_IFLNK:
                let target = (try? manager.destinationOfSymbolicLink(atPath: path)).map { " (to \($0))" } ?? ""
                throw StoreError(
                    .unavailable,
                    "the state file \(path) is a symbolic link\(target); rbacwatch does not follow links to its state file — pass the real path with --state. It was left untouched")
            case S_IFDIR:
                throw StoreError(.unavailable, "the state file \(path) is a directory; it was left untouched — choose another --state path")
            default:
                throw StoreError(.unavailable, "the state file \(path) is not a regular file; it was left untouched — choose another --state path")
            }
            // Not opened here: closing any descriptor of a database file drops every POSIX lock
            // this process holds on it, including those of its open SQLite connections (another
            // process could then checkpoint under them and corrupt the file). `inspect` lets
            // SQLite itself refuse a file that is not a database.
            guard manager.isReadableFile(atPath: path) else {
                throw StoreError(.unavailable, "cannot read the state file \(path): check its permissions")
            }
            return false
        }
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty && !manager.fileExists(atPath: directory) {
            do {
                try manager.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            } catch {
                throw StoreError(.unavailable, "cannot create the state directory \(directory): \(error.localizedDescription)")
            }
        }
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            // Another process created it between the look and the create: it exists now, and is
            // checked as any existing path is (once: a path that keeps vanishing is an error).
            if errno == EEXIST && !racing { return try prepareFile(at: path, racing: true) }
            throw StoreError(.unavailable, "cannot create the state file \(path): \(String(cString: strerror(errno)))")
        }
        close(fd)
        return true
    }

    /// Looks at an existing database read-only, before anything may write to it (opening in WAL
    /// mode alone rewrites the header): it must be ours, or empty, and not from a newer rbacwatch.
    static func inspect(_ path: String) throws(StoreError) {
        guard let size = try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int, size > 0 else { return }
        func check(_ db: Database) throws {
            let applicationID = try Int32.fetchOne(db, sql: "PRAGMA application_id") ?? 0
            let tables = try String.fetchAll(db, sql: "SELECT name FROM sqlite_master WHERE type = 'table'")
            if applicationID != Self.applicationID && (applicationID != 0 || !tables.isEmpty) {
                throw StoreError(
                    .foreign,
                    "\(path) is an SQLite database of another program, not an rbacwatch state file; it was left untouched — choose another --state path")
            }
            if applicationID == Self.applicationID, try Self.migrator.hasBeenSuperseded(db) {
                throw StoreError(.newerSchema, "\(path) was written by a newer rbacwatch; upgrade rbacwatch to use it")
            }
        }
        func inspect(readOnly: Bool) throws {
            var configuration = Configuration()
            configuration.readonly = readOnly
            configuration.busyMode = .timeout(10)
            let queue = try DatabaseQueue(path: path, configuration: configuration)
            defer { try? queue.close() }
            try queue.read(check)
        }
        do {
            do {
                try inspect(readOnly: true)
            } catch let error as DatabaseError where [.SQLITE_IOERR, .SQLITE_READONLY, .SQLITE_CANTOPEN].contains(error.resultCode) {
                // A WAL database whose last writer was killed needs recovery, which a read-only
                // connection cannot always run; a read-write one can, and without a journal-mode
                // change it rewrites nothing else.
                try inspect(readOnly: false)
            }
        } catch let error as StoreError {
            throw error
        } catch {
            throw Self.map(error, path: path)
        }
    }

    static func migrate(_ pool: DatabasePool, path: String) throws(StoreError) {
        do {
            try Self.migrator.migrate(pool)
        } catch let error as StoreError {
            throw error
        } catch {
            throw Self.map(error, path: path)
        }
    }

    /// Schema migrations, in order. Never edit a released one: add the next.
    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(sql: "PRAGMA application_id = \(SQLiteAuditStore.applicationID)")
            try db.execute(
                sql: """
                    CREATE TABLE snapshot (
                        root_hash TEXT PRIMARY KEY NOT NULL,
                        schema TEXT NOT NULL,
                        collected_at REAL NOT NULL,
                        stored_at REAL NOT NULL,
                        organization_name TEXT,
                        users INTEGER NOT NULL,
                        partial INTEGER NOT NULL,
                        content BLOB NOT NULL
                    );
                    CREATE TABLE baseline (
                        version INTEGER PRIMARY KEY AUTOINCREMENT,
                        root_hash TEXT NOT NULL REFERENCES snapshot(root_hash),
                        accepted_at REAL NOT NULL,
                        accepted_by TEXT NOT NULL,
                        note TEXT
                    );
                    CREATE TABLE role_lineage (
                        role_id TEXT PRIMARY KEY NOT NULL,
                        lineage_id TEXT NOT NULL,
                        linked_at REAL NOT NULL
                    );
                    CREATE TABLE approval (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        fingerprint TEXT NOT NULL,
                        ticket TEXT,
                        note TEXT,
                        approver TEXT NOT NULL,
                        created_at REAL NOT NULL,
                        expires_at REAL NOT NULL,
                        revoked_at REAL
                    );
                    CREATE INDEX approval_by_fingerprint ON approval(fingerprint);
                    CREATE TABLE finding (
                        fingerprint TEXT PRIMARY KEY NOT NULL,
                        kind TEXT NOT NULL,
                        severity INTEGER NOT NULL,
                        summary TEXT NOT NULL,
                        cause TEXT,
                        first_seen REAL NOT NULL,
                        last_seen REAL NOT NULL,
                        baseline_version INTEGER
                    );
                    """)
        }
        migrator.registerMigration("v2-audit-feed") { db in
            try db.execute(
                sql: """
                    CREATE TABLE audit_event (
                        id TEXT PRIMARY KEY NOT NULL,
                        event_date INTEGER NOT NULL,
                        service TEXT NOT NULL,
                        entity_type TEXT NOT NULL,
                        entity_id TEXT NOT NULL,
                        action TEXT NOT NULL,
                        actor TEXT,
                        content BLOB NOT NULL,
                        recorded_at REAL NOT NULL
                    );
                    CREATE INDEX audit_event_by_date ON audit_event(event_date);
                    CREATE INDEX audit_event_by_entity ON audit_event(entity_id);
                    CREATE TABLE audit_finding (
                        rule_id TEXT NOT NULL,
                        event_id TEXT NOT NULL REFERENCES audit_event(id),
                        fingerprint TEXT NOT NULL,
                        title TEXT NOT NULL,
                        severity INTEGER NOT NULL,
                        controls TEXT NOT NULL,
                        event_ids TEXT NOT NULL,
                        event_date INTEGER NOT NULL,
                        service TEXT NOT NULL,
                        entity_type TEXT NOT NULL,
                        entity_id TEXT NOT NULL,
                        entity_name TEXT NOT NULL,
                        action TEXT NOT NULL,
                        actor TEXT NOT NULL,
                        actor_id TEXT,
                        client_id TEXT,
                        remote_ip TEXT NOT NULL,
                        evidence TEXT NOT NULL,
                        status TEXT NOT NULL,
                        approval_ticket TEXT,
                        approval_approver TEXT,
                        approval_expires REAL,
                        PRIMARY KEY (rule_id, event_id)
                    );
                    CREATE INDEX audit_finding_by_date ON audit_finding(event_date);
                    CREATE INDEX audit_finding_by_fingerprint ON audit_finding(fingerprint);
                    CREATE TABLE ingestion_checkpoint (
                        id INTEGER PRIMARY KEY CHECK (id = 1),
                        high_water INTEGER NOT NULL,
                        critical_high_water INTEGER,
                        updated_at REAL NOT NULL
                    );
                    CREATE TABLE ingestion_gap (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        start_ms INTEGER NOT NULL,
                        end_ms INTEGER NOT NULL,
                        detected_at REAL NOT NULL
                    );
                    """)
        }
        migrator.registerMigration("v3-quarantine") { db in
            try db.execute(
                sql: """
                    CREATE TABLE audit_quarantine (
                        digest TEXT PRIMARY KEY NOT NULL,
                        kind TEXT NOT NULL,
                        event_id TEXT,
                        reason TEXT NOT NULL,
                        raw BLOB NOT NULL,
                        raw_truncated INTEGER NOT NULL,
                        received_at REAL NOT NULL
                    );
                    CREATE INDEX audit_quarantine_by_time ON audit_quarantine(received_at);
                    """)
        }
        migrator.registerMigration("v4-outbox") { db in
            try db.execute(
                sql: """
                    CREATE TABLE outbox (
                        id INTEGER PRIMARY KEY AUTOINCREMENT,
                        destination TEXT NOT NULL,
                        payload_id TEXT NOT NULL,
                        kind TEXT NOT NULL,
                        severity INTEGER NOT NULL,
                        rule TEXT NOT NULL,
                        title TEXT NOT NULL,
                        payload_time INTEGER NOT NULL,
                        body BLOB NOT NULL,
                        state TEXT NOT NULL,
                        position INTEGER NOT NULL,
                        enqueued_at REAL NOT NULL,
                        attempts INTEGER NOT NULL DEFAULT 0,
                        last_error TEXT,
                        settled_at REAL,
                        UNIQUE (destination, payload_id)
                    );
                    CREATE INDEX outbox_queue ON outbox(destination, state, position);
                    CREATE INDEX outbox_position ON outbox(position);
                    CREATE TABLE destination_health (
                        destination TEXT PRIMARY KEY NOT NULL,
                        paused TEXT,
                        last_error TEXT,
                        last_success REAL
                    );
                    ALTER TABLE finding ADD COLUMN queued_at REAL;
                    """)
        }
        // A table of its own: a snapshot's document stays the last column of its row, so it can be
        // written in place (`zeroblob`, then a megabyte at a time) without SQLite building it whole.
        migrator.registerMigration("v5-snapshot-preview") { db in
            try db.execute(
                sql: """
                    CREATE TABLE snapshot_preview (
                        root_hash TEXT PRIMARY KEY NOT NULL REFERENCES snapshot(root_hash) ON DELETE CASCADE,
                        preview BLOB NOT NULL
                    )
                    """)
        }
        // A development build's v5 added the preview as a column of `snapshot` instead: moved out.
        migrator.registerMigration("v6-snapshot-preview-table") { db in
            guard try db.columns(in: "snapshot").contains(where: { $0.name == "preview" }) else { return }
            try db.execute(
                sql: """
                    CREATE TABLE IF NOT EXISTS snapshot_preview (
                        root_hash TEXT PRIMARY KEY NOT NULL REFERENCES snapshot(root_hash) ON DELETE CASCADE,
                        preview BLOB NOT NULL
                    );
                    INSERT OR IGNORE INTO snapshot_preview (root_hash, preview) SELECT root_hash, preview FROM snapshot WHERE preview IS NOT NULL;
                    ALTER TABLE snapshot DROP COLUMN preview;
                    """)
        }
        // Audit events are written a window at a time, in date order: an index that starts with the
        // date takes a window's keys at its right edge, where one keyed by the entity id alone
        // dirtied a random page for every event (measured: the ingestion's writes at 600,000 events
        // went from 2,878 to 4,984 rows/s without it). Entity lookups (attribution) read the
        // window's index entries instead.
        migrator.registerMigration("v7-audit-event-date-first") { db in
            try db.execute(
                sql: """
                    CREATE INDEX IF NOT EXISTS audit_event_by_date_entity ON audit_event(event_date, entity_id);
                    DROP INDEX IF EXISTS audit_event_by_entity;
                    DROP INDEX IF EXISTS audit_event_by_date;
                    """)
        }
        // The id alone was the last random key: its index took one random page per event. An event
        // fetched again keeps its date, so `(event_date, id)` is the key (a window's keys at the
        // index's right edge) and lookups name the span (measured outside rbacwatch, 400,000 rows
        // of 860 bytes, 700 a transaction: 11,595 → 30,690 rows/s). The findings' foreign key
        // follows: a finding's date is its trigger event's. Both tables are rebuilt (GRDB defers
        // the foreign key checks to the end of the migration). The key is a named unique index, so
        // lookups can name it: the planner would otherwise take the entity index's date range and
        // read every row of the span to check its id.
        migrator.registerMigration("v8-audit-event-keyed-by-date") { db in
            try db.execute(
                sql: """
                    CREATE TABLE audit_event_v8 (
                        id TEXT NOT NULL,
                        event_date INTEGER NOT NULL,
                        service TEXT NOT NULL,
                        entity_type TEXT NOT NULL,
                        entity_id TEXT NOT NULL,
                        action TEXT NOT NULL,
                        actor TEXT,
                        content BLOB NOT NULL,
                        recorded_at REAL NOT NULL
                    );
                    INSERT INTO audit_event_v8 (id, event_date, service, entity_type, entity_id, action, actor, content, recorded_at)
                        SELECT id, event_date, service, entity_type, entity_id, action, actor, content, recorded_at
                        FROM audit_event ORDER BY event_date, id;
                    CREATE TABLE audit_finding_v8 (
                        rule_id TEXT NOT NULL,
                        event_id TEXT NOT NULL,
                        fingerprint TEXT NOT NULL,
                        title TEXT NOT NULL,
                        severity INTEGER NOT NULL,
                        controls TEXT NOT NULL,
                        event_ids TEXT NOT NULL,
                        event_date INTEGER NOT NULL,
                        service TEXT NOT NULL,
                        entity_type TEXT NOT NULL,
                        entity_id TEXT NOT NULL,
                        entity_name TEXT NOT NULL,
                        action TEXT NOT NULL,
                        actor TEXT NOT NULL,
                        actor_id TEXT,
                        client_id TEXT,
                        remote_ip TEXT NOT NULL,
                        evidence TEXT NOT NULL,
                        status TEXT NOT NULL,
                        approval_ticket TEXT,
                        approval_approver TEXT,
                        approval_expires REAL,
                        PRIMARY KEY (rule_id, event_id),
                        FOREIGN KEY (event_date, event_id) REFERENCES audit_event (event_date, id)
                    );
                    INSERT INTO audit_finding_v8 SELECT rule_id, event_id, fingerprint, title, severity, controls, event_ids, event_date,
                        service, entity_type, entity_id, entity_name, action, actor, actor_id, client_id, remote_ip, evidence, status,
                        approval_ticket, approval_approver, approval_expires FROM audit_finding;
                    DROP TABLE audit_finding;
                    DROP TABLE audit_event;
                    ALTER TABLE audit_event_v8 RENAME TO audit_event;
                    ALTER TABLE audit_finding_v8 RENAME TO audit_finding;
                    CREATE UNIQUE INDEX audit_event_key ON audit_event(event_date, id);
                    CREATE INDEX audit_event_by_date_entity ON audit_event(event_date, entity_id);
                    CREATE INDEX audit_finding_by_date ON audit_finding(event_date);
                    CREATE INDEX audit_finding_by_fingerprint ON audit_finding(fingerprint);
                    """)
        }
        return migrator
    }

    /// Maps SQLite failures to one-line explanations.
    static func map(_ error: any Error, path: String) -> StoreError {
        if let error = error as? StoreError { return error }
        guard let error = error as? DatabaseError else {
            return StoreError(.unavailable, "the state file \(path) cannot be used: \(error)")
        }
        let detail = error.message ?? "\(error.resultCode)"
        switch error.resultCode {
        case .SQLITE_NOTADB:
            return StoreError(.foreign, "\(path) is not an rbacwatch state file (\(detail)); it was left untouched — choose another --state path")
        case .SQLITE_CORRUPT:
            return StoreError(
                .corrupt, "the state file \(path) is damaged (\(detail)): restore it from a backup or move it away; rbacwatch will not overwrite it")
        case .SQLITE_FULL:
            return StoreError(.unavailable, "the disk holding \(path) is full")
        case .SQLITE_CANTOPEN, .SQLITE_PERM, .SQLITE_READONLY, .SQLITE_AUTH:
            return StoreError(.unavailable, "cannot open the state file \(path) for writing (\(detail)): check its permissions")
        case .SQLITE_BUSY, .SQLITE_LOCKED:
            return StoreError(.unavailable, "the state file \(path) is busy: another rbacwatch is writing it; try again")
        default:
            return StoreError(.unavailable, "the state file \(path) cannot be used (\(detail))")
        }
    }

    func read<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        do {
            return try await pool.read(body)
        } catch {
            throw Self.map(error, path: path)
        }
    }

    func write<T: Sendable>(_ body: @escaping @Sendable (Database) throws -> T) async throws -> T {
        let pause = writePause
        do {
            return try await pool.write { db in
                let result = try body(db)
                if let pause {
                    pause.announce()
                    Thread.sleep(forTimeInterval: Double(pause.duration.components.seconds) + Double(pause.duration.components.attoseconds) / 1e18)
                }
                return result
            }
        } catch {
            throw Self.map(error, path: path)
        }
    }
}
