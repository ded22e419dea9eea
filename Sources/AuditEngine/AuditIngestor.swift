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

    static func duration(_ seconds: Double) -> String {
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
    public var new = 0
    public var judged = 0
    /// Ids of the events judged, in the order the rules saw them.
    public var judgedIds: [String] = []
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

    public init() {}
}

/// Pulls audit events on a sliding window, dedupes them by id against the store, holds them in
/// a reorder buffer for the safety lag, judges them in `eventDate` order, and records events,
/// findings and the high-water mark in one transaction per window — so a crash or a restart
/// loses nothing and duplicates nothing. A long pause is a gap, backfilled window by window
/// (realtime within its reach, async beyond it) and recorded. 429s back off; if they persist,
/// a circuit breaker narrows polling to the critical services until the API is healthy again.
public actor AuditIngestor {
    private let source: any AuditSource
    private let store: any AuditStore
    private let settings: IngestionSettings
    private let clock: any WallClock
    private let logger: Logger
    private var engine: RuleEngine
    /// How far back the rules remember (throttles, correlation windows), and whether the
    /// engine has been brought up to date with what the store already judged.
    private let memory: TimeInterval
    private var warmed = false
    private let ruleServices: [String]
    private var buffer = ReorderBuffer()
    private var services: [String]?
    public private(set) var health = IngestionHealth()
    private var lastRateLimited: Date?
    private var consecutiveLimits = 0
    private let continuation: AsyncStream<IngestionUpdate>.Continuation
    public nonisolated let updates: AsyncStream<IngestionUpdate>

    public init(
        source: any AuditSource, store: any AuditStore, rules: RuleSet, settings: IngestionSettings = IngestionSettings(),
        clock: any WallClock = SystemWallClock(), logger: Logger = Logger(label: "rbacwatch.audit", factory: { _ in SwiftLogNoOpLogHandler() })
    ) {
        self.source = source
        self.store = store
        self.settings = settings
        self.clock = clock
        self.logger = logger
        self.engine = RuleEngine(rules: rules)
        self.memory = min(rules.memorySeconds, 86_400)
        self.ruleServices = rules.services
        (updates, continuation) = AsyncStream.makeStream(of: IngestionUpdate.self, bufferingPolicy: .bufferingNewest(16))
    }

    /// Polls until cancelled.
    public func run() async {
        while !Task.isCancelled {
            let outcome = await poll()
            do {
                try await clock.sleep(for: Bounded.duration(seconds: outcome.nextDelay, clampedTo: 0...settings.maxBackoff))
            } catch {
                break
            }
        }
        continuation.finish()
    }

    /// The services to ask for: those the rules look at that the audit API knows (read from
    /// `servicemapping` once), or the critical ones while narrowed.
    func wantedServices() async throws -> [String] {
        if services == nil {
            let known = try await source.services()
            let wanted = ruleServices == ["*"] ? known : ruleServices.filter { name in known.contains(name) }
            services = wanted.isEmpty ? known : wanted
            health.services = services ?? []
            let unknown = ruleServices.filter { $0 != "*" && !known.contains($0) }
            if !unknown.isEmpty {
                logger.debug("the audit API does not list these services; rules for them will not fire", metadata: ["services": "\(unknown)"])
            }
        }
        let all = services ?? []
        if health.mode == .criticalOnly {
            let critical = all.filter { settings.criticalServices.contains($0) }
            return critical.isEmpty ? Array(all.prefix(1)) : critical
        }
        return all
    }

    /// One cycle: fetch the window (or the gap, in chunks), judge what is due, record it.
    @discardableResult
    public func poll() async -> PollOutcome {
        let now = clock.now()
        health.lastPoll = now
        var outcome = PollOutcome()
        outcome.nextDelay = settings.pollInterval
        do {
            let wanted = try await wantedServices()
            let stored = try await store.ingestionCheckpoint()
            var checkpoint = stored ?? IngestionCheckpoint(highWater: now.addingTimeInterval(-settings.initialLookback), updatedAt: now)
            let narrowed = health.mode == .criticalOnly
            let water = narrowed ? (checkpoint.criticalHighWater ?? checkpoint.highWater) : checkpoint.highWater
            let settled = now.addingTimeInterval(-settings.lag)
            var gap: IngestionGap?
            if stored != nil, now.timeIntervalSince(water) > settings.pollInterval + settings.overlap + settings.lag, water < settled {
                gap = IngestionGap(start: water, end: settled, detectedAt: now)
                logger.debug(
                    "audit gap: backfilling", metadata: ["from": "\(ISOTimestamp.string(water))", "seconds": "\(Int(settled.timeIntervalSince(water)))"])
            }
            if !warmed, stored != nil {
                // A restart: replay what was judged within the rules' memory, findings discarded,
                // so throttles hold and bursts that straddle the restart still count.
                for event in try await store.auditEvents(from: water.addingTimeInterval(-memory), to: water)
                    .sorted(by: { ($0.date, $0.id) < ($1.date, $1.id) })
                {
                    _ = engine.judge(event)
                }
            }
            warmed = true
            let approvals = try await store.approvals()
            var start = water.addingTimeInterval(-settings.overlap)
            // At most 48 windows however long the gap: a week's backfill goes by the half-day.
            let chunk = max(settings.chunk, now.timeIntervalSince(start) / 48)
            var windows = 0
            health.truncated = nil
            while now.timeIntervalSince(start) >= 0.001 {
                windows += 1
                if windows > settings.maxWindowsPerPoll || clock.now().timeIntervalSince(now) > settings.pollBudget {
                    // Progress so far is recorded; the next poll carries on from there — at once
                    // after a long stretch of real work, after the usual interval when windows
                    // kept stopping early (a source that repeats itself is not asked faster).
                    logger.debug("audit poll budget spent; continuing at the next poll", metadata: ["windows": "\(windows - 1)"])
                    if windows <= settings.maxWindowsPerPoll { outcome.nextDelay = 0 }
                    break
                }
                var end = min(now, start.addingTimeInterval(chunk))
                let realtime = start >= now.addingTimeInterval(-settings.realtimeReach)
                var fetched: [AuditEvent] = []
                var quarantined: [QuarantinedRecord] = []
                var stalled = false
                for service in wanted {
                    let read = try await source.fetch(from: start, to: end, service: service, entityType: nil, realtime: realtime)
                    fetched += read.events
                    quarantined += read.quarantined
                    if let truncation = read.truncation {
                        // The window is complete only up to where the source stopped; the next
                        // window starts there. A stop that made no progress at all (every event
                        // read dated at the window's start) moves on a millisecond, so a server
                        // that repeats itself cannot hold the feed in place.
                        stalled = stalled || truncation.before <= start
                        end = min(end, max(truncation.before, start.addingTimeInterval(0.001)))
                        health.truncated = "\(service): \(truncation.reason)"
                        logger.debug("audit query stopped early", metadata: ["service": "\(service)", "reason": "\(truncation.reason)"])
                    }
                }
                outcome.fetched += fetched.count
                let recorded = try await store.recordedAuditEvents(ids: fetched.map(\.id))
                var fresh: [AuditEvent] = []
                var seen = Set<String>()
                for event in fetched {
                    guard seen.insert(event.id).inserted else {
                        health.duplicatesSkipped += 1
                        continue
                    }
                    if let earlier = recorded[event.id] ?? buffer.event(event.id) {
                        health.duplicatesSkipped += 1
                        if !earlier.sameSubstance(as: event) {
                            // The same id with different content: never judged silently as a
                            // duplicate, never dropped — set aside with what changed.
                            quarantined.append(
                                QuarantinedRecord(
                                    kind: .rewritten, eventId: event.id,
                                    reason: "event \(event.id) came back with different content: " + earlier.differences(from: event).joined(separator: ", "),
                                    raw: event.canonicalJSON(), receivedAt: now))
                        }
                        continue
                    }
                    if event.date.timeIntervalSince(now) > settings.maxClockSkew { health.futureDated += 1 }
                    fresh.append(event)
                }
                outcome.new += buffer.insert(fresh, arrivedAt: now)
                let cutoff = min(end, settled)
                let due = buffer.release(before: cutoff, futureHeldSince: now.addingTimeInterval(-settings.lag), skew: settings.maxClockSkew)
                var findings: [AuditFinding] = []
                for event in due {
                    if let last = health.lastEvent, event.date < last { health.lateEvents += 1 }
                    findings += engine.judge(event)
                    // The newest event judged, but never past now: a future-dated one says nothing of lag.
                    health.lastEvent = min(max(health.lastEvent ?? event.date, event.date), now)
                }
                findings = RuleEngine.applyApprovals(findings, approvals: approvals, now: now)
                if narrowed {
                    checkpoint.criticalHighWater = max(checkpoint.criticalHighWater ?? water, cutoff)
                } else {
                    checkpoint.highWater = max(checkpoint.highWater, cutoff)
                    checkpoint.criticalHighWater = nil
                }
                checkpoint.updatedAt = now
                for index in quarantined.indices { quarantined[index].receivedAt = now }
                let writeStarted = ContinuousClock.now
                let recordedCount = try await store.recordAudit(
                    AuditBatch(events: due, findings: findings, checkpoint: checkpoint, gap: gap, quarantined: quarantined))
                outcome.storeWrites.append(ContinuousClock.now - writeStarted)
                if let gapRecorded = gap {
                    health.gaps.append(gapRecorded)
                    outcome.gap = gapRecorded
                    gap = nil
                }
                outcome.judged += due.count
                outcome.judgedIds += due.map(\.id)
                outcome.quarantined += quarantined
                health.eventsJudged += recordedCount
                health.findings += findings.count
                outcome.findings += findings
                if !quarantined.isEmpty {
                    logger.debug(
                        "audit records quarantined", metadata: ["count": "\(quarantined.count)", "first": "\(quarantined[0].reason)"])
                }
                start = end
                // A source that stopped without moving forward is asked again at the next poll,
                // not window after window now.
                if stalled { break }
            }
            health.quarantined = try await store.quarantineCount()
            health.buffered = buffer.count
            health.lastSuccess = now
            health.lastError = nil
            health.retryAfterCapped = nil
            health.lagSeconds = now.timeIntervalSince(narrowed ? (checkpoint.criticalHighWater ?? checkpoint.highWater) : checkpoint.highWater)
            consecutiveLimits = 0
            if narrowed {
                if let last = lastRateLimited, now.timeIntervalSince(last) >= settings.recoverAfter {
                    health.mode = .normal
                    health.throttledSince = nil
                    logger.debug("audit API healthy again: polling every service, backfilling what narrowed polling skipped")
                    outcome.nextDelay = 0
                }
            } else {
                health.throttledSince = nil
            }
        } catch AuditSourceError.rateLimited(let retryAfter) {
            outcome.rateLimited = true
            consecutiveLimits += 1
            lastRateLimited = now
            health.throttledSince = health.throttledSince ?? now
            health.lastError = "rate limited (429)"
            let backoff = min(settings.maxBackoff, settings.pollInterval * pow(2, Double(min(consecutiveLimits, 6))) / 2)
            let asked = retryAfter.map(Bounded.seconds) ?? 0
            health.retryAfterCapped = asked > settings.maxRetryAfter ? asked : nil
            if asked > settings.maxRetryAfter {
                health.lastError =
                    "rate limited (429): the server asked for \(IngestionHealth.duration(asked)), waiting \(IngestionHealth.duration(settings.maxRetryAfter)) (the ceiling)"
            }
            outcome.nextDelay = max(min(asked, settings.maxRetryAfter), backoff)
            if health.mode == .normal, let since = health.throttledSince, now.timeIntervalSince(since) >= settings.circuitAfter {
                health.mode = .criticalOnly
                logger.debug(
                    "audit API throttled for \(Int(now.timeIntervalSince(since))) s: circuit open, polling only the critical services",
                    metadata: ["services": "\(settings.criticalServices)"])
            }
        } catch where error is CancellationError || Task.isCancelled {
            // Stopping (the store or the source may wrap the cancellation in its own error).
            outcome.failed = "cancelled"
        } catch {
            let message = (error as? AuditSourceError)?.description ?? "\(error)"
            health.lastError = message
            outcome.failed = message
            logger.debug("audit poll failed: \(message)")
        }
        health.buffered = buffer.count
        continuation.yield(IngestionUpdate(health: health, findings: outcome.findings, judged: outcome.judged, outcome: outcome))
        return outcome
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
}
