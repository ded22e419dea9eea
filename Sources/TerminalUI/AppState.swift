import AuditCore
import AuditEngine
import Foundation

public enum Pane: Int, Sendable, CaseIterable {
    case users, roles, inheritance, feed

    public var title: String {
        switch self {
        case .users: "Users"
        case .roles: "Roles"
        case .inheritance: "Inheritance"
        case .feed: "Feed"
        }
    }
}

/// Structured row conditions from `:users risk>=high drift`, `:feed unapproved severity>=high`.
public struct RowQuery: Sendable, Equatable {
    public var minimumRisk: Severity?
    public var state: String?
    public var onlyDrift = false
    public var onlyUnapproved = false
    public var words: [String] = []

    public init() {}

    public var isEmpty: Bool { self == RowQuery() }

    /// Reads `risk>=high`, `risk>high`, `risk=high`, `severity>=…`, `state=inactive`, `drift`,
    /// `unapproved`; anything else must appear in the row. Returns the terms it did not understand.
    public static func parse(_ terms: [String]) -> (RowQuery, [String]) {
        var query = RowQuery()
        var unknown: [String] = []
        for term in terms {
            let lowered = term.lowercased()
            for prefix in ["risk", "severity"] where lowered.hasPrefix(prefix) {
                let rest = String(lowered.dropFirst(prefix.count))
                if rest.hasPrefix(">="), let s = Severity(name: String(rest.dropFirst(2))) {
                    query.minimumRisk = s
                } else if rest.hasPrefix(">"), let s = Severity(name: String(rest.dropFirst(1))) {
                    query.minimumRisk = s.rawValue < Severity.critical.rawValue ? Severity(rawValue: s.rawValue + 1) : .critical
                } else if rest.hasPrefix("="), let s = Severity(name: String(rest.dropFirst(1))) {
                    query.minimumRisk = s
                } else {
                    unknown.append(term)
                }
            }
            if lowered.hasPrefix("risk") || lowered.hasPrefix("severity") { continue }
            if lowered.hasPrefix("state=") {
                query.state = String(lowered.dropFirst(6))
            } else if lowered == "drift" {
                query.onlyDrift = true
            } else if lowered == "unapproved" {
                query.onlyUnapproved = true
            } else {
                query.words.append(lowered)
            }
        }
        return (query, unknown)
    }
}

/// One pane's list: its filter, the rows it shows, and where the cursor is.
public struct PaneView: Sendable, Equatable {
    public var filter = ""
    public var query = RowQuery()
    /// Indices into the pane's rows, in display order.
    public var visible: [Int] = []
    /// Index into `visible`.
    public var selected = 0
    /// First visible row shown.
    public var offset = 0
    /// The id under the cursor, kept across refreshes.
    public var selectedId: String?
}

/// Styled text: spans of one role each.
public struct Span: Sendable, Equatable {
    public var text: String
    public var role: ThemeRole

    public init(_ text: String, _ role: ThemeRole = .text) {
        self.text = text
        self.role = role
    }
}

public typealias Line = [Span]

/// A drill-down page.
public struct DetailView: Sendable, Equatable {
    public enum Subject: Sendable, Equatable {
        case user(String), role(String), group(String), team(String), item(String)
        /// An audit finding, by row id.
        case finding(String)
    }

    public var subject: Subject
    public var title: String
    public var lines: [Line]
    public var offset = 0
}

public struct ApprovalDraft: Sendable, Equatable {
    public var fingerprint: String
    public var summary: String
    public var ticket = ""
    public var note = ""
    public var expires = "72h"
    /// 0 ticket, 1 note, 2 expires.
    public var field = 0
    /// An audit finding's fingerprint rather than a drift item's.
    public var finding = false
    public var error: String?

    public init(fingerprint: String, summary: String, ticket: String = "") {
        self.fingerprint = fingerprint
        self.summary = summary
        self.ticket = ticket
    }
}

public enum Mode: Sendable, Equatable {
    case normal
    case filter(String)
    case command(String)
    case approve(ApprovalDraft)
    case help
}

public struct Message: Sendable, Equatable {
    public var text: String
    public var isError: Bool
    public var until: Date
}

/// The whole UI state: a value, changed only by `reduce`.
public struct AppState: Sendable {
    /// Set through `reduce(_:.data)`, which keeps `searchIndexes` in step.
    public internal(set) var data: DashboardData = .empty
    /// The drift rows of the feed, before the audit feed is merged in.
    var driftFeed: [FeedRow] = []
    /// Per pane, the rows' search texts in one buffer (see `SearchIndex`).
    var searchIndexes: [SearchIndex] = Array(repeating: SearchIndex(), count: Pane.allCases.count)
    public var pane: Pane = .users
    public var views: [PaneView] = Array(repeating: PaneView(), count: Pane.allCases.count)
    public var mode: Mode = .normal
    public var details: [DetailView] = []
    public var theme: Theme
    public var readOnly: Bool
    public var now: Date
    public var message: Message?
    public var width: Int
    public var height: Int
    /// Glyphs for borders and markers (ASCII when the locale cannot show box drawing).
    public var glyphs: Glyphs
    public var quitting = false

    public init(theme: Theme = .standard, readOnly: Bool = false, now: Date = Date(), width: Int = 120, height: Int = 40, glyphs: Glyphs = .unicode) {
        self.theme = theme
        self.readOnly = readOnly
        self.now = now
        self.width = width
        self.height = height
        self.glyphs = glyphs
    }

    public var view: PaneView {
        get { views[pane.rawValue] }
        set { views[pane.rawValue] = newValue }
    }

    func rowCount(_ pane: Pane) -> Int {
        switch pane {
        case .users: data.users.count
        case .roles: data.roles.count
        case .inheritance: data.inheritance.count
        case .feed: data.feed.count
        }
    }

    func rowId(_ pane: Pane, _ index: Int) -> String {
        switch pane {
        case .users: data.users[index].id
        case .roles: data.roles[index].id
        case .inheritance: data.inheritance[index].id
        case .feed: data.feed[index].id
        }
    }

    /// The selected row's index into the pane's rows.
    func selectedRow(_ pane: Pane) -> Int? {
        let view = views[pane.rawValue]
        guard view.visible.indices.contains(view.selected) else { return nil }
        return view.visible[view.selected]
    }
}

/// Where things go on the screen; shared by the reducer (page sizes) and the renderer.
public struct Layout: Sendable, Equatable {
    public var width: Int
    public var height: Int
    /// Row of the list's column header; rows follow it.
    public var listHeader: Int { 2 }
    public var listTop: Int { 3 }
    public var listRows: Int
    /// The latest-drift strip under the list, when there is room and the list is not the feed.
    public var feedStripTop: Int?
    public var feedStripRows: Int
    public var footer: Int { height - 1 }

    public init(width: Int, height: Int, pane: Pane) {
        self.width = width
        self.height = height
        let available = max(0, height - 4)
        if height >= 24 && pane != .feed {
            feedStripRows = max(4, height / 4)
            listRows = max(1, available - feedStripRows - 1)
            feedStripTop = 3 + listRows + 1
        } else {
            feedStripRows = 0
            listRows = available
            feedStripTop = nil
        }
    }

    /// Rows a drill-down page can show.
    public var detailRows: Int { max(1, height - 4) }
}
