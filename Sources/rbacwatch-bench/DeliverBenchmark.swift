import ArgumentParser
import AuditCore
import AuditEngine
import AuditStore
import Foundation
import GenesysClient
import GenesysSimulator
import SIEMClient

/// Delivery through the durable outbox: findings per second into a SQLite outbox (payload built,
/// schema-validated, queued for three destinations), out to each simulated receiver over
/// loopback (batched), and the receiver down with the queue full: the process's memory then,
/// and the time to drain once the receiver is back.
struct DeliverBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "deliver", abstract: "Measure findings per second into the outbox and out to Splunk HEC, Datadog and a webhook (simulated), and a drain after an outage.")

    @Option(help: "Findings to deliver.")
    var findings = 100_000

    @Option(help: "Payloads per request (HEC and Datadog; webhooks send one per request).")
    var batch = 100

    @Option(help: "Seconds the receiver stays down in the outage stage.")
    var down = 20.0

    @Option(help: "Also write the results as JSON to this file.")
    var json: String?

    struct Stage: Codable {
        var name: String
        var payloads: Int
        var seconds: Double
        var perSecond: Double
        var note: String
    }

    struct Output: Codable {
        var benchmark = "deliver"
        var build: String
        var findings: Int
        var batch: Int
        var payloadBytes: Int
        var stages: [Stage]
        var downSeconds: Double
        var residentMBBeforeOutage: Double
        var peakResidentMBDuringOutage: Double
        /// While draining, the in-process receiver keeps every payload it accepts: its memory, not the sender's.
        var peakResidentMBWhileDraining: Double
        var queuedDuringOutage: Int
        var drainSecondsAfterOutage: Double
        var firstDeliveryAfterOutageSeconds: Double
        var outboxFileMB: Double
    }

    func validate() throws {
        guard (1...10_000_000).contains(findings), (1...1000).contains(batch) else { throw ValidationError("--findings 1…10,000,000, --batch 1…1000.") }
        guard (1...3600).contains(down) else { throw ValidationError("--down is 1…3600 seconds.") }
    }

    /// Resident memory now (VmRSS), in MB.
    static func residentMB() -> Double {
        guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
            let line = text.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }),
            let kb = Double(line.split(separator: " ").dropFirst().first ?? "")
        else { return 0 }
        return (kb / 1024).rounded(toPlaces: 1)
    }

    static func finding(_ index: Int, run: String) -> AuditFinding {
        let rules = ["RBW-001", "RBW-002", "RBW-003", "RBW-005", "RBW-011"]
        let severities: [Severity] = [.critical, .high, .high, .medium, .low]
        return AuditFinding(
            fingerprint: "\(run)-fp-\(index)", ruleId: rules[index % rules.count], title: "Role granted in every division",
            severity: severities[index % severities.count], controls: ["NIST AC-6", "SOC2 CC6.1"], eventIds: ["\(run)-ev-\(index)"],
            date: Date(timeIntervalSince1970: 1_800_000_000 + Double(index)), serviceName: "PeoplePermissions", entityType: "Role",
            entityId: "role-\(index % 997)", entityName: "Role \(index % 997)", action: "MemberAdd", actor: "Ana Admin \(index % 13)",
            actorId: "user-\(index % 13)", clientId: nil, remoteIp: ["203.0.113.\(index % 250)"], evidence: ["divisionId: * added"], status: .open,
            approval: nil)
    }

    func run() async throws {
        if Bench.buildConfiguration == "debug" { Bench.log("warning: debug build; measure with -c release") }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("rbw-bench-deliver-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let statePath = directory.appendingPathComponent("state.sqlite").path
        let store = try SQLiteAuditStore(path: statePath)
        let organization = Organization(id: "org-bench", name: "Bench Org")
        var receiverConfiguration = SIEMReceivers.Configuration()
        receiverConfiguration.hecAck = false
        let receivers = SIEMReceivers(configuration: receiverConfiguration)
        let (findings, batch, down) = (self.findings, self.batch, self.down)

        let output = try await receivers.withRunning { endpoints -> Output in
            var destinations: [Destination] = []
            for kind in [Destination.Kind.splunkHEC, .datadog, .webhook] {
                var destination = Destination(name: kind.rawValue, kind: kind)
                destination.url = kind == .webhook ? endpoints.webhookURL : endpoints.hecURL
                destination.batchSize = batch
                destinations.append(destination)
            }
            let router = DeliveryRouter(destinations: destinations)
            var stages: [Stage] = []

            // Into the outbox: payload, schema validation, three outbox rows, 1,000 findings a transaction.
            Bench.log("queueing \(findings) findings for \(destinations.count) destinations")
            var payloadBytes = 0
            let started = ContinuousClock.now
            var chunk: [OutboxItem] = []
            for index in 0..<findings {
                let payload = DeliveryPayload.finding(Self.finding(index, run: "a"), event: nil, organization: organization)
                payloadBytes += payload.body.count
                chunk += router.items(for: payload)
                if chunk.count >= 3000 || index == findings - 1 {
                    try await store.enqueue(chunk, at: Date())
                    chunk.removeAll(keepingCapacity: true)
                }
            }
            let enqueueSeconds = Bench.seconds(ContinuousClock.now - started)
            stages.append(
                Stage(
                    name: "into the outbox", payloads: findings, seconds: enqueueSeconds, perSecond: (Double(findings) / enqueueSeconds).rounded(),
                    note: "findings/s: payload + schema validation + 3 outbox rows, one SQLite transaction per 1,000"))
            Bench.log("into the outbox: \(enqueueSeconds) s")

            func service(_ destination: Destination) throws -> DeliveryService {
                var settings = DeliverySettings()
                settings.idle = 0.05
                let transport = AsyncHTTPClientTransport()
                let sender: any DeliverySender =
                    switch destination.kind {
                    case .datadog: DatadogSender(transport: transport, destination: destination, key: Secret(receivers.configuration.datadogKey), host: "bench")
                    case .webhook: try WebhookSender(transport: transport, destination: destination, secret: Secret(receivers.configuration.webhookSecret))
                    default: HECSender(transport: transport, destination: destination, token: Secret(receivers.configuration.hecToken), host: "bench")
                    }
                return DeliveryService(destination: destination, sender: sender, store: store, settings: settings, seed: 1)
            }

            func drain(_ service: DeliveryService) async throws -> (seconds: Double, firstDelivery: Double?) {
                let began = ContinuousClock.now
                var first: Double?
                let before = await service.health.sent
                for _ in 0..<10_000_000 {
                    if try await store.queuedDeliveries(destination: service.destination.name, limit: 1).isEmpty { break }
                    let wait = await service.step()
                    if first == nil, await service.health.sent > before { first = Bench.seconds(ContinuousClock.now - began) }
                    if let wait, wait > 0 { try await Task.sleep(for: Bounded.duration(seconds: wait, clampedTo: 0...600)) }
                }
                return (Bench.seconds(ContinuousClock.now - began), first)
            }

            // Out to each receiver, batched.
            for destination in destinations {
                let service = try service(destination)
                Bench.log("delivering \(findings) to \(destination.name)")
                let (seconds, _) = try await drain(service)
                await service.shutdown()
                let received = receivers.received(destination.kind == .webhook ? .webhook : destination.kind == .datadog ? .datadog : .hec).count
                precondition(received == findings, "\(destination.name) received \(received) of \(findings)")
                stages.append(
                    Stage(
                        name: "out to \(destination.name)", payloads: findings, seconds: seconds, perSecond: (Double(findings) / seconds).rounded(),
                        note: destination.kind == .webhook ? "one signed request per payload" : "\(batch) payloads a request"))
                Bench.log("\(destination.name): \(seconds) s")
            }

            // The outage: a second set of findings queued for HEC while it is down.
            let hec = destinations[0]
            var outageItems: [OutboxItem] = []
            for index in 0..<findings {
                outageItems.append(
                    OutboxItem(destination: hec.name, payload: DeliveryPayload.finding(Self.finding(index, run: "b"), event: nil, organization: organization)))
                if outageItems.count >= 1000 || index == findings - 1 {
                    try await store.enqueue(outageItems, at: Date())
                    outageItems.removeAll(keepingCapacity: true)
                }
            }
            let queued = try await store.destinationStatuses().first { $0.destination == hec.name }?.queued ?? 0
            receivers.plan(.hec) { $0.down = true }
            let before = Self.residentMB()
            let outage = try service(hec)
            let running = Task { await outage.run() }
            var peak = before
            let downUntil = ContinuousClock.now + .milliseconds(Int64(down * 1000))
            while ContinuousClock.now < downUntil {
                peak = max(peak, Self.residentMB())
                try await Task.sleep(for: .milliseconds(100))
            }
            Bench.log("down for \(down) s with \(queued) queued: resident \(before) → peak \(peak) MB")
            let peakDown = peak
            receivers.plan(.hec) { $0.down = false }
            let back = ContinuousClock.now
            let baseline = receivers.received(.hec).count
            var first: Double?
            while try await !store.queuedDeliveries(destination: hec.name, limit: 1).isEmpty {
                if first == nil, receivers.received(.hec).count > baseline { first = Bench.seconds(ContinuousClock.now - back) }
                peak = max(peak, Self.residentMB())
                try await Task.sleep(for: .milliseconds(20))
                guard ContinuousClock.now - back < .seconds(3600) else { break }
            }
            let drainSeconds = Bench.seconds(ContinuousClock.now - back)
            running.cancel()
            await running.value
            let fileBytes = ((try? FileManager.default.attributesOfItem(atPath: statePath)[.size] as? Int) ?? nil) ?? 0
            return Output(
                build: Bench.buildConfiguration, findings: findings, batch: batch, payloadBytes: payloadBytes / max(1, findings), stages: stages,
                downSeconds: down, residentMBBeforeOutage: before, peakResidentMBDuringOutage: peakDown, peakResidentMBWhileDraining: peak,
                queuedDuringOutage: queued,
                drainSecondsAfterOutage: drainSeconds, firstDeliveryAfterOutageSeconds: first ?? drainSeconds,
                outboxFileMB: (Double(fileBytes) / 1_048_576).rounded(toPlaces: 1))
        }

        print("deliver: \(output.findings) findings, \(output.payloadBytes) bytes a payload, \(output.build) build")
        print("STAGE".padding(toLength: 26, withPad: " ", startingAt: 0) + "SECONDS".padding(toLength: 10, withPad: " ", startingAt: 0) + "PER SECOND  NOTE")
        for stage in output.stages {
            print(
                stage.name.padding(toLength: 26, withPad: " ", startingAt: 0) + String(stage.seconds).padding(toLength: 10, withPad: " ", startingAt: 0)
                    + String(Int(stage.perSecond)).padding(toLength: 12, withPad: " ", startingAt: 0) + stage.note)
        }
        print(
            "outage: HEC down \(output.downSeconds) s with \(output.queuedDuringOutage) queued; resident \(output.residentMBBeforeOutage) MB → peak \(output.peakResidentMBDuringOutage) MB while down "
                + "(\(output.peakResidentMBWhileDraining) MB while draining, the in-process receivers keeping every payload); "
                + "first delivery \(output.firstDeliveryAfterOutageSeconds) s after it came back, drained in \(output.drainSecondsAfterOutage) s; outbox file \(output.outboxFileMB) MB")
        try Bench.writeJSON(output, to: json)
    }
}
