import AuditCore
import AuditEngine
import Foundation

public enum AppEvent: Sendable {
    case key(Key)
    case resize(width: Int, height: Int)
    case data(DashboardData)
    /// The audit feed: recent findings and ingestion health (merged into the Feed pane).
    case audit(AuditFeed)
    case tick(Date)
    /// A message for the footer (an approval written, a theme loaded, an error).
    case notice(String, isError: Bool)
    case theme(Theme)
}

/// What the reducer asks the world to do.
public enum Effect: Sendable, Equatable {
    case approve(fingerprint: String, ticket: String?, note: String?, lifetime: TimeInterval)
    case refresh
    /// A full walk of the organisation, not an incremental check.
    case fullRefresh
    case setTheme(String)
    case redraw
    case quit
}

/// A batch of pending events with every data update but the last dropped (and every audit
/// update but the last): each carries its whole part of the dashboard, so only the newest
/// matters, and a burst of updates cannot delay the keys queued behind it. Keys, resizes and
/// the rest keep their order.
public func coalesced(_ events: [AppEvent]) -> [AppEvent] { coalesced(events) { $0 } }

/// As `coalesced(_:)`, for events wrapped in something else (a timestamp, say).
public func coalesced<Element>(_ items: [Element], event: (Element) -> AppEvent) -> [Element] {
    func isData(_ item: Element) -> Bool { if case .data = event(item) { true } else { false } }
    func isAudit(_ item: Element) -> Bool { if case .audit = event(item) { true } else { false } }
    let lastData = items.lastIndex(where: isData)
    let lastAudit = items.lastIndex(where: isAudit)
    guard lastData != nil || lastAudit != nil else { return items }
    return items.enumerated().compactMap { index, item in
        (isData(item) && index != lastData) || (isAudit(item) && index != lastAudit) ? nil : item
    }
}

/// The drift feed and the audit feed as one list, newest first.
func merged(_ data: DashboardData, driftFeed: [FeedRow], audit: AuditFeed) -> DashboardData {
    var data = data
    data.audit = audit
    data.feed = audit.rows.isEmpty ? driftFeed : (driftFeed + audit.rows).sorted(by: newestFirst)
    return data
}

/// The only place state changes. Pure: same state and event, same result.
public func reduce(_ state: inout AppState, _ event: AppEvent) -> [Effect] {
    switch event {
    case .tick(let now):
        state.now = now
        // Notices go with the clock; errors stay until the next key, so none goes unseen.
        if let message = state.message, !message.isError, message.until <= now { state.message = nil }
        return []
    case .resize(let width, let height):
        state.width = max(1, width)
        state.height = max(1, height)
        for pane in Pane.allCases { scrollIntoView(&state, pane) }
        return []
    case .data(let data):
        state.driftFeed = data.feed
        install(&state, merged(data, driftFeed: data.feed, audit: state.data.audit))
        return []
    case .audit(let audit):
        install(&state, merged(state.data, driftFeed: state.driftFeed, audit: audit))
        return []
    case .notice(let text, let isError):
        state.message = Message(text: text, isError: isError, until: state.now.addingTimeInterval(isError ? 8 : 4))
        return []
    case .theme(let theme):
        state.theme = theme.adapted(to: state.theme.depth)
        state.message = Message(text: "theme \(theme.name)", isError: false, until: state.now.addingTimeInterval(3))
        return []
    case .key(let key):
        return handleKey(&state, key)
    }
}

/// Puts new data in place: panes whose rows changed are indexed and filtered again, open
/// drill-downs are rebuilt.
func install(_ state: inout AppState, _ data: DashboardData) {
    let old = state.data
    state.data = data
    // Only panes whose rows changed are filtered again (arrays that share storage compare
    // equal at once, so an update that only grows the feed leaves 100,000 users alone).
    let changed: [Pane: Bool] = [
        .users: old.users != data.users, .roles: old.roles != data.roles, .inheritance: old.inheritance != data.inheritance,
        .feed: old.feed != data.feed,
    ]
    for pane in Pane.allCases where changed[pane] ?? true {
        state.searchIndexes[pane.rawValue] =
            switch pane {
            case .users: SearchIndex(data.users)
            case .roles: SearchIndex(data.roles)
            case .inheritance: SearchIndex(data.inheritance)
            case .feed: SearchIndex(data.feed)
            }
        refilter(&state, pane)
    }
    // Open drill-downs follow the data (an approval shows at once); a subject that is gone
    // keeps its last page.
    state.details = state.details.map { detail in
        guard var fresh = Details.build(detail.subject, data) else { return detail }
        fresh.offset = min(detail.offset, max(0, fresh.lines.count - 1))
        return fresh
    }
}

