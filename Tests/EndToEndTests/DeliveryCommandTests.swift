import AuditCore
import AuditStore
import Foundation
import GenesysSimulator
import Testing

/// Delivery as a user runs it: `watch --destinations` against the simulated receivers, the
/// `deliveries` and `dlq` commands, and `kill -9` mid-batch.
@Suite("Delivery commands")
struct DeliveryCommandTests {
    static func destinations(_ endpoints: SIEMReceivers.Endpoints, file: String, hecAck: Bool) -> String {
        """
        {"destinations": [
          {"name": "splunk", "kind": "splunk-hec", "url": "\(endpoints.hecURL)", "secretEnv": "TEST_HEC_TOKEN", "index": "security",
           "acknowledgement": \(hecAck), "batchSize": 5},
          {"name": "hook", "kind": "webhook", "url": "\(endpoints.webhookURL)", "secretEnv": "TEST_HOOK_SECRET", "minimumSeverity": "high"},
          {"name": "jsonl", "kind": "file", "path": "\(file)"}
        ]}
        """
    }

    static func secrets(_ receivers: SIEMReceivers) -> [String: String] {
        ["TEST_HEC_TOKEN": receivers.configuration.hecToken, "TEST_HOOK_SECRET": receivers.configuration.webhookSecret]
    }

    /// A finding's payload, as the engine would queue it.
    static func finding(_ fingerprint: String, event: String, rule: String = "RBW-003", entity: String = "Role") -> DeliveryPayload {
        DeliveryPayload.finding(
            AuditFinding(
                fingerprint: fingerprint, ruleId: rule, title: "A finding", severity: .high, controls: [], eventIds: [event], date: Date(),
                serviceName: "PeoplePermissions", entityType: "Role", entityId: "r", entityName: entity, action: "Create", actor: "Ana", actorId: "u-1",
                clientId: nil, remoteIp: [], evidence: [], status: .open, approval: nil),
            event: nil, organization: Organization(id: "org", name: "Acme"))
    }

    /// Waits (bounded, sleeping: Foundation's waitUntilExit spins a thread of the shared pool)
    /// until the process has exited.
    static func exited(_ process: Process) async throws {
        let deadline = ContinuousClock.now + .seconds(30)
        while process.isRunning, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
        #expect(!process.isRunning, "the process did not exit within 30 s")
        if !process.isRunning { process.waitUntilExit() }
    }

    static func payload(_ received: SIEMReceivers.Received) throws -> [String: Any] {
        try #require(try JSONSerialization.jsonObject(with: Data(received.body)) as? [String: Any])
    }

