import AuditCore
import AuditStore
import Foundation
import Logging

public struct IngestionSettings: Sendable {
    /// Time between polls while healthy.
    public var pollInterval: TimeInterval = 60
    /// Each window starts this long before the high-water mark, to catch late arrivals.
    public var overlap: TimeInterval = 65
    /// Events younger than this wait in the reorder buffer (late ones may still come before them).
    public var lag: TimeInterval = 60
    /// Backfills go in windows of this length, each recorded as it completes.
    public var chunk: TimeInterval = 3600
    /// The realtime query's reach (14 days on the real API), less a margin; older spans use the async query.
    public var realtimeReach: TimeInterval = 14 * 86_400 - 3600
    /// With no checkpoint yet, start this far back.
    public var initialLookback: TimeInterval = 3600
    /// Throttled for this long without a break: narrow to the critical services.
    public var circuitAfter: TimeInterval = 300
    /// Narrowed, and no 429 for this long: widen again (and backfill what was skipped).
    public var recoverAfter: TimeInterval = 300
    /// Longest wait between polls while backing off.
    public var maxBackoff: TimeInterval = 600
    /// What narrowed polling still watches: roles, grants, OAuth clients, authentication.
    public var criticalServices: [String] = ["PeoplePermissions"]
    /// The longest `Retry-After` honoured; a server asking for more is waited on this long,
    /// and the health line says so.
    public var maxRetryAfter: TimeInterval = 300
    /// An event dated this far past its arrival is future-dated: it is judged once it has been
    /// held for the lag (waiting for its date would hold it for as long as the server likes),
    /// and counted in the health.
    public var maxClockSkew: TimeInterval = 300
    /// One poll's budget: a long backfill stops here with its progress recorded, and the next
    /// poll carries on.
    public var pollBudget: TimeInterval = 900
    /// Windows one poll may read (a gap is cut into at most 48; a source that stops early
    /// shortens windows).
    public var maxWindowsPerPoll = 200
    /// A window's batch is written while the next window is fetched, looked up and judged (a
    /// backfill of many windows uses both cores); off, each write is waited for at once.
    public var overlapWrites = true
    /// A window's services read at once, up to this many requests in flight (1: one after
    /// another). Their results are taken in the machine's order, as if read in turn.
    public var concurrentReads = 4

    public init() {}
}

/// What the dashboard header and `watch` logs say about ingestion.
public struct IngestionHealth: Sendable, Equatable {
    public enum Mode: String, Sendable, Equatable {
        case normal
        /// The circuit breaker is open: only the critical services are polled.
        case criticalOnly = "critical-only"
    }

    public var mode: Mode = .normal
    public var lastPoll: Date?
    public var lastSuccess: Date?
    /// Newest `eventDate` judged.
    public var lastEvent: Date?
    /// How far behind now the high-water mark is.
    public var lagSeconds: Double?
    public var throttledSince: Date?
    public var lastError: String?
    public var buffered = 0
    public var eventsJudged = 0
    public var duplicatesSkipped = 0
    /// Events judged after later ones had already been (they arrived late).
    public var lateEvents = 0
    public var findings = 0
    public var gaps: [IngestionGap] = []
    public var services: [String] = []
    /// Records in quarantine (the store's count): unreadable, or an event id back with
    /// different content.
    public var quarantined = 0
    /// Events dated beyond the clock skew past their arrival (judged after the lag anyway).
    public var futureDated = 0
    /// Events pushed over a notification channel and judged at once; pushes that were
    /// duplicates (repeated, or already polled); pushed events the poll has since confirmed.
    public var pushesJudged = 0
    public var pushDuplicates = 0
    public var pushesConfirmed = 0
    /// The last `Retry-After` that was over the ceiling: what the server asked, in seconds.
    public var retryAfterCapped: Double?
    /// Why the last read of a window stopped early, when one did.
    public var truncated: String?

    public init() {}

