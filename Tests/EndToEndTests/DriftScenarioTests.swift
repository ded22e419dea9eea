import AuditCore
import AuditStore
import AuditTestSupport
import Foundation
import GenesysClient
import GenesysSimulator
import Testing

/// Scenarios: change the simulated organisation through its write endpoints, as an administrator
/// would, then run the real `rbacwatch` commands as processes.
@Suite("Drift scenarios")
struct DriftScenarioTests {
    /// A simulator, a private state file, and the environment the commands need.
    struct Scenario {
        let sim: GenesysSimulator
        let endpoint: SimulatorEndpoint
        let directory: URL

        var statePath: String { directory.appendingPathComponent("state.sqlite").path }

        var environment: [String: String] {
            [
                "GENESYSCLOUD_OAUTHCLIENT_ID": endpoint.clientId, "GENESYSCLOUD_OAUTHCLIENT_SECRET": endpoint.clientSecret,
                "RBACWATCH_API_URL": endpoint.apiBaseURL, "RBACWATCH_STATE": statePath, "USER": "auditor",
            ]
        }

        func run(_ arguments: [String], extra: [String: String] = [:]) async throws -> CommandRunner.Result {
            try await CommandRunner.run(arguments, environment: environment.merging(extra) { $1 })
        }

        /// Runs `diff --format json` and returns the parsed report and the exit status.
        func diff(_ arguments: [String] = []) async throws -> (report: [String: Any], status: Int32) {
            let result = try await run(["diff", "--format", "json"] + arguments)
            let report = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
            return (try #require(report, "diff printed no JSON: \(result.stderr)"), result.status)
        }

        /// Sends a request as the simulator's administrator client.
        func admin(_ method: String, _ path: String, json: String? = nil) async throws {
            let adminEndpoint = SimulatorEndpoint(
                apiBaseURL: endpoint.apiBaseURL, loginBaseURL: endpoint.loginBaseURL, clientId: endpoint.adminClientId,
                clientSecret: endpoint.adminClientSecret, adminClientId: "", adminClientSecret: "", port: endpoint.port)
            _ = try await TestSupport.withClient(adminEndpoint) { client in
                try await client.send(method, path, body: json.map { Array($0.utf8) })
            }
        }
    }

    static func withScenario<T: Sendable>(users: Int = 300, _ body: @Sendable (Scenario) async throws -> T) async throws -> T {
        let sim = TestSupport.simulator(users: users, seed: 21)
        let directory = try CommandRunner.temporaryDirectory()
        return try await sim.withRunning { endpoint in
            let scenario = Scenario(sim: sim, endpoint: endpoint, directory: directory)
            let accepted = try await scenario.run(["baseline", "accept", "--note", "initial review"])
            #expect(accepted.status == 0, "\(accepted.stderr)")
            #expect(accepted.stdout.hasPrefix("Accepted baseline v1: "))
            return try await body(scenario)
        }
    }

    static func items(_ report: [String: Any]) -> [[String: Any]] {
        report["items"] as? [[String: Any]] ?? []
    }

    static func id(_ item: [String: Any], _ key: String) -> String? {
        (item[key] as? [String: Any])?["id"] as? String
    }

    @Test("an unchanged org: zero drift, a passing gate, byte-identical snapshots")
    func unchanged() async throws {
        try await Self.withScenario { scenario in
            let (report, status) = try await scenario.diff(["--fail-on", "low"])
            #expect(status == 0)
            #expect(Self.items(report).isEmpty)
            let a = scenario.directory.appendingPathComponent("a.json").path
            let b = scenario.directory.appendingPathComponent("b.json").path
            #expect(try await scenario.run(["snapshot", "--out", a]).status == 0)
            #expect(try await scenario.run(["snapshot", "--out", b]).status == 0)
            #expect(FileManager.default.contents(atPath: a) == FileManager.default.contents(atPath: b))
            let table = try await scenario.run(["diff"])
            #expect(table.stdout.contains("No drift"))
        }
    }

