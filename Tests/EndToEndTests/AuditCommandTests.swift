import Foundation
import GenesysSimulator
import Testing

/// `watch --once`, `findings list`, `rules list|test`, and approving a finding, as a user runs them.
@Suite("Audit feed commands")
struct AuditCommandTests {
    @Test("watch --once judges what the API audited, stores findings once, findings list shows them, an approval turns the next one into approved drift")
    func watchOnce() async throws {
        try await DriftScenarioTests.withScenario(users: 60) { scenario in
            try await scenario.admin("POST", "/api/v2/authorization/roles", json: #"{"name":"Sneaky","permissions":["authorization:grant:add"]}"#)
            try await Task.sleep(for: .milliseconds(1100))  // older than --lag 1s (wall clock: the CLI runs in its own process)
            let first = try await scenario.run(["watch", "--once", "--lag", "1s", "--fail-on", "high"])
            #expect(first.status == 3, "\(first.stderr)")
            let line = try #require(first.stdout.split(separator: "\n").first { $0.contains("RBW-001") })
            let finding = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            #expect(finding["severity"] as? String == "critical" && finding["status"] as? String == "open")
            #expect((finding["controls"] as? [String])?.contains("NIST AC-6(1)") == true)
            let fingerprint = try #require(finding["fingerprint"] as? String)
            // The drift check of the same cycle: the new role, attributed to the event just ingested.
            let driftLine = try #require(first.stdout.split(separator: "\n").first { $0.contains("rbacwatch.drift-item/1") && $0.contains("roleCreated") })
            let item = try #require(try JSONSerialization.jsonObject(with: Data(driftLine.utf8)) as? [String: Any])
            let attribution = try #require(item["attribution"] as? [String: Any])
            #expect(attribution["status"] as? String == "explained", "\(driftLine)")
            #expect((attribution["events"] as? [[String: Any]])?.last?["clientId"] as? String == scenario.endpoint.adminClientId)

            // Again: the overlap refetches the event, dedupe keeps the store as it was.
            let again = try await scenario.run(["watch", "--once", "--lag", "1s", "--fail-on", "high", "--no-drift"])
            #expect(again.status == 0, "\(again.stderr)")
            let listed = try await scenario.run(["findings", "list", "--format", "json"])
            #expect(listed.stdout.split(separator: "\n").filter { $0.contains("RBW-001") }.count == 1)
            let table = try await scenario.run(["findings", "list", "--severity", "critical"])
            #expect(table.stdout.contains("Sneaky") && table.stdout.contains("OPEN"))

            // Approve it: the same change made again is recorded as approved, not alerted.
            let approved = try await scenario.run(["approve", String(fingerprint.prefix(10)), "--ticket", "CHG-9"])
            #expect(approved.status == 0, "\(approved.stderr)")
            let truth = scenario.sim.groundTruth()
            let role = try #require(truth.roles.values.first { $0.name == "Sneaky" })
            try await scenario.admin("PUT", "/api/v2/authorization/roles/\(role.id)", json: #"{"name":"Sneaky","permissions":["routing:queue:view"]}"#)
            try await scenario.admin("PUT", "/api/v2/authorization/roles/\(role.id)", json: #"{"name":"Sneaky","permissions":["authorization:grant:add"]}"#)
            try await Task.sleep(for: .milliseconds(1100))
            let third = try await scenario.run(["watch", "--once", "--lag", "1s", "--fail-on", "high", "--no-drift"])
            #expect(third.status == 0, "an approved change does not fail the gate: \(third.stdout) \(third.stderr)")
            #expect(third.stdout.contains("\"status\":\"approved\"") && third.stdout.contains("CHG-9"))
        }
    }

    @Test("watch runs until SIGTERM: findings and new drift items stream out as JSON lines, each item with who made it; the stop is clean")
    func watchContinuous() async throws {
        try await DriftScenarioTests.withScenario(users: 60) { scenario in
            let out = scenario.directory.appendingPathComponent("watch.out")
            let log = scenario.directory.appendingPathComponent("watch.log")
            #expect(FileManager.default.createFile(atPath: out.path, contents: nil))
            let process = Process()
            process.executableURL = URL(fileURLWithPath: CommandRunner.binary)
            process.arguments = [
                "watch", "--poll-interval", "1s", "--lag", "1s", "--overlap", "5s", "--drift-interval", "2s", "--log-file", log.path,
            ]
            var environment = scenario.environment
            environment["PATH"] = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
            environment["HOME"] = NSTemporaryDirectory()
            process.environment = environment
            process.standardOutput = try FileHandle(forWritingTo: out)
            process.standardError = FileHandle.nullDevice
            process.standardInput = FileHandle.nullDevice
            try process.run()
            defer { if process.isRunning { process.terminate() } }

            let truth = scenario.sim.groundTruth()
            let user = try #require(truth.users.values.sorted { $0.id < $1.id }.first)
            let admin = try #require(truth.roles.values.first { $0.name == "Master Admin" })
            try await scenario.admin("POST", "/api/v2/authorization/subjects/\(user.id)/divisions/*/roles/\(admin.id)?subjectType=PC_USER")

            var lines: [String] = []
            let deadline = ContinuousClock.now + .seconds(60)
            func has(_ a: String, _ b: String) -> Bool { lines.contains { $0.contains(a) && $0.contains(b) } }
            while ContinuousClock.now < deadline && !(has("rbacwatch.drift-item/1", "\"grantAdded\"") && has("rbacwatch.finding/1", "RBW-002")) {
                try await Task.sleep(for: .milliseconds(200))
                lines = String(decoding: (try? Data(contentsOf: out)) ?? Data(), as: UTF8.self).split(separator: "\n").map(String.init)
            }
            let grantLine = try #require(lines.first { $0.contains("rbacwatch.drift-item/1") && $0.contains("\"grantAdded\"") }, "\(lines)")
            let grant = try #require(try JSONSerialization.jsonObject(with: Data(grantLine.utf8)) as? [String: Any])
            #expect((grant["attribution"] as? [String: Any])?["status"] as? String == "explained", "\(grantLine)")
            #expect(lines.filter { $0.contains("\"grantAdded\"") }.count == 1, "printed once while it lasts")

            process.terminate()  // SIGTERM
            let stopBy = ContinuousClock.now + .seconds(20)
            while process.isRunning && ContinuousClock.now < stopBy { try await Task.sleep(for: .milliseconds(50)) }
            #expect(!process.isRunning)
            #expect(process.terminationStatus == 0)
            let logged = String(decoding: (try? Data(contentsOf: log)) ?? Data(), as: UTF8.self)
            #expect(logged.contains("watching the audit feed and checking drift") && logged.contains("stopped"), "\(logged)")
        }
    }

    @Test("diff of a snapshot file attributes changes from the events watch stored; a change no event shows is flagged unexplained")
    func unexplainedDrift() async throws {
        try await DriftScenarioTests.withScenario(users: 60) { scenario in
            let truth = scenario.sim.groundTruth()
            let user = try #require(truth.users.values.sorted { $0.id < $1.id }.first)
            let role = try #require(truth.roles.values.filter { !$0.isDefault }.sorted { $0.id < $1.id }.first)
            try await scenario.admin("POST", "/api/v2/authorization/subjects/\(user.id)/divisions/*/roles/\(role.id)?subjectType=PC_USER")

            // Without an ingested feed a file comparison cannot attribute: it says so.
            let file = scenario.directory.appendingPathComponent("now.json")
            #expect(try await scenario.run(["snapshot", "--out", file.path]).status == 0)
            let collected = try #require(try FileManager.default.attributesOfItem(atPath: file.path)[.modificationDate] as? Date)
            let bare = try await scenario.run(["diff", "--current", file.path])
            #expect(bare.stdout.contains("Attribution: not available — no audit events: run rbacwatch watch"), "\(bare.stdout)")

            try await Task.sleep(for: .milliseconds(1100))
            let watched = try await scenario.run(["watch", "--once", "--lag", "1s"])
            #expect(watched.status == 0, "\(watched.stderr)")

            // Take a member out of a group in the file: a change the audit log never saw.
            var document = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: file)) as? [String: Any])
            var groups = try #require(document["groups"] as? [[String: Any]])
            let index = try #require(groups.firstIndex { ($0["memberIds"] as? [String])?.isEmpty == false })
            var members = groups[index]["memberIds"] as! [String]
            let removed = members.removeFirst()
            groups[index]["memberIds"] = members
            document["groups"] = groups
            try JSONSerialization.data(withJSONObject: document, options: [.sortedKeys]).write(to: file)
            // Edited now, collected then: the file's time is when it was collected.
            try FileManager.default.setAttributes([.modificationDate: collected], ofItemAtPath: file.path)
            let before = try await scenario.run(["diff", "--current", file.path, "--format", "json"])
            #expect(before.stdout.contains("\"unexplained\""))

            // A file collected after the feed's high-water mark: what no event explains yet is pending.
            try FileManager.default.setAttributes([.modificationDate: Date().addingTimeInterval(60)], ofItemAtPath: file.path)
            let later = try await scenario.run(["diff", "--current", file.path])
            #expect(later.stdout.contains("pending: no audit event yet") && later.stdout.contains("the audit feed reaches only"), "\(later.stdout)")
            try FileManager.default.setAttributes([.modificationDate: collected], ofItemAtPath: file.path)

            let (report, _) = try await scenario.diff(["--current", file.path])
            let items = DriftScenarioTests.items(report)
            let grant = try #require(items.first { $0["kind"] as? String == "grantAdded" && DriftScenarioTests.id($0, "subject") == user.id })
            #expect((grant["attribution"] as? [String: Any])?["status"] as? String == "explained")
            let left = try #require(items.first { $0["kind"] as? String == "groupMemberRemoved" && DriftScenarioTests.id($0, "member") == removed })
            #expect((left["attribution"] as? [String: Any])?["status"] as? String == "unexplained")
            #expect(((report["attribution"] as? [String: Any])?["source"] as? String) == "the state store")
            #expect(((report["attribution"] as? [String: Any])?["unexplained"] as? Int ?? 0) >= 1)
        }
    }

