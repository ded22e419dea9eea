import ArgumentParser
import AuditCore
import AuditEngine
import AuditStore
import Foundation
import GenesysClient
import SIEMClient

/// `--destinations FILE` (or `RBACWATCH_DESTINATIONS`): where findings and drift items are
/// delivered.
struct DeliveryOptions: ParsableArguments {
    @Option(name: .customLong("destinations"), help: "Destinations file (JSON; env: RBACWATCH_DESTINATIONS). Findings and drift items are delivered there.")
    var path: String?

    @Option(name: .customLong("retain-delivered"), help: "How long delivered payloads stay in the outbox before they are deleted (1h–365d).")
    var retainDelivered = Interval(argument: "7d")!

    func validate() throws {
        try retainDelivered.check("--retain-delivered", 3600...(365 * 86_400))
    }

    var settings: DeliverySettings {
        var settings = DeliverySettings()
        settings.retainDelivered = retainDelivered.seconds
        return settings
    }

    func resolvedPath(environment: [String: String]) -> String? {
        path ?? environment["RBACWATCH_DESTINATIONS"].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// The destinations, or none without a file.
    func load(environment: [String: String]) throws -> [Destination] {
        guard let path = resolvedPath(environment: environment) else { return [] }
        let bytes: [UInt8]
        do {
            bytes = try FileBytes.read(path, limit: FileBytes.configurationLimit)
        } catch {
            throw ConfigurationError("--destinations: \(error.description)")
        }
        do {
            return try DestinationsFile.parse(bytes)
        } catch {
            throw ConfigurationError("\(path): \(error.description)")
        }
    }
}

/// Destinations made ready to send: secrets read (from the environment or a file, never
/// logged), a sender per destination, and the router the engine queues with.
struct DeliverySetup {
    let destinations: [Destination]
    let router: DeliveryRouter

    init(_ destinations: [Destination]) {
        self.destinations = destinations
        self.router = DeliveryRouter(destinations: destinations)
    }

    /// The secret a destination names.
    static func secret(_ destination: Destination, environment: [String: String]) throws -> Secret? {
        switch destination.secret {
        case nil: return nil
        case .environment(let name)?:
            guard let value = environment[name]?.trimmingCharacters(in: .whitespacesAndNewlines), !value.isEmpty else {
                throw ConfigurationError("destination \(destination.name): the environment variable \(name) (its secret) is not set")
            }
            return Secret(value)
        case .file(let path)?:
            do {
                let text = String(decoding: try FileBytes.read(path, limit: 64 * 1024), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
                guard !text.isEmpty else { throw ConfigurationError("destination \(destination.name): the secret file \(path) is empty") }
                return Secret(text)
            } catch let error as FileReadError {
                throw ConfigurationError("destination \(destination.name): secret file: \(error.description)")
            }
        }
    }

    static func hostName() -> String {
        var buffer = [CChar](repeating: 0, count: 256)
        guard gethostname(&buffer, buffer.count) == 0 else { return "rbacwatch" }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// A sender for one destination (its own HTTP connection pool).
    static func sender(_ destination: Destination, environment: [String: String]) throws -> any DeliverySender {
        let secret = try secret(destination, environment: environment)
        if destination.insecureSkipVerify {
            Console.err("rbacwatch: WARNING: destination \(destination.name): TLS certificates are NOT verified (insecureSkipVerify); anyone on the path can read and forge what is sent")
        }
        let transport = {
            AsyncHTTPClientTransport(
                connectTimeout: .seconds(10), idleTimeout: destination.timeout, maxBodyBytes: 1 << 20, caFile: destination.caFile,
                insecureSkipVerify: destination.insecureSkipVerify)
        }
        switch destination.kind {
        case .splunkHEC:
            return HECSender(transport: transport(), destination: destination, token: secret ?? Secret(""), host: hostName())
        case .datadog:
            return DatadogSender(transport: transport(), destination: destination, key: secret ?? Secret(""), host: hostName())
        case .webhook:
            do {
                return try WebhookSender(transport: transport(), destination: destination, secret: secret ?? Secret(""))
            } catch {
                throw ConfigurationError("destination \(destination.name): \(error.description)")
            }
        case .file:
            return JSONLFileSender(path: destination.path ?? "")
        case .syslog:
            do {
                return try SyslogSender(destination: destination, hostname: hostName())
            } catch {
                throw ConfigurationError(error.description)
            }
        }
    }

    /// A delivery service per destination (a destination that cannot be set up is one line,
    /// and the senders made before it are shut down).
    func services(store: any AuditStore, environment: [String: String], settings: DeliverySettings = DeliverySettings()) async throws -> [DeliveryService] {
        var made: [DeliveryService] = []
        for destination in destinations {
            do {
                made.append(
                    DeliveryService(
                        destination: destination, sender: try Self.sender(destination, environment: environment), store: store, settings: settings))
            } catch {
                for service in made { await service.shutdown() }
                throw error
            }
        }
        return made
    }
}

/// `rbacwatch deliveries status|test|resume`.
struct DeliveriesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "deliveries",
        abstract: "Delivery to SIEMs: each destination's queue and health, a test payload, resuming a paused one.",
        subcommands: [DeliveriesStatusCommand.self, DeliveriesTestCommand.self, DeliveriesResumeCommand.self],
        defaultSubcommand: DeliveriesStatusCommand.self)
}

struct DeliveriesStatusCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status", abstract: "Per destination: queued, oldest age, delivered, dead-lettered, last success, last error, paused.")