// MARK: Keys by mode

func handleKey(_ state: inout AppState, _ key: Key) -> [Effect] {
    if state.message?.isError == true, state.message!.until <= state.now { state.message = nil }
    switch state.mode {
    case .help:
        state.mode = .normal
        return key == .control("c") ? quit(&state) : []
    case .filter(let text):
        return editFilter(&state, text, key)
    case .command(let text):
        return editCommand(&state, text, key)
    case .approve(let draft):
        return editApproval(&state, draft, key)
    case .normal:
        guard let action = KeyMap.action(for: key) else { return [] }
        return state.details.isEmpty ? perform(&state, action) : performInDetail(&state, action)
    }
}

func perform(_ state: inout AppState, _ action: Action) -> [Effect] {
    let page = Layout(width: state.width, height: state.height, pane: state.pane).listRows
    switch action {
    case .down: move(&state, by: 1)
    case .up: move(&state, by: -1)
    case .pageDown: move(&state, by: page)
    case .pageUp: move(&state, by: -page)
    case .top: move(&state, by: -Int.max / 2)
    case .bottom: move(&state, by: Int.max / 2)
    case .nextPane: state.pane = Pane(rawValue: (state.pane.rawValue + 1) % Pane.allCases.count)!
    case .previousPane: state.pane = Pane(rawValue: (state.pane.rawValue + Pane.allCases.count - 1) % Pane.allCases.count)!
    case .usersPane: state.pane = .users
    case .rolesPane: state.pane = .roles
    case .inheritancePane: state.pane = .inheritance
    case .feedPane: state.pane = .feed
    case .open: open(&state)
    case .back:
        if !state.view.filter.isEmpty || !state.view.query.isEmpty {
            state.view.filter = ""
            state.view.query = RowQuery()
            refilter(&state, state.pane)
        }
    case .filter: state.mode = .filter(state.view.filter)
    case .nextMatch: move(&state, by: 1, wrap: true)
    case .previousMatch: move(&state, by: -1, wrap: true)
    case .command: state.mode = .command("")
    case .approve: startApproval(&state)
    case .refresh:
        notice(&state, "collecting…")
        return [.refresh]
    case .fullRefresh:
        notice(&state, "walking the whole organisation…")
        return [.fullRefresh]
    case .help: state.mode = .help
    case .redraw: return [.redraw]
    case .quit: return quit(&state)
    }
    return []
}

func performInDetail(_ state: inout AppState, _ action: Action) -> [Effect] {
    let page = Layout(width: state.width, height: state.height, pane: state.pane).detailRows
    var detail = state.details.removeLast()
    let maxOffset = max(0, detail.lines.count - page)
    switch action {
    case .down, .nextMatch: detail.offset = min(maxOffset, detail.offset + 1)
    case .up, .previousMatch: detail.offset = max(0, detail.offset - 1)
    case .pageDown: detail.offset = min(maxOffset, detail.offset + page)
    case .pageUp: detail.offset = max(0, detail.offset - page)
    case .top: detail.offset = 0
    case .bottom: detail.offset = maxOffset
    case .back:
        return []  // popped
    case .approve:
        state.details.append(detail)
        switch detail.subject {
        case .item(let fingerprint): startApproval(&state, fingerprint: fingerprint)
        case .finding(let id): startApproval(&state, fingerprint: state.data.audit.details[id]?.finding.fingerprint)
        default: startApproval(&state)
        }
        return []
    case .refresh, .fullRefresh:
        state.details.append(detail)
        notice(&state, action == .fullRefresh ? "walking the whole organisation…" : "collecting…")
        return [action == .fullRefresh ? .fullRefresh : .refresh]
    case .help:
        state.details.append(detail)
        state.mode = .help
        return []
    case .redraw:
        state.details.append(detail)
        return [.redraw]
    case .quit:
        state.details.append(detail)
        return quit(&state)
    case .command:
        state.details.append(detail)
        state.mode = .command("")
        return []
    case .nextPane, .previousPane, .usersPane, .rolesPane, .inheritancePane, .feedPane, .open, .filter:
        break
    }
    state.details.append(detail)
    return []
}

