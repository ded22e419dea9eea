import AuditTestSupport
import Foundation
import GenesysClient
import Testing

/// `watch` with audit push, as a user runs it: the real binary against a simulator in a process
/// of its own, its next poll and drift check ten minutes away, so whatever shows within seconds
/// came pushed.
@Suite("watch: audit push")
struct PushWatchTests {
    @Test("a critical role edit's finding and its attributed drift item are printed within seconds while the next poll is minutes away; readyz and the metrics say push is live")
    func pushedWithinSeconds() async throws {
        let directory = try CommandRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let (simulator, line, environment) = try await simulatorWithBaseline(users: 60, directory: directory)
        defer { if simulator.isRunning { simulator.terminate() } }

        let watch = try WatchProcess(["--http", "0", "--poll-interval", "10m", "--drift-interval", "10m"], environment: environment, directory: directory)
        defer { if watch.process.isRunning { watch.process.terminate() } }
        let log = watch.logPath
        let out = URL(fileURLWithPath: watch.outPath)
        func text(_ path: String) -> String { WatchProcess.text(path) }
        func waitFor(_ what: String, in path: String, timeout: Duration = .seconds(90), _ predicate: (String) -> Bool) async throws -> String {
            try await watch.waitFor(what, in: path, timeout: timeout, predicate)
        }

        // Live once the first collection named the roles; the first drift check has run by then.
        _ = try await waitFor("push to go live", in: log) { $0.contains("audit push live") }
        _ = try await waitFor("the first drift check", in: log) { $0.contains("collection=") }
        let (admin, adminId) = try simulatorAdmin(line)
        do {
            struct Roles: Decodable { struct Role: Decodable { var id: String; var name: String; var permissions: [String]? }; var entities: [Role] }
            let roles = try await admin.get("/api/v2/authorization/roles?pageSize=100&userCount=false", as: Roles.self).entities
            // A role someone holds, without admin yet.
            let role = try #require(roles.first { !($0.permissions ?? []).contains("admin") && $0.name != "rbacwatch Auditor" && $0.name != "Employee" })
            let before = text(out.path)
            let edited = ContinuousClock.now
            _ = try await admin.send(
                "PUT", "/api/v2/authorization/roles/\(role.id)",
                body: Array(#"{"name":"\#(role.name)","permissions":["admin","routing:queue:view"]}"#.utf8))
            // The next poll and drift check are ten minutes away: anything well under that came
            // pushed (the latency benchmark measures how fast; a test run loads both cores).
            let finding = try await waitFor("the pushed finding", in: out.path, timeout: .seconds(90)) {
                $0.dropFirst(before.count).contains("\"RBW-001\"")
            }
            let findingAfter = ContinuousClock.now - edited
            #expect(findingAfter < .seconds(60), "finding after \(findingAfter)")
            #expect(finding.contains(role.id))
            // The drift check it triggered: the role's new permissions, attributed to the admin client.
            let drift = try await waitFor("the attributed drift item", in: out.path, timeout: .seconds(90)) { text in
                text.dropFirst(before.count).split(separator: "\n").contains { $0.contains("rbacwatch.drift-item") && $0.contains(role.id) && $0.contains(adminId) }
            }
            #expect(ContinuousClock.now - edited < .seconds(90), "drift item after \(ContinuousClock.now - edited)")
            #expect(drift.contains("admin"))
            #expect(text(log).contains("collection=incremental"), "the pushed change was read incrementally")

            // readyz and the metrics say push is live.
            let base = try #require(watch.httpBase)
            let transport = AsyncHTTPClientTransport(connectTimeout: .seconds(5))
            let readyz = try await transport.send(.init(method: "GET", url: base + "/readyz", timeout: .seconds(20)))
            let metrics = try await transport.send(.init(method: "GET", url: base + "/metrics", timeout: .seconds(20)))
            await transport.shutdown()
            #expect(String(decoding: readyz.body, as: UTF8.self).contains(#""push":"audit push""#))
            let exposition = String(decoding: metrics.body, as: UTF8.self)
            #expect(exposition.contains("rbacwatch_audit_push_live 1"))
            #expect(exposition.split(separator: "\n").contains { $0.hasPrefix("rbacwatch_audit_pushes_total ") && !$0.hasSuffix(" 0") })
            let check = await Promtool.check(exposition)
            #expect(check.status == 0, "promtool check metrics: \(check.output)")
        } catch {
            await admin.shutdown()
            throw error
        }
        await admin.shutdown()
        #expect(try await watch.stop() == 0)
    }

    @Test("--no-push: no channel is opened, readyz says nothing of push, and findings still come from the polls")
    func noPush() async throws {
        let directory = try CommandRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let (simulator, _, environment) = try await simulatorWithBaseline(users: 40, directory: directory)
        defer { if simulator.isRunning { simulator.terminate() } }
        let watch = try WatchProcess(
            ["--no-push", "--http", "0", "--poll-interval", "1s", "--lag", "1s", "--drift-interval", "10m"], environment: environment, directory: directory)
        defer { if watch.process.isRunning { watch.process.terminate() } }
        _ = try await watch.waitFor("the first drift check", in: watch.logPath) { $0.contains("collection=") }
        let base = try #require(watch.httpBase)
        let transport = AsyncHTTPClientTransport(connectTimeout: .seconds(5))
        let deadline = ContinuousClock.now + .seconds(90)
        var body = ""
        while ContinuousClock.now < deadline {
            let reply = try? await transport.send(.init(method: "GET", url: base + "/readyz", timeout: .seconds(20)))
            body = reply.map { String(decoding: $0.body, as: UTF8.self) } ?? ""
            if reply?.status == 200 { break }
            try await Task.sleep(for: .milliseconds(200))
        }
        await transport.shutdown()
        #expect(body.hasPrefix(#"{"ready":true"#), "\(body)")
        #expect(!watch.log.contains("audit push"))
        #expect(try await watch.stop() == 0)
    }
}