    /// One line for a header or a log.
    public var summary: String {
        var parts: [String] = []
        if mode == .criticalOnly { parts.append("CRITICAL-ONLY (throttled)") } else if throttledSince != nil { parts.append("throttled") }
        if let lagSeconds { parts.append("lag \(Self.duration(lagSeconds))") }
        if quarantined > 0 { parts.append("\(quarantined) quarantined") }
        if futureDated > 0 { parts.append("\(futureDated) future-dated") }
        if let truncated { parts.append("stopped early: \(truncated)") }
        if let lastError { parts.append("error: \(lastError)") }
        return "audit " + (parts.isEmpty ? "ok" : parts.joined(separator: " · "))
    }

    public static func duration(_ seconds: Double) -> String {
        let s = Bounded.seconds(seconds, clampedTo: -1e12...1e12)
        switch s {
        case ..<120: return "\(Int64(s.rounded()))s"
        case ..<7200: return "\(Int64((s / 60).rounded()))m"
        case ..<(3 * 86_400): return "\(Int64((s / 3600).rounded()))h"
        default: return "\(Int64((s / 86_400).rounded()))d"
        }
    }
}

/// What one poll did.
public struct PollOutcome: Sendable, Equatable {
    public var fetched = 0
    /// Of those, records the source left unparsed: events already held, byte for byte.
    public var skipped = 0
    public var new = 0
    public var judged = 0
    /// Ids of the events judged, in the order the rules saw them.
    public var judgedIds: [String] = []
    /// The judged events that created something (a role, an OAuth client, a grant): what a push
    /// feed subscribes to next.
    public var creations: [AuditEvent] = []
    public var findings: [AuditFinding] = []
    public var gap: IngestionGap?
    public var rateLimited = false
    public var failed: String?
    /// Records quarantined by this poll.
    public var quarantined: [QuarantinedRecord] = []
    /// When to poll next.
    public var nextDelay: TimeInterval = 60
    /// How long each of this poll's store transactions took.
    public var storeWrites: [Duration] = []
    /// The poll stopped at its budget (time or windows) with its progress recorded.
    public var budgetSpent = false

    public init() {}
}