func quit(_ state: inout AppState) -> [Effect] {
    state.quitting = true
    return [.quit]
}

func notice(_ state: inout AppState, _ text: String, error: Bool = false) {
    state.message = Message(text: text, isError: error, until: state.now.addingTimeInterval(error ? 8 : 4))
}

// MARK: Moving

func move(_ state: inout AppState, by delta: Int, wrap: Bool = false) {
    var view = state.view
    let count = view.visible.count
    guard count > 0 else { return }
    if wrap {
        view.selected = ((view.selected + delta) % count + count) % count
    } else {
        view.selected = max(0, min(count - 1, view.selected.addingReportingOverflow(delta).partialValue))
    }
    view.selectedId = state.rowId(state.pane, view.visible[view.selected])
    state.view = view
    scrollIntoView(&state, state.pane)
}

func scrollIntoView(_ state: inout AppState, _ pane: Pane) {
    let rows = Layout(width: state.width, height: state.height, pane: pane).listRows
    var view = state.views[pane.rawValue]
    if view.selected < view.offset { view.offset = view.selected }
    if view.selected >= view.offset + rows { view.offset = view.selected - rows + 1 }
    view.offset = max(0, min(view.offset, max(0, view.visible.count - rows)))
    state.views[pane.rawValue] = view
}

/// Recomputes a pane's visible rows from its filter and query, keeping the cursor on the same row.
/// `within`: only these rows can match (a narrowing filter), else all.
func refilter(_ state: inout AppState, _ pane: Pane, within candidates: [Int]? = nil) {
    var view = state.views[pane.rawValue]
    // The feed follows its newest item while the cursor is on the first row (like tail -f);
    // anywhere else the cursor stays on its item as new ones arrive above it.
    let following = pane == .feed && view.selected == 0
    let needle = view.filter.lowercased()
    let query = view.query
    let data = state.data
    // Plain loops over the rows' fields, specialised per row type: this runs on every keystroke
    // of a filter over 100,000 users, so no closures and no copies of whole rows.
    func keep<Row: FilterableRow>(_ rows: [Row]) -> (visible: [Int], position: Int?) {
        var visible: [Int] = []
        visible.reserveCapacity(candidates?.count ?? rows.count)
        let terms = ([needle] + query.words).filter { !$0.isEmpty }.map { Array($0.utf8) }
        let index = state.searchIndexes[pane.rawValue]
        let indexed = index.count == rows.count
        func test(_ i: Int) -> Bool {
            for term in terms {
                let found = indexed ? index.row(i, contains: term) : fastContains(rows[i].search, String(decoding: term, as: UTF8.self))
                if !found { return false }
            }
            if let minimum = query.minimumRisk {
                guard let risk = rows[i].filterRisk, risk >= minimum else { return false }
            }
            if let wanted = query.state, rows[i].filterState != wanted { return false }
            if query.onlyDrift && !rows[i].hasDrift { return false }
            if query.onlyUnapproved && !rows[i].hasUnapproved { return false }
            return true
        }
        if let candidates {
            for i in candidates where test(i) { visible.append(i) }
        } else {
            for i in rows.indices where test(i) { visible.append(i) }
        }
        var position: Int?
        if let selected = view.selectedId {
            for (at, i) in visible.enumerated() where rows[i].id == selected {
                position = at
                break
            }
        }
        return (visible, position)
    }
    let (visible, position) =
        switch pane {
        case .users: keep(data.users)
        case .roles: keep(data.roles)
        case .inheritance: keep(data.inheritance)
        case .feed: keep(data.feed)
        }
    view.visible = visible
    if following {
        view.selected = 0
        view.selectedId = view.visible.first.map { state.rowId(pane, $0) }
    } else if let position {
        view.selected = position
    } else {
        view.selected = min(view.selected, max(0, view.visible.count - 1))
        view.selectedId = view.visible.indices.contains(view.selected) ? state.rowId(pane, view.visible[view.selected]) : nil
    }
    state.views[pane.rawValue] = view
    scrollIntoView(&state, pane)
}

// MARK: Text input

/// Applies an editing key to a line of text; nil when the key is not an edit.
func edited(_ text: String, _ key: Key) -> String? {
    switch key {
    case .character(let c): return text + String(c)
    case .backspace, .delete: return String(text.dropLast())
    case .control("u"): return ""
    default: return nil
    }
}

