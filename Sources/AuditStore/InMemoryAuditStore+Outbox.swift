import AuditCore
import Foundation

extension InMemoryAuditStore {
    /// Queues items not already queued for their destination; returns how many were added.
    @discardableResult
    func queueItems(_ items: [OutboxItem], at date: Date) -> Int {
        var added = 0
        for item in items {
            let key = item.destination + "\u{1}" + item.payload.id
            guard outboxKeys[key] == nil else { continue }
            outboxCounter += 1
            let entry = OutboxEntry(
                id: outboxCounter, destination: item.destination, payload: item.payload, state: item.rejected == nil ? .queued : .dead,
                enqueuedAt: date.storePrecision, attempts: 0, lastError: item.rejected, settledAt: item.rejected == nil ? nil : date.storePrecision)
            outbox[outboxCounter] = entry
            outboxPosition[outboxCounter] = outboxCounter
            outboxKeys[key] = outboxCounter
            added += 1
        }
        return added
    }

    @discardableResult
    public func enqueue(_ items: [OutboxItem], at date: Date) async throws -> Int { queueItems(items, at: date) }

    public func queuedDeliveries(destination: String, limit: Int) async throws -> [OutboxEntry] {
        outbox.values.filter { $0.destination == destination && $0.state == .queued }
            .sorted { (outboxPosition[$0.id] ?? $0.id) < (outboxPosition[$1.id] ?? $1.id) }
            .prefix(max(0, limit)).map { $0 }
    }

    public func markDelivered(_ ids: [Int64], at date: Date) async throws {
        for id in ids where outbox[id]?.state == .queued {
            outbox[id]?.state = .delivered
            outbox[id]?.settledAt = date.storePrecision 
        }
    }

    @discardableResult
    public func recordAttempt(_ ids: [Int64], error: String, at date: Date) async throws -> [Int64: Int] {
        var attempts: [Int64: Int] = [:]
        for id in ids where outbox[id] != nil {
            outbox[id]?.attempts += 1
            outbox[id]?.lastError = error
            attempts[id] = outbox[id]?.attempts
        }
        return attempts
    }

    public func deadLetter(_ ids: [Int64], reason: String, at date: Date) async throws {
        for id in ids where outbox[id]?.state == .queued {
            outbox[id]?.state = .dead
            outbox[id]?.lastError = reason
            outbox[id]?.settledAt = date.storePrecision
        }
    }

    public func setDestinationHealth(_ destination: String, paused: String?, lastError: String?, lastSuccess: Date?) async throws {
        let previous = destinationHealth[destination]
        destinationHealth[destination] = (paused, lastError, lastSuccess?.storePrecision ?? previous?.lastSuccess)
    }

    public func destinationStatuses() async throws -> [DestinationStatus] {
        var statuses: [String: DestinationStatus] = [:]
        for entry in outbox.values {
            var status = statuses[entry.destination] ?? DestinationStatus(destination: entry.destination)
            switch entry.state {
            case .queued:
                status.queued += 1
                status.oldestQueued = min(status.oldestQueued ?? entry.enqueuedAt, entry.enqueuedAt)
            case .delivered: status.delivered += 1
            case .dead: status.deadLettered += 1
            }
            statuses[entry.destination] = status
        }
        for (destination, health) in destinationHealth {
            var status = statuses[destination] ?? DestinationStatus(destination: destination)
            status.paused = health.paused
            status.lastError = health.lastError
            status.lastSuccess = health.lastSuccess
            statuses[destination] = status
        }
        return statuses.values.sorted { $0.destination < $1.destination }
    }

    public func deadLetters(destination: String?, limit: Int) async throws -> [OutboxEntry] {
        outbox.values.filter { $0.state == .dead && (destination == nil || $0.destination == destination) }
            .sorted { ($0.settledAt ?? .distantPast, $0.id) > ($1.settledAt ?? .distantPast, $1.id) }
            .prefix(max(0, limit)).map { $0 }
    }

    public func outboxEntry(id: Int64) async throws -> OutboxEntry? { outbox[id] }

    @discardableResult
    public func replayDeadLetters(ids: [Int64]?, at date: Date) async throws -> Int {
        let chosen = (ids ?? outbox.keys.sorted()).filter { outbox[$0]?.state == .dead }
        for id in chosen {
            outboxCounter += 1
            outboxPosition[id] = outboxCounter
            outbox[id]?.state = .queued
            outbox[id]?.attempts = 0
            outbox[id]?.settledAt = nil
        }
        return chosen.count
    }

    @discardableResult
    public func purgeDeadLetter(id: Int64) async throws -> Bool {
        guard let entry = outbox[id], entry.state == .dead else { return false }
        outbox[id] = nil
        outboxPosition[id] = nil
        outboxKeys[entry.destination + "\u{1}" + entry.payload.id] = nil
        return true
    }

    @discardableResult
    public func pruneDelivered(before date: Date) async throws -> Int {
        let doomed = outbox.values.filter { $0.state == .delivered && ($0.settledAt ?? .distantPast) < date }
        for entry in doomed {
            outbox[entry.id] = nil
            outboxPosition[entry.id] = nil
            outboxKeys[entry.destination + "\u{1}" + entry.payload.id] = nil
        }
        return doomed.count
    }
}
