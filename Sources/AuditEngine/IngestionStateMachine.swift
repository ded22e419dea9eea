import AuditCore
import AuditStore
import Foundation

/// The ingestion policy — windows, overlap, the reorder lag, gaps, the poll budget, backoff and
/// the circuit breaker — as a state machine that does no I/O. Each input returns the next
/// action; `AuditIngestor` carries the actions out (the source, the store) and feeds back what
/// came of them, in the manner of postgres-nio's `PoolStateMachine`. Tests drive it with dates
/// and values alone.
///
/// One poll runs: `startPoll` → (`listServices` → `servicesListed`) → `readCheckpoint` →
/// `checkpointRead` → (`replay` → `replayed`) → `readApprovals` → `approvalsRead`, then per
/// window one `fetch` per service → `fetched`, `lookUp` → `lookedUp`, `record` → `recorded` (or
/// `writing` at once and `written` when the write lands, the next window's fetch, look-up and
/// judging in between); after the last window `countQuarantine` → `quarantineCounted` →
/// `finished`. Any failure along
/// the way goes to `failed`, which also ends in `finished`.
public struct IngestionStateMachine: Sendable {
    public enum Action: Sendable {
        /// Ask the source which services it knows (once per process).
        case listServices
        case readCheckpoint
        /// Judge the stored events of this span again, findings discarded (a restart: the rules'
        /// memory is rebuilt so throttles and bursts that straddle it still count).
        case replay(from: Date, to: Date)
        case readApprovals
        /// Read one service's events dated in `[from, to)`.
        case fetch(from: Date, to: Date, service: String, realtime: Bool)
        /// Which of these event ids the store already holds, dated in `[from, to)`.
        case lookUp(ids: [String], from: Date, to: Date)
        /// Write this batch in one transaction.
        case record(AuditBatch)
        case countQuarantine
        /// The poll is over: publish the outcome, then wait `outcome.nextDelay`.
        case finished(PollOutcome)
    }

    /// Why a step could not be carried out.
    public enum Failure: Sendable, Equatable {
        /// 429, with the `Retry-After` in seconds when one came.
        case rateLimited(retryAfter: Double?)
        case cancelled
        case failed(String)
    }

    public let settings: IngestionSettings
    public private(set) var health = IngestionHealth()
    private var engine: RuleEngine
    /// How far back the rules remember (throttles, correlation windows).
    private let memory: TimeInterval
    private let ruleServices: [String]
    private var services: [String]?
    /// Whether the rules have been brought up to date with what the store already judged.
    private var warmed = false
    private var buffer = ReorderBuffer()
    /// Events the store holds that the next windows may fetch again (their dates within the
    /// overlap of the mark), by id: a window's ids are looked up in the store only when neither
    /// this nor the buffer knows them — a steady feed asks the store about new ids alone.
    private var recent: [String: AuditEvent] = [:]
    /// The bytes each event of `recent` and the buffer came as (hashed): a source leaves a
    /// record it sees again unchanged unparsed.
    private var known: [String: KnownEvents.Entry] = [:] {
        didSet { knownList = nil }
    }
    /// `known` by hash, built when first asked for after a change.
    private var knownList: KnownEvents?
    /// Events pushed (Notifications API), judged and recorded ahead of the poll, by id with
    /// their dates: the poll's copy of each, the source of truth, replaces the stored push.
    private var pushed: [String: Date] = [:]
    /// The approvals of the last poll, for findings judged between polls.
    private var approvalsInForce: [Approval] = []
    /// The high-water mark as last read or written: a push dated before its overlap is the
    /// poll's (it has read that span), never judged as a push.
    private var lastMark: Date?
    private var lastRateLimited: Date?
    private var consecutiveLimits = 0
    private var poll: Poll?

    /// One poll in progress.
    struct Poll: Sendable {
        var now: Date
        var outcome = PollOutcome()
        var stored = false
        var checkpoint: IngestionCheckpoint
        var narrowed = false
        var water: Date
        var settled: Date
        var gap: IngestionGap?
        var approvals: [Approval] = []
        var wanted: [String] = []
        var start: Date
        var chunk: TimeInterval = 0
        var windows = 0
        // The window being read.
        var end: Date
        var realtime = true
        var serviceIndex = 0
        var fetched: [AuditEvent] = []
        /// Records the source skipped as known, and the hashes of those it parsed.
        var skipped = 0
        var records: [String: KnownEvents.Entry] = [:]
        var quarantined: [QuarantinedRecord] = []
        var stalled = false
        var pending: (due: [AuditEvent], findings: [AuditFinding], quarantined: [QuarantinedRecord])?
        /// The poll's copies of pushed events this window confirmed, for the store to keep.
        var replacing: [AuditEvent] = []
        /// The batch being written while the next window is read and judged.
        var unsettled: Unsettled?
    }