func editFilter(_ state: inout AppState, _ text: String, _ key: Key) -> [Effect] {
    switch key {
    case .enter:
        state.mode = .normal
    case .escape:
        state.mode = .normal
        state.view.filter = ""
        refilter(&state, state.pane)
    case .control("c"):
        return quit(&state)
    default:
        guard let next = edited(text, key) else { return [] }
        // A longer filter that contains the old one can only narrow the matches: search those.
        let previous = state.view.filter.lowercased()
        let narrowing = !previous.isEmpty && fastContains(next.lowercased(), previous)
        state.mode = .filter(next)
        state.view.filter = next
        refilter(&state, state.pane, within: narrowing ? state.view.visible : nil)
    }
    return []
}

func editCommand(_ state: inout AppState, _ text: String, _ key: Key) -> [Effect] {
    switch key {
    case .enter:
        state.mode = .normal
        return runCommand(&state, text)
    case .escape:
        state.mode = .normal
    case .control("c"):
        return quit(&state)
    default:
        if let next = edited(text, key) { state.mode = .command(next) }
    }
    return []
}

/// `:q`, `:users risk>=high`, `:feed unapproved`, `:approve [TICKET]`, `:theme NAME`, `:refresh [full]`,
/// `:clear`, `:help`.
func runCommand(_ state: inout AppState, _ text: String) -> [Effect] {
    let words = text.split(separator: " ").map(String.init)
    guard let name = words.first?.lowercased() else { return [] }
    let arguments = Array(words.dropFirst())
    let panes: [String: Pane] = [
        "users": .users, "user": .users, "roles": .roles, "role": .roles, "inheritance": .inheritance, "groups": .inheritance,
        "teams": .inheritance, "feed": .feed, "drift": .feed,
    ]
    if let pane = panes[name] {
        state.pane = pane
        let (query, unknown) = RowQuery.parse(arguments)
        state.details = []
        state.view.query = query
        // A command asks a new question of the pane: its answer starts at the top.
        state.view.selected = 0
        state.view.selectedId = nil
        state.view.offset = 0
        refilter(&state, pane)
        if !unknown.isEmpty { notice(&state, "not understood: \(unknown.joined(separator: " ")) (try risk>=high, state=active, drift, unapproved)", error: true) }
        return []
    }
    switch name {
    case "q", "quit", "q!", "wq":
        return quit(&state)
    case "approve":
        startApproval(&state, ticket: arguments.first ?? "")
    case "theme":
        guard let theme = arguments.first else {
            notice(&state, "themes: \(Theme.builtIn.keys.sorted().joined(separator: ", ")) (or a file in your themes directory)")
            return []
        }
        return [.setTheme(theme)]
    case "refresh", "r":
        if arguments.first == "full" {
            notice(&state, "walking the whole organisation…")
            return [.fullRefresh]
        }
        notice(&state, "collecting…")
        return [.refresh]
    case "clear":
        state.view.filter = ""
        state.view.query = RowQuery()
        refilter(&state, state.pane)
    case "help", "h":
        state.mode = .help
    default:
        notice(&state, "unknown command :\(name) (try :help)", error: true)
    }
    return []
}

// MARK: Approvals

func startApproval(_ state: inout AppState, fingerprint: String? = nil, ticket: String = "") {
    guard !state.readOnly else {
        notice(&state, "read-only: approvals are disabled", error: true)
        return
    }
    var chosen = fingerprint
    if chosen == nil {
        if case .item(let id) = state.details.last?.subject {
            chosen = id
        } else if case .finding(let id) = state.details.last?.subject {
            chosen = state.data.audit.details[id]?.finding.fingerprint
        } else if state.pane == .feed, state.details.isEmpty, let row = state.selectedRow(.feed) {
            chosen = state.data.feed[row].fingerprint
        }
    }
    guard let chosen, let row = state.data.feed.first(where: { $0.fingerprint == chosen }) else {
        notice(&state, "select a drift item or finding in the Feed (press 4) to approve it", error: true)
        return
    }
    guard !row.failure else {
        notice(&state, "a failed collection is not drift: there is nothing to approve", error: true)
        return
    }
    var draft = ApprovalDraft(fingerprint: row.fingerprint, summary: row.summary, ticket: ticket)
    draft.finding = row.isFinding
    state.mode = .approve(draft)
}

