import AuditCore
import AuditEngine
import AuditStore
import CursesDriver
import Dispatch
import Foundation
import Synchronization
import TerminalUI

/// Events from every source, drained in batches: the loop reduces all that is pending, then
/// renders once.
final class EventQueue: Sendable {
    private let pending = Mutex<[AppEvent]>([])
    private let signal: AsyncStream<Void>.Continuation
    let wakes: AsyncStream<Void>

    init() {
        (wakes, signal) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    func push(_ event: AppEvent) {
        pending.withLock { $0.append(event) }
        signal.yield()
    }

    func drain() -> [AppEvent] {
        pending.withLock { events in
            defer { events.removeAll(keepingCapacity: true) }
            return events
        }
    }

    func finish() { signal.finish() }
}

/// The dashboard: a terminal, a background monitor, and one loop that merges keys, data and
/// ticks into the reducer and draws the result. The UI never waits on the network or the store.
struct DashboardApp {
    var monitor: DriftMonitor
    var readOnly: Bool
    var themeName: String?
    var approver: String
    var environment: [String: String]
    var policy: RiskPolicy
    /// The audit feed, when the dashboard runs one beside the drift monitor.
    var audit: AuditFeedLoader?

    /// Refuses to start without a terminal.
    static func requireTerminal() throws {
        guard isatty(STDIN_FILENO) == 1, isatty(STDOUT_FILENO) == 1 else {
            throw OperationError("the dashboard needs a terminal (stdin and stdout are not one); use rbacwatch diff for a report")
        }
    }

    func run() async throws {
        try Self.requireTerminal()
        let (theme, themeProblem) = Themes.load(themeName, environment: environment)
        let terminal = try CursesTerminal()
        let capabilities: CursesTerminal.Capabilities
        do {
            capabilities = try terminal.start()
        } catch let error as TerminalError {
            throw OperationError(error.description)
        }
        defer { terminal.stop() }
        let depth = ColorDepth.detect(environment: environment, terminalColors: capabilities.colors)
        let startingTheme = (environment["NO_COLOR"].map { !$0.isEmpty } ?? false) ? Theme.mono : theme
        var state = AppState(
            theme: startingTheme.adapted(to: depth), readOnly: readOnly, now: Date(), width: capabilities.width,
            height: capabilities.height, glyphs: capabilities.utf8 ? .unicode : .ascii)
        if let themeProblem { _ = reduce(&state, .notice("using the default theme: \(themeProblem)", isError: true)) }

        let queue = EventQueue()
        let signals = SignalWatch(queue: queue)
        defer { signals.cancel() }
        let policy = self.policy
        let monitor = self.monitor
        let tasks = [
            Task { await monitor.run() },
            Task {
                for await event in terminal.stream {
                    switch event {
                    case .key(let key): queue.push(.key(key))
                    case .resize(let width, let height): queue.push(.resize(width: width, height: height))
                    }
                }
            },
            Task {
                for await update in monitor.updates {
                    queue.push(.data(Self.dashboard(update, policy: policy)))
                }
            },
            Task {
                while !Task.isCancelled {
                    try? await Task.sleep(for: .seconds(1))
                    queue.push(.tick(Date()))
                }
            },
        ]
        var auditTasks: [Task<Void, Never>] = []
        if let audit, let ingestor = audit.ingestor {
            auditTasks = [
                Task { await ingestor.run() },
                Task {
                    queue.push(.audit(await audit.load(health: nil)))
                    for await update in ingestor.updates {
                        queue.push(.audit(await audit.load(health: update.health)))
                        // New events may explain drift items that were pending.
                        if update.judged > 0 { await monitor.reattribute() }
                    }
                },
            ]
        } else if let audit {
            // Another process follows the feed: show what it records.
            auditTasks = [
                Task {
                    while !Task.isCancelled {
                        queue.push(.audit(await audit.load()))
                        await monitor.reattribute()
                        try? await Task.sleep(for: .seconds(5))
                    }
                }
            ]
        }
        defer { for task in tasks + auditTasks { task.cancel() } }

        terminal.present(render(state), depth: depth)
        loop: for await _ in queue.wakes {
            for event in coalesced(queue.drain()) {
                for effect in reduce(&state, event) {
                    switch effect {
                    case .quit: break loop
                    case .redraw: terminal.redraw()
                    case .refresh: Task { await monitor.refresh() }
                    case .setTheme(let name):
                        let (loaded, problem) = Themes.load(name, environment: environment)
                        if let problem {
                            queue.push(.notice("\(problem); theme unchanged", isError: true))
                        } else {
                            queue.push(.theme(loaded))
                        }
                    case .approve(let fingerprint, let ticket, let note, let lifetime):
                        let approver = self.approver
                        Task {
                            do {
                                let approval = try await monitor.approve(
                                    fingerprint: fingerprint, ticket: ticket, note: note, lifetime: lifetime, approver: approver)
                                if let audit = self.audit { queue.push(.audit(await audit.load())) }
                                queue.push(
                                    .notice(
                                        "approved \(fingerprint.prefix(12))\(ticket.map { " (\($0))" } ?? "") until \(DriftReport.timestamp(approval.expiresAt).prefix(16))",
                                        isError: false))
                            } catch {
                                queue.push(.notice("approval not saved: \(error)", isError: true))
                            }
                        }
                    }
                }
            }
            if state.quitting { break }
            terminal.present(render(state), depth: depth)
        }
    }