    /// A batch handed to the store and not yet written (`writing` → `written`).
    struct Unsettled: Sendable {
        var due: [AuditEvent]
        var findings: [AuditFinding]
        var quarantined: [QuarantinedRecord]
        var gap: IngestionGap?
        /// `due` by id: the next window's dedupe finds them here, not in a store that may not
        /// hold them yet.
        var byId: [String: AuditEvent]
    }

    /// Where findings are delivered (nil: nowhere), and the organisation their payloads name.
    private let delivery: DeliveryRouter?
    private let organization: Organization?

    public init(rules: RuleSet, settings: IngestionSettings = IngestionSettings(), delivery: DeliveryRouter? = nil, organization: Organization? = nil) {
        self.settings = settings
        self.delivery = delivery
        self.organization = organization
        self.engine = RuleEngine(rules: rules)
        self.memory = min(rules.memorySeconds, 86_400)
        self.ruleServices = rules.services
    }

    /// What the next fetches may skip unparsed.
    public mutating func knownEvents() -> KnownEvents {
        if let knownList { return knownList }
        let list = KnownEvents(known.values)
        knownList = list
        return list
    }

    /// The services the current window reads after the one it is reading (what may be read
    /// beside it), in the order it will ask for them.
    public var servicesAfterCurrent: ArraySlice<String> {
        guard let p = poll, p.serviceIndex + 1 < p.wanted.count else { return [] }
        return p.wanted[(p.serviceIndex + 1)...]
    }

    /// Events in the reorder buffer.
    public var buffered: Int { buffer.count }

    // MARK: - Inputs

    /// A poll begins at `now`.
    public mutating func startPoll(now: Date) -> Action {
        health.lastPoll = now
        var outcome = PollOutcome()
        outcome.nextDelay = settings.pollInterval
        poll = Poll(
            now: now, outcome: outcome, checkpoint: IngestionCheckpoint(highWater: now, updatedAt: now), water: now,
            settled: now.addingTimeInterval(-settings.lag), start: now, end: now)
        return services == nil ? .listServices : .readCheckpoint
    }

    /// The services the source knows: those the rules look at are asked for (all of them when
    /// the rules name none the source knows). Returns the rules' services the source does not
    /// list (their rules cannot fire) with the next action.
    public mutating func servicesListed(_ known: [String]) -> (unknown: [String], next: Action) {
        let wanted = ruleServices == ["*"] ? known : ruleServices.filter { known.contains($0) }
        services = wanted.isEmpty ? known : wanted
        health.services = services ?? []
        return (ruleServices.filter { $0 != "*" && !known.contains($0) }, .readCheckpoint)
    }

    /// The stored checkpoint (nil: the first poll ever starts `initialLookback` back).
    public mutating func checkpointRead(_ stored: IngestionCheckpoint?) -> Action {
        guard var p = poll else { return .readCheckpoint }
        let now = p.now
        p.stored = stored != nil
        p.checkpoint = stored ?? IngestionCheckpoint(highWater: now.addingTimeInterval(-settings.initialLookback), updatedAt: now)
        p.narrowed = health.mode == .criticalOnly
        p.water = p.narrowed ? (p.checkpoint.criticalHighWater ?? p.checkpoint.highWater) : p.checkpoint.highWater
        lastMark = p.water
        p.wanted = wantedServices()
        if p.stored, now.timeIntervalSince(p.water) > settings.pollInterval + settings.overlap + settings.lag, p.water < p.settled {
            p.gap = IngestionGap(start: p.water, end: p.settled, detectedAt: now)
        }
        poll = p
        if !warmed, p.stored {
            return .replay(from: p.water.addingTimeInterval(-memory), to: p.water)
        }
        warmed = true
        return .readApprovals
    }

    /// The stored events of the replay span (any order).
    public mutating func replayed(_ events: [AuditEvent]) -> Action {
        for event in events.sorted(by: { ($0.date, $0.id) < ($1.date, $1.id) }) {
            _ = engine.judge(event)
        }
        remember(events)
        warmed = true
        return .readApprovals
    }