func editApproval(_ state: inout AppState, _ draft: ApprovalDraft, _ key: Key) -> [Effect] {
    var draft = draft
    switch key {
    case .escape:
        state.mode = .normal
        notice(&state, "approval cancelled")
        return []
    case .control("c"):
        return quit(&state)
    case .tab, .down:
        draft.field = (draft.field + 1) % 3
    case .backTab, .up:
        draft.field = (draft.field + 2) % 3
    case .enter:
        if draft.field < 2 {
            draft.field += 1
        } else {
            guard let lifetime = Approval.lifetime(parsing: draft.expires) else {
                draft.error = "expiry is a duration such as 90m, 72h, 3d or 2w, \(DurationText.describe(Approval.lifetimeRange))"
                state.mode = .approve(draft)
                return []
            }
            state.mode = .normal
            notice(&state, "approving \(draft.fingerprint.prefix(12))…")
            return [
                .approve(
                    fingerprint: draft.fingerprint, ticket: draft.ticket.isEmpty ? nil : draft.ticket,
                    note: draft.note.isEmpty ? nil : draft.note, lifetime: lifetime)
            ]
        }
    default:
        switch draft.field {
        case 0: if let next = edited(draft.ticket, key) { draft.ticket = next }
        case 1: if let next = edited(draft.note, key) { draft.note = next }
        default: if let next = edited(draft.expires, key) { draft.expires = next }
        }
        draft.error = nil
    }
    state.mode = .approve(draft)
    return []
}

// MARK: Drill-down

func open(_ state: inout AppState) {
    guard let row = state.selectedRow(state.pane) else { return }
    let data = state.data
    let subject: DetailView.Subject
    switch state.pane {
    case .users: subject = .user(data.users[row].id)
    case .roles: subject = .role(data.roles[row].id)
    case .inheritance:
        let item = data.inheritance[row]
        subject = item.kind == .group ? .group(item.id) : .team(item.id)
    case .feed: subject = data.feed[row].isFinding ? .finding(data.feed[row].id) : .item(data.feed[row].fingerprint)
    }
    if let detail = Details.build(subject, data) { state.details.append(detail) }
}

// MARK: Matching

/// Whether `haystack` contains `needle`, compared byte by byte in UTF-8 (both are lower-cased
/// already). Foundation's `contains` bridges through NSString: on 100,000 rows per keystroke
/// that is the difference between a frame and a stall.
func fastContains(_ haystack: String, _ needle: String) -> Bool {
    if needle.isEmpty { return true }
    let found = haystack.utf8.withContiguousStorageIfAvailable { h in
        needle.utf8.withContiguousStorageIfAvailable { n in bytesContain(h, n) } ?? haystack.contains(needle)
    }
    return found ?? haystack.contains(needle)
}

@inline(__always)
func bytesContain(_ h: UnsafeBufferPointer<UInt8>, _ n: UnsafeBufferPointer<UInt8>) -> Bool {
    guard let first = n.first else { return true }
    guard n.count <= h.count else { return false }
    var start = 0
    let last = h.count - n.count
    while start <= last {
        if h[start] == first {
            var matched = 1
            while matched < n.count && h[start + matched] == n[matched] { matched += 1 }
            if matched == n.count { return true }
        }
        start += 1
    }
    return false
}

/// A pane's search texts, lower-cased, back to back in one buffer: a filter over 100,000 rows
/// then reads 4 MB in order instead of chasing 100,000 separate strings.
struct SearchIndex: Sendable {
    private var bytes: [UInt8] = []
    private var ends: [Int] = []

    init() {}

    init<Row: FilterableRow>(_ rows: [Row]) {
        ends.reserveCapacity(rows.count)
        bytes.reserveCapacity(rows.count * 48)
        for row in rows {
            bytes.append(contentsOf: row.search.utf8)
            ends.append(bytes.count)
        }
    }

    var count: Int { ends.count }

    func row(_ i: Int, contains term: [UInt8]) -> Bool {
        let start = i == 0 ? 0 : ends[i - 1]
        return bytes.withUnsafeBufferPointer { all in
            term.withUnsafeBufferPointer { bytesContain(UnsafeBufferPointer(rebasing: all[start..<ends[i]]), $0) }
        }
    }
}