    /// Rows for the panes, computed off the UI loop.
    static func dashboard(_ update: MonitorUpdate, policy: RiskPolicy) -> DashboardData {
        let status: MonitorStatus =
            switch update.status {
            case .starting: .starting
            case .collecting: .collecting
            case .ready: .ready
            case .refused(let refusal): .failed(refusal.description)
            case .failed(let message): .failed(message)
            }
        guard let snapshot = update.snapshot else {
            var data = DashboardData.empty
            data.status = status
            data.feed = update.failures.map(DashboardBuilder.failureRow)
                .reversed()
            return data
        }
        return DashboardBuilder.build(
            snapshot: snapshot, review: update.review, baselineVersion: update.baselineVersion, lineage: update.lineage,
            firstSeen: update.firstSeen, appeared: update.appeared,
            failures: update.failures, risk: update.risk ?? RiskRollup(snapshot: snapshot, policy: policy), status: status, collectedAt: update.collectedAt,
            nextRefresh: update.nextRefresh, attribution: update.attribution ?? [:])
    }
}

/// The dashboard's view of the audit feed: the latest findings from the store with today's
/// approvals applied, the events and rules behind them, and ingestion health for the header.
actor AuditFeedLoader {
    /// The dashboard's own ingestor; nil when another process (`keptBy`) follows the feed into
    /// the same state file, whose findings are then read from the store every few seconds.
    let ingestor: AuditIngestor?
    let keptBy: StateLock.Holder?
    let store: any AuditStore
    let rules: [String: AuditRule]
    /// Findings shown at most.
    let limit: Int
    private var health: IngestionHealth?
    private var known: Set<String>?
    private var appeared: [String: Date] = [:]
    private var events: [String: AuditEvent] = [:]

    init(ingestor: AuditIngestor?, keptBy: StateLock.Holder? = nil, store: any AuditStore, rules: RuleSet, limit: Int = 500) {
        self.ingestor = ingestor
        self.keptBy = keptBy
        self.store = store
        self.rules = Dictionary(rules.rules.map { ($0.id, $0) }, uniquingKeysWith: { _, last in last })
        self.limit = limit
    }

    /// The feed now; `health` replaces the last one known (nil: keep it).
    func load(health: IngestionHealth? = nil) async -> AuditFeed {
        if let health { self.health = health }
        let now = Date()
        var findings: [AuditFinding] = []
        var problem: String?
        do {
            findings = RuleEngine.applyApprovals(try await store.auditFindings(FindingQuery(limit: limit)), approvals: try await store.approvals(), now: now)
        } catch {
            problem = "findings could not be read: \(error)"
        }
        // Findings that arrive while the dashboard is open are highlighted.
        let ids = Set(findings.map(\.id))
        if let known {
            for id in ids.subtracting(known) where appeared[id] == nil { appeared[id] = now }
        }
        known = ids
        appeared = appeared.filter { ids.contains($0.key) }
        var details: [String: FindingDetail] = [:]
        for finding in findings {
            let eventId = finding.eventIds.last ?? ""
            if events[eventId] == nil, let event = try? await store.auditEvent(id: eventId) { events[eventId] = event }
            details[finding.id] = FindingDetail(finding: finding, event: events[eventId], rule: rules[finding.ruleId])
        }
        let wanted = Set(findings.compactMap(\.eventIds.last))
        events = events.filter { wanted.contains($0.key) }
        var view = Self.view(health, problem: problem, now: now)
        if ingestor == nil, let keptBy {
            view = await followed(by: keptBy, problem: problem, now: now)
        }
        return AuditFeed(rows: AuditFeed.rows(findings, appeared: appeared), details: details, health: view)
    }

    /// The feed another process keeps: its lag from the store's checkpoint, and who keeps it.
    func followed(by holder: StateLock.Holder, problem: String?, now: Date) async -> IngestionView {
        let kept = "the audit feed is kept by \(holder)"
        guard let checkpoint = try? await store.ingestionCheckpoint() else {
            return IngestionView(mode: .starting, lagSeconds: nil, lastEvent: nil, message: problem ?? kept)
        }
        let stale = now.timeIntervalSince(checkpoint.updatedAt) > 600
        return IngestionView(
            mode: stale ? .failing : .normal, lagSeconds: now.timeIntervalSince(checkpoint.highWater), lastEvent: nil,
            message: problem ?? (stale ? "\(kept), which has recorded nothing for \(Int(now.timeIntervalSince(checkpoint.updatedAt) / 60)) min" : kept))
    }

    static func view(_ health: IngestionHealth?, problem: String?, now: Date) -> IngestionView {
        guard let health, health.lastPoll != nil else { return IngestionView(mode: .starting, lagSeconds: nil, lastEvent: nil, message: problem) }
        let failing = health.lastError != nil && (health.lastSuccess.map { now.timeIntervalSince($0) > 300 } ?? true)
        let mode: IngestionView.Mode =
            health.mode == .criticalOnly ? .criticalOnly : health.throttledSince != nil ? .throttled : failing ? .failing : .normal
        let quarantined =
            health.quarantined > 0
            ? "\(health.quarantined) audit record\(health.quarantined == 1 ? "" : "s") quarantined (rbacwatch findings quarantine)" : nil
        return IngestionView(
            mode: mode, lagSeconds: health.lagSeconds, lastEvent: health.lastEvent, message: problem ?? health.lastError ?? quarantined)
    }
}

/// SIGINT, SIGTERM and SIGHUP, caught rather than fatal: the dashboard ends the way `q` does
/// (so the terminal is restored), `watch` finishes its cycle.
final class SignalWatch {
    private let sources: [any DispatchSourceSignal]