    /// The approvals in force; `at` is the time now (the poll budget counts from the poll's start).
    public mutating func approvalsRead(_ approvals: [Approval], at time: Date) -> Action {
        guard var p = poll else { return .readCheckpoint }
        p.approvals = approvals
        approvalsInForce = approvals
        p.start = p.water.addingTimeInterval(-settings.overlap)
        // At most 48 windows however long the gap: a week's backfill goes by the half-day.
        p.chunk = max(settings.chunk, p.now.timeIntervalSince(p.start) / 48)
        health.truncated = nil
        poll = p
        return nextWindow(at: time)
    }

    /// What one service's read of the current window returned.
    public mutating func fetched(_ read: AuditFetch) -> Action {
        guard var p = poll, p.serviceIndex < p.wanted.count else { return .countQuarantine }
        let service = p.wanted[p.serviceIndex]
        p.fetched += read.events
        p.skipped += read.skipped
        if !read.records.isEmpty { p.records.merge(read.records) { first, _ in first } }
        p.quarantined += read.quarantined
        if let truncation = read.truncation {
            // The window is complete only up to where the source stopped; the next window
            // starts there. A stop that made no progress at all (every event read dated at the
            // window's start) moves on a millisecond, so a server that repeats itself cannot
            // hold the feed in place.
            p.stalled = p.stalled || truncation.before <= p.start
            p.end = min(p.end, max(truncation.before, p.start.addingTimeInterval(0.001)))
            health.truncated = "\(service): \(truncation.reason)"
        }
        p.serviceIndex += 1
        poll = p
        if p.serviceIndex < p.wanted.count {
            return .fetch(from: p.start, to: p.end, service: p.wanted[p.serviceIndex], realtime: p.realtime)
        }
        return lookUp(unknown(p.fetched))
    }

    /// The ids of `events` neither the buffer nor the recently recorded events know, and the span
    /// of their dates.
    func unknown(_ events: [AuditEvent]) -> (ids: [String], first: Date, last: Date) {
        var ids: [String] = []
        ids.reserveCapacity(events.count)
        var first = Date.distantFuture
        var last = Date.distantPast
        let unsettled = poll?.unsettled?.byId ?? [:]
        for event in events where recent[event.id] == nil && buffer.event(event.id) == nil && unsettled[event.id] == nil {
            ids.append(event.id)
            first = min(first, event.date)
            last = max(last, event.date)
        }
        return (ids, first, last)
    }

    /// The store lookup for these events: an event fetched again keeps its date, and one whose id
    /// comes back dated up to `lookUpReach` away is still found (and set aside as rewritten).
    private func lookUp(_ unknown: (ids: [String], first: Date, last: Date)) -> Action {
        guard !unknown.ids.isEmpty else { return .lookUp(ids: [], from: .distantPast, to: .distantPast) }
        return .lookUp(
            ids: unknown.ids, from: unknown.first.addingTimeInterval(-lookUpReach), to: unknown.last.addingTimeInterval(lookUpReach))
    }

    /// How far from its stored date an event fetched again is looked for: the overlap and a
    /// minute, the same reach `recent` keeps in memory.
    public var lookUpReach: TimeInterval { settings.overlap + 60 }

    /// Most recent events kept to spare store lookups; past it the store answers.
    static let recentLimit = 200_000

    /// Remembers stored events the next windows may fetch again; forgets those before them
    /// (and the hashes of what neither `recent` nor the buffer holds any more).
    private mutating func remember(_ events: [AuditEvent]) {
        let water = poll.map { min($0.checkpoint.highWater, $0.checkpoint.criticalHighWater ?? $0.checkpoint.highWater) }
        // A minute of margin past the overlap: windows start at the mark less the overlap.
        let horizon = water?.addingTimeInterval(-settings.overlap - 60)
        for event in events where recent.count < Self.recentLimit {
            if let horizon, event.date < horizon { continue }
            recent[event.id] = event
        }
        if let horizon {
            recent = recent.filter { $0.value.date >= horizon }
            // A push the poll never confirmed (its service not polled, say) is its own record.
            if !pushed.isEmpty { pushed = pushed.filter { $0.value >= horizon } }
            // Events judged but not yet recorded (the batch being written) keep theirs.
            let pending = Set(poll?.pending?.due.map(\.id) ?? [])
            let unsettled = poll?.unsettled?.byId ?? [:]
            known = known.filter { recent[$0.key] != nil || buffer.event($0.key) != nil || pending.contains($0.key) || unsettled[$0.key] != nil }
        }
    }