    @Test("watch --once delivers the finding and the drift item it records to HEC (acknowledged), a webhook and a file; deliveries status shows them")
    func watchDelivers() async throws {
        try await DriftScenarioTests.withScenario(users: 40) { scenario in
            var configuration = SIEMReceivers.Configuration()
            configuration.hecAck = true
            let receivers = SIEMReceivers(configuration: configuration)
            try await receivers.withRunning { endpoints in
                let jsonl = scenario.directory.appendingPathComponent("deliveries.jsonl").path
                let file = scenario.directory.appendingPathComponent("destinations.json")
                try Data(Self.destinations(endpoints, file: jsonl, hecAck: true).utf8).write(to: file)
                try await scenario.admin("POST", "/api/v2/authorization/roles", json: #"{"name":"Sneaky","permissions":["authorization:grant:add"]}"#)
                try await Task.sleep(for: .milliseconds(1100))
                let run = try await scenario.run(["watch", "--once", "--lag", "1s", "--destinations", file.path], extra: Self.secrets(receivers))
                #expect(run.status == 0, "\(run.stderr)")
                #expect(!run.stderr.contains(receivers.configuration.hecToken), "the secret is never printed")

                let hec = receivers.received(.hec)
                #expect(!hec.isEmpty && hec.allSatisfy { $0.indexed }, "acknowledged")
                let finding = try #require(try hec.map(Self.payload).first { $0["schema"] as? String == "rbacwatch.finding/2" })
                #expect(finding["ruleId"] as? String == "RBW-001")
                #expect((finding["organization"] as? [String: Any])?["id"] as? String == scenario.sim.groundTruth().organizationId)
                #expect((finding["target"] as? [String: Any])?["name"] as? String == "Sneaky")
                let drift = try #require(try hec.map(Self.payload).first { $0["schema"] as? String == "rbacwatch.drift-item/2" && $0["kind"] as? String == "roleCreated" })
                #expect((drift["attribution"] as? [String: Any])?["status"] as? String == "explained")
                #expect((drift["actor"] as? [String: Any])?["clientId"] as? String == scenario.endpoint.adminClientId)

                let hooks = try receivers.received(.webhook).map(Self.payload)
                #expect(hooks.contains { $0["ruleId"] as? String == "RBW-001" }, "the webhook verified the signature and took the critical finding")
                #expect(hooks.allSatisfy { ($0["severity"] as? String).map { $0 == "high" || $0 == "critical" } ?? false }, "minimumSeverity high")
                let lines = try String(contentsOfFile: jsonl, encoding: .utf8).split(separator: "\n")
                #expect(lines.count == hec.count, "the file gets what HEC gets (no filters)")
                let mode = try FileManager.default.attributesOfItem(atPath: jsonl)[.posixPermissions] as? Int
                #expect(mode == 0o600)

                let status = try await scenario.run(["deliveries", "status"])
                #expect(status.status == 0, "\(status.stderr)")
                let row = try #require(status.stdout.split(separator: "\n").first { $0.hasPrefix("splunk ") })
                #expect(row.contains(" \(hec.count) ") && row.hasSuffix("ok"), "\(status.stdout)")

                // Again: nothing new, nothing sent twice.
                let again = try await scenario.run(["watch", "--once", "--lag", "1s", "--destinations", file.path], extra: Self.secrets(receivers))
                #expect(again.status == 0, "\(again.stderr)")
                #expect(receivers.received(.hec).count == hec.count)
            }
        }
    }

    @Test("dlq list, show and replay: a dead-lettered payload is queued again with its id and delivered by the next watch; purge; deliveries test")
    func deadLetters() async throws {
        try await DriftScenarioTests.withScenario(users: 20) { scenario in
            let receivers = SIEMReceivers()
            try await receivers.withRunning { endpoints in
                let file = scenario.directory.appendingPathComponent("destinations.json")
                try Data(Self.destinations(endpoints, file: scenario.directory.appendingPathComponent("d.jsonl").path, hecAck: false).utf8).write(to: file)
                let empty = try await scenario.run(["dlq", "list"])
                #expect(empty.stdout.contains("the dead-letter queue is empty"))
                // Two dead letters, as a run whose receiver refused them would leave them.
                let store = try SQLiteAuditStore(path: scenario.statePath)
                let payloads = (1...2).map { Self.finding("fp-dead-\($0)", event: "ev-\($0)", rule: "RBW-005", entity: "Exporter \($0)\u{1B}[31m") }
                try await store.enqueue(payloads.map { OutboxItem(destination: "splunk", payload: $0, rejected: "Splunk HEC answered 400 code 6: Invalid data format (after 5 attempts)") }, at: Date())
                let list = try await scenario.run(["dlq", "list"])
                #expect(list.status == 0 && list.stdout.contains("fp-dead-1:ev-1") && list.stdout.contains("400 code 6"), "\(list.stdout)")
                let id = try #require(try await store.deadLetters(destination: nil, limit: 10).first { $0.payload.id == "fp-dead-1:ev-1" }?.id)
                let show = try await scenario.run(["dlq", "show", String(id)])
                #expect(show.status == 0 && show.stderr.contains("400 code 6"))
                #expect(show.stdout.contains("\"rbacwatch.finding/2\"") && !show.stdout.contains("\u{1B}"), "the payload, inert: \(show.stdout)")
                let replay = try await scenario.run(["dlq", "replay", String(id)])
                #expect(replay.status == 0 && replay.stdout.contains("queued 1 payload again"), "\(replay.stdout)\(replay.stderr)")
                let watch = try await scenario.run(["watch", "--once", "--no-drift", "--destinations", file.path], extra: Self.secrets(receivers))
                #expect(watch.status == 0, "\(watch.stderr)")
                #expect(receivers.received(.hec).map(\.id) == ["fp-dead-1:ev-1"], "delivered once, with its id")
                let other = try #require(try await store.deadLetters(destination: nil, limit: 10).first?.id)
                #expect(try await scenario.run(["dlq", "purge", String(other)]).status == 0)
                #expect(try await scenario.run(["dlq", "list"]).stdout.contains("empty"))
                #expect(try await scenario.run(["dlq", "purge", String(other)]).status == 1)

                let test = try await scenario.run(["deliveries", "test", "hook", "--destinations", file.path], extra: Self.secrets(receivers))
                #expect(test.status == 0 && test.stdout.contains("hook: delivered test payload"), "\(test.stdout)\(test.stderr)")
                var wrong = Self.secrets(receivers)
                wrong["TEST_HOOK_SECRET"] = "whsec_" + Data("not the receiver's key at all".utf8).base64EncodedString()
                let refused = try await scenario.run(["deliveries", "test", "hook", "--destinations", file.path], extra: wrong)
                #expect(refused.status == 1 && refused.stderr.contains("401"), "\(refused.stderr)")
                #expect(!refused.stderr.contains(wrong["TEST_HOOK_SECRET"]!))
            }
        }
    }

    @Test("a destinations file with a secret in it, or a secret variable not set, is refused with one line")
    func badConfiguration() async throws {
        try await DriftScenarioTests.withScenario(users: 10) { scenario in
            let file = scenario.directory.appendingPathComponent("destinations.json")
            try Data(#"{"destinations":[{"name":"s","kind":"splunk-hec","url":"http://127.0.0.1:1","token":"abc123"}]}"#.utf8).write(to: file)
            let inline = try await scenario.run(["watch", "--once", "--destinations", file.path])
            #expect(inline.status != 0)
            #expect(inline.stderr.contains("token: secrets are never written in this file") && !inline.stderr.contains("abc123"), "\(inline.stderr)")
            try Data(#"{"destinations":[{"name":"s","kind":"splunk-hec","url":"http://127.0.0.1:1","secretEnv":"NOT_SET_ANYWHERE"}]}"#.utf8).write(to: file)
            let unset = try await scenario.run(["watch", "--once", "--destinations", file.path])
            #expect(unset.status != 0 && unset.stderr.contains("NOT_SET_ANYWHERE") && unset.stderr.split(separator: "\n").count == 1, "\(unset.stderr)")
        }
    }

    @Test("kill -9 of watch mid-batch: after a restart every payload is delivered at least once, and the duplicates carry the same ids")
    func killMidBatch() async throws {
        try await DriftScenarioTests.withScenario(users: 10) { scenario in
            let receivers = SIEMReceivers()
            try await receivers.withRunning { endpoints in
                let file = scenario.directory.appendingPathComponent("destinations.json")
                try Data(
                    #"{"destinations":[{"name":"splunk","kind":"splunk-hec","url":"\#(endpoints.hecURL)","secretEnv":"TEST_HEC_TOKEN","batchSize":10}]}"#.utf8
                ).write(to: file)
                let store = try SQLiteAuditStore(path: scenario.statePath)
                let payloads = (0..<30).map { Self.finding("fp-\($0)", event: "ev-\($0)") }
                try await store.enqueue(payloads.map { OutboxItem(destination: "splunk", payload: $0) }, at: Date())
                // The receiver takes 5 s to answer: the first batch is in flight when the process dies.
                receivers.plan(.hec) { $0.delay = .seconds(5) }
                func start() throws -> Process {
                    let process = Process()
                    process.executableURL = URL(fileURLWithPath: CommandRunner.binary)
                    process.arguments = ["watch", "--no-drift", "--poll-interval", "60s", "--destinations", file.path]
                    var environment = scenario.environment.merging(Self.secrets(receivers)) { $1 }
                    environment["PATH"] = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
                    environment["HOME"] = NSTemporaryDirectory()
                    process.environment = environment
                    process.standardOutput = FileHandle.nullDevice
                    process.standardError = FileHandle.nullDevice
                    process.standardInput = FileHandle.nullDevice
                    try process.run()
                    return process
                }
                let first = try start()
                let deadline = ContinuousClock.now + .seconds(60)
                while receivers.requests(.hec) == 0, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(20)) }
                #expect(receivers.requests(.hec) == 1, "a batch is in flight")
                kill(first.processIdentifier, SIGKILL)
                try await Self.exited(first)
                #expect(first.terminationReason == .uncaughtSignal)
                // The receiver still takes the batch it was sent (it answers a dead connection).
                let answered = ContinuousClock.now + .seconds(30)
                while receivers.received(.hec).count < 10, ContinuousClock.now < answered { try await Task.sleep(for: .milliseconds(50)) }
                #expect(receivers.received(.hec).count == 10)
                #expect(try await store.queuedDeliveries(destination: "splunk", limit: 100).count == 30, "nothing was recorded delivered")

                receivers.plan(.hec) { $0.delay = .zero }
                let second = try start()
                defer { if second.isRunning { second.terminate() } }
                while try await !store.queuedDeliveries(destination: "splunk", limit: 1).isEmpty, ContinuousClock.now < deadline + .seconds(60) {
                    try await Task.sleep(for: .milliseconds(50))
                }
                second.terminate()
                try await Self.exited(second)
                #expect(second.terminationStatus == 0)
                let ids = receivers.received(.hec).compactMap(\.id)
                #expect(Set(ids) == Set(payloads.map(\.id)), "every payload at least once")
                #expect(ids.count == 40, "the batch in flight came again: \(ids.count)")
                #expect(Array(ids.prefix(10)) == Array(ids.dropFirst(10).prefix(10)), "the duplicates carry the same ids, in the same order")
            }
        }
    }
}
