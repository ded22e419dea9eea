import AuditCore
import AuditStore
import AuditTestSupport
import Foundation
import Testing

/// What only the PostgreSQL store has: organisations side by side, migrations from several
/// processes at once, leases and their fencing tokens. Against a real server.
@Suite("PostgreSQL store")
struct PostgresStoreTests {
    let at = Date(timeIntervalSince1970: 1_780_000_000)

    static func event(_ id: String, at date: Date, entity: String = "role-1") -> AuditEvent {
        AuditEvent(
            id: id, date: date, serviceName: "Authorization", entityType: "Role", action: "Update", entityId: entity, entityName: "Admin",
            userId: "u-1", remoteIp: ["10.0.0.1"])
    }

    @Test("two organisations in one database never see each other's rows, even with the same ids")
    func organisationsDoNotMix() async throws {
        let database = try await PostgresServer.open()
        defer { Task { await database.close() } }
        let acme = database.store(organization: "acme")
        let globex = database.store(organization: "globex")
        let snapshot = StoreFiles.snapshot()
        _ = try await acme.acceptBaseline(snapshot: snapshot, collectedAt: at, acceptedBy: "ana", note: nil, at: at)
        try await acme.addApproval(Approval(fingerprint: "fp-1", ticket: "T-1", approver: "ana", createdAt: at, expiresAt: at.addingTimeInterval(3600)))
        try await acme.recordLineage(["r2": "r1"], at: at)
        let event = Self.event("e-1", at: at)
        let written = try await acme.recordAudit(
            AuditBatch(events: [event], findings: [], checkpoint: IngestionCheckpoint(highWater: at, updatedAt: at),
                deliveries: [OutboxItem(destination: "hec", payload: OutboxContractTests.payload("p1"))]))
        #expect(written == 1)

        // Everything globex reads is empty.
        #expect(try await globex.currentBaseline() == nil)
        #expect(try await globex.snapshots().isEmpty)
        #expect(try await globex.snapshot(rootHash: SnapshotDigest(snapshot).root) == nil, "a root hash from another organisation reads nothing")
        #expect(try await globex.approvals().isEmpty)
        #expect(try await globex.roleLineage().links.isEmpty)
        #expect(try await globex.auditEvent(id: "e-1", near: at) == nil)
        #expect(try await globex.recordedAuditEvents(ids: ["e-1"], datedFrom: .distantPast, to: .distantFuture).isEmpty)
        #expect(try await globex.auditEvents(from: at.addingTimeInterval(-60), to: at.addingTimeInterval(60)).isEmpty)
        #expect(try await globex.ingestionCheckpoint() == nil)
        #expect(try await globex.queuedDeliveries(destination: "hec", limit: 10).isEmpty)
        let acmeEntry = try #require(try await acme.queuedDeliveries(destination: "hec", limit: 10).first)
        #expect(try await globex.outboxEntry(id: acmeEntry.id) == nil, "an outbox id from another organisation reads nothing")
        try await globex.markDelivered([acmeEntry.id], at: at)
        #expect(try await acme.outboxEntry(id: acmeEntry.id)?.state == .queued, "nor can another organisation settle it")
        #expect(try await globex.purgeDeadLetter(id: acmeEntry.id) == false)

        // The same event id and baseline in globex are globex's own.
        #expect(try await globex.recordAudit(AuditBatch(events: [event], findings: [], checkpoint: IngestionCheckpoint(highWater: at, updatedAt: at))) == 1)
        _ = try await globex.acceptBaseline(snapshot: snapshot, collectedAt: at, acceptedBy: "bo", note: nil, at: at)
        #expect(try await globex.baselines().map(\.version) == [1])
        #expect(try await acme.baselines().map(\.acceptedBy) == ["ana"])
        let organizations = try await database.organizations().map(\.name)
        #expect(organizations == ["acme", "globex"])
    }