    /// The events of the window the store already holds, by id.
    public mutating func lookedUp(_ recorded: [String: AuditEvent]) -> Action {
        guard var p = poll else { return .countQuarantine }
        let now = p.now
        p.outcome.fetched += p.fetched.count + p.skipped
        p.outcome.skipped += p.skipped
        // Skipped records are known events byte for byte: duplicates, nothing to compare.
        health.duplicatesSkipped += p.skipped
        var fresh: [AuditEvent] = []
        var seen = Set<String>()
        var quarantined = p.quarantined
        for event in p.fetched {
            guard seen.insert(event.id).inserted else {
                health.duplicatesSkipped += 1
                continue
            }
            if let earlier = recorded[event.id] ?? recent[event.id] ?? buffer.event(event.id) ?? p.unsettled?.byId[event.id] {
                health.duplicatesSkipped += 1
                if pushed[event.id] != nil, earlier.samePushedSubstance(as: event) {
                    // A pushed event, now polled: already judged; the store keeps the poll's copy.
                    pushed[event.id] = nil
                    health.pushesConfirmed += 1
                    if earlier != event {
                        p.replacing.append(event)
                        recent[event.id] = event
                    }
                    continue
                }
                if !earlier.sameSubstance(as: event) {
                    // The same id with different content: never judged silently as a duplicate,
                    // never dropped — set aside with what changed.
                    quarantined.append(
                        QuarantinedRecord(
                            kind: .rewritten, eventId: event.id,
                            reason: "event \(event.id) came back with different content: " + earlier.differences(from: event).joined(separator: ", "),
                            raw: event.canonicalJSON(), receivedAt: now))
                }
                continue
            }
            if event.date.timeIntervalSince(now) > settings.maxClockSkew { health.futureDated += 1 }
            if let record = p.records[event.id] { known[event.id] = record }
            fresh.append(event)
        }
        p.outcome.new += buffer.insert(fresh, arrivedAt: now)
        let cutoff = min(p.end, p.settled)
        let due = buffer.release(before: cutoff, futureHeldSince: now.addingTimeInterval(-settings.lag), skew: settings.maxClockSkew)
        var findings: [AuditFinding] = []
        for event in due {
            if let last = health.lastEvent, event.date < last { health.lateEvents += 1 }
            findings += engine.judge(event)
            // The newest event judged, but never past now: a future-dated one says nothing of lag.
            health.lastEvent = min(max(health.lastEvent ?? event.date, event.date), now)
        }
        findings = RuleEngine.applyApprovals(findings, approvals: p.approvals, now: now)
        if p.narrowed {
            p.checkpoint.criticalHighWater = max(p.checkpoint.criticalHighWater ?? p.water, cutoff)
        } else {
            p.checkpoint.highWater = max(p.checkpoint.highWater, cutoff)
            p.checkpoint.criticalHighWater = nil
        }
        p.checkpoint.updatedAt = now
        for index in quarantined.indices { quarantined[index].receivedAt = now }
        p.pending = (due, findings, quarantined)
        poll = p
        // What the store already held is remembered now; what is judged once it is written.
        if !recorded.isEmpty {
            for event in recorded.values {
                if let record = p.records[event.id] { known[event.id] = record }
            }
            remember(Array(recorded.values))
        }
        let deliveries = delivery?.items(findings: findings, events: due, organization: organization) ?? []
        let replacing = p.replacing
        poll?.replacing = []
        return .record(
            AuditBatch(
                events: due, findings: findings, checkpoint: p.checkpoint, gap: p.gap, quarantined: quarantined, deliveries: deliveries,
                replacing: replacing))
    }

