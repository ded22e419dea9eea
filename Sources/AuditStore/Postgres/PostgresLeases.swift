import AuditCore
import Foundation
import PostgresNIO

/// A lease as the database holds it.
public struct LeaseRecord: Sendable, Equatable {
    public var name: String
    /// nil once released.
    public var owner: String?
    public var token: Int64
    public var acquiredAt: Date
    public var expiresAt: Date
    /// Unexpired by the database's clock when read.
    public var held: Bool
    /// Seconds until it expires by the database's clock when read (negative: expired).
    public var expiresIn: Double
}

/// One grant of a lease: who held it at which token, and when it ended (released, or taken over
/// after it expired).
public struct LeaseGrant: Sendable, Equatable {
    public var name: String
    public var token: Int64
    public var owner: String
    public var acquiredAt: Date
    public var endedAt: Date?
}

/// A worker process as it announced itself.
public struct WorkerRecord: Sendable, Equatable {
    public var id: String
    public var host: String
    public var pid: Int
    public var startedAt: Date
    public var lastSeen: Date
    public var maxOrganizations: Int
    public var stoppedAt: Date?
    /// Seen within the liveness window when read.
    public var live: Bool
}

/// An organisation of the fleet: its lease, its last poll and collection, and the health its
/// worker last reported.
public struct OrganizationStatus: Sendable, Equatable {
    public var name: String
    public var organizationId: String?
    public var displayName: String?
    public var health: String?
    public var detail: String?
    public var reportedBy: String?
    public var reportedAt: Date?
    public var lastPoll: Date?
    public var lastCollection: Date?
    public var lease: LeaseRecord?
}

extension PostgresDatabase {
    static func milliseconds(_ duration: Duration) -> Int64 {
        duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
    }

    // MARK: Leases

    /// Takes the lease if nobody holds it (never granted, released, or expired by the database's
    /// clock), with the next fencing token; nil if another owner holds it.
    public func acquireLease(_ name: String, owner: String, ttl: Duration) async throws -> Fence? {
        let ttl = Self.milliseconds(ttl)
        return try await transaction(control: true) { connection in
            // A lease row locked by a write in flight is waited for briefly, never for long.
            try await self.run("SET LOCAL lock_timeout = 3000", on: connection)
            let rows = try await self.rows(
                """
                INSERT INTO lease (name, owner, token, acquired_at, expires_at)
                VALUES (\(name), \(owner), 1, \(unescaped: Self.nowMilliseconds), \(unescaped: Self.nowMilliseconds) + \(ttl))
                ON CONFLICT (name) DO UPDATE SET owner = excluded.owner, token = lease.token + 1, acquired_at = excluded.acquired_at,
                    expires_at = excluded.expires_at
                WHERE lease.owner IS NULL OR lease.expires_at <= \(unescaped: Self.nowMilliseconds)
                RETURNING token, acquired_at
                """, on: connection)
            guard let row = rows.first else { return nil }
            let token: Int64 = try row.get("token")
            let at: Int64 = try row.get("acquired_at")
            // The grant before this one ended when this one began (if it was not released).
            try await self.run(
                "UPDATE lease_history SET released_at = \(at) WHERE name = \(name) AND token < \(token) AND released_at IS NULL", on: connection)
            try await self.run(
                "INSERT INTO lease_history (name, token, owner, acquired_at) VALUES (\(name), \(token), \(owner), \(at))", on: connection)
            return Fence(name: name, owner: owner, token: token)
        }
    }

    /// Extends a lease still held at its token (false: it was taken over, or released).
    public func renewLease(_ fence: Fence, ttl: Duration) async throws -> Bool {
        let ttl = Self.milliseconds(ttl)
        return try await withConnection(control: true) { connection in
            try await self.run(
                """
                UPDATE lease SET expires_at = \(unescaped: Self.nowMilliseconds) + \(ttl)
                WHERE name = \(fence.name) AND owner = \(fence.owner) AND token = \(fence.token) RETURNING 1
                """, on: connection) > 0
        }
    }

    /// Gives a lease up (graceful shutdown, or shedding to balance): another worker may take it at once.
    public func releaseLease(_ fence: Fence) async throws {
        try await transaction(control: true) { connection in
            let released = try await self.run(
                """
                UPDATE lease SET owner = NULL, expires_at = \(unescaped: Self.nowMilliseconds)
                WHERE name = \(fence.name) AND owner = \(fence.owner) AND token = \(fence.token) RETURNING 1
                """, on: connection)
            if released > 0 {
                try await self.run(
                    """
                    UPDATE lease_history SET released_at = \(unescaped: Self.nowMilliseconds)
                    WHERE name = \(fence.name) AND token = \(fence.token) AND released_at IS NULL
                    """, on: connection)
            }
        }
    }

