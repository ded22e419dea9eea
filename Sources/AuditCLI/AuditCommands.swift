import ArgumentParser
import AuditCore
import AuditEngine
import AuditStore
import Foundation
import GenesysClient
import Logging

/// Where rules come from: the defaults plus `--rules DIR` (repeatable) or `RBACWATCH_RULES`
/// (colon-separated).
struct RuleOptions: ParsableArguments {
    @Option(name: .customLong("rules"), help: "A rule file or a directory of *.json rule files (repeatable; also RBACWATCH_RULES, colon-separated).")
    var directories: [String] = []

    @Flag(name: .customLong("no-default-rules"), help: "Use only the given rule files.")
    var noDefaults = false

    func load(environment: [String: String]) throws -> RuleSet {
        var paths = directories
        if paths.isEmpty, let fromEnvironment = environment["RBACWATCH_RULES"] {
            paths = fromEnvironment.split(separator: ":").map(String.init)
        }
        do {
            return try RuleFiles.load(directories: paths, includeDefaults: !noDefaults)
        } catch let error as RuleError {
            throw ConfigurationError(error.description)
        } catch {
            throw ConfigurationError("cannot read the rules: \(error.localizedDescription)")
        }
    }
}

/// The audit feed's parts, built the same way for `watch`, the dashboard and the demo: a client
/// that surfaces 429s after one retry of at most ten seconds (so ingestion backs off and, if
/// they persist, narrows),
/// and an ingestor over the store.
enum AuditFeedSetup {
    static func ingestor(
        _ connection: GenesysConnection, store: any AuditStore, rules: RuleSet, settings: IngestionSettings = IngestionSettings(),
        logger: Logger = CLILogging.silent, delivery: DeliveryRouter? = nil, organization: Organization? = nil
    ) -> (AuditIngestor, GenesysAPIClient) {
        let client = auditClient(connection, logger: logger)
        return (
            AuditIngestor(
                source: GenesysAuditSource(client: client), store: store, rules: rules, settings: settings, logger: logger, delivery: delivery,
                organization: organization), client
        )
    }

    /// A client for the audit API: one short wait absorbs a passing 429; anything longer is the
    /// ingestor's to wait out (between polls, capped at five minutes, said in the health line),
    /// or makes attribution say the audit API could not be read — never a long stall.
    static func auditClient(_ connection: GenesysConnection, logger: Logger = CLILogging.silent) -> GenesysAPIClient {
        var retry = RetryPolicy()
        retry.maxRateLimitRetries = 1
        retry.maxRetryAfter = .seconds(10)
        return GenesysAPIClient(
            connection: connection, transport: AsyncHTTPClientTransport(idleTimeout: min(.seconds(30), connection.limits.request)), retry: retry,
            logger: logger)
    }
}

