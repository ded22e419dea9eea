import AuditCore
import AuditStore
import CoreMetrics
import Foundation
import Prometheus
import Synchronization

/// What the engine publishes as metrics: swift-metrics values whose handlers live in a
/// Prometheus registry (registered with their help text, which `promtool check metrics` asks
/// for). Values are read from what the ingestor and the drift monitor already publish — their
/// updates — so the loops themselves know nothing of metrics. Counters only move forward: they
/// add what a poll did.
public final class EngineMetrics: Sendable {
    private let registry: PrometheusCollectorRegistry
    private let factory: PrometheusMetricsFactory
    /// Labels every series carries (`organization` when a worker runs several).
    private let base: [(String, String)]
    // The audit feed.
    private let lag: CoreMetrics.Gauge
    private let fetched: CoreMetrics.Counter
    private let judged: CoreMetrics.Counter
    private let duplicates: CoreMetrics.Counter
    private let rateLimited: CoreMetrics.Counter
    private let circuitOpen: CoreMetrics.Gauge
    private let gaps: CoreMetrics.Counter
    private let backfilled: CoreMetrics.Counter
    private let quarantined: CoreMetrics.Gauge
    private let lastPoll: CoreMetrics.Gauge
    private let storeWrite: CoreMetrics.Timer
    // Audit push.
    private let pushLive: CoreMetrics.Gauge
    private let pushes: CoreMetrics.Counter
    private let pushReconnects: CoreMetrics.Counter
    private let pushSubscriptions: CoreMetrics.Gauge
    // Drift.
    private let collectionDuration: CoreMetrics.Timer
    private let collectionRequests: CoreMetrics.Gauge
    private let collectionFailures: CoreMetrics.Counter
    private let lastCollection: CoreMetrics.Gauge
    private let fullWalks: CoreMetrics.Counter
    private let incrementalChecks: CoreMetrics.Counter
    private let unaudited: CoreMetrics.Gauge
    private let previous = Mutex(Previous())

    private struct Previous {
        var duplicates = 0
        var gaps = 0
        var pushes = 0
        var reconnects = 0
        var drift: [String: CoreMetrics.Gauge] = [:]
        var findings: [String: CoreMetrics.Counter] = [:]
        var delivery: [String: DeliveryHealth] = [:]
        var deliveryMetrics: [String: DeliveryMetrics] = [:]
        /// The last drift check counted (updates republished for it are not counted again).
        var check = -1
    }

    /// One destination's series.
    struct DeliveryMetrics {
        var queued: CoreMetrics.Gauge
        var oldest: CoreMetrics.Gauge
        var paused: CoreMetrics.Gauge
        var sent: CoreMetrics.Counter
        var failed: CoreMetrics.Counter
        var deadLettered: CoreMetrics.Counter
    }

