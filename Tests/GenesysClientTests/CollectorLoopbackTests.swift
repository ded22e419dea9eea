import AuditCore
import AuditTestSupport
@testable import GenesysClient
import GenesysSimulator
import Testing

/// The collector against the simulator over real loopback HTTP, compared with the simulator's
/// own ground truth.
@Suite("Collector over loopback")
struct CollectorLoopbackTests {
    static func simulator(users: Int = 600, seed: UInt64 = 7, _ adjust: (inout SimulatorConfiguration) -> Void = { _ in }) -> GenesysSimulator {
        TestSupport.simulator(users: users, seed: seed, adjust)
    }

    @Test("a generated org is collected exactly, group-inherited access included")
    func exactSnapshot() async throws {
        let sim = await TestSupport.generated(users: 2000, seed: 7)
        let (snapshot, report) = try await sim.withRunning { endpoint in
            var options = CollectorOptions()
            options.verifySample = 40
            return try await TestSupport.collect(endpoint, options: options)
        }
        #expect(TestSupport.differences(snapshot, sim.groundTruth()) == [])
        #expect(!snapshot.isPartial)
        #expect(report.verified == 40)
        #expect(report.verifyMismatches == 0)
        // Inheritance is really exercised: some users hold roles only through a group.
        let inherited = snapshot.users.filter { user in user.access.contains { $0.via != .direct } }
        #expect(inherited.count > 50)
        // OAuth clients are principals too.
        #expect(snapshot.oauthClients.contains { !$0.access.isEmpty })
    }

    @Test("the plan costs pages and roles, not users")
    func requestCount() async throws {
        let sim = await TestSupport.generated(users: 3000, seed: 7)
        let (snapshot, report) = try await sim.withRunning { try await TestSupport.collect($0) }
        let truth = sim.groundTruth()
        #expect(TestSupport.differences(snapshot, truth) == [])
        // Far fewer requests than one per user.
        #expect(report.statistics.requests < truth.users.count / 4)
        #expect(report.statistics.rateLimited == 0)
    }

    @Test("two collections of an unchanged org are byte-identical")
    func deterministic() async throws {
        let sim = Self.simulator()
        let (first, second) = try await sim.withRunning { endpoint in
            let a = try await TestSupport.collect(endpoint).0
            let b = try await TestSupport.collect(endpoint).0
            return (a.canonicalJSON(), b.canonicalJSON())
        }
        #expect(first == second)
        #expect(first.count > 10_000)
    }

    @Test("tokens expiring mid-walk (a 401) are renewed and the walk completes exact")
    func tokenExpiry() async throws {
        // Every 25 requests the simulator expires every token it issued; renewal on schedule is
        // tested on a manual clock (RetryAndPacingTests), never here by sleeping past a lifetime.
        let sim = Self.simulator { config in
            config.faults.latency = .milliseconds(15)
            config.faults.expireTokensAfterRequests = 25
        }
        let (snapshot, report) = try await sim.withRunning { endpoint in
            var options = CollectorOptions()
            options.pageSize = 25
            options.userPageSize = 50
            return try await TestSupport.collect(endpoint, options: options)
        }
        #expect(TestSupport.differences(snapshot, sim.groundTruth()) == [])
        #expect(report.logins >= 2)
        #expect(report.statistics.reauthentications >= 1)
    }

    @Test("a 429 storm is waited out with nothing missing")
    func rateLimitStorm() async throws {
        let sim = Self.simulator { config in
            config.faults.rateLimitStorm = 40
            config.faults.stormRetryAfterSeconds = 1
        }
        let (snapshot, report) = try await sim.withRunning { try await TestSupport.collect($0) }
        #expect(TestSupport.differences(snapshot, sim.groundTruth()) == [])
        // Each of the 40 was seen as a 429 — or, on a machine loaded past the request deadline,
        // as a reply that never came in time (retried the same way).
        #expect(report.statistics.rateLimited >= 1)
        #expect(report.statistics.rateLimited + report.statistics.transportErrors >= 40, "\(report.statistics)")
    }

