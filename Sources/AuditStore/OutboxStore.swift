import AuditCore
import Foundation

/// One payload to be queued for one destination.
public struct OutboxItem: Sendable, Equatable {
    public var destination: String
    public var payload: DeliveryPayload
    /// For a finding: the event that fired it. The item is queued only if that event is new to
    /// the store in the same transaction (a refetched event queues nothing again).
    public var trigger: String?
    /// Set when the payload failed its schema: it goes straight to the dead-letter queue with
    /// this reason (a bug to see, never a payload silently dropped).
    public var rejected: String?

    public init(destination: String, payload: DeliveryPayload, trigger: String? = nil, rejected: String? = nil) {
        self.destination = destination
        self.payload = payload
        self.trigger = trigger
        self.rejected = rejected
    }
}

/// A queued, delivered or dead-lettered payload as the store keeps it.
public struct OutboxEntry: Sendable, Equatable, Identifiable {
    public enum State: String, Sendable, Equatable {
        case queued, delivered, dead
    }

    public var id: Int64
    public var destination: String
    public var payload: DeliveryPayload
    public var state: State
    public var enqueuedAt: Date
    public var attempts: Int
    /// The receiver's last answer (or why it is dead).
    public var lastError: String?
    /// When it was delivered or dead-lettered.
    public var settledAt: Date?

    public init(
        id: Int64, destination: String, payload: DeliveryPayload, state: State, enqueuedAt: Date, attempts: Int, lastError: String?, settledAt: Date?
    ) {
        self.id = id
        self.destination = destination
        self.payload = payload
        self.state = state
        self.enqueuedAt = enqueuedAt
        self.attempts = attempts
        self.lastError = lastError
        self.settledAt = settledAt
    }
}

/// One destination's queue and health, for `deliveries status`, the header and `/readyz`.
public struct DestinationStatus: Sendable, Equatable {
    public var destination: String
    public var queued = 0
    public var oldestQueued: Date?
    public var delivered = 0
    public var deadLettered = 0
    public var lastSuccess: Date?
    public var lastError: String?
    /// Why the destination is paused (a configuration failure), when it is.
    public var paused: String?

    public init(destination: String) {
        self.destination = destination
    }
}

/// The delivery outbox: payloads queued per destination in order, marked delivered only after
/// the receiver's success, dead-lettered with the receiver's last answer, replayable with
/// their ids. Findings are queued by `AuditLogStore.recordAudit` and drift items by
/// `ApprovalStore.recordFindings`, in the transaction that records them.
public protocol OutboxStore: Sendable {
    /// Queues items (a rejected one goes to the dead-letter queue); an item already queued for
    /// the destination (same payload id) is not queued again. Returns how many were added.
    @discardableResult
    func enqueue(_ items: [OutboxItem], at: Date) async throws -> Int
    /// The oldest queued entries of a destination, in order, at most `limit`.
    func queuedDeliveries(destination: String, limit: Int) async throws -> [OutboxEntry]
    func markDelivered(_ ids: [Int64], at: Date) async throws
    /// Counts one failed attempt for each entry and keeps the answer; returns the attempts by id.
    @discardableResult
    func recordAttempt(_ ids: [Int64], error: String, at: Date) async throws -> [Int64: Int]
    func deadLetter(_ ids: [Int64], reason: String, at: Date) async throws
    /// Records a destination's health: paused (with why) or not, the last error, the last success.
    func setDestinationHealth(_ destination: String, paused: String?, lastError: String?, lastSuccess: Date?) async throws
    /// Every destination the store has entries or health for, by name.
    func destinationStatuses() async throws -> [DestinationStatus]
    /// Dead-lettered entries, newest first.
    func deadLetters(destination: String?, limit: Int) async throws -> [OutboxEntry]
    func outboxEntry(id: Int64) async throws -> OutboxEntry?
    /// Queues dead-lettered entries again at the end of their queues, attempts reset, ids and
    /// payloads unchanged (nil: all of them). Returns how many.
    @discardableResult
    func replayDeadLetters(ids: [Int64]?, at: Date) async throws -> Int
    /// Deletes one dead-lettered entry; false when there is none with that id.
    @discardableResult
    func purgeDeadLetter(id: Int64) async throws -> Bool
    /// Deletes delivered entries older than `before`; returns how many.
    @discardableResult
    func pruneDelivered(before: Date) async throws -> Int
}
