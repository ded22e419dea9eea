import ArgumentParser
import AuditCore
import AuditEngine
import AuditStore
import Foundation
import Synchronization

/// `rbacwatch-bench rules`: audit events per second through the ingestion pipeline —
/// normalise (parse the API's JSON pages) → dedupe (by id, against the store and the buffer) →
/// reorder (the buffer, by `eventDate`) → rules (the default set) — first stage by stage, then
/// end to end through the real `AuditIngestor`, with the in-memory store and with SQLite
/// persisting every event id, finding and checkpoint.
///
/// The events are generated, not simulated over HTTP (that would measure the network): a busy
/// organisation's mix of logins, grants, role edits, memberships, division moves, queue,
/// webhook, trunk and OAuth changes, with rare dangerous ones, spread over `--span` and made
/// visible up to 50 s late. The ingestor polls them as it would the realtime query: windows
/// of `--poll` with the usual 65 s overlap (so most events are fetched twice) and 60 s lag.
struct RulesBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rules", abstract: "Measure audit events per second through normalise → dedupe → reorder → rules, in memory and with SQLite.")

    @Option(help: "Audit events to generate.")
    var events = 1_000_000

    @Option(help: "Seconds of activity the events span (86400: a busy day).")
    var span = 86_400.0

    @Option(help: "Seconds between polls.")
    var poll = 60.0

    @Option(help: "Runs per measurement (the median is reported).")
    var runs = 3

    @Option(help: "Seed of the generated events.")
    var seed: UInt64 = 1

    @Option(help: "A window's service reads in flight at once (1: one after another).")
    var reads = IngestionSettings().concurrentReads

    @Flag(name: .customLong("skip-sqlite"), help: "Leave out the SQLite pipeline.")
    var skipSQLite = false

    @Option(help: "Also write the results as JSON to this file.")
    var json: String?

    struct Stage: Codable {
        var name: String
        var events: Int
        var medianSeconds: Double
        var eventsPerSecond: Double
        var runs: [Double]
        /// Processor time (user + system, all threads) of the median run: below the wall time
        /// when the stage waits (on SQLite's writer queue, say).
        var cpuSeconds: Double
        var note: String
    }

    struct Output: Codable {
        var benchmark = "rules"
        var build: String
        var events: Int
        var spanSeconds: Double
        var pollSeconds: Double
        var rules: Int
        var payloadBytes: Int
        var findings: Int
        var stages: [Stage]
        var pipelineMatchesEngine: Bool
        var sqliteFileBytes: Int?
    }

    /// User plus system time of the whole process so far.
    static func processorSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
        return seconds(usage.ru_utime) + seconds(usage.ru_stime)
    }

    func validate() throws {
        guard events >= 1, runs >= 1 else { throw ValidationError("--events and --runs must be at least 1.") }
        guard span >= 60, poll >= 1 else { throw ValidationError("--span is at least 60 s, --poll at least 1 s.") }
    }

    func run() async throws {
        if Bench.buildConfiguration == "debug" { Bench.log("warning: debug build; measure with -c release") }
        Bench.log("generating \(events) events over \(Int(span)) s (seed \(seed))")
        let corpus = EventCorpus.generate(count: events, span: span, seed: seed)
        let rules = RuleSet.defaults()
        Bench.log("\(corpus.payloadBytes / 1_000_000) MB of AuditLogMessage JSON, \(corpus.services.count) services")

        var stages: [Stage] = []
        func measure(_ name: String, events: Int, note: String, _ body: () async throws -> Void) async rethrows {
            var times: [Double] = []
            var cpu: [Double] = []
            for run in 1...runs {
                let start = ContinuousClock.now
                let cpuStart = Self.processorSeconds()
                try await body()
                times.append(Bench.seconds(ContinuousClock.now - start))
                cpu.append((Self.processorSeconds() - cpuStart).rounded(toPlaces: 3))
                Bench.log("\(name) run \(run): \(times.last!) s (processor \(cpu.last!) s)")
            }
            let median = Bench.median(times) ?? 0
            let medianCPU = cpu[times.firstIndex(of: median) ?? 0]
            stages.append(
                Stage(
                    name: name, events: events, medianSeconds: median, eventsPerSecond: (Double(events) / max(median, 1e-9)).rounded(), runs: times,
                    cpuSeconds: medianCPU, note: note))
        }

        // Stage by stage, in memory.
        var parsed: [AuditEvent] = []
        try await measure("normalise", events: events, note: "parse AuditLogMessage pages of 500 into events") {
            parsed = try corpus.parseAll()
        }
        var arrival = corpus.arrivalOrder(parsed)
        try await measure("dedupe", events: events * 2, note: "every event seen twice (the overlap), a set of ids") {
            var seen = Set<String>(minimumCapacity: events)
            var fresh = 0
            for _ in 0..<2 { for event in arrival where seen.insert(event.id).inserted { fresh += 1 } }
            precondition(fresh == events)
        }
        var ordered: [AuditEvent] = []
        try await measure("reorder", events: events, note: "buffer in arrival order, release by eventDate every \(Int(poll)) s") {
            ordered = corpus.reorder(arrival, every: poll)
        }
        precondition(ordered.count == events, "the reorder buffer lost events")
        var engineFindings = 0
        try await measure("rules", events: events, note: "\(rules.enabled.count) default rules, throttling and correlation") {
            var engine = RuleEngine(rules: rules)
            var count = 0
            for event in ordered { count += engine.judge(event).count }
            engineFindings = count
        }

        try await measure("encode", events: events, note: "each event's canonical JSON, the form a store keeps") {
            var bytes = 0
            for event in ordered { bytes += event.canonicalJSON().count }
            precondition(bytes > events)
        }

        // The stages' copies of every event go before the pipeline runs: a pipeline does not
        // hold a day's events, and gigabytes of them in the heap slow every allocation it makes.
        parsed = []
        arrival = []
        ordered = []

        var pipelineFindings = 0
        var matches = true
        // Two strategies run alternately, `runs` times each: the first (`true`) then the one it
        // replaced (`false`) in the table.
        func alternate(
            _ names: (now: String, before: String), notes: (now: String, before: String), _ body: (Bool) async throws -> EventCorpus.IngestOutcome
        ) async throws {
            var timings: [Bool: (wall: [Double], cpu: [Double])] = [true: ([], []), false: ([], [])]
            for _ in 1...runs {
                for strategy in [false, true] {
                    let start = ContinuousClock.now
                    let cpuStart = Self.processorSeconds()
                    let outcome = try await body(strategy)
                    timings[strategy]!.wall.append(Bench.seconds(ContinuousClock.now - start))
                    timings[strategy]!.cpu.append((Self.processorSeconds() - cpuStart).rounded(toPlaces: 3))
                    Bench.log("\(strategy ? names.now : names.before) run \(timings[strategy]!.wall.count): \(timings[strategy]!.wall.last!) s")
                    matches = matches && outcome.judged == events && outcome.findings == engineFindings
                }
            }
            for strategy in [true, false] {
                let (wall, cpu) = timings[strategy]!
                let median = Bench.median(wall) ?? 0
                stages.append(
                    Stage(
                        name: strategy ? names.now : names.before, events: events, medianSeconds: median,
                        eventsPerSecond: (Double(events) / max(median, 1e-9)).rounded(), runs: wall, cpuSeconds: cpu[wall.firstIndex(of: median) ?? 0],
                        note: strategy ? notes.now : notes.before))
            }
        }

        // End to end through the ingestor. The pipeline as it runs, and the same parsing every record it is sent (as before
        // records already held were skipped), alternately.
        try await alternate(
            ("pipeline, in-memory store", "  same, every record parsed"),
            notes: (
                "AuditIngestor polls every \(Int(poll)) s, 65 s overlap, 60 s lag; records already held skipped unparsed",
                "before: the overlap's records parsed again (run alternately with the above)"
            )
        ) { skip in
            let outcome = try await corpus.ingest(store: InMemoryAuditStore(), rules: rules, poll: poll, skipKnown: skip, reads: reads)
            if skip { pipelineFindings = outcome.findings }
            return outcome
        }
        if reads > 1 {
            try await alternate(
                ("  again, reads at once", "  same, reads in turn"),
                notes: (
                    "\(reads) service reads in flight at once (the pipeline above, run alternately with the line below)",
                    "before: a window's services read one at a time"
                )
            ) { atOnce in
                try await corpus.ingest(store: InMemoryAuditStore(), rules: rules, poll: poll, reads: atOnce ? reads : 1)
            }
        }
        var fileBytes: Int?
        if !skipSQLite {
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("rbacwatch-bench-rules-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: directory) }
            var run = 0
            try await measure("pipeline, SQLite store", events: events, note: "every event id, finding and checkpoint persisted, one transaction per window") {
                run += 1
                let path = directory.appendingPathComponent("state-\(run).sqlite").path
                let outcome = try await corpus.ingest(store: try SQLiteAuditStore(path: path), rules: rules, poll: poll, reads: reads)
                matches = matches && outcome.judged == events && outcome.findings == engineFindings
                fileBytes = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? nil
            }
            // Catching up: a poll every 6 hours reads its span in windows of an hour, each
            // window's write overlapping the next window's work or waited for at once, alternately.
            let catchUp = 21_600.0
            try await alternate(
                ("backfill, SQLite store", "  same, writes waited for"),
                notes: (
                    "catching up: a poll every \(Int(catchUp)) s, windows of an hour, each write overlapping the next window's work",
                    "before: each window's write waited for (run alternately with the above)"
                )
            ) { overlap in
                run += 1
                let path = directory.appendingPathComponent("state-\(run).sqlite").path
                defer { try? FileManager.default.removeItem(atPath: path) }
                return try await corpus.ingest(store: try SQLiteAuditStore(path: path), rules: rules, poll: catchUp, overlapWrites: overlap, reads: reads)
            }
        }

        let output = Output(
            build: Bench.buildConfiguration, events: events, spanSeconds: span, pollSeconds: poll, rules: rules.enabled.count,
            payloadBytes: corpus.payloadBytes, findings: pipelineFindings, stages: stages, pipelineMatchesEngine: matches, sqliteFileBytes: fileBytes)
        print("rbacwatch-bench rules — \(events) events over \(Int(span)) s, \(output.rules) rules, \(output.build) build, median of \(runs)")
        print("stage                        events      median s   processor s    events/s  note")
        for stage in stages {
            print(
                stage.name.padding(toLength: 28, withPad: " ", startingAt: 0) + " "
                    + String(format: "%9d  %10.3f  %12.3f  %10.0f  ", stage.events, stage.medianSeconds, stage.cpuSeconds, stage.eventsPerSecond) + stage.note)
        }
        print("findings: \(pipelineFindings) (the pipeline's equal the engine's over the same events in order: \(matches ? "yes" : "NO"))")
        if let fileBytes { print("SQLite file after one run: \(fileBytes / 1_000_000) MB") }
        try Bench.writeJSON(output, to: json)
        if !matches { throw ExitCode(1) }
    }
}