    @Test("5xx bursts and dropped connections are retried with nothing missing")
    func serverErrorsAndDrops() async throws {
        let sim = Self.simulator { config in
            config.faults.serverErrorBurst = 4
            config.faults.serverErrorRate = 0.05
            config.faults.dropConnections = 2
            config.faults.dropRate = 0.03
        }
        let (snapshot, report) = try await sim.withRunning { try await TestSupport.collect($0) }
        #expect(TestSupport.differences(snapshot, sim.groundTruth()) == [])
        #expect(report.statistics.serverErrors >= 4)
        #expect(report.statistics.transportErrors >= 2)
    }

    @Test(
        "data changing during a paging walk still gives an exact snapshot",
        arguments: [
            (SimulatedChange.insertUsers(count: 3), "/api/v2/users", 2, Noticed.rewalk),
            (SimulatedChange.renameFirstUser, "/api/v2/users", 2, Noticed.rewalk),
            (SimulatedChange.recreateFirstRole, "/api/v2/authorization/roles", 1, Noticed.confirmation),
            // After the last users page: the users walk has read the member's groups before the change.
            (SimulatedChange.addGroupMember, "/api/v2/users", 6, Noticed.referenceFetch),
        ])
    func midWalkMutation(change: SimulatedChange, path: String, page: Int, noticed: Noticed) async throws {
        let sim = Self.simulator()
        sim.mutate(change, afterPage: page, of: path)
        let before = sim.auditEventCount
        let (snapshot, report) = try await sim.withRunning { endpoint in
            var options = CollectorOptions()
            options.pageSize = 10
            options.userPageSize = 100
            // One request at a time, so pages are served in order and the change lands mid-walk.
            return try await TestSupport.collect(endpoint, options: options, concurrency: 1)
        }
        #expect(sim.auditEventCount > before, "the mutation happened")
        switch noticed {
        case .rewalk: #expect(report.rewalks.contains { $0.hasPrefix("users:") }, "the users list was walked again")
        case .confirmation: #expect(report.confirmationChanges > 0, "the confirmation walk adopted the recreated role")
        case .referenceFetch: #expect(report.referenceFetches > 0, "the stale member was read again")
        }
        #expect(TestSupport.differences(snapshot, sim.groundTruth()) == [])
        #expect(!snapshot.isPartial)
    }

    /// How the collector is expected to notice a change made during the walk.
    enum Noticed: Sendable {
        case rewalk, confirmation, referenceFetch
    }

    @Test("a missing permission names the permission and marks the snapshot partial")
    func missingPermission() async throws {
        let sim = Self.simulator { config in
            config.auditorPermissions = SimulatorConfiguration.defaultAuditorPermissions.filter { $0 != "oauth:client:view" }
        }
        let (snapshot, _) = try await sim.withRunning { try await TestSupport.collect($0) }
        #expect(snapshot.isPartial)
        let problem = try #require(snapshot.problems.first { $0.code == "missing.permissions" })
        #expect(problem.permissions == ["oauth:client:view"])
        #expect(problem.endpoint == "GET /api/v2/oauth/clients")
        #expect(snapshot.users.count == 600)
    }

    @Test("without authorization:grant:view the roles are kept, their holders unknown, and the snapshot partial")
    func missingGrantView() async throws {
        let sim = Self.simulator { config in
            config.auditorPermissions = SimulatorConfiguration.defaultAuditorPermissions.filter { $0 != "authorization:grant:view" }
        }
        let (snapshot, _) = try await sim.withRunning { try await TestSupport.collect($0) }
        #expect(snapshot.roles.count == sim.groundTruth().roles.count)
        #expect(snapshot.isPartial)
        #expect(snapshot.problems.contains { $0.code == "missing.permissions" && $0.permissions == ["authorization:grant:view"] })
        #expect(snapshot.grants.allSatisfy { $0.subjectKind == .oauthClient }, "only clients' own roleDivisions are known")
    }

