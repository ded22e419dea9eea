import AuditTestSupport
import Foundation
import GenesysClient
import Testing

/// `watch` with incremental drift checks, as a user runs it: the real binary against a simulator
/// in a process of its own; a grant made behind the audit log's back (the simulator's switch).
@Suite("watch: incremental drift checks")
struct IncrementalWatchTests {
    @Test("checks between full walks re-read only what the feed names; a grant made behind the audit log's back is reported by the next full walk")
    func unauditedChange() async throws {
        let directory = try CommandRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let (simulator, line, environment) = try await simulatorWithBaseline(users: 80, directory: directory)
        defer { if simulator.isRunning { simulator.terminate() } }

        let watch = try WatchProcess(
            ["--http", "0", "--poll-interval", "1s", "--lag", "1s", "--overlap", "5s", "--drift-interval", "1s", "--full-walk-every", "6s"],
            environment: environment, directory: directory)
        defer { if watch.process.isRunning { watch.process.terminate() } }
        let log = watch.logPath
        let out = URL(fileURLWithPath: watch.outPath)
        func text(_ path: String) -> String { WatchProcess.text(path) }
        func waitFor(_ what: String, in path: String, _ predicate: (String) -> Bool) async throws -> String {
            try await watch.waitFor(what, in: path, predicate)
        }

        // Incremental checks run once the feed has a checkpoint.
        _ = try await waitFor("an incremental check", in: log) { $0.contains("collection=incremental") }
        let ready = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        let api = try #require(ready["apiBaseUrl"] as? String)
        let transport = AsyncHTTPClientTransport(connectTimeout: .seconds(5))
        do {
            let reply = try await transport.send(
                .init(
                    method: "POST", url: api + "/__simulator/changes", headers: [("Content-Type", "application/json")],
                    body: Array(#"{"change":"grantRoleToUser","audited":false}"#.utf8), timeout: .seconds(20)))
            #expect(reply.status == 202)

            // The next full walk finds the grant; once the feed covers the walk with no event for
            // it, it is reported: a JSON line on stdout, a warning in the log, a metric.
            let lines = try await waitFor("the unaudited change on stdout", in: out.path) { $0.contains("rbacwatch.unaudited-change/1") }
            let reported = try #require(lines.split(separator: "\n").first { $0.contains("rbacwatch.unaudited-change/1") })
            let object = try #require(try JSONSerialization.jsonObject(with: Data(reported.utf8)) as? [String: Any])
            #expect(object["kind"] as? String == "grantAdded")
            #expect(object["source"] as? String == "full walk")
            #expect((object["attribution"] as? [String: Any])?["status"] as? String == "unexplained")
            #expect(text(log).contains("unaudited change"))
            #expect(text(log).contains("collection=full walk (scheduled)"))
            // Reported once, though the checks after it still see it.
            func checks() -> Int { text(log).components(separatedBy: "drift check collection=").count - 1 }
            let reportedAt = checks()
            _ = try await waitFor("two more drift checks", in: log) { _ in checks() >= reportedAt + 2 }
            #expect(text(out.path).components(separatedBy: "rbacwatch.unaudited-change/1").count == 2)

            let url = try #require(watch.httpBase)
            let metrics = await WatchHTTPTests.get(transport, url + "/metrics").body
            #expect(metrics.contains("rbacwatch_unaudited_changes 1"), "\(metrics)")
            let incremental = metrics.split(separator: "\n").first { $0.hasPrefix("rbacwatch_collection_incremental_total ") }
            #expect((incremental.flatMap { Int($0.split(separator: " ").last ?? "") } ?? 0) >= 1)
            let check = await Promtool.check(metrics)
            #expect(check.status == 0, "promtool check metrics: \(check.output)")
        } catch {
            await transport.shutdown()
            throw error
        }
        await transport.shutdown()
        #expect(try await watch.stop() == 0)
    }
}
