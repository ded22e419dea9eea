import Foundation

/// Someone's sign-off on one drift item, by fingerprint, for a while.
public struct Approval: Sendable, Hashable {
    public var fingerprint: String
    public var ticket: String?
    public var note: String?
    public var approver: String
    public var createdAt: Date
    public var expiresAt: Date
    public var revokedAt: Date?

    public init(
        fingerprint: String, ticket: String? = nil, note: String? = nil, approver: String, createdAt: Date, expiresAt: Date,
        revokedAt: Date? = nil
    ) {
        self.fingerprint = fingerprint
        self.ticket = ticket
        self.note = note
        self.approver = approver
        self.createdAt = createdAt
        self.expiresAt = expiresAt
        self.revokedAt = revokedAt
    }

    public enum Status: String, Sendable {
        case active, expired, revoked
    }

    public func status(at now: Date) -> Status {
        if revokedAt != nil { return .revoked }
        return now < expiresAt ? .active : .expired
    }

    /// Default lifetime of an approval: 72 hours.
    public static let defaultLifetime: TimeInterval = 72 * 3600

    /// How long an approval may last: a second (tests, demonstrations) to a year and a day.
    public static let lifetimeRange: ClosedRange<TimeInterval> = 1...(366 * 86_400)

    /// Reads `90s`, `45m`, `72h`, `3d`, `2w` (or a bare number of hours) within `lifetimeRange`.
    public static func lifetime(parsing text: String) -> TimeInterval? {
        DurationText.seconds(text, bareUnit: 3600, range: lifetimeRange)
    }
}

/// Whether an item stands approved.
public enum ReviewState: Sendable, Hashable {
    case unapproved
    /// Approved by an approval of its own fingerprint, or (`inherited`) of its cause's.
    case approved(Approval, inherited: Bool)
    /// Its approval has expired: it counts as unapproved again (fail open), and says so.
    case lapsed(Approval)

    public var isApproved: Bool {
        if case .approved = self { return true }
        return false
    }

    public var approval: Approval? {
        switch self {
        case .unapproved: nil
        case .approved(let approval, _), .lapsed(let approval): approval
        }
    }
}

public struct ReviewedItem: Sendable, Hashable {
    public var item: DriftItem
    public var state: ReviewState

    public init(item: DriftItem, state: ReviewState) {
        self.item = item
        self.state = state
    }
}

/// A comparison with its approvals applied: what a report, a gate or the dashboard shows.
public struct DriftReview: Sendable {
    public var result: DriftResult
    public var items: [ReviewedItem]
    /// Expired approvals of items still present: reported every time until re-approved or fixed.
    public var lapsed: [Approval]
    public var reviewedAt: Date

    /// Applies approvals: an item is approved by an active approval of its own fingerprint, or of
    /// the change that caused it (a grant to a group covers each member's gain from that grant).
    /// An approval names exactly one change, so it never covers a different change to the same
    /// entity. Revoked approvals count for nothing; expired ones make the item lapsed.
    public init(result: DriftResult, approvals: [Approval], now: Date) {
        self.result = result
        self.reviewedAt = now
        // The latest unrevoked approval of each fingerprint.
        var latest: [String: Approval] = [:]
        for approval in approvals where approval.revokedAt == nil {
            if let existing = latest[approval.fingerprint], existing.createdAt > approval.createdAt { continue }
            latest[approval.fingerprint] = approval
        }
        var lapsed: [String: Approval] = [:]
        items = result.items.map { item in
            if let own = latest[item.fingerprint] {
                if own.status(at: now) == .active { return ReviewedItem(item: item, state: .approved(own, inherited: false)) }
                lapsed[own.fingerprint] = own
                return ReviewedItem(item: item, state: .lapsed(own))
            }
            if let cause = item.causeFingerprint, let approval = latest[cause] {
                return approval.status(at: now) == .active
                    ? ReviewedItem(item: item, state: .approved(approval, inherited: true))
                    : ReviewedItem(item: item, state: .lapsed(approval))
            }
            return ReviewedItem(item: item, state: .unapproved)
        }
        self.lapsed = lapsed.values.sorted { $0.fingerprint < $1.fingerprint }
    }

    /// Items not approved (lapsed ones included) at or above `threshold`.
    public func unapproved(atLeast threshold: Severity) -> [ReviewedItem] {
        items.filter { !$0.state.isApproved && $0.item.severity >= threshold }
    }

    public var countsBySeverity: [Severity: (total: Int, unapproved: Int)] {
        var counts: [Severity: (Int, Int)] = [:]
        for reviewed in items {
            var entry = counts[reviewed.item.severity] ?? (0, 0)
            entry.0 += 1
            if !reviewed.state.isApproved { entry.1 += 1 }
            counts[reviewed.item.severity] = entry
        }
        return counts
    }
}