    @Test("users hidden by division-scoped view rights are reported, not silently dropped")
    func hiddenUsers() async throws {
        let sim = Self.simulator()
        let truth = sim.groundTruth()
        let home = try #require(truth.divisions.first { $0.value == "Home" }?.key)
        let auditorRole = try #require(truth.roles.values.first { $0.name == "rbacwatch Auditor" }?.id)
        let snapshot = try await sim.withRunning { endpoint in
            // An administrator narrows the auditor client's role to the Home division.
            try await TestSupport.withClient(
                SimulatorEndpoint(
                    apiBaseURL: endpoint.apiBaseURL, loginBaseURL: endpoint.loginBaseURL, clientId: endpoint.adminClientId,
                    clientSecret: endpoint.adminClientSecret, adminClientId: "", adminClientSecret: "", port: endpoint.port)
            ) { admin in
                let body = #"{"grants":[{"roleId":"\#(auditorRole)","divisionId":"\#(home)"}]}"#
                _ = try await admin.send(
                    "POST", "/api/v2/authorization/subjects/\(endpoint.clientId)/bulkreplace?subjectType=PC_OAUTH_CLIENT",
                    body: Array(body.utf8))
            }
            return try await TestSupport.collect(endpoint).0
        }
        let visible = truth.users.values.filter { $0.divisionId == home }.count
        #expect(snapshot.users.count == visible)
        #expect(snapshot.isPartial)
        let problem = try #require(snapshot.problems.first { $0.code == "unresolved.reference" })
        #expect(problem.message.contains("users referenced by grants or memberships could not be read"))
    }

    @Test("bad credentials fail with a clear error")
    func badCredentials() async throws {
        let sim = Self.simulator(users: 50)
        let error = try await sim.withRunning { endpoint -> GenesysClientError? in
            do {
                _ = try await TestSupport.withClient(endpoint, secret: "wrong") { try await Collector(client: $0).collect() }
                return nil
            } catch let error as GenesysClientError {
                return error
            }
        }
        let failure = try #require(error)
        #expect(failure.kind == .authenticationFailed)
        #expect(failure.description.contains("invalid_client"))
        #expect(!failure.description.contains("wrong"), "the secret is never echoed")
    }

    @Test("a malformed reply fails with the endpoint named, after retrying")
    func malformedReply() async throws {
        let sim = Self.simulator(users: 50) { $0.faults.malformedReplies = 1000 }
        let error = try await sim.withRunning { endpoint -> GenesysClientError? in
            do {
                _ = try await TestSupport.collect(endpoint)
                return nil
            } catch let error as GenesysClientError {
                return error
            }
        }
        let failure = try #require(error)
        #expect(failure.kind == .malformedReply)
        #expect(failure.description.contains("GET /api/v2/"))
        #expect(failure.description.contains("malformed"))
    }

    @Test("a transient malformed reply is retried and the snapshot stays exact")
    func transientMalformed() async throws {
        let sim = Self.simulator { $0.faults.malformedReplies = 2 }
        let (snapshot, report) = try await sim.withRunning { try await TestSupport.collect($0) }
        #expect(TestSupport.differences(snapshot, sim.groundTruth()) == [])
        // Both corrupted replies were seen as malformed — or, on a machine loaded past the request
        // deadline, one came too late to be read (a transport error, retried the same way).
        #expect(report.statistics.malformedReplies >= 1)
        #expect(report.statistics.malformedReplies + report.statistics.transportErrors >= 2, "\(report.statistics)")
    }

    @Test("an unreachable host fails quickly with a clear error")
    func unreachable() async throws {
        let endpoint = SimulatorEndpoint(
            apiBaseURL: "http://127.0.0.1:1", loginBaseURL: "http://127.0.0.1:1", clientId: "x", clientSecret: "y",
            adminClientId: "", adminClientSecret: "", port: 1)
        var retry = TestSupport.fastRetry
        retry.maxAttempts = 2
        do {
            _ = try await TestSupport.collect(endpoint, retry: retry)
            Issue.record("collection against a closed port succeeded")
        } catch let error as GenesysClientError {
            #expect(error.kind == .unreachable)
            #expect(error.description.contains("127.0.0.1:1"))
        }
    }

    @Test("verification catches a snapshot that no longer matches the API")
    func verifyDetectsMismatch() async throws {
        let sim = Self.simulator()
        let mismatches = try await sim.withRunning { endpoint in
            try await TestSupport.withClient(endpoint) { client in
                let (snapshot, _) = try await Collector(client: client).collect()
                // The org moves on: a group gains a role, so its members' access changes.
                sim.apply(.grantRoleToGroup)
                var options = CollectorOptions()
                options.verifySample = snapshot.users.count
                return try await Collector(client: client, options: options).verify(snapshot, sample: snapshot.users.count).1
            }
        }
        #expect(!mismatches.isEmpty)
        #expect(mismatches.allSatisfy { $0.code == "verify.mismatch" })
    }
}