    @OptionGroup var state: StateOptions

    func run() async throws {
        try await state.withStore { store in
            let statuses = try await store.destinationStatuses()
            guard !statuses.isEmpty else {
                Console.out("no deliveries yet (configure destinations with watch --destinations FILE)")
                return
            }
            let now = Date()
            var rows = [["DESTINATION", "QUEUED", "OLDEST", "DELIVERED", "DLQ", "LAST SUCCESS", "STATE"]]
            for status in statuses {
                let oldest = status.oldestQueued.map { IngestionHealth.duration(now.timeIntervalSince($0)) } ?? "-"
                let success = status.lastSuccess.map { DriftReport.timestamp($0) } ?? "never"
                let health = status.paused.map { "PAUSED: \($0)" } ?? status.lastError.map { "retrying: \($0)" } ?? "ok"
                rows.append([
                    status.destination, String(status.queued), oldest, String(status.delivered), String(status.deadLettered), success,
                    TerminalSafe.sanitize(health),
                ])
            }
            Console.out(TextTable.render(rows))
        }
    }
}

struct DeliveriesResumeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "resume", abstract: "Clear a destination's pause: the running watch sends its next payload at once.")

    @OptionGroup var state: StateOptions
    @Argument(help: "The destination's name.") var name: String

    func run() async throws {
        try await state.withStore { store in
            guard let status = try await store.destinationStatuses().first(where: { $0.destination == name }) else {
                throw OperationError("no destination \(name) in this state file (see rbacwatch deliveries status)")
            }
            guard status.paused != nil else {
                Console.out("\(name) is not paused")
                return
            }
            try await store.setDestinationHealth(name, paused: nil, lastError: status.lastError, lastSuccess: nil)
            Console.out("\(name) resumed: its next payload goes at the next attempt")
        }
    }
}

struct DeliveriesTestCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "test", abstract: "Send one test payload to a destination and print what the receiver answered (nothing is queued).")

    @OptionGroup var delivery: DeliveryOptions
    @Argument(help: "The destination's name.") var name: String

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        try await CommandErrors.handle {
            let destinations = try delivery.load(environment: environment)
            guard !destinations.isEmpty else { throw ConfigurationError("no destinations: pass --destinations FILE") }
            guard let destination = destinations.first(where: { $0.name == name }) else {
                throw ConfigurationError("no destination \(name) (the file has \(destinations.map(\.name).joined(separator: ", ")))")
            }
            let sender = try DeliverySetup.sender(destination, environment: environment)
            let payload = Self.testPayload(at: Date())
            var result = await sender.send([payload])
            if case .awaitingAck(let id) = result {
                // Wait (bounded) for the indexer to acknowledge it.
                result = .transient("no acknowledgement of ackId \(id) within 30 s", retryAfter: nil)
                for _ in 0..<30 {
                    try await Task.sleep(for: .seconds(1))
                    if case .success(let acks) = await sender.acknowledged([id]), acks[id] == true {
                        result = .delivered
                        break
                    }
                }
            }
            await sender.shutdown()
            switch result {
            case .delivered:
                Console.out("\(name): delivered test payload \(payload.id)")
            case .awaitingAck(let id):
                throw OperationError("\(name): accepted, ackId \(id) not acknowledged")
            case .transient(let message, _):
                throw OperationError("\(name): not delivered (would be retried): \(message)")
            case .rejected(let message):
                throw OperationError("\(name): the receiver refused the payload: \(message)")
            case .configuration(let message):
                throw OperationError("\(name): configuration: \(message)")
            }
        }
    }

    /// A finding from rule `RBW-TEST`, valid against its schema.
    static func testPayload(at now: Date) -> DeliveryPayload {
        let id = "test-\(Int(now.timeIntervalSince1970))"
        let finding = AuditFinding(
            fingerprint: id, ruleId: "RBW-TEST", title: "rbacwatch delivery test", severity: .low, controls: [], eventIds: [id], date: now,
            serviceName: "rbacwatch", entityType: "Test", entityId: id, entityName: "delivery test", action: "Test", actor: "rbacwatch",
            actorId: nil, clientId: nil, remoteIp: [], evidence: ["a test payload sent by rbacwatch deliveries test"], status: .open, approval: nil)
        return DeliveryPayload.finding(finding, event: nil, organization: Organization(id: "rbacwatch-test", name: "rbacwatch delivery test"))
    }
}

