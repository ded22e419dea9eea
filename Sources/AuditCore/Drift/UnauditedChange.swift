import Foundation

/// A difference between a full walk and the incremental snapshot it was checked against that no
/// audit event explains: a change the audit log did not show (made behind its back, or missed by
/// the feed). Reported, never silently absorbed into the next snapshot.
public struct UnauditedChange: Sendable, Equatable {
    public var item: DriftItem
    /// When the full walk that found it finished.
    public var walkedAt: Date
    /// When the audit feed had covered the walk and still held no event for it.
    public var confirmedAt: Date

    public init(item: DriftItem, walkedAt: Date, confirmedAt: Date) {
        self.item = item
        self.walkedAt = walkedAt
        self.confirmedAt = confirmedAt
    }

    /// One line for logs and the dashboard.
    public var summary: String {
        TerminalSafe.sanitize("unaudited change: \(item.summary)")
    }
}

/// How a drift check got its snapshot.
public enum CollectionMode: Sendable, Equatable {
    /// The whole organisation walked, and why.
    case full(reason: String)
    /// The last snapshot with what the audit events named read again.
    case incremental(ChangedEntities)
    /// No audit event named anything: the last snapshot still holds (the organisation was read
    /// to confirm the API answers, nothing else).
    case unchanged

    public var summary: String {
        switch self {
        case .full(let reason): "full walk (\(reason))"
        case .incremental(let changes): "incremental: \(changes.summary)"
        case .unchanged: "incremental: nothing changed"
        }
    }

    public var isFull: Bool {
        if case .full = self { return true }
        return false
    }
}