    @Test("a critical role granted to a group: a critical gain for every member, with provenance and cause")
    func criticalGrantToGroup() async throws {
        try await Self.withScenario { scenario in
            let truth = scenario.sim.groundTruth()
            let group = try #require(truth.groups.values.filter { $0.rolesEnabled && !$0.memberIds.isEmpty }.sorted { $0.id < $1.id }.first)
            let admin = try #require(truth.roles.values.first { $0.name == "Master Admin" })
            try await scenario.admin("POST", "/api/v2/authorization/subjects/\(group.id)/divisions/*/roles/\(admin.id)?subjectType=PC_GROUP")

            let (report, status) = try await scenario.diff(["--fail-on", "high"])
            #expect(status == 3)
            let items = Self.items(report)
            let grant = try #require(items.first { $0["kind"] as? String == "grantAdded" && Self.id($0, "subject") == group.id })
            #expect(grant["severity"] as? String == "critical")
            #expect(grant["escalation"] as? Bool == true)
            let gains = items.filter { $0["kind"] as? String == "permissionsGained" && Self.id($0, "via") == group.id }
            // Every member gains, unless they already held everything Master Admin gives in every division.
            #expect(Set(gains.compactMap { Self.id($0, "subject") }) == Set(group.memberIds))
            for gain in gains {
                #expect(gain["severity"] as? String == "critical")
                #expect(gain["cause"] as? String == grant["fingerprint"] as? String)
                #expect(Self.id(gain, "division") == "*")
                #expect(Self.id(gain, "role") == admin.id)
                #expect((gain["permissionsAdded"] as? [String])?.contains("authorization:grant:*") == true, "Master Admin holds every action")
            }
            let summary = try #require(report["summary"] as? [String: Any])
            #expect(summary["unapproved"] as? Int == items.count)

            // Attribution: the grant, and through it each member's gain, is the admin client's MemberAdd.
            let attribution = try #require(report["attribution"] as? [String: Any], "\(report.keys.sorted())")
            #expect(attribution["unexplained"] as? Int == 0)
            #expect((attribution["source"] as? String)?.contains("the audit API") == true)
            let grantAttribution = try #require(grant["attribution"] as? [String: Any])
            #expect(grantAttribution["status"] as? String == "explained")
            let event = try #require((grantAttribution["events"] as? [[String: Any]])?.last)
            #expect(event["action"] as? String == "MemberAdd" && event["clientId"] as? String == scenario.endpoint.adminClientId)
            for gain in gains { #expect((gain["attribution"] as? [String: Any])?["status"] as? String == "explained") }
            let table = try await scenario.run(["diff"])
            #expect(table.stdout.contains("every change is explained") && table.stdout.contains("MemberAdd by client \(scenario.endpoint.adminClientId)"), "\(table.stdout)")
        }
    }

    @Test("a role's permission edit shows as modified, with its holders' gains")
    func roleEdited() async throws {
        try await Self.withScenario { scenario in
            let truth = scenario.sim.groundTruth()
            let holders = Dictionary(grouping: truth.grants.filter { $0.subjectType == "PC_USER" }, by: \.roleId)
            let held = truth.roles.values.filter { role in !role.isDefault && holders[role.id] != nil }.sorted { $0.id < $1.id }
            let role = try #require(held.first)
            let permissions = (role.permissions + ["recording:recording:delete"]).map { "\"\($0)\"" }.joined(separator: ",")
            try await scenario.admin("PUT", "/api/v2/authorization/roles/\(role.id)", json: #"{"name":"\#(role.name)","permissions":[\#(permissions)]}"#)

            let items = Self.items(try await scenario.diff().report)
            let modified = try #require(items.first { $0["kind"] as? String == "roleModified" })
            #expect(Self.id(modified, "subject") == role.id)
            #expect(modified["permissionsAdded"] as? [String] == ["recording:recording:delete"])
            #expect(modified["severity"] as? String == "high")
            let gains = items.filter { $0["kind"] as? String == "permissionsGained" }
            #expect(!gains.isEmpty)
            #expect(gains.allSatisfy { $0["cause"] as? String == modified["fingerprint"] as? String })
            #expect(!items.contains { ["roleDeleted", "roleCreated", "grantAdded", "grantRemoved"].contains($0["kind"] as? String) })
        }
    }

    @Test("a baseline file written by another tool (indented, keys in another order) compares by its content, as its canonical original does")
    func foreignBaselineFile() async throws {
        try await Self.withScenario { scenario in
            let canonical = scenario.directory.appendingPathComponent("baseline.json").path
            let foreign = scenario.directory.appendingPathComponent("baseline-indented.json").path
            #expect(try await scenario.run(["snapshot", "--no-store", "--out", canonical]).status == 0)
            let script = """
                import json, sys
                def turn(v):
                    if isinstance(v, dict): return {k: turn(v[k]) for k in reversed(list(v))}
                    if isinstance(v, list): return [turn(x) for x in v]
                    return v
                json.dump(turn(json.load(open(sys.argv[1]))), open(sys.argv[2], 'w'), indent=2)
                """
            let rewritten = try await CommandRunner.runProcess("/usr/bin/env", ["python3", "-c", script, canonical, foreign], timeout: .seconds(60))
            #expect(rewritten.status == 0, "\(rewritten.stderr)")
            #expect(try Data(contentsOf: URL(fileURLWithPath: foreign)) != Data(contentsOf: URL(fileURLWithPath: canonical)))

            let truth = scenario.sim.groundTruth()
            let role = try #require(truth.roles.values.filter { !$0.isDefault }.sorted { $0.id < $1.id }.first)
            let permissions = (role.permissions + ["recording:recording:delete"]).map { "\"\($0)\"" }.joined(separator: ",")
            try await scenario.admin("PUT", "/api/v2/authorization/roles/\(role.id)", json: #"{"name":"\#(role.name)","permissions":[\#(permissions)]}"#)
            let current = scenario.directory.appendingPathComponent("current.json").path
            #expect(try await scenario.run(["snapshot", "--no-store", "--out", current]).status == 0)

            let fromCanonical = try await scenario.diff(["--baseline", canonical, "--current", current, "--no-attribution"]).report
            let fromForeign = try await scenario.diff(["--baseline", foreign, "--current", current, "--no-attribution"]).report
            let fingerprints = { (report: [String: Any]) in Self.items(report).compactMap { $0["fingerprint"] as? String } }
            #expect(!fingerprints(fromCanonical).isEmpty)
            #expect(fingerprints(fromForeign) == fingerprints(fromCanonical))
            #expect(Self.items(fromCanonical).contains { $0["kind"] as? String == "roleModified" })
            let root = { (report: [String: Any]) in (report["baseline"] as? [String: Any])?["rootHash"] as? String }
            #expect(root(fromForeign) != nil && root(fromForeign) == root(fromCanonical))
        }
    }

    @Test("a role deleted and recreated under the same name shows as recreated, not removed + added")
    func roleRecreated() async throws {
        try await Self.withScenario { scenario in
            let truth = scenario.sim.groundTruth()
            let grants = Dictionary(grouping: truth.grants, by: \.roleId)
            let shared = truth.roles.values.filter { role in !role.isDefault && grants[role.id, default: []].count > 1 }.sorted { $0.id < $1.id }
            let role = try #require(shared.first)
            try await scenario.admin("DELETE", "/api/v2/authorization/roles/\(role.id)")
            let permissions = role.permissions.map { "\"\($0)\"" }.joined(separator: ",")
            try await scenario.admin("POST", "/api/v2/authorization/roles", json: #"{"name":"\#(role.name)","permissions":[\#(permissions)]}"#)
            let recreated = try #require(scenario.sim.groundTruth().roles.values.first { $0.name == role.name && $0.id != role.id })
            // The administrator grants the new role back to everyone who held the old one.
            for grant in grants[role.id] ?? [] {
                try await scenario.admin(
                    "POST",
                    "/api/v2/authorization/subjects/\(grant.subjectId)/divisions/\(grant.divisionId)/roles/\(recreated.id)?subjectType=\(grant.subjectType)")
            }

            let items = Self.items(try await scenario.diff().report)
            #expect(items.map { $0["kind"] as? String } == ["roleRecreated"])
            let item = try #require(items.first)
            #expect(Self.id(item, "previous") == role.id)
            #expect(Self.id(item, "subject") == recreated.id)
            // The lineage persists: the next run knows the two ids are one role.
            let store = try SQLiteAuditStore(path: scenario.statePath)
            #expect(try await store.roleLineage().lineage(of: recreated.id) == role.id)
        }
    }

    @Test("an approval makes diff --fail-on high pass until it expires, then the gate fails again and the lapse is reported")
    func approvalExpiry() async throws {
        try await Self.withScenario { scenario in
            let truth = scenario.sim.groundTruth()
            let group = try #require(truth.groups.values.filter { $0.rolesEnabled && !$0.memberIds.isEmpty }.sorted { $0.id < $1.id }.first)
            let admin = try #require(truth.roles.values.first { $0.name == "Master Admin" })
            try await scenario.admin("POST", "/api/v2/authorization/subjects/\(group.id)/divisions/*/roles/\(admin.id)?subjectType=PC_GROUP")

            let (before, failing) = try await scenario.diff(["--fail-on", "high"])
            #expect(failing == 3)
            let grant = try #require(Self.items(before).first { $0["kind"] as? String == "grantAdded" })
            let fingerprint = try #require(grant["fingerprint"] as? String)

            // Long enough for the checks below on a loaded machine (under two CPU hogs they took
            // more than 10 s); the wait is only what is left.
            let approved = try await scenario.run(["approve", String(fingerprint.prefix(10)), "--ticket", "CHG-77", "--expires", "25s"])
            #expect(approved.status == 0, "\(approved.stderr)")
            #expect(approved.stdout.contains("CHG-77"))
            let (during, passing) = try await scenario.diff(["--fail-on", "high"])
            #expect(passing == 0)
            let stillThere = try #require(Self.items(during).first { $0["fingerprint"] as? String == fingerprint })
            #expect(stillThere["status"] as? String == "approved", "an approved item stays visible")
            #expect(Self.items(during).filter { $0["kind"] as? String == "permissionsGained" }.allSatisfy { $0["status"] as? String == "approved-by-cause" })
            let listed = try await scenario.run(["approvals", "list"])
            #expect(listed.stdout.contains(String(fingerprint.prefix(12))))

            // Until the approval's own expiry (set when the approve process ran, which a loaded
            // machine may start well after this test asked for it), and a little more.
            let expiresAt = try #require(try await SQLiteAuditStore(path: scenario.statePath).approvals().first { $0.fingerprint == fingerprint }?.expiresAt)
            try await Task.sleep(for: .milliseconds(Int64(max(0, expiresAt.timeIntervalSinceNow) * 1000) + 300))
            let (after, failingAgain) = try await scenario.diff(["--fail-on", "high"])
            #expect(failingAgain == 3)
            #expect((after["lapsedApprovals"] as? [[String: Any]])?.first?["ticket"] as? String == "CHG-77")
            #expect(Self.items(after).first { $0["fingerprint"] as? String == fingerprint }?["status"] as? String == "lapsed")
            let table = try await scenario.run(["diff", "--fail-on", "high"])
            #expect(table.status == 3)
            #expect(table.stdout.contains("Approval lapsed"))
        }
    }

    @Test("approving or revoking something unknown is a clear error")
    func unknownFingerprint() async throws {
        try await Self.withScenario { scenario in
            let approve = try await scenario.run(["approve", "abcdef123456"])
            #expect(approve.status == 2)
            #expect(approve.stderr.contains("no drift item or audit finding has a fingerprint starting with abcdef123456"))
            let revoke = try await scenario.run(["approvals", "revoke", "abcdef"])
            #expect(revoke.status == 2)
            let short = try await scenario.run(["approve", "abc"])
            #expect(short.status == 2)
        }
    }

    @Test("reports: CSV and OCSF to a private file; a risk policy file changes severities; a broken one is a usage error")
    func reportsAndRisk() async throws {
        try await Self.withScenario { scenario in
            let truth = scenario.sim.groundTruth()
            let user = try #require(truth.users.values.filter { $0.state == "active" }.sorted { $0.id < $1.id }.first)
            let role = try #require(truth.roles.values.first { $0.name.hasSuffix("WFM Planner") })
            try await scenario.admin("POST", "/api/v2/authorization/subjects/\(user.id)/divisions/*/roles/\(role.id)?subjectType=PC_USER")
            let csvPath = scenario.directory.appendingPathComponent("drift.csv").path
            #expect(try await scenario.run(["diff", "--format", "csv", "--out", csvPath]).status == 0)
            let csv = try String(contentsOfFile: csvPath, encoding: .utf8)
            #expect(csv.hasPrefix("fingerprint,severity,"))
            #expect(csv.contains("grantAdded"))
            #expect(try FileManager.default.attributesOfItem(atPath: csvPath)[.posixPermissions] as? Int == 0o600)
            let ocsf = try await scenario.run(["diff", "--format", "ocsf"])
            let first = try #require(ocsf.stdout.split(separator: "\n").first)
            let event = try #require(try JSONSerialization.jsonObject(with: Data(first.utf8)) as? [String: Any])
            #expect(event["class_uid"] as? Int == 2003)

            let before = try #require(Self.items(try await scenario.diff().report).first { $0["kind"] as? String == "grantAdded" })
            let policy = scenario.directory.appendingPathComponent("risk.json").path
            try Data(#"{"version":1,"rules":[{"match":["wfm:*"],"severity":"critical","reason":"schedules are sacred here"}]}"#.utf8)
                .write(to: URL(fileURLWithPath: policy))
            let after = try #require(Self.items(try await scenario.diff(["--risk", policy]).report).first { $0["kind"] as? String == "grantAdded" })
            #expect(before["severity"] as? String != "critical")
            #expect(after["severity"] as? String == "critical")
            #expect(after["fingerprint"] as? String == before["fingerprint"] as? String, "severity is not part of the fingerprint")
            try Data(#"{"version":1,"rules":[{"match":["x"],"severity":"dire"}]}"#.utf8).write(to: URL(fileURLWithPath: policy))
            let broken = try await scenario.run(["diff", "--risk", policy])
            #expect(broken.status == 2)
            #expect(broken.stderr.contains("severity \"dire\""))
        }
    }

    @Test("kill -9 in the middle of a baseline write leaves the previous baseline intact and the store readable")
    func killDuringBaselineWrite() async throws {
        try await Self.withScenario { scenario in
            let before = try await SQLiteAuditStore(path: scenario.statePath).currentBaseline()
            // A different snapshot to accept: the org after a change.
            scenario.sim.apply(.grantRoleToGroup)
            let next = scenario.directory.appendingPathComponent("next.json").path
            #expect(try await scenario.run(["snapshot", "--no-store", "--out", next]).status == 0)

            // The write pauses inside its transaction (after the rows, before the commit); kill it there.
            let process = Process()
            process.executableURL = URL(fileURLWithPath: CommandRunner.binary)
            process.arguments = ["baseline", "accept", "--snapshot", next]
            process.environment = scenario.environment.merging(["RBACWATCH_FAULT_WRITE_PAUSE_MS": "20000"]) { $1 }
            let errors = Pipe()
            process.standardError = errors
            process.standardOutput = FileHandle.nullDevice
            try process.run()
            let line = try await CommandRunner.firstLine(of: errors.fileHandleForReading, from: process, timeout: .seconds(60))
            #expect(line.contains("pausing 20000 ms inside a state write"))
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
            #expect(process.terminationReason == .uncaughtSignal)

            let store = try SQLiteAuditStore(path: scenario.statePath)
            #expect(try await store.currentBaseline() == before)
            #expect(try await store.baselines().count == 1)
            let (_, snapshot) = try #require(try await store.baselineSnapshot())
            #expect(snapshot.users.count == 300)
            let listed = try await scenario.run(["baseline", "list"])
            #expect(listed.status == 0)
            #expect(listed.stdout.contains("*v1"))

            // Kills at arbitrary moments: the store always opens, the first baseline always survives.
            for delay in [0, 40, 90, 150, 250] {
                let process = Process()
                process.executableURL = URL(fileURLWithPath: CommandRunner.binary)
                process.arguments = ["baseline", "accept", "--snapshot", next]
                process.environment = scenario.environment
                process.standardError = FileHandle.nullDevice
                process.standardOutput = FileHandle.nullDevice
                try process.run()
                try await Task.sleep(for: .milliseconds(delay))
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()
                let reopened = try SQLiteAuditStore(path: scenario.statePath)
                let baselines = try await reopened.baselines()
                #expect(baselines.first == before)
                if let latest = baselines.last, latest != before {
                    #expect(try await reopened.snapshot(rootHash: latest.rootHash) != nil)
                }
            }
        }
    }

    @Test("a state file that is not ours: one line, exit 1, left untouched")
    func foreignStateFile() async throws {
        let directory = try CommandRunner.temporaryDirectory()
        let path = directory.appendingPathComponent("notes.txt").path
        try Data("shopping list\n".utf8).write(to: URL(fileURLWithPath: path))
        let result = try await CommandRunner.run(["baseline", "list", "--state", path])
        #expect(result.status == 1)
        #expect(result.stderr.split(separator: "\n").count == 1)
        #expect(result.stderr.contains("is not an rbacwatch state file"))
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "shopping list\n")
    }

    @Test("diff without a baseline says how to make one")
    func noBaseline() async throws {
        let directory = try CommandRunner.temporaryDirectory()
        let result = try await CommandRunner.run(
            ["diff", "--current", "/dev/null", "--state", directory.appendingPathComponent("s.sqlite").path])
        #expect(result.status == 1)
        #expect(result.stderr.contains("no baseline yet"))
    }
}
