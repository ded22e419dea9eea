import AuditCore
import AuditTestSupport
import Foundation
import GenesysSimulator
import Testing

/// `rbacwatch snapshot` as a process, against a simulator in this test process.
@Suite("rbacwatch snapshot")
struct SnapshotCommandTests {
    static func simulator(_ adjust: (inout SimulatorConfiguration) -> Void = { _ in }) -> GenesysSimulator {
        TestSupport.simulator(users: 400, seed: 5, adjust)
    }

    static func environment(_ endpoint: SimulatorEndpoint, secret: String? = nil) -> [String: String] {
        [
            "GENESYSCLOUD_OAUTHCLIENT_ID": endpoint.clientId,
            "GENESYSCLOUD_OAUTHCLIENT_SECRET": secret ?? endpoint.clientSecret,
            "RBACWATCH_API_URL": endpoint.apiBaseURL,
        ]
    }

    @Test("writes a private, canonical snapshot; two runs are byte-identical; the secret never shows")
    func snapshotFile() async throws {
        let dir = try CommandRunner.temporaryDirectory()
        let sim = Self.simulator()
        let (first, second) = try await sim.withRunning { endpoint in
            let env = Self.environment(endpoint)
            let a = try await CommandRunner.run(["snapshot", "--out", dir.appendingPathComponent("a.json").path], environment: env)
            let b = try await CommandRunner.run(["snapshot", "--out", dir.appendingPathComponent("b.json").path, "--verify", "10"], environment: env)
            return (a, b)
        }
        #expect(first.status == 0, "\(first.stderr)")
        #expect(second.status == 0, "\(second.stderr)")
        let a = try Data(contentsOf: dir.appendingPathComponent("a.json"))
        let b = try Data(contentsOf: dir.appendingPathComponent("b.json"))
        #expect(a == b)
        let snapshot = try Snapshot(canonicalJSON: a)
        #expect(snapshot.users.count == 400)
        let attributes = try FileManager.default.attributesOfItem(atPath: dir.appendingPathComponent("a.json").path)
        #expect((attributes[.posixPermissions] as? Int) == 0o600)
        #expect(first.stdout.contains(": complete"))
        #expect(first.stdout.contains("sha256 \(ContentHash.sha256Hex(Array(a)))"))
        #expect(second.stdout.contains("verified 10 users against authorization/subjects: 0 mismatches"))
        let secret = try await Self.simulator().withRunning { $0.clientSecret }
        for output in [first.stdout, first.stderr, second.stdout, second.stderr, String(decoding: a, as: UTF8.self)] {
            #expect(!output.contains(secret))
        }
    }