    @Test("migrations from several processes at once: each applied once, every opener gets a working store")
    func concurrentMigrations() async throws {
        let location = try await PostgresServer.createDatabase()
        let databases = try await withThrowingTaskGroup(of: PostgresDatabase.self) { group in
            for _ in 0..<4 { group.addTask { try await PostgresDatabase.open(location, password: nil) } }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(databases.count == 4)
        for (n, database) in databases.enumerated() {
            try await database.store(organization: "o\(n)").recordLineage(["a": "b"], at: at)
            await database.close()
        }
    }

    @Test("a lease is held by one owner at a time; the next grant has the next fencing token, and the old holder's writes are refused")
    func fencing() async throws {
        let database = try await PostgresServer.open()
        defer { Task { await database.close() } }
        let first = try #require(try await database.acquireLease("org:acme", owner: "w1", ttl: .seconds(60)))
        #expect(first.token == 1)
        #expect(try await database.acquireLease("org:acme", owner: "w2", ttl: .seconds(30)) == nil, "held: nobody else gets it")
        let stale = database.store(organization: "acme", fence: first)
        try await stale.recordLineage(["r1": "r1"], at: at)
        #expect(try await database.renewLease(first, ttl: .seconds(60)))

        // w1 stops renewing (paused) until its lease runs out — time moved on by setting the
        // expiry in the past rather than by sleeping — and w2 takes it.
        try await database.execute(unsafeSQL: "UPDATE lease SET expires_at = 0 WHERE name = 'org:acme'")
        let taken = try #require(try await database.acquireLease("org:acme", owner: "w2", ttl: .seconds(30)))
        #expect(taken.token == 2)
        do {
            try await stale.recordAudit(AuditBatch(events: [Self.event("late", at: at)], findings: [], checkpoint: IngestionCheckpoint(highWater: at, updatedAt: at)))
            Issue.record("a write with a superseded fencing token went through")
        } catch let error as StoreError {
            #expect(error.kind == .fenced)
        }
        #expect(try await database.store(organization: "acme").auditEvent(id: "late", near: at) == nil, "nothing of the refused write is kept")
        #expect(try await database.renewLease(first, ttl: .seconds(30)) == false, "the old holder cannot renew what it lost")
        try await database.store(organization: "acme", fence: taken).recordLineage(["r2": "r2"], at: at)

        // Released: another owner takes it at once, and the history shows each grant once.
        try await database.releaseLease(taken)
        let third = try #require(try await database.acquireLease("org:acme", owner: "w3", ttl: .seconds(30)))
        #expect(third.token == 3)
        let history = try await database.leaseHistory(prefix: "org:")
        #expect(history.map(\.owner) == ["w1", "w2", "w3"])
        #expect(history.map(\.token) == [1, 2, 3])
        #expect(history.dropLast().allSatisfy { $0.endedAt != nil } && history.last?.endedAt == nil)
    }

    @Test("store URLs: a password in the URL, an unknown parameter or sslmode are refused with one line; defaults fill the rest")
    func locations() throws {
        let plain = try PostgresLocation(url: "postgres://rbw@db.example:6543/audit?sslmode=require")
        #expect(plain.host == "db.example" && plain.port == 6543 && plain.user == "rbw" && plain.database == "audit" && plain.tls == .require)
        let defaults = try PostgresLocation(url: "postgresql://db.example")
        #expect(defaults.port == 5432 && defaults.user == "postgres" && defaults.database == "postgres" && defaults.tls == .prefer)
        #expect(throws: StoreError.self) { try PostgresLocation(url: "postgres://rbw:hunter2@db/audit") }
        do {
            _ = try PostgresLocation(url: "postgres://rbw:hunter2@db/audit")
        } catch {
            #expect(!error.description.contains("hunter2"), "the password is never repeated")
        }
        #expect(throws: StoreError.self) { try PostgresLocation(url: "postgres://db/audit?sslmode=maybe") }
        #expect(throws: StoreError.self) { try PostgresLocation(url: "postgres://db/audit?password=x") }
        #expect(throws: StoreError.self) { try PostgresLocation(url: "postgres://db/audit?sslrootcert=/ca.pem") }
        #expect(throws: StoreError.self) { try PostgresLocation(url: "postgres://db:99999/audit") }
    }

    @Test("an unreachable server is one line naming it, within the connect timeout")
    func unreachable() async throws {
        let port = try SyslogNG.freePort()
        let location = try PostgresLocation(url: "postgres://rbw@127.0.0.1:\(port)/audit?sslmode=disable")
        do {
            _ = try await PostgresDatabase.open(location, password: nil, connectTimeout: .seconds(3))
            Issue.record("opened a database on a closed port")
        } catch let error as StoreError {
            #expect(error.description.contains("127.0.0.1:\(port)"))
            #expect(!error.description.contains("\n"))
        }
    }

    @Test("the harness's children inherit no descriptor of the test process (a server holding another test's pipe would hang its reader)")
    func childrenInheritNothing() async throws {
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        defer { close(fds[0]); close(fds[1]) }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("rbw-child-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let child = try ChildProcess(name: "ls", executable: "/bin/sh", arguments: ["-c", "ls /proc/$$/fd"], environment: [:], directory: directory)
        #expect(await child.waitForExit(within: .seconds(30)))
        let open = Set(child.output.split(separator: "\n").compactMap { Int32($0) })
        #expect(!open.contains(fds[0]) && !open.contains(fds[1]), "the pipe leaked into the child: \(open.sorted())")
        #expect(open.isSubset(of: [0, 1, 2, 3]), "only stdin, stdout, stderr (and ls's own): \(open.sorted())")
    }
}