/// Generated audit events: each one's JSON as the API writes it, by service, with the moment it
/// becomes visible to queries.
struct EventCorpus: Sendable {
    struct Item: Sendable {
        var date: Date
        var visibleAt: Date
        var id: String
        var bytes: [UInt8]
    }

    /// By service, sorted by date.
    var byService: [String: [Item]]
    var services: [String] { byService.keys.sorted() }
    var start: Date
    var end: Date
    var payloadBytes: Int

    static func generate(count: Int, span: Double, seed: UInt64) -> EventCorpus {
        var rng = SplitMix64(seed: seed)
        func pick<T>(_ items: [T]) -> T { items[Int(rng.next() % UInt64(items.count))] }
        func ids(_ prefix: String, _ n: Int) -> [String] {
            (0..<n).map { String(format: "%08x-0000-4000-8000-", $0) + prefix.padding(toLength: 12, withPad: "0", startingAt: 0) }
        }
        let users = ids("user", 20_000), admins = Array(users.prefix(60)), roles = ids("role", 300), groups = ids("group", 400)
        let queues = ids("queue", 150), hooks = ids("hook", 40), trunks = ids("trunk", 12), clients = ids("client", 60), divisions = ids("division", 12)
        let permissions = ["routing:queue:view", "analytics:conversationDetail:view", "quality:evaluation:edit", "wfm:schedule:edit", "recording:recording:view"]
        let start = Date(timeIntervalSince1970: 1_795_000_000)
        var byService: [String: [Item]] = [:]
        var payload = 0
        var w = CanonicalJSONWriter(reservingCapacity: 2048)
        for n in 0..<count {
            // Millisecond precision, as the API writes dates.
            let offset = ((span * Double(n) / Double(count) + Double(rng.next() % 1000) / 1000) * 1000).rounded() / 1000
            let date = start.addingTimeInterval(offset)
            // Mostly on time; one in ten late by up to 50 s (the ingestor's lag is 60 s).
            let delay = rng.next() % 10 == 0 ? Double(rng.next() % 50_000) / 1000 : Double(rng.next() % 3000) / 1000
            let rare = rng.next() % 1000 < 5  // one in two hundred: the kind of change a rule is for
            let actor = pick(admins)
            var service = "PeoplePermissions", type = "AuthUser", action = "Authenticate", entity = actor, status = "SUCCESS"
            var changes: [(String, [String], [String])] = []
            switch rng.next() % 100 {
            case 0..<36: entity = pick(users)
            case 36..<38:
                action = "AuthenticationFailed"
                status = "FAILURE"
                entity = rare ? users[0] : pick(users)
            case 38..<50:
                type = "Role"
                action = rng.next() % 3 == 0 ? "MemberRemove" : "MemberAdd"
                entity = rare ? roles[0] : pick(roles)
                let subject = pick(users)
                changes = [
                    ("subjectId", action == "MemberAdd" ? [] : [subject], action == "MemberAdd" ? [subject] : []),
                    ("divisionId", [], [rare ? "*" : pick(divisions)]), ("subjectType", [], [rare ? "PC_GROUP" : "PC_USER"]),
                ]
            case 50..<58:
                type = "Role"
                action = "Update"
                entity = pick(roles)
                let before = Array(permissions.prefix(Int(rng.next() % 4) + 1))
                changes = [("permissions", before, before + [rare ? "authorization:grant:add" : pick(permissions)])]
            case 58..<68:
                service = "Groups"
                type = "DirectoryGroup"
                action = rng.next() % 2 == 0 ? "MemberAdd" : "MemberRemove"
                entity = pick(groups)
                changes = [("group-membership", action == "MemberAdd" ? [] : [pick(users)], action == "MemberAdd" ? [pick(users)] : [])]
            case 68..<76:
                service = "Directory"
                type = "User"
                action = "Update"
                entity = pick(users)
                changes = rng.next() % 5 == 0 ? [("divisionId", [pick(divisions)], [pick(divisions)])] : [("title", ["Agent"], ["Senior Agent"])]
            case 76..<86:
                service = "ContactCenter"
                type = "Queue"
                action = "Update"
                entity = pick(queues)
                changes = [rare ? ("skillEvaluationMethod", ["BEST"], ["NONE"]) : ("acwTimeoutMs", ["30000"], ["45000"])]
            case 86..<91:
                service = "Webhooks"
                type = "Webhook"
                action = "Update"
                entity = pick(hooks)
                changes = [("url", ["https://hooks.example.com/a"], [rare ? "https://collector.exfil.invalid/in" : "https://hooks.example.com/b"])]
            case 91..<95:
                service = "Integrations"
                type = "Integration"
                action = "Update"
                entity = pick(hooks)
                changes = [("notes", [""], ["rotated"])]
            case 95..<97:
                service = "Telephony"
                type = "Trunk"
                action = "Update"
                entity = pick(trunks)
                changes = [("maxCalls", ["200"], ["250"])]
            default:
                type = "OAuthClient"
                action = rare ? "SecretRegenerated" : "Update"
                entity = pick(clients)
                changes = [("description", ["a"], ["b"])]
            }
            let id = String(format: "%016llx-%08x", rng.next(), n)
            w.reset()
            w.beginObject()
            w.field("action", action)
            w.key("client")
            w.beginObject()
            w.field("id", pick(clients))
            w.endObject()
            w.key("entity")
            w.beginObject()
            w.field("id", entity)
            w.field("name", "\(type) \(entity.prefix(8))")
            w.endObject()
            w.field("entityType", type)
            w.field("eventDate", ISOTimestamp.string(date))
            w.field("id", id)
            w.field("level", "USER")
            w.key("propertyChanges")
            w.beginArray()
            for (property, old, new) in changes {
                w.beginObject()
                w.field("newValues", new)
                w.field("oldValues", old)
                w.field("property", property)
                w.endObject()
            }
            w.endArray()
            w.field("remoteIp", ["203.0.113.\(rng.next() % 250 + 1)"])
            w.field("serviceName", service)
            w.field("status", status)
            w.key("user")
            w.beginObject()
            w.field("id", actor)
            w.field("name", "Admin \(actor.prefix(8))")
            w.endObject()
            w.endObject()
            payload += w.bytes.count
            byService[service, default: []].append(Item(date: date, visibleAt: date.addingTimeInterval(delay), id: id, bytes: w.bytes))
        }
        for key in byService.keys { byService[key]!.sort { ($0.date, $0.id) < ($1.date, $1.id) } }
        return EventCorpus(byService: byService, start: start, end: start.addingTimeInterval(span + 1), payloadBytes: payload)
    }

