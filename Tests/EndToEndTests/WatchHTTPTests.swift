import AuditTestSupport
import Foundation
import GenesysClient
import GenesysSimulator
import Testing

/// `watch --http`: the real binary serving /metrics, /healthz and /readyz while it watches a
/// simulator in a process of its own (so the test can make the API truly unreachable).
@Suite("watch --http")
struct WatchHTTPTests {
    static func get(_ transport: AsyncHTTPClientTransport, _ url: String) async -> (status: Int, body: String) {
        do {
            let reply = try await transport.send(.init(method: "GET", url: url, timeout: .seconds(20)))
            return (reply.status, String(decoding: reply.body, as: UTF8.self))
        } catch {
            return (-1, "\(error)")
        }
    }

    /// Polls `url` until `predicate` holds (a hang catcher ends it).
    static func until(
        _ what: String, _ transport: AsyncHTTPClientTransport, _ url: String, _ predicate: (Int, String) -> Bool
    ) async throws -> (status: Int, body: String) {
        let deadline = ContinuousClock.now + .seconds(90)
        var last = (status: -1, body: "")
        while ContinuousClock.now < deadline {
            last = await get(transport, url)
            if predicate(last.status, last.body) { return last }
            try await Task.sleep(for: .milliseconds(200))
        }
        Issue.record("timed out waiting for \(what); last: \(last.status) \(last.body)")
        throw CancellationError()
    }

    @Test("metrics promtool accepts, healthz, and readyz that turns 503 with the reason when the API becomes unreachable; SIGTERM stops it cleanly")
    func endpoint() async throws {
        let directory = try CommandRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let (simulator, line, environment) = try await simulatorWithBaseline(users: 60, directory: directory)
        defer { if simulator.isRunning { simulator.terminate() } }

        let log = directory.appendingPathComponent("watch.log").path
        let watch = Process()
        watch.executableURL = URL(fileURLWithPath: CommandRunner.binary)
        watch.arguments = [
            "watch", "--http", "0", "--poll-interval", "1s", "--lag", "1s", "--overlap", "5s", "--drift-interval", "2s", "--log-file", log,
        ]
        watch.environment = environment
        watch.standardOutput = FileHandle.nullDevice
        watch.standardError = FileHandle.nullDevice
        watch.standardInput = FileHandle.nullDevice
        try watch.run()
        defer { if watch.isRunning { watch.terminate() } }

        // The port it bound, from its log.
        var base: String?
        let deadline = ContinuousClock.now + .seconds(60)
        while base == nil, ContinuousClock.now < deadline {
            let text = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            if let range = text.range(of: #"http://127\.0\.0\.1:[0-9]+"#, options: .regularExpression) { base = String(text[range]) }
            try await Task.sleep(for: .milliseconds(100))
        }
        let url = try #require(base, "watch never said where it serves: \((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")")

        let transport = AsyncHTTPClientTransport(connectTimeout: .seconds(5))
        do {
            #expect(await Self.get(transport, url + "/healthz") == (200, "ok\n"))
            #expect(await Self.get(transport, url + "/elsewhere").status == 404)
            // Ready once a poll and a drift check have succeeded; the metrics say so too.
            _ = try await Self.until("readyz 200", transport, url + "/readyz") { status, _ in status == 200 }
            let metrics = try await Self.until("a collection in the metrics", transport, url + "/metrics") { status, body in
                let count = body.split(separator: "\n").first { $0.hasPrefix("rbacwatch_collection_duration_seconds_count ") }
                return status == 200 && (count.flatMap { Int($0.split(separator: " ").last ?? "") } ?? 0) >= 1
            }.body
            #expect(metrics.contains("# HELP rbacwatch_audit_lag_seconds "))
            #expect(metrics.contains("rbacwatch_drift_unapproved_items{severity=\"critical\"} 0"))
            let check = await Promtool.check(metrics)
            #expect(check.status == 0, "promtool check metrics: \(check.output)")

            // The API goes away: readyz turns 503 and says why.
            simulator.terminate()
            let unready = try await Self.until("readyz 503", transport, url + "/readyz") { status, _ in status == 503 }
            let reply = try #require(try JSONSerialization.jsonObject(with: Data(unready.body.utf8)) as? [String: Any])
            #expect(reply["ready"] as? Bool == false)
            let reasons = (reply["reasons"] as? [String]) ?? []
            #expect(reasons.contains { $0.contains("cannot connect to 127.0.0.1:") }, "\(reasons)")
            #expect(await Self.get(transport, url + "/healthz").status == 200, "alive, though not ready")
        } catch {
            await transport.shutdown()
            throw error
        }
        await transport.shutdown()

        watch.terminate()  // SIGTERM
        let stopBy = ContinuousClock.now + .seconds(30)
        while watch.isRunning && ContinuousClock.now < stopBy { try await Task.sleep(for: .milliseconds(50)) }
        #expect(!watch.isRunning)
        #expect(watch.terminationStatus == 0)
        let logged = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
        #expect(logged.contains("stopped"), "\(logged)")
    }

    @Test("a port already taken: one line naming it, exit 1, nothing left running")
    func portTaken() async throws {
        let directory = try CommandRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let sim = TestSupport.simulator(users: 20, seed: 5)
        try await sim.withRunning { endpoint in
            // Something else listens on the port first.
            let squatter = HostileServer(upstream: endpoint.apiBaseURL, rules: [])
            try await squatter.withRunning { url in
                let port = try #require(url.split(separator: ":").last.map(String.init))
                let run = try await CommandRunner.measure(
                    ["watch", "--http", port, "--no-drift", "--log-level", "warning"],
                    environment: [
                        "GENESYSCLOUD_OAUTHCLIENT_ID": endpoint.clientId, "GENESYSCLOUD_OAUTHCLIENT_SECRET": endpoint.clientSecret,
                        "RBACWATCH_API_URL": endpoint.apiBaseURL, "RBACWATCH_STATE": directory.appendingPathComponent("state.sqlite").path,
                    ])
                #expect(run.status == 1)
                #expect(run.stderr == "rbacwatch: --http: cannot listen on 127.0.0.1:\(port): Address already in use\n", "\(run.stderr)")
                #expect(run.wall < .seconds(60))
            }
        }
    }
}
