import AuditTestSupport
import AuditCore
import Foundation
import GenesysClient
import Testing

@Suite("rbacwatch simulate and demo")
struct SimulateAndDemoTests {
    @Test("demo and tui refuse to run without a terminal: one line, non-zero, nothing else")
    func dashboardNeedsTerminal() async throws {
        for arguments in [["demo", "--users", "50"], ["tui"], []] {
            let result = try await CommandRunner.run(arguments)
            #expect(result.status != 0, "\(arguments)")
            let lines = result.stderr.split(separator: "\n")
            #expect(lines.count == 1, "\(arguments): \(result.stderr)")
            #expect(result.stderr.contains("needs a terminal"), "\(arguments): \(result.stderr)")
            #expect(result.stdout.isEmpty)
        }
    }

    @Test("demo --summary collects the embedded simulator and prints the summary")
    func demo() async throws {
        let result = try await CommandRunner.run(["demo", "--summary", "--users", "300", "--verify", "20"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("Simulator listening at http://127.0.0.1:"))
        #expect(result.stdout.contains(": complete"))
        #expect(result.stdout.split(separator: "\n").contains { $0.split(separator: " ").prefix(2) == ["users", "300"] })
        #expect(result.stdout.contains("verified 20 users against authorization/subjects: 0 mismatches"))
    }

    @Test("simulate prints one JSON ready line, serves, generates audited activity across services with --activity, and stops cleanly on SIGTERM")
    func simulate() async throws {
        let (process, line) = try await startSimulator(users: 200, extra: ["--activity", "600"])
        defer { if process.isRunning { process.terminate() } }
        let ready = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        let api = try #require(ready["apiBaseUrl"] as? String)
        #expect(api.hasPrefix("http://127.0.0.1:"))
        #expect(ready["loginBaseUrl"] as? String == api)
        #expect((ready["clientId"] as? String)?.count == 36)
        #expect((ready["clientSecret"] as? String)?.isEmpty == false)
        let transport = AsyncHTTPClientTransport()
        let response = try await transport.send(HTTPRequestData(method: "GET", url: api + "/api/v2/users"))
        await transport.shutdown()
        #expect(response.status == 401)

        // Ten changes a second in the background, RBAC and the rest, all in the audit log.
        let client = GenesysAPIClient(
            connection: GenesysConnection(
                apiBaseURL: api, loginBaseURL: api, clientId: try #require(ready["clientId"] as? String),
                clientSecret: Secret(try #require(ready["clientSecret"] as? String))),
            transport: AsyncHTTPClientTransport())
        let source = GenesysAuditSource(client: client)
        var services = Set<String>()
        let until = ContinuousClock.now + .seconds(20)
        while services.count < 3 && ContinuousClock.now < until {
            try await Task.sleep(for: .milliseconds(500))
            let events = try await source.events(from: Date().addingTimeInterval(-300), to: Date().addingTimeInterval(60), service: "*", realtime: true)
            services = Set(events.map(\.serviceName))
        }
        await client.shutdown()
        #expect(services.count >= 3 && services.contains("PeoplePermissions"), "\(services)")

        process.terminate()  // SIGTERM
        let deadline = ContinuousClock.now + .seconds(15)
        while process.isRunning && ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        #expect(!process.isRunning, "still running 15 s after SIGTERM")
        // Foundation traps on the status of a running process: ask only once it has ended.
        if !process.isRunning { #expect(process.terminationStatus == 0) }
    }

    @Test("simulate --orgs 3 serves three distinct organisations from one port, each reached with its own credentials, and writes an organisations file")
    func simulateFleet() async throws {
        let directory = try CommandRunner.temporaryDirectory()
        let orgsFile = directory.appendingPathComponent("orgs.json").path
        let (process, line) = try await startSimulator(users: 50, extra: ["--orgs", "3", "--orgs-file", orgsFile])
        defer { if process.isRunning { process.terminate() } }
        let ready = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        let organizations = try #require(ready["organizations"] as? [[String: Any]])
        #expect(organizations.count == 3)
        #expect(organizations.compactMap { $0["name"] as? String } == ["sim-1", "sim-2", "sim-3"])
        #expect(Set(organizations.compactMap { $0["organizationId"] as? String }).count == 3)
        #expect(Set(organizations.compactMap { $0["clientId"] as? String }).count == 3)
        #expect(Set(organizations.compactMap { $0["apiBaseUrl"] as? String }).count == 1, "one port for all")
        // Each client's token reaches its own organisation, as on Genesys Cloud.
        var seen: [String] = []
        for organization in organizations {
            let api = try #require(organization["apiBaseUrl"] as? String)
            let client = GenesysAPIClient(
                connection: GenesysConnection(
                    apiBaseURL: api, loginBaseURL: api, clientId: try #require(organization["clientId"] as? String),
                    clientSecret: Secret(try #require(organization["clientSecret"] as? String))),
                transport: AsyncHTTPClientTransport())
            let me = try await client.organization()
            await client.shutdown()
            #expect(me.id == organization["organizationId"] as? String)
            seen.append(me.name)
        }
        #expect(Set(seen).count == 3, "three names: \(seen)")
        // The organisations file reads back, its secrets in private files beside it.
        let entries = try OrganizationsFile.parse(Array(try Data(contentsOf: URL(fileURLWithPath: orgsFile))))
        #expect(entries.map(\.name) == ["sim-1", "sim-2", "sim-3"])
        guard case .valid(let first)? = entries.first, case .file(let secretPath) = first.clientSecret else {
            Issue.record("the first entry is not valid with a secret file: \(entries)")
            return
        }
        let mode = try #require(try FileManager.default.attributesOfItem(atPath: secretPath)[.posixPermissions] as? Int)
        #expect(mode == 0o600)
        #expect(try String(contentsOfFile: secretPath, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines) == organizations[0]["clientSecret"] as? String)
        process.terminate()
    }

    @Test(
        "the simulator deserialises cleanly in Genesys's official Python SDK",
        .enabled(
            if: SDKProbe.python != nil || ProcessInfo.processInfo.environment["RBACWATCH_REQUIRE_SDK_PROBE"] == "1",
            "needs purecloudplatformclientv2: set RBACWATCH_SDK_PYTHON to a python that has it (CI does)"))
    func pythonSDK() async throws {
        let python = try #require(SDKProbe.python, "RBACWATCH_REQUIRE_SDK_PROBE=1 but no python with purecloudplatformclientv2 was found")
        let (process, line) = try await startSimulator(users: 300)
        defer { if process.isRunning { process.terminate() } }
        let probe = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("SDKProbe/sdk_probe.py").path
        let result = try await CommandRunner.runProcess(python, [probe, line], timeout: .seconds(300))
        #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
        let summary = try #require(
            try JSONSerialization.jsonObject(with: Data(result.stdout.split(separator: "\n").last.map(String.init)?.utf8 ?? "".utf8))
                as? [String: Any])
        #expect(summary["users"] as? Int == 300)
        #expect((summary["failures"] as? [Any])?.isEmpty == true)
        #expect(summary["calls"] as? Int ?? 0 > 100)
    }

    /// Starts `rbacwatch simulate` and returns the process with its ready line.
}

/// Finds a Python with Genesys's SDK: `RBACWATCH_SDK_PYTHON`, else `python3` if it has it.
///
/// Decided by looking for the package on disk, not by importing it: the check runs while tests
/// are being scheduled, and a seconds-long import there would hold a thread every test shares.
/// (The probe itself imports it, and fails loudly if that does not work.)
enum SDKProbe {
    static let package = "PureCloudPlatformClientV2"

    static let python: String? = {
        let candidates = [ProcessInfo.processInfo.environment["RBACWATCH_SDK_PYTHON"], "/usr/bin/python3", "/usr/local/bin/python3"]
            .compactMap { $0 }
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) && hasPackage(python: $0) }
    }()

    /// Whether `site-packages` or `dist-packages` under the interpreter's prefix holds the SDK.
    static func hasPackage(python: String) -> Bool {
        let prefix = URL(fileURLWithPath: python).deletingLastPathComponent().deletingLastPathComponent()
        let files = FileManager.default
        for base in ["lib", "lib64", "local/lib"] {
            let lib = prefix.appendingPathComponent(base)
            let versions = ((try? files.contentsOfDirectory(atPath: lib.path)) ?? []).filter { $0.hasPrefix("python3") }
            for version in versions {
                for kind in ["site-packages", "dist-packages"]
                where files.fileExists(atPath: lib.appendingPathComponent("\(version)/\(kind)/\(package)").path) {
                    return true
                }
            }
        }
        return false
    }
}

/// Runs `rbacwatch simulate` and returns it with its ready line.
func startSimulator(users: Int, extra: [String] = []) async throws -> (Process, String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: CommandRunner.binary)
    process.arguments = ["simulate", "--users", String(users), "--port", "0"] + extra
    let out = Pipe()
    process.standardOutput = out
    process.standardError = FileHandle.nullDevice
    try process.run()
    do {
        return (process, try await CommandRunner.firstLine(of: out.fileHandleForReading, from: process, timeout: .seconds(60)))
    } catch {
        process.terminate()
        throw error
    }
}

/// A simulator in a process of its own, the environment that points rbacwatch at it (state file,
/// PATH and HOME in `directory`), and the organisation accepted as the baseline: where the
/// `watch` end-to-end tests start.
func simulatorWithBaseline(users: Int, directory: URL) async throws -> (simulator: Process, line: String, environment: [String: String]) {
    let (simulator, line) = try await startSimulator(users: users)
    do {
        let environment = try simulatorEnvironment(line, directory: directory).merging([
            "PATH": ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin", "HOME": directory.path,
        ]) { $1 }
        let accepted = try await CommandRunner.run(["baseline", "accept"], environment: environment)
        #expect(accepted.status == 0, "\(accepted.stderr)")
        return (simulator, line, environment)
    } catch {
        simulator.terminate()
        throw error
    }
}

/// The environment that points rbacwatch at a simulator from its ready line, with a state file
/// in `directory`.
func simulatorEnvironment(_ line: String, directory: URL) throws -> [String: String] {
    let ready = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
    return [
        "RBACWATCH_API_URL": try #require(ready["apiBaseUrl"] as? String),
        "GENESYSCLOUD_OAUTHCLIENT_ID": try #require(ready["clientId"] as? String),
        "GENESYSCLOUD_OAUTHCLIENT_SECRET": try #require(ready["clientSecret"] as? String),
        "RBACWATCH_STATE": directory.appendingPathComponent("state.sqlite").path,
    ]
}

/// A client for the simulator's admin credentials from its ready line (the write endpoints),
/// and the admin client's id.
func simulatorAdmin(_ line: String) throws -> (client: GenesysAPIClient, clientId: String) {
    let ready = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
    let api = try #require(ready["apiBaseUrl"] as? String)
    let id = try #require(ready["adminClientId"] as? String)
    let client = GenesysAPIClient(
        connection: GenesysConnection(
            apiBaseURL: api, loginBaseURL: api, clientId: id, clientSecret: Secret(try #require(ready["adminClientSecret"] as? String))),
        transport: AsyncHTTPClientTransport(connectTimeout: .seconds(5)), retry: TestSupport.fastRetry)
    return (client, id)
}
