import AuditCore
import AuditStore
import Foundation

/// How one destination is doing, as its delivery service sees it.
public struct DeliveryHealth: Sendable, Equatable {
    public var destination: String
    /// Why it is paused (a configuration failure), when it is.
    public var paused: String?
    public var lastError: String?
    public var lastSuccess: Date?
    /// Payloads delivered, failed attempts, payloads dead-lettered by this process.
    public var sent = 0
    public var failed = 0
    public var deadLettered = 0

    public init(destination: String) {
        self.destination = destination
    }
}

/// Delivers one destination's queue, in order, in batches, marking entries delivered only after
/// the receiver's success (with HEC acknowledgement: after the ack). Transient failures back off
/// and retry without limit; a payload the receiver refuses is tried `maxAttempts` times, then
/// dead-lettered, and the queue goes on; a configuration failure pauses the destination — nothing
/// consumed — and its next payload is sent as a probe, with backoff, until the receiver accepts
/// it (or `deliveries resume` clears the pause in the store). Time comes from an injected clock.
public actor DeliveryService {
    public nonisolated let destination: Destination
    private let sender: any DeliverySender
    private let store: any OutboxStore
    private let clock: any WallClock
    private let settings: DeliverySettings
    private var random: SplitMix64
    public private(set) var health: DeliveryHealth
    /// Sends left one payload at a time, to find the payloads a refused batch held.
    private var isolating = 0
    private var transientAttempt = 0
    private var probeAttempt = 0
    private let continuation: AsyncStream<DeliveryHealth>.Continuation
    public nonisolated let updates: AsyncStream<DeliveryHealth>

    public init(
        destination: Destination, sender: any DeliverySender, store: any OutboxStore, settings: DeliverySettings = DeliverySettings(),
        clock: any WallClock = SystemWallClock(), seed: UInt64 = UInt64.random(in: 0...UInt64.max)
    ) {
        self.destination = destination
        self.sender = sender
        self.store = store
        self.settings = settings
        self.clock = clock
        self.random = SplitMix64(seed: seed)
        self.health = DeliveryHealth(destination: destination.name)
        (updates, continuation) = AsyncStream.makeStream(of: DeliveryHealth.self, bufferingPolicy: .bufferingNewest(4))
    }

    /// Delivers until cancelled.
    public func run() async {
        var lastPrune = Date.distantPast
        while !Task.isCancelled {
            let wait = await step()
            let now = clock.now()
            if now.timeIntervalSince(lastPrune) > 3600 {
                lastPrune = now
                _ = try? await store.pruneDelivered(before: now.addingTimeInterval(-settings.retainDelivered))
            }
            guard let wait, wait > 0 else { continue }
            do {
                try await clock.sleep(for: Bounded.duration(seconds: wait, clampedTo: 0...3600))
            } catch {
                break
            }
        }
        continuation.finish()
        await sender.shutdown()
    }

    /// Ends the sender (`run` does this when it stops; a caller that only steps calls it).
    public func shutdown() async {
        await sender.shutdown()
    }

    /// One send (or probe, or wait for work); returns how long to wait before the next step.
    @discardableResult
    public func step() async -> TimeInterval? {
        do {
            if health.paused != nil {
                // Cleared by `deliveries resume` in the store: probe at once.
                let cleared = try await store.destinationStatuses().first { $0.destination == destination.name }?.paused == nil
                if cleared { probeAttempt = 0 }
            }
            let limit = health.paused != nil || isolating > 0 ? 1 : destination.batchSize
            let queued = try await store.queuedDeliveries(destination: destination.name, limit: limit)
            guard !queued.isEmpty else { return health.paused == nil ? settings.idle : DeliveryPolicy.probe(attempt: probeAttempt, settings: settings) }
            let batch = DeliveryPolicy.batch(queued, batchSize: limit, batchBytes: destination.batchBytes)
            let result = await sender.send(batch.map(\.payload))
            let decision = DeliveryPolicy.decide(
                result, batchCount: batch.count, transientAttempt: transientAttempt + 1, jitter: random.nextDouble(), settings: settings)
            switch decision {
            case .delivered:
                try await delivered(batch)
                return nil
            case .awaitAck(let id):
                return try await awaitAck(id, batch: batch)
            case .retry(let after):
                transientAttempt += 1
                health.failed += 1
                try await note(error: Self.message(result))
                return after
            case .isolate:
                isolating = batch.count
                return nil
            case .attempt(let reason):
                let entry = batch[0]
                let attempts = try await store.recordAttempt([entry.id], error: reason, at: clock.now())[entry.id] ?? settings.maxAttempts
                health.failed += 1
                if attempts >= settings.maxAttempts {
                    try await store.deadLetter([entry.id], reason: "\(reason) (after \(attempts) attempts)", at: clock.now())
                    health.deadLettered += 1
                    isolating = max(0, isolating - 1)
                    try await note(error: reason)
                    return nil
                }
                try await note(error: reason)
                return DeliveryPolicy.backoff(attempt: attempts, retryAfter: nil, jitter: random.nextDouble(), settings: settings)
            case .pause(let reason):
                probeAttempt += 1
                health.paused = reason
                health.lastError = reason
                try await store.setDestinationHealth(destination.name, paused: reason, lastError: reason, lastSuccess: nil)
                publish()
                return DeliveryPolicy.probe(attempt: probeAttempt, settings: settings)
            }
        } catch is CancellationError {
            return nil
        } catch {
            health.lastError = "the outbox could not be read or written: \(error)"
            publish()
            return settings.idle * 5
        }
    }

    private func delivered(_ batch: [OutboxEntry]) async throws {
        let now = clock.now()
        try await store.markDelivered(batch.map(\.id), at: now)
        health.sent += batch.count
        health.lastSuccess = now
        health.lastError = nil
        health.paused = nil
        transientAttempt = 0
        probeAttempt = 0
        isolating = max(0, isolating - batch.count)
        try await store.setDestinationHealth(destination.name, paused: nil, lastError: nil, lastSuccess: now)
        publish()
    }

    /// Polls the acknowledgement of `id` until it comes or the ack deadline passes; an
    /// unacknowledged batch stays queued and is sent again.
    private func awaitAck(_ id: Int, batch: [OutboxEntry]) async throws -> TimeInterval? {
        let started = clock.now()
        var polls = 0
        while clock.now().timeIntervalSince(started) < settings.ackTimeout, polls < 100_000 {
            polls += 1
            try await clock.sleep(for: Bounded.duration(seconds: settings.ackPoll, clampedTo: 0...60))
            switch await sender.acknowledged([id]) {
            case .success(let acks) where acks[id] == true:
                try await delivered(batch)
                return nil
            case .success:
                continue
            case .failure(let failure):
                health.lastError = failure.description
                publish()
            }
        }
        transientAttempt += 1
        health.failed += 1
        try await note(error: "Splunk HEC did not acknowledge ackId \(id) within \(Int(settings.ackTimeout)) s; sending the batch again")
        return nil
    }

    private func note(error: String) async throws {
        health.lastError = error
        try await store.setDestinationHealth(destination.name, paused: health.paused, lastError: error, lastSuccess: nil)
        publish()
    }

    private func publish() {
        continuation.yield(health)
    }

    static func message(_ result: DeliveryResult) -> String {
        switch result {
        case .delivered: "delivered"
        case .awaitingAck(let id): "awaiting ack \(id)"
        case .transient(let message, _), .rejected(let message), .configuration(let message): message
        }
    }
}