    convenience init(queue: EventQueue) {
        self.init { _ in queue.push(.key(.control("c"))) }
    }

    init(_ handler: @escaping @Sendable (Int32) -> Void) {
        sources = [SIGINT, SIGTERM, SIGHUP].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { handler(number) }
            source.resume()
            return source
        }
    }

    func cancel() {
        for source in sources { source.cancel() }
    }
}

/// Finding themes: the built-in ones by name, or a JSON file (a path, or NAME.json in
/// `$RBACWATCH_THEMES`, `$XDG_CONFIG_HOME/rbacwatch/themes`, `./themes`).
enum Themes {
    static func directories(_ environment: [String: String]) -> [String] {
        var dirs: [String] = []
        if let explicit = environment["RBACWATCH_THEMES"] { dirs.append(explicit) }
        if let xdg = environment["XDG_CONFIG_HOME"] {
            dirs.append(xdg + "/rbacwatch/themes")
        } else if let home = environment["HOME"] {
            dirs.append(home + "/.config/rbacwatch/themes")
        }
        dirs.append(FileManager.default.currentDirectoryPath + "/themes")
        return dirs
    }

    /// The theme, or the default with a one-line reason (no "using the default" in it: at start-up
    /// the default is used, on `:theme` the current theme stays) when it cannot be had.
    static func load(_ name: String?, environment: [String: String]) -> (Theme, String?) {
        guard let name, !name.isEmpty else { return (.standard, nil) }
        let candidates = name.contains("/") || name.hasSuffix(".json") ? [name] : directories(environment).map { "\($0)/\(name).json" }
        for path in candidates {
            guard FileManager.default.fileExists(atPath: path) else { continue }
            let bytes: [UInt8]
            do {
                bytes = try FileBytes.read(path, limit: FileBytes.configurationLimit)
            } catch {
                return (.standard, error.description)
            }
            do {
                return (try Theme(json: bytes), nil)
            } catch {
                return (.standard, "\((path as NSString).lastPathComponent): \(error.description)")
            }
        }
        if let builtIn = Theme.builtIn[name] { return (builtIn, nil) }
        return (.standard, "no theme \(name) (built in: \(Theme.builtIn.keys.sorted().joined(separator: ", ")))")
    }
}

extension DashboardApp {
    /// The dashboard over an engine, as `tui` and `demo` run it.
    init(engine: EngineSetup, options: DashboardOptions, environment: [String: String], policy: RiskPolicy) {
        self.init(
            monitor: engine.monitor, readOnly: options.readOnly, themeName: options.theme,
            approver: Actor.name(options.approver, environment: environment), environment: environment, policy: policy,
            audit: engine.feedLoader)
    }
}