    /// Gives up every lease `owner` still holds (a worker's last act on a graceful stop); returns
    /// their names.
    public func releaseLeases(owner: String) async throws -> [String] {
        try await transaction(control: true) { connection in
            let rows = try await self.rows(
                """
                UPDATE lease SET owner = NULL, expires_at = \(unescaped: Self.nowMilliseconds)
                WHERE owner = \(owner) AND expires_at > \(unescaped: Self.nowMilliseconds) RETURNING name, token
                """, on: connection)
            var names: [String] = []
            for row in rows {
                let name: String = try row.get("name")
                let token: Int64 = try row.get("token")
                try await self.run(
                    """
                    UPDATE lease_history SET released_at = \(unescaped: Self.nowMilliseconds)
                    WHERE name = \(name) AND token = \(token) AND released_at IS NULL
                    """, on: connection)
                names.append(name)
            }
            return names.sorted()
        }
    }

    /// Leases whose names start with `prefix`, by name.
    public func leases(prefix: String = "") async throws -> [LeaseRecord] {
        try await controlRows(
            """
            SELECT name, owner, token, acquired_at, expires_at, (owner IS NOT NULL AND expires_at > \(unescaped: Self.nowMilliseconds)) AS held,
                expires_at - \(unescaped: Self.nowMilliseconds) AS expires_in
            FROM lease WHERE starts_with(name, \(prefix)) ORDER BY name COLLATE "C"
            """
        ).map(Self.lease)
    }

    static func lease(_ row: PostgresRandomAccessRow) throws -> LeaseRecord {
        LeaseRecord(
            name: try row.get("name"), owner: try row.get("owner"), token: try row.get("token"), acquiredAt: try row.date("acquired_at"),
            expiresAt: try row.date("expires_at"), held: try row.get("held"), expiresIn: Double(try row.get("expires_in", as: Int64.self)) / 1000)
    }

    /// Every grant of the leases whose names start with `prefix`, in order.
    public func leaseHistory(prefix: String = "") async throws -> [LeaseGrant] {
        try await rows("SELECT * FROM lease_history WHERE starts_with(name, \(prefix)) ORDER BY name COLLATE \"C\", token").map { row in
            LeaseGrant(
                name: try row.get("name"), token: try row.get("token"), owner: try row.get("owner"), acquiredAt: try row.date("acquired_at"),
                endedAt: try row.optionalDate("released_at"))
        }
    }

    // MARK: Workers

    /// Announces (or refreshes) a worker; workers seen within a liveness window share the organisations.
    public func heartbeat(worker id: String, host: String, pid: Int, maxOrganizations: Int) async throws {
        try await withConnection(control: true) { connection in
            try await self.run(
                """
                INSERT INTO worker (id, host, pid, started_at, last_seen, max_orgs)
                VALUES (\(id), \(host), \(Int64(pid)), \(unescaped: Self.nowMilliseconds), \(unescaped: Self.nowMilliseconds), \(Int32(maxOrganizations)))
                ON CONFLICT (id) DO UPDATE SET last_seen = excluded.last_seen, max_orgs = excluded.max_orgs, stopped_at = NULL
                """, on: connection)
        }
    }

    /// Marks a worker stopped (graceful shutdown): the others stop counting it at once.
    public func stopWorker(_ id: String) async throws {
        try await withConnection(control: true) { connection in
            try await self.run("UPDATE worker SET stopped_at = \(unescaped: Self.nowMilliseconds) WHERE id = \(id)", on: connection)
        }
    }

    /// Workers, newest first; `live` when seen within `window` and not stopped.
    public func workers(window: Duration) async throws -> [WorkerRecord] {
        try await controlRows(
            """
            SELECT *, (stopped_at IS NULL AND last_seen > \(unescaped: Self.nowMilliseconds) - \(Self.milliseconds(window))) AS live
            FROM worker ORDER BY started_at DESC
            """
        ).map { row in
            WorkerRecord(
                id: try row.get("id"), host: try row.get("host"), pid: Int(try row.get("pid", as: Int64.self)), startedAt: try row.date("started_at"),
                lastSeen: try row.date("last_seen"), maxOrganizations: Int(try row.get("max_orgs", as: Int32.self)),
                stoppedAt: try row.optionalDate("stopped_at"), live: try row.get("live"))
        }
    }

    // MARK: Organisations