    /// Events pushed over a notification channel, between polls: each new one is judged at
    /// once (no reorder lag: the push is what makes it early), with the approvals in force, and
    /// handed back as a batch to record — events, findings, deliveries, the checkpoint left
    /// alone. Duplicates (a push repeated, an event the poll already has) and pushes dated
    /// before the last mark's overlap (the poll has read that span) give nil or are left out.
    public mutating func pushedEvents(_ events: [AuditEvent], now: Date) -> AuditBatch? {
        let horizon = lastMark?.addingTimeInterval(-settings.overlap - 60)
        var fresh: [AuditEvent] = []
        var seen = Set<String>()
        for event in events.sorted(by: { ($0.date, $0.id) < ($1.date, $1.id) }) where seen.insert(event.id).inserted {
            if pushed[event.id] != nil || recent[event.id] != nil || buffer.event(event.id) != nil || poll?.unsettled?.byId[event.id] != nil {
                health.pushDuplicates += 1
                continue
            }
            if let horizon, event.date < horizon {
                health.pushDuplicates += 1
                continue
            }
            fresh.append(event)
        }
        guard !fresh.isEmpty, pushed.count < Self.recentLimit else { return nil }
        var findings: [AuditFinding] = []
        for event in fresh {
            findings += engine.judge(event)
            pushed[event.id] = event.date
            recent[event.id] = event
            health.lastEvent = min(max(health.lastEvent ?? event.date, event.date), now)
        }
        findings = RuleEngine.applyApprovals(findings, approvals: approvalsInForce, now: now)
        health.pushesJudged += fresh.count
        health.eventsJudged += fresh.count
        health.findings += findings.count
        let deliveries = delivery?.items(findings: findings, events: fresh, organization: organization) ?? []
        return AuditBatch(
            events: fresh, findings: findings, checkpoint: IngestionCheckpoint(highWater: lastMark ?? now, updatedAt: now), deliveries: deliveries,
            keepsCheckpoint: true)
    }

    /// A pushed batch did not reach the store: its events are forgotten, so the poll reads and
    /// judges them as if never pushed.
    public mutating func pushFailed(_ batch: AuditBatch) {
        for event in batch.events {
            pushed[event.id] = nil
            recent[event.id] = nil
        }
    }

    /// The batch is written: `count` events were new to the store, the write took `took`; `at`
    /// is the time now. (`writing` then `written`, with nothing in between.)
    public mutating func recorded(count: Int, took: Duration, at time: Date) -> Action {
        let next = writing(at: time)
        written(count: count, took: took)
        return next
    }

    /// The batch is being written; the poll moves on to the next window meanwhile (its fetch,
    /// look-up and judging), and `written` or `failed` says how the write ended before the
    /// store is written, read for the checkpoint or counted again. Its events are known from
    /// now on; if the write fails they are forgotten again, so the next poll reads them afresh
    /// from the store's checkpoint, which did not move.
    public mutating func writing(at time: Date) -> Action {
        guard var p = poll, let pending = p.pending else { return .countQuarantine }
        var byId: [String: AuditEvent] = [:]
        byId.reserveCapacity(pending.due.count)
        for event in pending.due { byId[event.id] = event }
        p.unsettled = Unsettled(due: pending.due, findings: pending.findings, quarantined: pending.quarantined, gap: p.gap, byId: byId)
        p.gap = nil
        p.pending = nil
        p.start = p.end
        poll = p
        remember(pending.due)
        // A source that stopped without moving forward is asked again at the next poll, not
        // window after window now.
        if p.stalled { return .countQuarantine }
        return nextWindow(at: time)
    }

    /// The batch handed over by `writing` is in the store: `count` events were new to it.
    public mutating func written(count: Int, took: Duration) {
        guard var p = poll, let batch = p.unsettled else { return }
        p.outcome.storeWrites.append(took)
        if let gap = batch.gap {
            health.gaps.append(gap)
            p.outcome.gap = gap
        }
        p.outcome.judged += batch.due.count
        p.outcome.judgedIds += batch.due.map(\.id)
        p.outcome.creations += batch.due.filter { $0.action == "Create" || ($0.action == "MemberAdd" && $0.entityType == "Role") }
        lastMark = p.narrowed ? (p.checkpoint.criticalHighWater ?? p.checkpoint.highWater) : p.checkpoint.highWater
        p.outcome.quarantined += batch.quarantined
        p.outcome.findings += batch.findings
        health.eventsJudged += count
        health.findings += batch.findings.count
        p.unsettled = nil
        poll = p
    }

    /// The store's quarantine count: the poll succeeded.
    public mutating func quarantineCounted(_ count: Int) -> Action {
        guard var p = poll else { return .finished(PollOutcome()) }
        let now = p.now
        health.quarantined = count
        health.lastSuccess = now
        health.lastError = nil
        health.retryAfterCapped = nil
        health.lagSeconds = now.timeIntervalSince(p.narrowed ? (p.checkpoint.criticalHighWater ?? p.checkpoint.highWater) : p.checkpoint.highWater)
        consecutiveLimits = 0
        if p.narrowed {
            if let last = lastRateLimited, now.timeIntervalSince(last) >= settings.recoverAfter {
                // Healthy again: every service, and at once, to backfill what narrowed polling skipped.
                health.mode = .normal
                health.throttledSince = nil
                p.outcome.nextDelay = 0
            }
        } else {
            health.throttledSince = nil
        }
        return finish(p.outcome)
    }