    @Test("with neither USER nor LOGNAME set, a baseline is accepted by the account the process runs as, not by unknown")
    func accountNameFallback() async throws {
        let dir = try CommandRunner.temporaryDirectory()
        let expected = try #require(getpwuid(geteuid())?.pointee.pw_name.map { String(cString: $0) })
        let result = try await Self.simulator().withRunning { endpoint in
            var env = Self.environment(endpoint)
            env["RBACWATCH_STATE"] = dir.appendingPathComponent("state.sqlite").path
            return try await CommandRunner.run(["baseline", "accept"], environment: env)
        }
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.hasSuffix(") by \(expected)\n"), "\(result.stdout)")
        #expect(!result.stdout.contains("by unknown"))
    }

    @Test("a missing permission gives a partial snapshot and exit code 4")
    func partial() async throws {
        let sim = Self.simulator { config in
            config.auditorPermissions = SimulatorConfiguration.defaultAuditorPermissions.filter { $0 != "oauth:client:view" }
        }
        let result = try await sim.withRunning { endpoint in
            try await CommandRunner.run(["snapshot"], environment: Self.environment(endpoint))
        }
        #expect(result.status == 4)
        #expect(result.stdout.contains("PARTIAL"))
        #expect(result.stdout.contains("missing.permissions GET /api/v2/oauth/clients: missing permission oauth:client:view"))
    }

    @Test("bad credentials: one line on stderr, exit 1, the previous file untouched")
    func badCredentials() async throws {
        let dir = try CommandRunner.temporaryDirectory()
        let file = dir.appendingPathComponent("keep.json")
        try Data("previous".utf8).write(to: file)
        let result = try await Self.simulator().withRunning { endpoint in
            try await CommandRunner.run(["snapshot", "--out", file.path], environment: Self.environment(endpoint, secret: "wrong-secret"))
        }
        #expect(result.status == 1)
        let lines = result.stderr.split(separator: "\n")
        #expect(lines.count == 1, "\(result.stderr)")
        #expect(result.stderr.hasPrefix("rbacwatch: login refused"))
        #expect(result.stderr.contains("invalid_client"))
        #expect(!result.stderr.contains("wrong-secret"))
        #expect(result.stdout.isEmpty)
        #expect(try String(contentsOf: file, encoding: .utf8) == "previous")
    }

    @Test("a malformed reply: one clear line, exit 1")
    func malformed() async throws {
        let sim = Self.simulator { $0.faults.malformedReplies = 10_000 }
        let result = try await sim.withRunning { endpoint in
            try await CommandRunner.run(["snapshot"], environment: Self.environment(endpoint))
        }
        #expect(result.status == 1)
        #expect(result.stderr.split(separator: "\n").count == 1, "\(result.stderr)")
        #expect(result.stderr.contains("returned a malformed reply"))
        #expect(!result.stderr.contains("Fatal error"))
    }

    @Test("an unreachable host: one clear line, exit 1, in seconds (a refused connection is not waited on)")
    func unreachable() async throws {
        let env = [
            "GENESYSCLOUD_OAUTHCLIENT_ID": "id", "GENESYSCLOUD_OAUTHCLIENT_SECRET": "secret",
            "RBACWATCH_API_URL": "http://127.0.0.1:9",
        ]
        // About 0.3 s alone. The collection gets 15 s: were each of its two attempts to wait out
        // the 10 s connect timeout (20 s), the budget would end it first and say so instead —
        // a check that does not depend on how loaded the machine is (the wall time, up to 24 s
        // under the whole suite, does).
        let result = try await CommandRunner.measure(["snapshot", "--timeout", "15s"], environment: env)
        #expect(result.wall < .seconds(90), "\(result.wall)")
        #expect(result.status == 1)
        #expect(result.stderr.split(separator: "\n").count == 1, "\(result.stderr)")
        #expect(result.stderr.contains("cannot connect to 127.0.0.1:9"))
    }

    @Test(
        "configuration mistakes are usage errors (exit 2) with one line saying what to do",
        arguments: [
            ([String: String](), "GENESYSCLOUD_OAUTHCLIENT_ID"),
            (["GENESYSCLOUD_OAUTHCLIENT_ID": "id"], "GENESYSCLOUD_OAUTHCLIENT_SECRET"),
            (["GENESYSCLOUD_OAUTHCLIENT_ID": "id", "GENESYSCLOUD_OAUTHCLIENT_SECRET": "s"], "GENESYSCLOUD_REGION"),
            (["GENESYSCLOUD_OAUTHCLIENT_ID": "id", "GENESYSCLOUD_OAUTHCLIENT_SECRET": "s", "GENESYSCLOUD_REGION": "mars-1"], "unknown region"),
        ])
    func configuration(env: [String: String], mentions: String) async throws {
        let result = try await CommandRunner.run(["snapshot"], environment: env)
        #expect(result.status == 2)
        #expect(result.stderr.split(separator: "\n").count == 1, "\(result.stderr)")
        #expect(result.stderr.contains(mentions))
    }

    @Test("the secret cannot be given on the command line")
    func noSecretFlag() async throws {
        let result = try await CommandRunner.run(["snapshot", "--client-secret", "s3cret"])
        #expect(result.status == 2)
        #expect(result.stderr.contains("Unknown option"))
    }

    @Test("when stderr is a terminal, a progress line shows the phase, pages, requests and budget")
    func progressLine() async throws {
        let sim = Self.simulator { $0.rateLimitPerMinute = 10_000 }
        let result = try await sim.withRunning { endpoint in
            let env = Self.environment(endpoint)
            let command = ([CommandRunner.binary, "snapshot"]).map { "'\($0)'" }.joined(separator: " ")
            // `script` gives the command a pseudo-terminal; the environment rides along.
            return try await CommandRunner.runProcess("/usr/bin/script", ["-qec", command, "/dev/null"], environment: env)
        }
        #expect(result.status == 0, "\(result.stdout)")
        #expect(result.stdout.contains("collecting: "))
        #expect(result.stdout.contains("rate budget"))
        #expect(result.stdout.contains(": complete"))
    }
}