    /// - Parameter labels: carried by every series (a fleet worker labels each organisation's).
    public init(registry: PrometheusCollectorRegistry, labels: [(String, String)] = []) {
        self.registry = registry
        let base = labels
        self.base = labels
        let factory = PrometheusMetricsFactory(registry: registry)
        self.factory = factory
        lag = Self.gauge(registry, factory, "rbacwatch_audit_lag", "seconds", "How far the audit feed's high-water mark is behind now.", labels: base)
        fetched = Self.counter(registry, factory, "rbacwatch_audit_events_fetched", "Audit events read from the audit API (overlaps included).", labels: base)
        judged = Self.counter(registry, factory, "rbacwatch_audit_events_judged", "Audit events judged by the rules and stored.", labels: base)
        duplicates = Self.counter(registry, factory, "rbacwatch_audit_events_duplicate", "Audit events skipped as already seen.", labels: base)
        rateLimited = Self.counter(registry, factory, "rbacwatch_audit_rate_limited", "Polls of the audit API that met a 429.", labels: base)
        circuitOpen = Self.gauge(registry, factory, "rbacwatch_audit_circuit_open", "", "1 while the circuit breaker polls only the critical services.", labels: base)
        gaps = Self.counter(registry, factory, "rbacwatch_audit_gaps", "Gaps in the audit feed found and backfilled.", labels: base)
        backfilled = Self.counter(registry, factory, "rbacwatch_audit_backfilled_seconds", "Seconds of audit feed backfilled after gaps.", labels: base)
        quarantined = Self.gauge(registry, factory, "rbacwatch_audit_quarantined_records", "", "Audit records kept in quarantine.", labels: base)
        lastPoll = Self.gauge(
            registry, factory, "rbacwatch_audit_last_success_timestamp", "seconds", "When the last audit poll succeeded, as a Unix time.", labels: base)
        storeWrite = Self.timer(registry, factory, "rbacwatch_store_write", "How long a state-store transaction of the audit feed took.", labels: base)
        pushLive = Self.gauge(registry, factory, "rbacwatch_audit_push_live", "", "1 while audit events arrive pushed over notification channels.", labels: base)
        pushes = Self.counter(registry, factory, "rbacwatch_audit_pushes", "Audit events pushed over notification channels and judged at once.", labels: base)
        pushReconnects = Self.counter(registry, factory, "rbacwatch_audit_push_reconnects", "Times a notification socket was lost and opened again.", labels: base)
        pushSubscriptions = Self.gauge(registry, factory, "rbacwatch_audit_push_subscriptions", "", "Audit topics the notification channels are subscribed to.", labels: base)
        collectionDuration = Self.timer(registry, factory, "rbacwatch_collection_duration", "How long a collection of the organisation took.", labels: base)
        collectionRequests = Self.gauge(registry, factory, "rbacwatch_collection_requests", "", "Requests the last collection made.", labels: base)
        collectionFailures = Self.counter(registry, factory, "rbacwatch_collection_failures", "Drift checks that failed or were refused.", labels: base)
        lastCollection = Self.gauge(
            registry, factory, "rbacwatch_collection_last_success_timestamp", "seconds", "When the last drift check compared, as a Unix time.", labels: base)
        fullWalks = Self.counter(registry, factory, "rbacwatch_collection_full_walks", "Drift checks that walked the whole organisation.", labels: base)
        incrementalChecks = Self.counter(
            registry, factory, "rbacwatch_collection_incremental", "Drift checks that re-read only what the audit feed named.", labels: base)
        unaudited = Self.gauge(
            registry, factory, "rbacwatch_unaudited_changes", "",
            "Changes full walks found in this run that no audit event explains (the last 100).", labels: base)
        // Every severity from the start, so a dashboard sees zeros rather than nothing.
        for severity in Severity.allCases { _ = driftGauge(severity) }
    }

    static func counter(
        _ registry: PrometheusCollectorRegistry, _ factory: PrometheusMetricsFactory, _ name: String, _ help: String,
        labels: [(String, String)] = []
    ) -> CoreMetrics.Counter {
        let descriptor = MetricNameDescriptor(metricName: name, unitName: "total", helpText: help)
        return CoreMetrics.Counter(label: descriptor.name, dimensions: labels, handler: registry.makeCounter(descriptor: descriptor, labels: labels), factory: factory)
    }

    static func gauge(
        _ registry: PrometheusCollectorRegistry, _ factory: PrometheusMetricsFactory, _ name: String, _ unit: String, _ help: String,
        labels: [(String, String)] = []
    ) -> CoreMetrics.Gauge {
        let descriptor = MetricNameDescriptor(metricName: name, unitName: unit, helpText: help)
        return CoreMetrics.Gauge(
            label: descriptor.name, dimensions: labels, aggregate: false, handler: registry.makeGauge(descriptor: descriptor, labels: labels),
            factory: factory)
    }

    static func timer(
        _ registry: PrometheusCollectorRegistry, _ factory: PrometheusMetricsFactory, _ name: String, _ help: String, labels: [(String, String)] = []
    ) -> CoreMetrics.Timer {
        let descriptor = MetricNameDescriptor(metricName: name, unitName: "seconds", helpText: help)
        let buckets: [Duration] = [.milliseconds(5), .milliseconds(25), .milliseconds(100), .milliseconds(500), .seconds(2), .seconds(10), .seconds(60), .seconds(300)]
        return CoreMetrics.Timer(
            label: descriptor.name, dimensions: labels,
            handler: registry.makeDurationHistogram(name: descriptor.name, labels: labels, buckets: buckets, help: help),
            factory: factory)
    }