    /// Registers the organisations of a fleet's file (existing ones are kept).
    public func registerOrganizations(_ names: [String]) async throws {
        guard !names.isEmpty else { return }
        try await withConnection { connection in
            try await self.run(
                """
                INSERT INTO organization (name, registered_at) SELECT n, \(Date().pgMilliseconds) FROM unnest(\(names)::text[]) AS t(n)
                ON CONFLICT DO NOTHING
                """, on: connection)
        }
    }

    /// Records an organisation's health as its worker sees it (with the organisation's id and
    /// name once read).
    public func reportOrganization(
        _ name: String, health: String, detail: String?, worker: String, organizationId: String? = nil, displayName: String? = nil
    ) async throws {
        try await withConnection { connection in
            try await self.run(
                """
                INSERT INTO organization (name, registered_at, organization_id, display_name, health, health_detail, worker, health_at)
                VALUES (\(name), \(Date().pgMilliseconds), \(organizationId), \(displayName), \(health), \(detail), \(worker), \(Date().pgMilliseconds))
                ON CONFLICT (name) DO UPDATE SET health = excluded.health, health_detail = excluded.health_detail, worker = excluded.worker,
                    health_at = excluded.health_at, organization_id = COALESCE(excluded.organization_id, organization.organization_id),
                    display_name = COALESCE(excluded.display_name, organization.display_name)
                """, on: connection)
        }
    }

    /// Every organisation the database knows (registered, or with state), by name.
    public func organizations() async throws -> [OrganizationStatus] {
        let leases = Dictionary(try await leases(prefix: "org:").map { (String($0.name.dropFirst(4)), $0) }, uniquingKeysWith: { a, _ in a })
        return try await rows(
            """
            SELECT n.name, o.organization_id, o.display_name, o.health, o.health_detail, o.worker, o.health_at,
                (SELECT updated_at FROM ingestion_checkpoint c WHERE c.org = n.name) AS last_poll,
                (SELECT MAX(collected_at) FROM snapshot s WHERE s.org = n.name) AS last_collection
            FROM (SELECT name FROM organization UNION SELECT org FROM snapshot UNION SELECT org FROM ingestion_checkpoint) AS n(name)
            LEFT JOIN organization o ON o.name = n.name
            ORDER BY n.name COLLATE "C"
            """
        ).map { row in
            let name: String = try row.get("name")
            return OrganizationStatus(
                name: name, organizationId: try row.get("organization_id"), displayName: try row.get("display_name"), health: try row.get("health"),
                detail: try row.get("health_detail"), reportedBy: try row.get("worker"), reportedAt: try row.optionalDate("health_at"),
                lastPoll: try row.optionalDate("last_poll"), lastCollection: try row.optionalDate("last_collection"), lease: leases[name])
        }
    }
}

extension PostgresDatabase {
    /// Rows an organisation's worker wrote under a fencing token after a time: audit events
    /// recorded then, and the checkpoint if that token wrote it last (for checking that a worker
    /// which lost its lease wrote nothing more).
    public func rowsWritten(organization: String, fence token: Int64, after date: Date) async throws -> Int {
        let events = try await rows(
            """
            SELECT COUNT(*)::bigint AS n FROM audit_event WHERE org = \(organization) AND fence = \(token) AND recorded_at > \(date.pgMilliseconds)
            """
        ).first?.get("n", as: Int64.self) ?? 0
        let checkpoint = try await rows(
            "SELECT COUNT(*)::bigint AS n FROM ingestion_checkpoint WHERE org = \(organization) AND fence = \(token) AND updated_at > \(date.pgMilliseconds)"
        ).first?.get("n", as: Int64.self) ?? 0
        return Int(events + checkpoint)
    }
}

extension PostgresDatabase {
    /// How far a fleet has come: organisations with a baseline, and with a first audit poll recorded.
    public func fleetProgress() async throws -> (baselines: Int, polled: Int) {
        let row = try await rows(
            """
            SELECT (SELECT COUNT(DISTINCT org) FROM baseline)::bigint AS baselines, (SELECT COUNT(*) FROM ingestion_checkpoint)::bigint AS polled
            """
        ).first
        return (Int(try row?.get("baselines", as: Int64.self) ?? 0), Int(try row?.get("polled", as: Int64.self) ?? 0))
    }

    /// Statements the server has executed, from pg_stat_statements (nil where that extension is
    /// not loaded).
    public func serverStatementCount() async throws -> Int64? {
        do {
            return try await rows("SELECT COALESCE(SUM(calls), 0)::bigint AS n FROM pg_stat_statements").first?.get("n", as: Int64.self)
        } catch {
            return nil
        }
    }
}