/// `rbacwatch dlq list|show|replay|purge`.
struct DLQCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "dlq",
        abstract: "The dead-letter queue: payloads a receiver refused 5 times (or that failed their schema).",
        subcommands: [DLQListCommand.self, DLQShowCommand.self, DLQReplayCommand.self, DLQPurgeCommand.self],
        defaultSubcommand: DLQListCommand.self)
}

struct DLQListCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "list", abstract: "Dead-lettered payloads, newest first.")

    @OptionGroup var state: StateOptions
    @Option(help: "Only this destination.") var destination: String?
    @Option(help: "At most this many (1–10000).") var limit = 100

    func validate() throws { try FlagCheck.range(limit, 1...10_000, "--limit") }

    func run() async throws {
        try await state.withStore { store in
            let dead = try await store.deadLetters(destination: destination, limit: limit)
            guard !dead.isEmpty else {
                Console.out("the dead-letter queue is empty")
                return
            }
            var rows = [["ID", "DESTINATION", "PAYLOAD", "SEVERITY", "ATTEMPTS", "DEAD SINCE", "WHY"]]
            for entry in dead {
                rows.append([
                    String(entry.id), entry.destination, TerminalSafe.sanitize(entry.payload.id), entry.payload.severity.name, String(entry.attempts),
                    entry.settledAt.map(DriftReport.timestamp) ?? "-", TerminalSafe.sanitize(String((entry.lastError ?? "").prefix(100))),
                ])
            }
            Console.out(TextTable.render(rows))
        }
    }
}

struct DLQShowCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "show", abstract: "One dead-lettered payload: why, and the payload itself (JSON).")

    @OptionGroup var state: StateOptions
    @Argument(help: "The entry's id (dlq list).") var id: Int64

    func run() async throws {
        try await state.withStore { store in
            guard let entry = try await store.outboxEntry(id: id), entry.state == .dead else {
                throw OperationError("no dead-lettered entry \(id) (see rbacwatch dlq list)")
            }
            Console.err("entry \(entry.id) for \(entry.destination), \(entry.attempts) attempts: \(TerminalSafe.sanitize(entry.lastError ?? ""))")
            Console.output(entry.payload.body + [UInt8(ascii: "\n")], json: true)
        }
    }
}

struct DLQReplayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay", abstract: "Queue dead-lettered payloads again (same ids, so receivers dedupe), at the end of their queues.")

    @OptionGroup var state: StateOptions
    @Argument(help: "Entry ids (dlq list).") var ids: [Int64] = []
    @Flag(help: "Every dead-lettered payload.") var all = false

    func validate() throws {
        if all == !ids.isEmpty { throw ValidationError("name entry ids, or --all.") }
    }

    func run() async throws {
        try await state.withStore { store in
            let count = try await store.replayDeadLetters(ids: all ? nil : ids, at: Date())
            if !all, count < ids.count { throw OperationError("queued \(count) of \(ids.count): the others are not dead-lettered entries") }
            Console.out("queued \(count) payload\(count == 1 ? "" : "s") again")
        }
    }
}

struct DLQPurgeCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "purge", abstract: "Delete one dead-lettered payload for good.")

    @OptionGroup var state: StateOptions
    @Argument(help: "The entry's id (dlq list).") var id: Int64

    func run() async throws {
        try await state.withStore { store in
            guard try await store.purgeDeadLetter(id: id) else { throw OperationError("no dead-lettered entry \(id) (see rbacwatch dlq list)") }
            Console.out("purged \(id)")
        }
    }
}