/// `rbacwatch rules list|default|test`.
struct RulesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rules", abstract: "The audit rules: list them, print the defaults, dry-run them over recorded events.",
        subcommands: [List.self, Default.self, Test.self], defaultSubcommand: List.self)

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List the rules in force, with severity, controls and source.")
        @OptionGroup var rules: RuleOptions

        func run() async throws {
            try await CommandErrors.handle {
                let set = try rules.load(environment: ProcessInfo.processInfo.environment)
                Console.out("ID        SEVERITY  ON   TITLE · CONTROLS · SOURCE")
                for rule in set.rules {
                    let line = "\(rule.id.padding(toLength: 9, withPad: " ", startingAt: 0)) \(rule.severity.name.padding(toLength: 9, withPad: " ", startingAt: 0)) \(rule.enabled ? "yes" : "no ")  \(rule.title) · \(rule.controls.joined(separator: ", ")) · \(rule.source)"
                    Console.out(TerminalSafe.sanitize(line))
                }
            }
        }
    }

    struct Default: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the shipped default rules (a starting point for your own).")
        func run() throws { Console.out(DefaultRules.json.trimmingCharacters(in: .newlines)) }
    }

    struct Test: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Dry-run rules over recorded events (JSON lines of AuditLogMessages), in eventDate order; nothing is stored.",
            discussion: "Exit 0 when no rule fires, 3 when one does (like diff --fail-on), 1 when a line cannot be read.")

        @Argument(help: "A rule file or directory to test (on top of the defaults unless --no-default-rules).")
        var file: String

        @Option(help: "Events: one AuditLogMessage per line (a JSON array also works).")
        var events: String

        @Flag(name: .customLong("no-default-rules"), help: "Test only the given rules.")
        var noDefaults = false

        @Option(help: "table or json (JSON lines, one finding each).")
        var format = "table"

        func validate() throws {
            guard ["table", "json"].contains(format) else { throw ValidationError("--format is table or json.") }
        }

        func run() async throws {
            try await CommandErrors.handle {
                let set: RuleSet
                do {
                    set = try RuleFiles.load(directories: [file], includeDefaults: !noDefaults)
                } catch let error as RuleError {
                    throw ConfigurationError(error.description)
                }
                let data: [UInt8]
                do {
                    data = try FileBytes.read(events, limit: FileBytes.dataLimit)
                } catch {
                    throw ConfigurationError("the events file: \(error)")
                }
                let list = try Self.readEvents(data, path: events)
                var engine = RuleEngine(rules: set)
                var findings: [AuditFinding] = []
                for event in list.sorted(by: { $0.date != $1.date ? $0.date < $1.date : $0.id < $1.id }) {
                    findings += engine.judge(event)
                }
                if format == "json" {
                    for finding in findings { Console.jsonLine(FindingJSON.encode(finding)) }
                } else {
                    FindingTable.print(findings)
                    let stats = engine.statistics
                    Console.out("\(stats.events) events, \(stats.matched) matched, \(stats.excused) excused, \(stats.throttled) throttled, \(stats.findings) findings")
                }
                if !findings.isEmpty { throw ExitCode(RBACWatchExit.driftFound) }
            }
        }

        static func readEvents(_ bytes: [UInt8], path: String) throws -> [AuditEvent] {
            let trimmed = bytes.drop { $0 == 0x20 || $0 == 0x0A || $0 == 0x0D || $0 == 0x09 }
            if trimmed.first == UInt8(ascii: "[") {
                do {
                    return try AuditEvent.parseArray(Array(trimmed))
                } catch {
                    throw ConfigurationError("\(path): \(error.description)")
                }
            }
            var events: [AuditEvent] = []
            for (number, line) in bytes.split(separator: 0x0A, omittingEmptySubsequences: false).enumerated() {
                guard line.contains(where: { $0 != 0x20 && $0 != 0x0D && $0 != 0x09 }) else { continue }
                do {
                    events.append(try AuditEvent.parse(Array(line)))
                } catch {
                    throw ConfigurationError("\(path) line \(number + 1): \(error.description)")
                }
            }
            return events
        }
    }
}

/// `rbacwatch findings list`.
struct FindingsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "findings", abstract: "Audit findings recorded by rbacwatch watch.", subcommands: [List.self, Quarantine.self],
        defaultSubcommand: List.self)

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List findings, newest first.")

        @OptionGroup var state: StateOptions

        @Option(help: "Only findings since: a duration back (24h, 7d) or an ISO-8601 time.")
        var since: String?

        @Option(help: "Lowest severity shown: low, medium, high, critical.")
        var severity = "low"

        @Option(help: "table or json (JSON lines).")
        var format = "table"

        @Option(help: "At most this many.")
        var limit = 1000

        func validate() throws {
            guard Severity(name: severity) != nil else { throw ValidationError("--severity is low, medium, high or critical.") }
            guard ["table", "json"].contains(format) else { throw ValidationError("--format is table or json.") }
            if let since, Self.date(since, now: Date()) == nil {
                throw ValidationError("--since takes a duration back (24h, 7d; at most \(DurationText.format(Self.sinceRange.upperBound))) or an ISO-8601 time.")
            }
            try FlagCheck.range(limit, 1...1_000_000, "--limit")
        }

        /// How far back `--since` reaches: ten years, longer than any audit retention.
        static let sinceRange: ClosedRange<Double> = 1...(3650 * 86_400)

        static func date(_ text: String, now: Date) -> Date? {
            if text.last?.isLetter == true, let back = DurationText.seconds(text, range: sinceRange) { return now.addingTimeInterval(-back) }
            return ISOTimestamp.date(text)
        }

        func run() async throws {
            try await CommandErrors.handle {
                let store = try await state.open(environment: ProcessInfo.processInfo.environment)
                let query = FindingQuery(since: since.flatMap { Self.date($0, now: Date()) }, minimumSeverity: Severity(name: severity)!, limit: limit)
                let findings = try await store.auditFindings(query)
                if format == "json" {
                    for finding in findings { Console.jsonLine(FindingJSON.encode(finding)) }
                } else if findings.isEmpty {
                    Console.out("No findings.")
                } else {
                    FindingTable.print(findings)
                }
                // Records the feed could not take at face value are never silently dropped: say so.
                let quarantined = try await store.quarantineCount()
                if quarantined > 0 {
                    let line = "\(quarantined) audit record\(quarantined == 1 ? "" : "s") quarantined (unreadable, or an event id back with different content): rbacwatch findings quarantine lists them"
                    if format == "json" { Console.err("rbacwatch: " + line) } else { Console.out(line) }
                }
            }
        }
    }

    struct Quarantine: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Audit records set aside by the feed: unreadable ones, and event ids that came back with different content.")

        @OptionGroup var state: StateOptions

        @Option(help: "At most this many, newest first.")
        var limit = 100

        @Flag(help: "Print each record in full (JSON, escaped for the terminal).")
        var raw = false

        func validate() throws {
            try FlagCheck.range(limit, 1...quarantineLimit, "--limit")
        }

        func run() async throws {
            try await CommandErrors.handle {
                let store = try await state.open(environment: ProcessInfo.processInfo.environment)
                let records = try await store.quarantinedRecords(limit: limit)
                guard !records.isEmpty else { return Console.out("No quarantined records.") }
                Console.out("RECEIVED (UTC)       KIND        EVENT ID                              REASON")
                for record in records {
                    let when = String(ISOTimestamp.string(record.receivedAt).prefix(19)).replacingOccurrences(of: "T", with: " ")
                    Console.out(
                        "\(when)  \(record.kind.rawValue.padding(toLength: 10, withPad: " ", startingAt: 0))  "
                            + "\((record.eventId ?? "-").padding(toLength: 36, withPad: " ", startingAt: 0))  \(record.reason)")
                    if raw {
                        Console.out(String(decoding: TerminalSafe.sanitizeJSON(record.raw), as: UTF8.self) + (record.rawTruncated ? " …(cut)" : ""))
                    } else {
                        Console.out("    " + record.preview(160))
                    }
                }
            }
        }
    }
}