    /// A step failed: the poll ends, and the failure decides when to try again.
    public mutating func failed(_ failure: Failure) -> Action {
        let now = poll?.now ?? health.lastPoll ?? Date.distantPast
        var outcome = PollOutcome()
        outcome.nextDelay = settings.pollInterval
        switch failure {
        case .rateLimited(let retryAfter):
            outcome.rateLimited = true
            consecutiveLimits += 1
            lastRateLimited = now
            health.throttledSince = health.throttledSince ?? now
            health.lastError = "rate limited (429)"
            let backoff = min(settings.maxBackoff, settings.pollInterval * pow(2, Double(min(consecutiveLimits, 6))) / 2)
            let asked = retryAfter.map { Bounded.seconds($0, clampedTo: 0...1e12) } ?? 0
            health.retryAfterCapped = asked > settings.maxRetryAfter ? asked : nil
            if asked > settings.maxRetryAfter {
                health.lastError =
                    "rate limited (429): the server asked for \(IngestionHealth.duration(asked)), waiting \(IngestionHealth.duration(settings.maxRetryAfter)) (the ceiling)"
            }
            outcome.nextDelay = max(min(asked, settings.maxRetryAfter), backoff)
            if health.mode == .normal, let since = health.throttledSince, now.timeIntervalSince(since) >= settings.circuitAfter {
                // Throttled too long: the circuit opens and only the critical services are polled.
                health.mode = .criticalOnly
            }
        case .cancelled:
            outcome.failed = "cancelled"
        case .failed(let message):
            health.lastError = message
            outcome.failed = message
        }
        // A batch whose write did not land is forgotten: it was not stored, and its events come
        // back with the next poll (the stored checkpoint did not move), to be judged then.
        if let unsettled = poll?.unsettled {
            for event in unsettled.due {
                recent[event.id] = nil
                known[event.id] = nil
            }
            poll?.unsettled = nil
        }
        // What earlier windows of this poll recorded stays recorded (and counted).
        if let p = poll {
            outcome.fetched = p.outcome.fetched
            outcome.new = p.outcome.new
            outcome.judged = p.outcome.judged
            outcome.judgedIds = p.outcome.judgedIds
            outcome.creations = p.outcome.creations
            outcome.findings = p.outcome.findings
            outcome.gap = p.outcome.gap
            outcome.quarantined = p.outcome.quarantined
            outcome.storeWrites = p.outcome.storeWrites
        }
        return finish(outcome)
    }

    // MARK: - Decisions

    /// The services to ask for: all wanted, or the critical ones while narrowed.
    func wantedServices() -> [String] {
        let all = services ?? []
        guard health.mode == .criticalOnly else { return all }
        let critical = all.filter { settings.criticalServices.contains($0) }
        return critical.isEmpty ? Array(all.prefix(1)) : critical
    }

    /// The next window to read, or the end of the poll (caught up, or the budget spent).
    private mutating func nextWindow(at time: Date) -> Action {
        guard var p = poll else { return .countQuarantine }
        guard p.now.timeIntervalSince(p.start) >= 0.001 else { return .countQuarantine }
        p.windows += 1
        if p.windows > settings.maxWindowsPerPoll || time.timeIntervalSince(p.now) > settings.pollBudget {
            // Progress so far is recorded; the next poll carries on from there — at once after a
            // long stretch of real work, after the usual interval when windows kept stopping
            // early (a source that repeats itself is not asked faster).
            if p.windows <= settings.maxWindowsPerPoll { p.outcome.nextDelay = 0 }
            p.outcome.budgetSpent = true
            poll = p
            return .countQuarantine
        }
        p.end = min(p.now, p.start.addingTimeInterval(p.chunk))
        p.realtime = p.start >= p.now.addingTimeInterval(-settings.realtimeReach)
        p.serviceIndex = 0
        p.fetched = []
        p.skipped = 0
        p.records = [:]
        p.quarantined = []
        p.stalled = false
        poll = p
        guard let first = p.wanted.first else { return lookUp(unknown([])) }
        return .fetch(from: p.start, to: p.end, service: first, realtime: p.realtime)
    }

    private mutating func finish(_ outcome: PollOutcome) -> Action {
        health.buffered = buffer.count
        poll = nil
        return .finished(outcome)
    }
}
