import AuditCore
import AuditStore
import Foundation

// The dashboard's rows and feeds: display-ready values the engine builds off the UI loop and
// publishes (`DashboardFeed`); TerminalUI only renders and filters them.

public struct UserRow: Sendable, Equatable, Identifiable {
    public var id: String
    public var name: String
    public var state: String
    public var division: String
    public var permissions: Int
    public var risk: Severity?
    /// Unapproved drift items about this user.
    public var drift: Int
    public var search: String

    /// A user's row: what the snapshot (or its stored preview) says, with risk and drift.
    init(_ user: SnapshotPreview.User, risk: Severity?, drift: Int) {
        self.init(
            id: user.id, name: user.name, state: user.state, division: user.division, permissions: user.permissions, risk: risk, drift: drift,
            search: "\(user.name) \(user.username) \(user.division) \(user.state)".lowercased())
    }

    public init(id: String, name: String, state: String, division: String, permissions: Int, risk: Severity?, drift: Int, search: String) {
        self.id = id
        self.name = name
        self.state = state
        self.division = division
        self.permissions = permissions
        self.risk = risk
        self.drift = drift
        self.search = search
    }
}

public struct RoleRow: Sendable, Equatable, Identifiable {
    public var id: String
    public var name: String
    public var users: Int
    public var groups: Int
    public var clients: Int
    public var permissions: Int
    public var risk: Severity
    /// Other ids of the same role over time (deleted and recreated).
    public var lineage: [String]
    public var builtIn: Bool
    public var drift: Int
    public var search: String
}

public struct InheritanceRow: Sendable, Equatable, Identifiable {
    public enum Kind: String, Sendable { case group, team }
    public var kind: Kind
    public var id: String
    public var name: String
    /// Members, when read: the collector reads the members of groups that pass roles on.
    public var members: Int?
    public var rolesEnabled: Bool
    /// `Role @ Division` for each grant the group holds.
    public var grants: [String]
    public var division: String?
    public var search: String
}

public struct FeedRow: Sendable, Equatable, Identifiable {
    /// The row: the fingerprint for drift, the finding's id (fingerprint and event) for audit
    /// findings — the same change made twice is two rows with one approval.
    public var id: String { rowId ?? fingerprint }
    /// What an approval names.
    public var fingerprint: String
    public var severity: Severity
    public var escalation: Bool
    public var kind: String
    public var summary: String
    public var state: ReviewState
    public var firstSeen: Date
    /// When it appeared while the dashboard was open (highlighted for a few seconds).
    public var appeared: Date?
    /// Not drift: a collection that failed (shown in the feed, never approvable).
    public var failure: Bool = false
    public var search: String
    /// For audit findings: the row id, who acted and the rule that fired.
    public var rowId: String? = nil
    public var actor: String? = nil
    public var rule: String? = nil

    /// An audit finding rather than a drift item.
    public var isFinding: Bool { rule != nil }
}

/// The audit feed as the dashboard shows it: recent findings, the events and rules behind them,
/// and how ingestion is doing.
public struct AuditFeed: Sendable, Equatable {
    public var rows: [FeedRow]
    /// By row id.
    public var details: [String: FindingDetail]
    public var health: IngestionView?
    /// Delivery to SIEMs, when destinations are configured.
    public var delivery: DeliveryView?

    public init(rows: [FeedRow] = [], details: [String: FindingDetail] = [:], health: IngestionView? = nil) {
        self.rows = rows
        self.details = details
        self.health = health
    }

    public static let empty = AuditFeed()

    /// Rows for findings, newest first; `appeared` marks those that arrived while the dashboard was open.
    public static func rows(_ findings: [AuditFinding], appeared: [String: Date] = [:]) -> [FeedRow] {
        findings.map { finding in
            let state: ReviewState = finding.approval.map { .approved($0, inherited: false) } ?? .unapproved
            let target = finding.entityName.isEmpty ? finding.entityId : finding.entityName
            var text = "\(finding.ruleId) \(finding.title): \(finding.action) \(finding.entityType) \(target)"
            if !finding.evidence.isEmpty { text += " (\(finding.evidence.prefix(2).joined(separator: "; "))\(finding.evidence.count > 2 ? "; …" : ""))" }
            return FeedRow(
                fingerprint: finding.fingerprint, severity: finding.severity, escalation: false, kind: "audit:\(finding.ruleId)",
                summary: text, state: state, firstSeen: finding.date, appeared: appeared[finding.id],
                search: "\(text) \(finding.fingerprint.prefix(12)) \(finding.severity.name) \(finding.actor)".lowercased(), rowId: finding.id,
                actor: shortActor(finding.actor), rule: finding.ruleId)
        }
    }
}

/// An actor short enough for a row: an OAuth client's id cut to its first block.
public func shortActor(_ actor: String) -> String {
    guard actor.hasPrefix("client "), actor.count > 16 else { return actor }
    return String(actor.prefix(15)) + "…"
}