    @Test("rules list shows the defaults; rules test dry-runs a rule file over JSON lines; bad rule files and bad lines get one clear line")
    func rulesCommands() async throws {
        let directory = try CommandRunner.temporaryDirectory()
        let listed = try await CommandRunner.run(["rules", "list"])
        #expect(listed.status == 0 && listed.stdout.contains("RBW-001") && listed.stdout.contains("RBW-016"))

        let rule = directory.appendingPathComponent("queues.json")
        try Data(
            #"{"id": "ACME-1", "title": "Queue renamed", "severity": "low", "match": {"entityType": "Queue", "action": "Update"}, "conditions": [{"property": "name"}]}"#
                .utf8
        ).write(to: rule)
        let events = directory.appendingPathComponent("events.jsonl")
        let lines = [
            #"{"id":"e1","eventDate":"2026-11-01T10:00:00Z","serviceName":"ContactCenter","entityType":"Queue","action":"Update","entity":{"id":"q1","name":"Support"},"status":"SUCCESS","propertyChanges":[{"property":"name","oldValues":["Support"],"newValues":["Support EU"]}]}"#,
            #"{"id":"e2","eventDate":"2026-11-01T09:00:00Z","serviceName":"ContactCenter","entityType":"Queue","action":"Update","entity":{"id":"q1","name":"Support"},"status":"SUCCESS","propertyChanges":[{"property":"description","oldValues":["a"],"newValues":["b"]}]}"#,
        ]
        try Data(lines.joined(separator: "\n").utf8).write(to: events)
        let tested = try await CommandRunner.run(["rules", "test", rule.path, "--events", events.path, "--no-default-rules"])
        #expect(tested.status == 3, "\(tested.stderr)")
        #expect(tested.stdout.contains("ACME-1") && tested.stdout.contains("2 events, 1 matched"))

        try Data(#"{"id": "ACME-1", "title": "x", "severity": "sometimes"}"#.utf8).write(to: rule)
        let bad = try await CommandRunner.run(["rules", "test", rule.path, "--events", events.path])
        #expect(bad.status == 2 && bad.stderr.contains("queues.json: rule ACME-1: \"severity\""), "\(bad.stderr)")
        try FileManager.default.removeItem(at: rule)
        try Data((lines[0] + "\n{not json\n").utf8).write(to: events)
        let badLine = try await CommandRunner.run(["rules", "test", directory.path, "--events", events.path])
        #expect(badLine.status == 2 && badLine.stderr.contains("line 2"), "\(badLine.stderr)")
    }
}
