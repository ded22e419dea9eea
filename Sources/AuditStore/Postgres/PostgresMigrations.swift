import Foundation
import PostgresNIO

extension PostgresDatabase {
    /// The advisory lock key migrations run under ("RBWA").
    static let migrationLock: Int64 = 0x5242_5741

    /// Schema migrations, in order. Never edit a released one: add the next. Every table but the
    /// fleet's own (lease, worker, destination health) is keyed by organisation first.
    static let migrations: [(name: String, sql: String)] = [
        (
            "v1",
            """
            CREATE TABLE organization (
                name TEXT PRIMARY KEY,
                registered_at BIGINT NOT NULL,
                organization_id TEXT,
                display_name TEXT,
                health TEXT,
                health_detail TEXT,
                worker TEXT,
                health_at BIGINT
            );
            CREATE TABLE snapshot (
                org TEXT NOT NULL,
                root_hash TEXT NOT NULL,
                schema TEXT NOT NULL,
                collected_at BIGINT NOT NULL,
                stored_at BIGINT NOT NULL,
                organization_name TEXT,
                users BIGINT NOT NULL,
                partial BOOLEAN NOT NULL,
                content BYTEA NOT NULL,
                PRIMARY KEY (org, root_hash)
            );
            CREATE TABLE baseline (
                org TEXT NOT NULL,
                version BIGINT NOT NULL,
                root_hash TEXT NOT NULL,
                accepted_at BIGINT NOT NULL,
                accepted_by TEXT NOT NULL,
                note TEXT,
                PRIMARY KEY (org, version),
                FOREIGN KEY (org, root_hash) REFERENCES snapshot (org, root_hash)
            );
            CREATE TABLE role_lineage (
                org TEXT NOT NULL,
                role_id TEXT NOT NULL,
                lineage_id TEXT NOT NULL,
                linked_at BIGINT NOT NULL,
                PRIMARY KEY (org, role_id)
            );
            CREATE TABLE approval (
                id BIGSERIAL PRIMARY KEY,
                org TEXT NOT NULL,
                fingerprint TEXT NOT NULL,
                ticket TEXT,
                note TEXT,
                approver TEXT NOT NULL,
                created_at BIGINT NOT NULL,
                expires_at BIGINT NOT NULL,
                revoked_at BIGINT
            );
            CREATE INDEX approval_by_fingerprint ON approval (org, fingerprint);
            CREATE TABLE finding (
                org TEXT NOT NULL,
                fingerprint TEXT NOT NULL,
                kind TEXT NOT NULL,
                severity INTEGER NOT NULL,
                summary TEXT NOT NULL,
                cause TEXT,
                first_seen BIGINT NOT NULL,
                last_seen BIGINT NOT NULL,
                baseline_version BIGINT,
                queued_at BIGINT,
                PRIMARY KEY (org, fingerprint)
            );
            CREATE TABLE audit_event (
                org TEXT NOT NULL,
                id TEXT NOT NULL,
                event_date BIGINT NOT NULL,
                service TEXT NOT NULL,
                entity_type TEXT NOT NULL,
                entity_id TEXT NOT NULL,
                action TEXT NOT NULL,
                actor TEXT,
                content BYTEA NOT NULL,
                recorded_at BIGINT NOT NULL,
                fence BIGINT,
                PRIMARY KEY (org, id)
            );
            CREATE INDEX audit_event_by_date ON audit_event (org, event_date);
            CREATE INDEX audit_event_by_entity ON audit_event (org, entity_id);
            CREATE TABLE audit_finding (
                org TEXT NOT NULL,
                rule_id TEXT NOT NULL,
                event_id TEXT NOT NULL,
                fingerprint TEXT NOT NULL,
                title TEXT NOT NULL,
                severity INTEGER NOT NULL,
                controls TEXT NOT NULL,
                event_ids TEXT NOT NULL,
                event_date BIGINT NOT NULL,
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
                approval_expires BIGINT,
                fence BIGINT,
                PRIMARY KEY (org, rule_id, event_id),
                FOREIGN KEY (org, event_id) REFERENCES audit_event (org, id)
            );
            CREATE INDEX audit_finding_by_date ON audit_finding (org, event_date);
            CREATE TABLE ingestion_checkpoint (
                org TEXT PRIMARY KEY,
                high_water BIGINT NOT NULL,
                critical_high_water BIGINT,
                updated_at BIGINT NOT NULL,
                fence BIGINT
            );
            CREATE TABLE ingestion_gap (
                id BIGSERIAL PRIMARY KEY,
                org TEXT NOT NULL,
                start_ms BIGINT NOT NULL,
                end_ms BIGINT NOT NULL,
                detected_at BIGINT NOT NULL,
                UNIQUE (org, start_ms, end_ms)
            );
            CREATE TABLE audit_quarantine (
                org TEXT NOT NULL,
                digest TEXT NOT NULL,
                kind TEXT NOT NULL,
                event_id TEXT,
                reason TEXT NOT NULL,
                raw BYTEA NOT NULL,
                raw_truncated BOOLEAN NOT NULL,
                received_at BIGINT NOT NULL,
                PRIMARY KEY (org, digest)
            );
            CREATE INDEX audit_quarantine_by_time ON audit_quarantine (org, received_at);
            CREATE SEQUENCE outbox_position;
            CREATE TABLE outbox (
                id BIGSERIAL PRIMARY KEY,
                org TEXT NOT NULL,
                destination TEXT NOT NULL,
                payload_id TEXT NOT NULL,
                kind TEXT NOT NULL,
                severity INTEGER NOT NULL,
                rule TEXT NOT NULL,
                title TEXT NOT NULL,
                payload_time BIGINT NOT NULL,
                body BYTEA NOT NULL,
                state TEXT NOT NULL,
                position BIGINT NOT NULL,
                enqueued_at BIGINT NOT NULL,
                attempts INTEGER NOT NULL DEFAULT 0,
                last_error TEXT,
                settled_at BIGINT,
                UNIQUE (org, destination, payload_id)
            );
            CREATE INDEX outbox_queue ON outbox (destination, state, position);
            CREATE TABLE destination_health (
                destination TEXT PRIMARY KEY,
                paused TEXT,
                last_error TEXT,
                last_success BIGINT
            );
            CREATE TABLE lease (
                name TEXT PRIMARY KEY,
                owner TEXT,
                token BIGINT NOT NULL,
                acquired_at BIGINT NOT NULL,
                expires_at BIGINT NOT NULL
            );
            CREATE TABLE lease_history (
                name TEXT NOT NULL,
                token BIGINT NOT NULL,
                owner TEXT NOT NULL,
                acquired_at BIGINT NOT NULL,
                released_at BIGINT,
                PRIMARY KEY (name, token)
            );
            CREATE TABLE worker (
                id TEXT PRIMARY KEY,
                host TEXT NOT NULL,
                pid BIGINT NOT NULL,
                started_at BIGINT NOT NULL,
                last_seen BIGINT NOT NULL,
                max_orgs INTEGER NOT NULL,
                stopped_at BIGINT
            );
            """
        ),
        ("v2-snapshot-preview", "ALTER TABLE snapshot ADD COLUMN preview BYTEA"),
    ]