    /// After each poll of the audit feed.
    public func observe(_ update: IngestionUpdate) {
        let health = update.health
        let outcome = update.outcome
        lag.record(health.lagSeconds ?? 0)
        fetched.increment(by: Int64(outcome.fetched))
        judged.increment(by: Int64(update.judged))
        if outcome.rateLimited { rateLimited.increment() }
        circuitOpen.record(health.mode == .criticalOnly ? 1 : 0)
        quarantined.record(health.quarantined)
        if let success = health.lastSuccess { lastPoll.record(success.timeIntervalSince1970) }
        for write in outcome.storeWrites { storeWrite.recordNanoseconds(Self.nanoseconds(write)) }
        if let gap = outcome.gap { backfilled.increment(by: Int64(max(0, gap.seconds).rounded())) }
        let counters = previous.withLock { previous -> (duplicates: Int, gaps: Int, findings: [CoreMetrics.Counter]) in
            let delta = (max(0, health.duplicatesSkipped - previous.duplicates), max(0, health.gaps.count - previous.gaps))
            previous.duplicates = health.duplicatesSkipped
            previous.gaps = health.gaps.count
            let findings = update.findings.map { finding in
                let key = finding.ruleId + "\u{1}" + finding.severity.name
                if let counter = previous.findings[key] { return counter }
                let counter = Self.counter(
                    registry, factory, "rbacwatch_audit_findings", "Audit findings raised, by rule and severity.",
                    labels: base + [("rule", finding.ruleId), ("severity", finding.severity.name)])
                previous.findings[key] = counter
                return counter
            }
            return (delta.0, delta.1, findings)
        }
        duplicates.increment(by: Int64(counters.duplicates))
        gaps.increment(by: Int64(counters.gaps))
        for counter in counters.findings { counter.increment() }
    }

    /// After each change of the push feed's health.
    public func observe(_ health: PushHealth) {
        pushLive.record(health.isLive ? 1 : 0)
        pushSubscriptions.record(health.subscriptions)
        let delta = previous.withLock { previous -> (Int, Int) in
            let delta = (max(0, health.pushes - previous.pushes), max(0, health.reconnects - previous.reconnects))
            previous.pushes = health.pushes
            previous.reconnects = health.reconnects
            return delta
        }
        pushes.increment(by: Int64(delta.0))
        pushReconnects.increment(by: Int64(delta.1))
    }

    /// After each collection of the organisation: how long it took and the requests it made.
    public func observeCollection(duration: Duration, requests: Int) {
        collectionDuration.recordNanoseconds(Self.nanoseconds(duration))
        collectionRequests.record(requests)
    }

    /// After each drift check (an update republished for the same check is counted once).
    public func observe(_ update: MonitorUpdate) {
        let counted: Bool
        switch update.status {
        case .ready, .failed, .refused:
            counted = previous.withLock { previous in
                defer { previous.check = update.check }
                return previous.check == update.check
            }
        case .starting, .collecting:
            counted = false
        }
        switch update.status {
        case .ready:
            if let at = update.collectedAt { lastCollection.record(at.timeIntervalSince1970) }
            switch update.collection {
            case .full? where !counted: fullWalks.increment()
            case .incremental? where !counted, .unchanged? where !counted: incrementalChecks.increment()
            default: break
            }
            unaudited.record(update.unaudited.count)
            var open: [Severity: Int] = [:]
            for reviewed in update.review?.items ?? [] where !reviewed.state.isApproved { open[reviewed.item.severity, default: 0] += 1 }
            for severity in Severity.allCases { driftGauge(severity).record(open[severity] ?? 0) }
        case .failed, .refused:
            if !counted { collectionFailures.increment() }
        case .starting, .collecting:
            break
        }
    }

    private func driftGauge(_ severity: Severity) -> CoreMetrics.Gauge {
        previous.withLock { previous in
            if let gauge = previous.drift[severity.name] { return gauge }
            let gauge = Self.gauge(
                registry, factory, "rbacwatch_drift_unapproved_items", "", "Unapproved drift items at the last check, by severity.",
                labels: base + [("severity", severity.name)])
            previous.drift[severity.name] = gauge
            return gauge
        }
    }