/// Pulls audit events on a sliding window, dedupes them by id against the store, holds them in
/// a reorder buffer for the safety lag, judges them in `eventDate` order, and records events,
/// findings and the high-water mark in one transaction per window — so a crash or a restart
/// loses nothing and duplicates nothing. A long pause is a gap, backfilled window by window
/// (realtime within its reach, async beyond it) and recorded. 429s back off; if they persist,
/// a circuit breaker narrows polling to the critical services until the API is healthy again.
///
/// Every one of those decisions is `IngestionStateMachine`'s; this actor only carries out its
/// actions against the source, the store and the clock, and publishes each poll's outcome.
public actor AuditIngestor {
    private let source: any AuditSource
    private let store: any AuditStore
    private let clock: any WallClock
    private let logger: Logger
    private var machine: IngestionStateMachine
    /// The batch being written, with how many of its events were new and how long it took.
    private var write: Task<(Int, Duration), any Error>?
    /// Reads of the services the current window asks for next, started before it asks.
    private var reads: [Read: Task<AuditFetch, any Error>] = [:]
    private let continuation: AsyncStream<IngestionUpdate>.Continuation
    public nonisolated let updates: AsyncStream<IngestionUpdate>
    /// Told what each poll judged that created something (a push feed subscribes to it).
    private var creationObservers: [@Sendable ([AuditEvent]) async -> Void] = []

    public func observeCreations(_ observer: @escaping @Sendable ([AuditEvent]) async -> Void) {
        creationObservers.append(observer)
    }

    public init(
        source: any AuditSource, store: any AuditStore, rules: RuleSet, settings: IngestionSettings = IngestionSettings(),
        clock: any WallClock = SystemWallClock(), logger: Logger = Logger(label: "rbacwatch.audit", factory: { _ in SwiftLogNoOpLogHandler() }),
        delivery: DeliveryRouter? = nil, organization: Organization? = nil
    ) {
        self.source = source
        self.store = store
        self.clock = clock
        self.logger = logger
        self.machine = IngestionStateMachine(rules: rules, settings: settings, delivery: delivery, organization: organization)
        (updates, continuation) = AsyncStream.makeStream(of: IngestionUpdate.self, bufferingPolicy: .bufferingNewest(16))
    }

    public var health: IngestionHealth { machine.health }

    /// Polls until cancelled.
    public func run() async {
        while !Task.isCancelled {
            let outcome = await poll()
            do {
                try await clock.sleep(for: Bounded.duration(seconds: outcome.nextDelay, clampedTo: 0...machine.settings.maxBackoff))
            } catch {
                break
            }
        }
        continuation.finish()
    }

    /// One cycle: the state machine's actions for one poll, carried out in turn. A window's
    /// batch is written while the next window is fetched, looked up and judged (one write in
    /// flight; the machine knows its events meanwhile): every other step that touches the store,
    /// and the next write, waits for it first.
    @discardableResult
    public func poll() async -> PollOutcome {
        var action = machine.startPoll(now: clock.now())
        // Each window takes a bounded number of steps and the machine bounds the windows; this
        // ceiling only guards against a machine that never finishes.
        for _ in 0..<1_000_000 {
            do {
                switch action {
                case .listServices, .fetch, .lookUp: break
                default: try await settleWrite()
                }
                switch action {
                case .listServices:
                    let (unknown, next) = machine.servicesListed(try await source.services())
                    if !unknown.isEmpty {
                        logger.debug("the audit API does not list these services; rules for them will not fire", metadata: ["services": "\(unknown)"])
                    }
                    action = next
                case .readCheckpoint:
                    action = machine.checkpointRead(try await store.ingestionCheckpoint())
                case .replay(let from, let to):
                    action = machine.replayed(try await store.auditEvents(from: from, to: to))
                case .readApprovals:
                    action = machine.approvalsRead(try await store.approvals(), at: clock.now())
                case .fetch(let from, let to, let service, let realtime):
                    let read = try await fetch(Read(from: from, to: to, service: service, realtime: realtime))
                    if let truncation = read.truncation {
                        logger.debug("audit query stopped early", metadata: ["service": "\(service)", "reason": "\(truncation.reason)"])
                    }
                    action = machine.fetched(read)
                case .lookUp(let ids, let from, let to):
                    action = machine.lookedUp(ids.isEmpty ? [:] : try await store.recordedAuditEvents(ids: ids, datedFrom: from, to: to))
                case .record(let batch):
                    let store = self.store
                    write = Task {
                        let started = ContinuousClock.now
                        let count = try await store.recordAudit(batch)
                        return (count, ContinuousClock.now - started)
                    }
                    action = machine.writing(at: clock.now())
                    if !machine.settings.overlapWrites { try await settleWrite() }
                case .countQuarantine:
                    action = machine.quarantineCounted(try await store.quarantineCount())
                case .finished(let outcome):
                    dropReads()
                    if let failed = outcome.failed { logger.debug("audit poll failed: \(failed)") }
                    if !outcome.creations.isEmpty { for observer in creationObservers { await observer(outcome.creations) } }
                    continuation.yield(IngestionUpdate(health: machine.health, findings: outcome.findings, judged: outcome.judged, outcome: outcome))
                    return outcome
                }
            } catch AuditSourceError.rateLimited(let retryAfter) {
                action = await fail(.rateLimited(retryAfter: retryAfter.map(Bounded.seconds)))
            } catch where error is CancellationError || Task.isCancelled {
                // Stopping (the store or the source may wrap the cancellation in its own error).
                action = await fail(.cancelled)
            } catch {
                action = await fail(.failed((error as? AuditSourceError)?.description ?? "\(error)"))
            }
        }
        action = await fail(.failed("the ingestion state machine did not finish its poll"))
        guard case .finished(let outcome) = action else { return PollOutcome() }
        continuation.yield(IngestionUpdate(health: machine.health, findings: outcome.findings, judged: outcome.judged, outcome: outcome))
        return outcome
    }

    /// Events pushed over a notification channel: judged now through the same dedupe, rules and
    /// approvals as a poll's, recorded (events, findings, deliveries; the checkpoint left to the
    /// polls), and published as an update naming them. The poll goes on as the source of truth:
    /// it finds each pushed event again (a duplicate, whose fuller copy the store then keeps) or,
    /// for a push that never came, judges it then. Returns the findings.
    @discardableResult
    public func ingestPushed(_ events: [AuditEvent]) async -> [AuditFinding] {
        guard let batch = machine.pushedEvents(events, now: clock.now()) else { return [] }
        let started = ContinuousClock.now
        let count: Int
        do {
            count = try await store.recordAudit(batch)
        } catch {
            machine.pushFailed(batch)
            logger.debug("pushed audit events not recorded (the poll will read them): \(error)")
            return []
        }
        var outcome = PollOutcome()
        outcome.new = count
        outcome.judged = batch.events.count
        outcome.judgedIds = batch.events.map(\.id)
        outcome.findings = batch.findings
        outcome.storeWrites = [ContinuousClock.now - started]
        outcome.nextDelay = 0
        continuation.yield(
            IngestionUpdate(health: machine.health, findings: batch.findings, judged: batch.events.count, outcome: outcome, pushed: batch.events))
        return batch.findings
    }

    /// One service's read of one window.
    struct Read: Hashable {
        var from: Date
        var to: Date
        var service: String
        var realtime: Bool
    }

    /// The read the machine asks for: started earlier beside the window's other reads, or now,
    /// with the services it will ask for next started beside it (up to `concurrentReads` in
    /// flight). A read the machine does not ask for (a source stopped early and shortened the
    /// window) is cancelled and its result dropped; the machine only ever sees the reads it
    /// asked for, in its order.
    private func fetch(_ read: Read) async throws -> AuditFetch {
        let ahead = machine.settings.concurrentReads > 1 ? machine.servicesAfterCurrent.prefix(machine.settings.concurrentReads - 1) : []
        let wanted = [read] + ahead.map { Read(from: read.from, to: read.to, service: $0, realtime: read.realtime) }
        for (key, task) in reads where !wanted.contains(key) {
            task.cancel()
            reads[key] = nil
        }
        let known = machine.knownEvents()
        let source = self.source
        for key in wanted where reads[key] == nil {
            reads[key] = Task {
                try await source.fetch(from: key.from, to: key.to, service: key.service, entityType: nil, realtime: key.realtime, known: known)
            }
        }
        let task = reads.removeValue(forKey: read)!
        return try await withTaskCancellationHandler {
            try await task.value
        } onCancel: {
            task.cancel()
        }
    }

    /// Cancels the reads no one will ask for (the poll ended).
    private func dropReads() {
        for task in reads.values { task.cancel() }
        reads = [:]
    }

    /// Waits for the batch in flight; tells the machine it landed, or throws why not.
    private func settleWrite() async throws {
        guard let pending = write else { return }
        write = nil
        let (count, took) = try await pending.value
        machine.written(count: count, took: took)
    }

    /// Ends the poll: the write in flight first, counted if it landed (forgotten if not).
    private func fail(_ failure: IngestionStateMachine.Failure) async -> IngestionStateMachine.Action {
        dropReads()
        do {
            try await settleWrite()
        } catch {
            logger.debug("audit batch write failed: \(error)")
        }
        return machine.failed(failure)
    }
}

/// What ingestion pushes after each poll.
public struct IngestionUpdate: Sendable {
    public var health: IngestionHealth
    /// Findings of this poll.
    public var findings: [AuditFinding]
    /// Events judged (and stored) by this poll.
    public var judged = 0
    /// Everything the poll did (fetched, rate limited, store writes…).
    public var outcome = PollOutcome()
    /// Not a poll: these events were pushed and judged at once.
    public var pushed: [AuditEvent] = []
}