enum FindingTable {
    static func print(_ findings: [AuditFinding]) {
        guard !findings.isEmpty else { return }
        Console.out("WHEN (UTC)           SEVERITY  RULE     STATUS    FINGERPRINT   WHAT")
        for finding in findings {
            let when = String(ISOTimestamp.string(finding.date).prefix(19)).replacingOccurrences(of: "T", with: " ")
            let status = finding.status == .approved ? "approved" : "OPEN"
            Console.out(
                TerminalSafe.sanitize(
                    "\(when)  \(finding.severity.name.padding(toLength: 9, withPad: " ", startingAt: 0)) \(finding.ruleId.padding(toLength: 8, withPad: " ", startingAt: 0)) \(status.padding(toLength: 9, withPad: " ", startingAt: 0)) \(finding.fingerprint.prefix(12))  \(finding.summary)"
                ))
        }
    }
}

/// Findings as JSON lines (keys sorted): what `findings list --format json` and `watch` print.
enum FindingJSON {
    static func encode(_ f: AuditFinding) -> [UInt8] { DeliveryPayload.findingLine(f) }
}

/// Logs for `watch`: stderr, or a private file (0600) appended to.
enum WatchLogging {
    static func logger(file: String?, level: String) throws -> Logger {
        guard let file else { return CLILogging.logger(label: "rbacwatch.watch", level: level) }
        let fd = open(file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw ConfigurationError("cannot open the log file \(file): \(String(cString: strerror(errno)))") }
        let sink = LogSink(fd: fd, owned: true)
        var logger = Logger(label: "rbacwatch.watch") { label in SafeLogHandler(label: label, sink: sink) }
        logger.logLevel = Logger.Level(rawValue: level) ?? .info
        return logger
    }
}

/// Rule files from disk: the defaults, then every `*.json` in each directory (or a file named
/// directly) in name order, merged into a `RuleSet`. A missing directory is an error: a typo
/// must not silently run without the user's rules.
enum RuleFiles {
    static func load(directories: [String], includeDefaults: Bool = true) throws -> RuleSet {
        var set = includeDefaults ? RuleSet.defaults() : RuleSet(rules: [])
        for directory in directories {
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), !isDirectory.boolValue {
                set.merge(try AuditRule.parseFile(try read(directory), source: directory))
                continue
            }
            guard isDirectory.boolValue else { throw RuleError("rule directory \(directory) does not exist") }
            let files = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasSuffix(".json") }.sorted()
            for file in files {
                let path = (directory as NSString).appendingPathComponent(file)
                set.merge(try AuditRule.parseFile(try read(path), source: path))
            }
        }
        return set
    }

    static func read(_ path: String) throws -> Data {
        do {
            return Data(try FileBytes.read(path, limit: FileBytes.configurationLimit))
        } catch {
            throw RuleError(error.description)
        }
    }
}