    /// Applies the migrations this database lacks, one process at a time (an advisory lock held
    /// for the transaction); a database migrated by a newer rbacwatch is refused.
    func migrate() async throws {
        try await transaction { connection in
            try await self.run("SELECT pg_advisory_xact_lock(\(Self.migrationLock)) IS NULL", on: connection)
            try await self.run(
                "CREATE TABLE IF NOT EXISTS rbacwatch_migration (name TEXT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
                on: connection)
            var applied = Set<String>()
            for row in try await self.rows("SELECT name FROM rbacwatch_migration", on: connection) { applied.insert(try row.get("name", as: String.self)) }
            let known = Set(Self.migrations.map(\.name))
            if let unknown = applied.subtracting(known).sorted().first {
                throw StoreError(.newerSchema, "\(self.location) was migrated by a newer rbacwatch (\(unknown)); upgrade rbacwatch to use it")
            }
            for migration in Self.migrations where !applied.contains(migration.name) {
                // One statement at a time (the extended protocol takes one per message).
                for statement in migration.sql.components(separatedBy: ";\n") {
                    let sql = statement.trimmingCharacters(in: .whitespacesAndNewlines)
                    guard !sql.isEmpty else { continue }
                    try await self.run(PostgresQuery(unsafeSQL: sql), on: connection)
                }
                try await self.run("INSERT INTO rbacwatch_migration (name) VALUES (\(migration.name))", on: connection)
            }
        }
    }
}
