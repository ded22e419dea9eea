import AuditCore
import AuditStore
import Foundation

/// How delivery retries, gives up on a payload and pauses: plain values and functions, tested
/// without a network.
public struct DeliverySettings: Sendable {
    /// A rejected payload goes to the dead-letter queue after this many attempts.
    public var maxAttempts = 5
    /// Transient failures back off from `firstBackoff` doubling to `maxBackoff`, with ±20 %
    /// jitter; a `Retry-After` is honoured up to `maxRetryAfter`.
    public var firstBackoff: TimeInterval = 1
    public var maxBackoff: TimeInterval = 300
    public var maxRetryAfter: TimeInterval = 600
    /// A paused destination is probed (its next payload sent) this often at most, doubling.
    public var maxProbe: TimeInterval = 300
    /// How often an empty queue is looked at again.
    public var idle: TimeInterval = 1
    /// HEC acknowledgement: polled this often; a batch not acknowledged within `ackTimeout` is
    /// sent again (same payload ids: receivers dedupe).
    public var ackPoll: TimeInterval = 1
    public var ackTimeout: TimeInterval = 120
    /// Delivered entries are deleted after this long.
    public var retainDelivered: TimeInterval = 7 * 86_400

    public init() {}
}

public enum DeliveryPolicy {
    /// The entries of one request: in queue order, at most `batchSize` of them and `batchBytes`
    /// of payload (at least one, whatever its size).
    public static func batch(_ queued: [OutboxEntry], batchSize: Int, batchBytes: Int) -> [OutboxEntry] {
        var batch: [OutboxEntry] = []
        var bytes = 0
        for entry in queued.prefix(max(1, batchSize)) {
            if !batch.isEmpty, bytes + entry.payload.body.count > batchBytes { break }
            batch.append(entry)
            bytes += entry.payload.body.count
        }
        return batch
    }

    /// The wait before retry `attempt` (1, 2, …) after a transient failure: exponential with
    /// jitter (`jitter` in 0..<1 from the caller's generator), or the receiver's `Retry-After`
    /// when longer, never beyond the ceilings.
    public static func backoff(attempt: Int, retryAfter: Double?, jitter: Double, settings: DeliverySettings) -> TimeInterval {
        let exponent = Double(min(max(attempt, 1) - 1, 30))
        let base = min(settings.maxBackoff, settings.firstBackoff * pow(2, exponent))
        let jittered = base * (0.8 + 0.4 * min(max(jitter, 0), 1))
        let asked = min(retryAfter.map { Bounded.seconds($0, clampedTo: 0...1e9) } ?? 0, settings.maxRetryAfter)
        return max(min(jittered, settings.maxBackoff), asked)
    }

    /// The wait before probe `attempt` of a paused destination.
    public static func probe(attempt: Int, settings: DeliverySettings) -> TimeInterval {
        min(settings.maxProbe, settings.firstBackoff * pow(2, Double(min(max(attempt, 1), 30))))
    }

    /// What to do with a batch the receiver answered.
    public enum Decision: Sendable, Equatable {
        case delivered
        case awaitAck(Int)
        /// Send the same batch again after a wait (nothing counted against the payloads).
        case retry(after: TimeInterval)
        /// The receiver refused a batch of several: send them one by one to find the bad ones.
        case isolate
        /// One payload refused: count the attempt; dead-letter when it reached the limit.
        case attempt(reason: String)
        case pause(reason: String)
    }

    public static func decide(_ result: DeliveryResult, batchCount: Int, transientAttempt: Int, jitter: Double, settings: DeliverySettings) -> Decision {
        switch result {
        case .delivered: .delivered
        case .awaitingAck(let id): .awaitAck(id)
        case .transient(_, let retryAfter):
            .retry(after: backoff(attempt: transientAttempt, retryAfter: retryAfter, jitter: jitter, settings: settings))
        case .rejected(let reason): batchCount > 1 ? .isolate : .attempt(reason: reason)
        case .configuration(let reason): .pause(reason: reason)
        }
    }
}

/// Routes payloads to destinations: each destination that wants a payload gets an outbox item;
/// a payload that fails its schema is a bug, queued straight into the dead-letter queue with
/// the reason.
public struct DeliveryRouter: Sendable {
    public let destinations: [Destination]

    public init(destinations: [Destination]) {
        self.destinations = destinations
    }

    public func items(for payload: DeliveryPayload, trigger: String? = nil) -> [OutboxItem] {
        let wanting = destinations.filter { $0.wants(payload) }
        guard !wanting.isEmpty else { return [] }
        let problems = payload.violations()
        let rejected = problems.isEmpty ? nil : "schema \(payload.kind.schema): " + problems.prefix(5).joined(separator: "; ")
        // OCSF is made from the validated payload, once, for the destinations that take it.
        let ocsf = wanting.contains(where: \.ocsf) && rejected == nil ? OCSFPayload.event(payload) : nil
        return wanting.map { destination in
            guard destination.ocsf, let ocsf else { return OutboxItem(destination: destination.name, payload: payload, trigger: trigger, rejected: rejected) }
            var converted = payload
            converted.body = ocsf
            return OutboxItem(destination: destination.name, payload: converted, trigger: trigger, rejected: rejected)
        }
    }

    /// The outbox items for findings judged from `events` (the finding's trigger event gives
    /// its before/after values).
    public func items(findings: [AuditFinding], events: [AuditEvent], organization: Organization?) -> [OutboxItem] {
        guard !destinations.isEmpty, !findings.isEmpty else { return [] }
        let byId = Dictionary(events.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        return findings.flatMap { finding in
            let trigger = finding.eventIds.last
            return items(for: DeliveryPayload.finding(finding, event: trigger.flatMap { byId[$0] }, organization: organization), trigger: trigger)
        }
    }
}