/// Behind one finding row: the finding, the raw event that fired it, the rule.
public struct FindingDetail: Sendable, Equatable {
    public var finding: AuditFinding
    public var event: AuditEvent?
    public var rule: AuditRule?

    public init(finding: AuditFinding, event: AuditEvent?, rule: AuditRule?) {
        self.finding = finding
        self.event = event
        self.rule = rule
    }
}

/// Delivery health for the header: every destination's queue and pauses, summed.
public struct DeliveryView: Sendable, Equatable {
    public var destinations: Int
    public var queued: Int
    public var oldestQueued: Date?
    public var deadLettered: Int
    /// `name: why` for each paused destination.
    public var paused: [String]
    /// The last failure of a destination still retrying, if one is.
    public var retrying: String?

    public init(destinations: Int, queued: Int = 0, oldestQueued: Date? = nil, deadLettered: Int = 0, paused: [String] = [], retrying: String? = nil) {
        self.destinations = destinations
        self.queued = queued
        self.oldestQueued = oldestQueued
        self.deadLettered = deadLettered
        self.paused = paused
        self.retrying = retrying
    }

    /// From the store's statuses of the configured destinations.
    public init(_ statuses: [DestinationStatus], destinations: [String]) {
        let mine = statuses.filter { destinations.contains($0.destination) }
        self.init(
            destinations: destinations.count, queued: mine.reduce(0) { $0 + $1.queued }, oldestQueued: mine.compactMap(\.oldestQueued).min(),
            deadLettered: mine.reduce(0) { $0 + $1.deadLettered }, paused: mine.compactMap { status in status.paused.map { "\(status.destination): \($0)" } },
            retrying: mine.first { $0.paused == nil && $0.queued > 0 && $0.lastError != nil }?.lastError)
    }
}

/// Ingestion health for the header.
public struct IngestionView: Sendable, Equatable {
    public enum Mode: String, Sendable, Equatable { case normal, throttled, criticalOnly, failing, starting }
    public var mode: Mode
    /// How far behind now the feed's high-water mark is.
    public var lagSeconds: Double?
    public var lastEvent: Date?
    public var message: String?
    /// Audit push: nil when this process does not push; `live`, or why it polls only.
    public var push: PushView?

    public enum PushView: Sendable, Equatable {
        case live
        /// `socket closed 2m ago`, `the client may not subscribe…`, `starting`.
        case pollingOnly(String)
    }

    public init(mode: Mode, lagSeconds: Double?, lastEvent: Date?, message: String? = nil, push: PushView? = nil) {
        self.mode = mode
        self.lagSeconds = lagSeconds
        self.lastEvent = lastEvent
        self.message = message
        self.push = push
    }
}

/// Everything the dashboard shows, computed off the UI loop from a snapshot and its review, then
/// handed to the reducer whole.
public struct DashboardData: Sendable {
    public var organization: String
    public var collectedAt: Date?
    public var nextRefresh: Date?
    public var status: MonitorUpdate.Status
    public var baselineVersion: Int?
    /// Unapproved drift items by severity.
    public var unapproved: [Severity: Int]
    public var users: [UserRow]
    public var roles: [RoleRow]
    public var inheritance: [InheritanceRow]
    public var feed: [FeedRow]
    public var snapshot: Snapshot?
    public var review: DriftReview?
    public var lineage: RoleLineage
    /// Risk as the engine rolled it up (the dashboard computes none).
    public var risk: RiskRollup
    /// Who made each drift item happen, by fingerprint.
    public var attribution: [String: ItemAttribution] = [:]
    /// The snapshot was read from the store at start (shown with its age until a collection
    /// replaces it).
    public var fromStore = false
    /// Changes full walks found that no audit event explains.
    public var unaudited = 0
    /// How the snapshot was collected: `full walk (scheduled)`, `incremental: 2 users`.
    public var collection: String?
    /// The audit feed merged in (rows also in `feed`), by the reducer.
    public var audit: AuditFeed = .empty
    /// Drawn from the stored snapshot's preview while the snapshot itself is read: the users
    /// pane has its rows, the roles and inheritance panes only how many they will hold.
    public var reading: ReadingCounts?

    public struct ReadingCounts: Sendable, Equatable {
        public var roles: Int
        public var inheritance: Int
    }

    public static let empty = DashboardData(
        organization: "", collectedAt: nil, nextRefresh: nil, status: .starting, baselineVersion: nil, unapproved: [:], users: [],
        roles: [], inheritance: [], feed: [], snapshot: nil, review: nil, lineage: RoleLineage(), risk: RiskRollup())

    /// What the header counts: unapproved drift items and open (unapproved) audit findings, by
    /// severity.
    public var openBySeverity: [Severity: Int] {
        var counts = unapproved
        for row in audit.rows where !row.state.isApproved { counts[row.severity, default: 0] += 1 }
        return counts
    }
}