    /// A destination's queue as the store has it, and its service's health (counters add what
    /// happened since the last call).
    public func observe(delivery status: DestinationStatus, health: DeliveryHealth?, now: Date) {
        let name = status.destination
        previous.withLock { previous in
            let series =
                previous.deliveryMetrics[name]
                ?? {
                    let labels = [("destination", name)]
                    let made = DeliveryMetrics(
                        queued: Self.gauge(registry, factory, "rbacwatch_delivery_queued", "", "Payloads queued for a destination.", labels: base + labels),
                        oldest: Self.gauge(
                            registry, factory, "rbacwatch_delivery_oldest_queued_age", "seconds", "Age of a destination's oldest queued payload.",
                            labels: base + labels),
                        paused: Self.gauge(registry, factory, "rbacwatch_delivery_paused", "", "1 while a destination is paused (a configuration failure).", labels: base + labels),
                        sent: Self.counter(registry, factory, "rbacwatch_delivery_sent", "Payloads a destination accepted.", labels: base + labels),
                        failed: Self.counter(registry, factory, "rbacwatch_delivery_failed", "Failed delivery attempts to a destination.", labels: base + labels),
                        deadLettered: Self.counter(
                            registry, factory, "rbacwatch_delivery_dead_lettered", "Payloads a destination refused until they went to the dead-letter queue.",
                            labels: base + labels))
                    previous.deliveryMetrics[name] = made
                    return made
                }()
            series.queued.record(status.queued)
            series.oldest.record(status.oldestQueued.map { max(0, now.timeIntervalSince($0)) } ?? 0)
            series.paused.record((health?.paused ?? status.paused) == nil ? 0 : 1)
            if let health {
                let before = previous.delivery[name] ?? DeliveryHealth(destination: name)
                if health.sent > before.sent { series.sent.increment(by: health.sent - before.sent) }
                if health.failed > before.failed { series.failed.increment(by: health.failed - before.failed) }
                if health.deadLettered > before.deadLettered { series.deadLettered.increment(by: health.deadLettered - before.deadLettered) }
                previous.delivery[name] = health
            }
        }
    }

    static func nanoseconds(_ duration: Duration) -> Int64 {
        let (seconds, attoseconds) = duration.components
        return min(seconds, 1 << 32) * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}

/// Whether a running engine is ready (`/readyz`): logged in, the last poll and the last drift
/// check recent enough. A pure function of what the services published.
public struct Readiness: Sendable, Equatable {
    public var ready: Bool
    /// Why not, one reason per line.
    public var reasons: [String]
    /// Whether audit events arrive pushed (`audit push`) or why they are polled only; nil when
    /// push is off. Information, never a reason: polling is the feed's source of truth.
    public var push: String?

    public init(ready: Bool, reasons: [String], push: String? = nil) {
        self.ready = ready
        self.reasons = reasons
        self.push = push
    }

    /// - Parameters:
    ///   - health: the audit feed's, nil when the feed is not followed.
    ///   - drift: the drift monitor's last update, nil when drift is not checked.
    ///   - loggedIn: whether the API accepted our credentials.
    ///   - pollInterval / driftInterval: a poll or a check older than twice its interval (and a
    ///     minute of grace) is late.
    public static func evaluate(
        loggedIn: Bool, health: IngestionHealth?, drift: MonitorUpdate?, pollInterval: TimeInterval, driftInterval: TimeInterval,
        startedAt: Date, now: Date, deliveries: [DeliveryHealth] = [], push: PushHealth? = nil
    ) -> Readiness {
        var reasons: [String] = []
        for delivery in deliveries {
            if let paused = delivery.paused { reasons.append("delivery to \(delivery.destination) is paused: \(paused)") }
        }
        if !loggedIn { reasons.append("not logged in to the Platform API") }
        if let health {
            let allowed = 2 * pollInterval + 60
            if let error = health.lastError {
                // The last poll failed (a success clears the error): the API is unreachable,
                // refusing us or throttling us now.
                reasons.append("the last audit poll failed: \(error)")
            } else if let success = health.lastSuccess {
                if now.timeIntervalSince(success) > allowed {
                    reasons.append("the last successful audit poll was \(Int(now.timeIntervalSince(success))) s ago")
                }
            } else if now.timeIntervalSince(startedAt) > allowed {
                reasons.append("no successful audit poll yet")
            }
        }
        if let drift {
            let allowed = 2 * driftInterval + 60
            if case .failed(let message) = drift.status {
                reasons.append("the last drift check failed: \(message)")
            } else if let at = drift.collectedAt, now.timeIntervalSince(at) > allowed {
                reasons.append("the last collection was \(Int(now.timeIntervalSince(at))) s ago")
            } else if drift.collectedAt == nil, now.timeIntervalSince(startedAt) > allowed {
                reasons.append("no collection yet")
            }
        }
        return Readiness(ready: reasons.isEmpty, reasons: reasons, push: push?.summary(now: now))
    }

    /// The JSON body: `{"ready":false,"reasons":["…"]}` (reasons terminal-safe: they quote the API).
    public var json: [UInt8] {
        var writer = CanonicalJSONWriter(reservingCapacity: 256)
        writer.beginObject()
        if let push { writer.field("push", push) }
        writer.field("ready", ready)
        writer.field("reasons", reasons.map(TerminalSafe.sanitize))
        writer.endObject()
        return writer.bytes
    }
}