    /// A page of results as the realtime query returns them.
    static func page(_ items: ArraySlice<Item>) -> [UInt8] {
        var bytes = Array(#"{"entities":["#.utf8)
        bytes.reserveCapacity(items.reduce(64) { $0 + $1.bytes.count + 1 })
        for (n, item) in items.enumerated() {
            if n > 0 { bytes.append(UInt8(ascii: ",")) }
            bytes += item.bytes
        }
        bytes += Array(#"],"pageSize":500,"pageNumber":1,"total":0,"pageCount":1}"#.utf8)
        return bytes
    }

    /// Every event parsed, page by page.
    func parseAll() throws -> [AuditEvent] {
        var events: [AuditEvent] = []
        for service in services {
            let items = byService[service]!
            var index = 0
            while index < items.count {
                let slice = items[index..<min(items.count, index + 500)]
                events += try AuditQueryPage.parse(Self.page(slice)).events
                index += 500
            }
        }
        return events
    }

    /// Events in the order they become visible.
    func arrivalOrder(_ events: [AuditEvent]) -> [AuditEvent] {
        var visible: [String: Date] = [:]
        for items in byService.values { for item in items { visible[item.id] = item.visibleAt } }
        return events.sorted { (visible[$0.id]!, $0.id) < (visible[$1.id]!, $1.id) }
    }

    /// The reorder buffer fed in arrival order and drained every `every` seconds, 60 s behind.
    func reorder(_ arrival: [AuditEvent], every: Double) -> [AuditEvent] {
        var visible: [String: Date] = [:]
        for items in byService.values { for item in items { visible[item.id] = item.visibleAt } }
        var buffer = ReorderBuffer()
        var out: [AuditEvent] = []
        out.reserveCapacity(arrival.count)
        var index = 0
        var now = start
        while index < arrival.count || buffer.count > 0 {
            now = now.addingTimeInterval(every)
            var batch: [AuditEvent] = []
            while index < arrival.count, visible[arrival[index].id]! <= now {
                batch.append(arrival[index])
                index += 1
            }
            _ = buffer.insert(batch)
            out += buffer.release(before: index < arrival.count ? now.addingTimeInterval(-60) : .distantFuture)
        }
        return out
    }

    struct IngestOutcome {
        var judged: Int
        var findings: Int
        var fetched: Int
        var polls: Int
    }

    /// The real ingestor over this corpus, on a clock the benchmark moves a poll at a time.
    func ingest(
        store: any AuditStore, rules: RuleSet, poll: Double, skipKnown: Bool = true, overlapWrites: Bool = true, reads: Int = IngestionSettings().concurrentReads
    ) async throws -> IngestOutcome {
        let clock = StepClock(start.addingTimeInterval(3600 - poll))
        let source = ReplaySource(corpus: self, clock: clock, skipKnown: skipKnown)
        var settings = IngestionSettings()
        settings.pollInterval = poll
        settings.overlapWrites = overlapWrites
        settings.concurrentReads = reads
        let ingestor = AuditIngestor(source: source, store: store, rules: rules, settings: settings, clock: clock)
        var judged = 0
        var findings = 0
        var fetched = 0
        var polls = 0
        var writing = Duration.zero
        var skipped = 0
        let finish = end.addingTimeInterval(settings.lag + settings.overlap + poll)
        while clock.now() < finish {
            let outcome = await ingestor.poll()
            if let failed = outcome.failed { throw ValidationError("ingestion failed: \(failed)") }
            judged += outcome.judged
            findings += outcome.findings.count
            fetched += outcome.fetched
            writing += outcome.storeWrites.reduce(.zero, +)
            skipped += outcome.skipped
            polls += 1
            clock.advance(poll)
        }
        Bench.log(
            "\(polls) polls fetched \(fetched) events (\(String(format: "%.2f", Double(fetched) / Double(max(judged, 1))))× each, \(skipped) of them left unparsed as known); the store's writes took \(Bench.seconds(writing)) s")
        return IngestOutcome(judged: judged, findings: findings, fetched: fetched, polls: polls)
    }
}

/// Wall-clock time that moves when told.
final class StepClock: WallClock, Sendable {
    private let current: Mutex<Date>
    init(_ start: Date) { current = Mutex(start) }
    func now() -> Date { current.withLock { $0 } }
    func advance(_ seconds: Double) { current.withLock { $0 = $0.addingTimeInterval(seconds) } }
    func sleep(for duration: Duration) async throws {}
}

/// Answers the ingestor's queries from the corpus: the visible events of a service in a window,
/// as one page of API JSON, parsed as `GenesysAuditSource` parses it.
struct ReplaySource: AuditSource {
    let corpus: EventCorpus
    let clock: StepClock
    /// Whether records already held are skipped unparsed (false: every one parsed, as before).
    var skipKnown = true

    func services() async throws -> [String] { corpus.services }

    func fetch(from: Date, to: Date, service: String, entityType: String?, realtime: Bool) async throws -> AuditFetch {
        try await fetch(from: from, to: to, service: service, entityType: entityType, realtime: realtime, known: nil)
    }

    func fetch(from: Date, to: Date, service: String, entityType: String?, realtime: Bool, known: KnownEvents) async throws -> AuditFetch {
        try await fetch(from: from, to: to, service: service, entityType: entityType, realtime: realtime, known: skipKnown ? Optional(known) : nil)
    }

    func fetch(from: Date, to: Date, service: String, entityType: String?, realtime: Bool, known: KnownEvents?) async throws -> AuditFetch {
        guard let items = corpus.byService[service] else { return AuditFetch() }
        let now = clock.now()
        var low = 0, high = items.count
        while low < high {
            let mid = (low + high) / 2
            if items[mid].date < from { low = mid + 1 } else { high = mid }
        }
        var selected: [EventCorpus.Item] = []
        var index = low
        while index < items.count, items[index].date < to {
            if items[index].visibleAt <= now { selected.append(items[index]) }
            index += 1
        }
        var fetched = AuditFetch()
        var start = 0
        while start < selected.count {
            let page = try AuditQueryPage.parse(EventCorpus.page(selected[start..<min(selected.count, start + 500)]), known: known)
            fetched.events += page.events
            fetched.skipped += page.skipped.count
            fetched.records.merge(page.records) { first, _ in first }
            fetched.quarantined += page.unreadable
            start += 500
        }
        return fetched
    }
}
