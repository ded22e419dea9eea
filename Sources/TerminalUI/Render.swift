import AuditCore
import AuditEngine
import Foundation

/// Seconds a new feed item stays highlighted.
public let newItemHighlight: TimeInterval = 5

/// The whole screen from the state: pure, cheap (only visible rows are drawn), and the same
/// state always gives the same frame.
public func render(_ state: AppState) -> Frame {
    let theme = state.theme
    var frame = Frame(width: state.width, height: state.height, fill: theme.style(.background))
    guard state.width >= 20, state.height >= 6 else {
        frame.put("rbacwatch: enlarge the terminal", row: 0, column: 0, style: theme.style(.text))
        return frame
    }
    let layout = Layout(width: state.width, height: state.height, pane: state.pane)
    renderHeader(&frame, state)
    renderTabs(&frame, state)
    if let detail = state.details.last {
        renderDetail(&frame, state, detail, layout)
    } else {
        renderList(&frame, state, layout)
        if let top = layout.feedStripTop { renderFeedStrip(&frame, state, top: top, rows: layout.feedStripRows) }
    }
    renderFooter(&frame, state, layout)
    switch state.mode {
    case .help: renderHelp(&frame, state)
    case .approve(let draft): renderApproval(&frame, state, draft)
    default: break
    }
    if state.glyphs == .ascii { frame.replaceChrome(asciiChrome) }
    return frame
}

/// The dashboard's own non-ASCII characters and what a terminal without UTF-8 gets instead.
/// (Names from the API are left as they are: the terminal shows them as best it can.)
public let asciiChrome: [String: String] = [
    "·": "|", "…": "~", "—": "-", "–": "-", "↺": "@", "●": "*", "▸": ">", "↓": "v", "↑": "^", "─": "-", "│": "|",
    "┌": "+", "┐": "+", "└": "+", "┘": "+", "←": "<",
]

// MARK: Header and tabs

func renderHeader(_ frame: inout Frame, _ state: AppState) {
    let theme = state.theme
    let style = theme.style(.header)
    frame.fill(row: 0, column: 0, count: frame.width, style: style)
    let data = state.data

    // Right: the collector's state, or unapproved drift by severity.
    var right: [(String, Style)] = []
    switch data.status {
    case .failed, .refused:
        right.append((" collection failed: \(data.status.problem ?? "") ", theme.style(.error)))
    case .starting, .collecting:
        right.append((data.fromStore ? " refreshing… " : " collecting… ", style))
    case .ready:
        break
    }
    if data.unaudited > 0 {
        right.append((" \(data.unaudited) UNAUDITED ", headerBadge(theme, .high, on: style)))
    }
    // The audit feed's health: quiet when all is well, loud when it is not.
    if let health = data.audit.health {
        let lag = health.lagSeconds.map { " lag \(age(max(0, $0)))" } ?? ""
        switch health.mode {
        case .normal, .starting: break  // on the left, as room allows
        case .throttled: right.append((" audit THROTTLED\(lag) ", headerBadge(theme, .high, on: style)))
        case .criticalOnly: right.append((" audit CRITICAL-ONLY\(lag) ", headerBadge(theme, .critical, on: style)))
        case .failing: right.append((" audit FAILING ", theme.style(.error)))
        }
    }
    // Delivery to SIEMs: quiet when all is sent, loud when it is not.
    if let delivery = data.audit.delivery {
        if let paused = delivery.paused.first {
            right.append((" SIEM PAUSED: \(TerminalSafe.sanitize(paused)) ", theme.style(.error)))
        } else if delivery.queued > 0, let oldest = delivery.oldestQueued, state.now.timeIntervalSince(oldest) >= 60 {
            right.append((" SIEM \(delivery.queued) queued, \(age(max(0, state.now.timeIntervalSince(oldest)))) ", headerBadge(theme, .high, on: style)))
        } else {
            right.append((" SIEM ok ", style))
        }
        if delivery.deadLettered > 0 { right.append((" DLQ \(delivery.deadLettered) ", headerBadge(theme, .high, on: style))) }
    }
    if data.status.problem == nil {
        // What needs a look: unapproved drift items and open audit findings, by severity.
        let open = data.openBySeverity
        for severity in Severity.allCases.reversed() {
            let count = open[severity] ?? 0
            right.append(("\(count) \(severity.name) ", count > 0 ? headerBadge(theme, Theme.role(for: severity), on: style) : style))
        }
    }
    let rightWidth = min(frame.width / 2, right.reduce(0) { $0 + CellWidth.of($1.0) })

    // Left: what we are looking at and when it was collected — the most detailed version that
    // fits, dropping the least useful parts first.
    let organization = data.organization.isEmpty ? nil : TerminalSafe.sanitize(data.organization)
    let baseline = data.baselineVersion.map { "baseline v\($0)" }
    let collected = data.collectedAt.map { (clock: Details.clock($0), ago: age(state.now.timeIntervalSince($0))) }
    let collectedWord = data.fromStore ? "stored snapshot" : "collected"
    let next = data.nextRefresh.flatMap { next in
        data.status == .collecting ? nil : "next \(age(max(0, next.timeIntervalSince(state.now).rounded(.up))))"
    }
    let health = data.audit.health
    let quietAudit = health.map { $0.mode == .normal || $0.mode == .starting } ?? false
    // "audit push" while events arrive pushed; otherwise why the feed polls only.
    let pushWord: String? = health?.push.map { push in
        switch push {
        case .live: "audit push"
        case .pollingOnly(let why): "audit polling only: \(TerminalSafe.sanitize(why))"
        }
    }
    let auditLag = quietAudit ? health.map { h in
        (h.mode == .starting ? "audit starting" : "audit lag " + (h.lagSeconds.map { age(max(0, $0)) } ?? "—")) + (pushWord.map { " · \($0)" } ?? "")
    } : nil
    let lastEvent = health?.lastEvent.map { "last event \(Details.clock($0))" }
    let auditShort = quietAudit ? health.map { h in h.mode == .starting ? "audit …" : "audit " + (h.lagSeconds.map { age(max(0, $0)) } ?? "—") } : nil
    // What the feed has to say (who keeps it, what was quarantined, why it fails), when there is room.
    let auditNote = health?.message.map { TerminalSafe.sanitize($0) }
    let candidates: [[String?]] = [
        ["rbacwatch", organization, baseline, collected.map { "\(collectedWord) \($0.clock) (\($0.ago) ago)" }, next, auditLag.map { $0 + (lastEvent.map { ", \($0)" } ?? "") }, auditNote],
        ["rbacwatch", organization, baseline, collected.map { "\(collectedWord) \($0.ago) ago" }, next, auditLag ?? auditShort, auditNote],
        ["rbacwatch", organization, baseline, collected.map { "\(collectedWord) \($0.clock) (\($0.ago) ago)" }, next, auditLag.map { $0 + (lastEvent.map { ", \($0)" } ?? "") }],
        ["rbacwatch", organization, baseline, collected.map { "\(collectedWord) \($0.clock) (\($0.ago) ago)" }, next, auditLag],
        ["rbacwatch", organization, baseline, collected.map { "\(collectedWord) \($0.ago) ago" }, next, auditLag],
        ["rbacwatch", organization, baseline, collected.map { "\($0.ago) ago" }, next, auditShort],
        // The feed's state outlasts the next refresh's countdown when room runs short.
        ["rbacwatch", organization, baseline, collected.map { "\($0.ago) ago" }, auditShort],
        // …and the baseline's version (on the Drift pane too) before the feed's state.
        auditShort == nil ? [] : ["rbacwatch", organization, collected.map { "\($0.ago) ago" }, auditShort],
        // …and the organisation's name (on the Users pane too) before it, when room is shortest.
        auditShort == nil ? [] : ["rbacwatch", collected.map { "\($0.ago) ago" }, auditShort],
        ["rbacwatch", organization, baseline, collected.map { "\($0.ago) ago" }, next],
        ["rbacwatch", organization, collected.map { "\($0.ago) ago" }, next],
        ["rbacwatch", collected.map { "\($0.ago) ago" }, next],
    ]
    let room = max(0, frame.width - rightWidth - 2)
    let texts = candidates.filter { !$0.isEmpty }.map { " " + $0.compactMap { $0 }.joined(separator: " · ") }
    let left = texts.first { CellWidth.of($0) <= room } ?? texts.last!
    frame.put(left, row: 0, column: 0, limit: room, style: style)
    var column = frame.width - rightWidth
    for (text, partStyle) in right where column < frame.width {
        column += frame.put(text, row: 0, column: column, limit: frame.width - column, style: partStyle)
    }
}

/// A severity badge in the header: the role's own colours (as readable as in the lists, which
/// the contrast test holds to 4.5:1), bold; plain header text without colour.
func headerBadge(_ theme: Theme, _ role: ThemeRole, on header: Style) -> Style {
    guard theme.depth != .none else { return header }
    var badge = theme.style(role)
    badge.bold = true
    return badge
}

func renderTabs(_ frame: inout Frame, _ state: AppState) {
    let theme = state.theme
    frame.fill(row: 1, column: 0, count: frame.width, style: theme.style(.tab))
    var column = 0
    for pane in Pane.allCases {
        let view = state.views[pane.rawValue]
        let total = state.rowCount(pane)
        var count = view.visible.count == total ? "\(total)" : "\(view.visible.count)/\(total)"
        // Opened on a stored snapshot's preview: what the panes still being read will hold.
        if total == 0, let reading = state.data.reading {
            switch pane {
            case .roles: count = "\(reading.roles)"
            case .inheritance: count = "\(reading.inheritance)"
            case .users, .feed: break
            }
        }
        let label = " \(pane.rawValue + 1) \(pane.title) \(count) "
        let style = pane == state.pane ? theme.style(.tabActive) : theme.style(.tab)
        column += frame.put(label, row: 1, column: column, style: style)
        column += frame.put(" ", row: 1, column: column, style: theme.style(.tab))
    }
    let view = state.view
    var filters: [String] = []
    if !view.filter.isEmpty { filters.append("/\(view.filter)") }
    if !view.query.isEmpty {
        var parts: [String] = []
        if let risk = view.query.minimumRisk { parts.append("risk>=\(risk.name)") }
        if let s = view.query.state { parts.append("state=\(s)") }
        if view.query.onlyDrift { parts.append("drift") }
        if view.query.onlyUnapproved { parts.append("unapproved") }
        parts += view.query.words
        filters.append(":" + parts.joined(separator: " "))
    }
    if !filters.isEmpty, state.details.isEmpty {
        let text = " filter " + filters.joined(separator: " ") + "  n/N next/prev · Esc clear "
        let width = min(CellWidth.of(text), max(0, frame.width - column))
        frame.put(text, row: 1, column: frame.width - width, limit: width, style: theme.style(.match))
    }
}

// MARK: Lists

struct Column {
    var title: String
    var width: Int
    var rightAligned = false
}

/// Widths for columns where one (the flexible one, width 0) takes what is left.
func layoutColumns(_ columns: [Column], total: Int) -> [Column] {
    let fixed = columns.reduce(0) { $0 + $1.width } + columns.count - 1
    let flexible = max(8, total - fixed - 1)
    return columns.map { column in
        var column = column
        if column.width == 0 { column.width = flexible }
        return column
    }
}

func putColumns(_ frame: inout Frame, row: Int, _ columns: [Column], _ cells: [(String, Style)], fill: Style) {
    frame.fill(row: row, column: 0, count: frame.width, style: fill)
    var column = 1
    for (index, spec) in columns.enumerated() where column < frame.width {
        let (text, style) = cells[index]
        let width = min(spec.width, frame.width - column)
        if spec.rightAligned {
            let textWidth = min(CellWidth.of(TerminalSafe.sanitize(text)), width)
            frame.put(text, row: row, column: column + width - textWidth, limit: textWidth, style: style)
        } else {
            frame.put(text, row: row, column: column, limit: width, style: style)
        }
        column += spec.width + 1
    }
}

func age(_ seconds: TimeInterval) -> String {
    let s = Int(Bounded.seconds(seconds, clampedTo: 0...1e12))
    if s < 60 { return "\(s)s" }
    if s < 3600 { return "\(s / 60)m" }
    if s < 86_400 { return "\(s / 3600)h" }
    return "\(s / 86_400)d"
}

/// Whether the feed has a BY column: only when someone can be named (attribution or findings).
func feedShowsActors(_ data: DashboardData) -> Bool {
    !data.attribution.isEmpty || !data.audit.rows.isEmpty
}

func columns(for pane: Pane, width: Int, actors: Bool = false) -> [Column] {
    let specs: [Column] =
        switch pane {
        case .users:
            [Column(title: "NAME", width: 0), Column(title: "STATE", width: 9), Column(title: "DIVISION", width: 18),
             Column(title: "PERMS", width: 6, rightAligned: true), Column(title: "RISK", width: 9), Column(title: "DRIFT", width: 6, rightAligned: true)]
        case .roles:
            [Column(title: "NAME", width: 0), Column(title: "USERS", width: 6, rightAligned: true), Column(title: "GROUPS", width: 6, rightAligned: true),
             Column(title: "CLIENTS", width: 7, rightAligned: true), Column(title: "PERMS", width: 6, rightAligned: true),
             Column(title: "RISK", width: 9), Column(title: "LINEAGE", width: 10)]
        case .inheritance:
            [Column(title: "KIND", width: 6), Column(title: "NAME", width: min(34, max(16, width / 4))),
             Column(title: "MEMBERS", width: 8, rightAligned: true), Column(title: "ROLES GRANTED (MEMBERS INHERIT THEM)", width: 0)]
        case .feed:
            [Column(title: "SEVERITY", width: 9), Column(title: "AGE", width: 5, rightAligned: true), Column(title: "STATUS", width: 14)]
                + (actors ? [Column(title: "BY", width: width >= 100 ? 16 : 12)] : []) + [Column(title: "CHANGE", width: 0)]
        }
    return layoutColumns(specs, total: width)
}

func renderList(_ frame: inout Frame, _ state: AppState, _ layout: Layout) {
    let theme = state.theme
    let pane = state.pane
    let view = state.view
    let specs = columns(for: pane, width: frame.width, actors: feedShowsActors(state.data))
    putColumns(&frame, row: layout.listHeader, specs, specs.map { ($0.title, theme.style(.title)) }, fill: theme.style(.background))
    if view.visible.isEmpty {
        let text: String =
            switch state.data.status {
            case _ where state.rowCount(pane) > 0: "no rows match the filter (Esc clears it)"
            case _ where state.data.reading != nil && pane != .feed: "reading the stored snapshot…"
            case .starting, .collecting: "collecting the organisation…"
            case .failed, .refused: "collection failed: \(state.data.status.problem ?? "")"
            case .ready: "nothing here"
            }
        frame.put("  " + text, row: layout.listTop, column: 0, style: theme.style(.muted))
        return
    }
    let end = min(view.visible.count, view.offset + layout.listRows)
    for (line, position) in (view.offset..<end).enumerated() {
        let selected = position == view.selected
        let cells = rowCells(state, pane, view.visible[position], selected: selected)
        putColumns(&frame, row: layout.listTop + line, specs, cells, fill: selected ? theme.style(.selection) : theme.style(.background))
    }
}

/// The cells of one row, styled; selection overrides colours.
func rowCells(_ state: AppState, _ pane: Pane, _ index: Int, selected: Bool) -> [(String, Style)] {
    let theme = state.theme
    let base = selected ? theme.style(.selection) : theme.style(.text)
    func severity(_ s: Severity?) -> Style {
        guard let s, !selected else { return base }
        return theme.style(Theme.role(for: s))
    }
    let muted = selected ? base : theme.style(.muted)
    switch pane {
    case .users:
        let row = state.data.users[index]
        return [
            (row.name, base), (row.state, row.state == "active" ? base : muted), (row.division, base),
            (String(row.permissions), base), (row.risk?.name ?? "—", severity(row.risk)),
            (row.drift > 0 ? "\(state.glyphs.bullet)\(row.drift)" : "", row.drift > 0 && !selected ? theme.style(.high) : base),
        ]
    case .roles:
        let row = state.data.roles[index]
        let lineage = row.lineage.isEmpty ? (row.builtIn ? "built-in" : "") : "↺ \(row.lineage.count) more"
        return [
            (row.name + (row.drift > 0 ? "  \(state.glyphs.bullet)\(row.drift)" : ""), base), (String(row.users), base),
            (String(row.groups), base), (String(row.clients), base), (String(row.permissions), base),
            (row.risk.name, severity(row.risk)), (lineage, row.lineage.isEmpty ? muted : base),
        ]
    case .inheritance:
        let row = state.data.inheritance[index]
        let grants =
            row.kind == .team
                ? "team in \(row.division ?? "—") · no roles" : row.grants.isEmpty ? (row.rolesEnabled ? "role-enabled, none granted" : "not role-enabled: passes on no roles") : row.grants.joined(separator: ", ")
        // Members are read for groups that pass roles on; for the others the count is not known.
        let members = row.members.map(String.init) ?? "not read"
        return [(row.kind.rawValue, muted), (row.name, base), (members, row.members == nil ? muted : base), (grants, row.grants.isEmpty ? muted : base)]
    case .feed:
        let row = state.data.feed[index]
        if row.failure {
            let style = selected ? base : theme.style(.error)
            return [("failure", style), (age(state.now.timeIntervalSince(row.firstSeen)), style), ("collection", style)]
                + (feedShowsActors(state.data) ? [("", style)] : []) + [(row.summary, style)]
        }
        let isNew = row.appeared.map { state.now.timeIntervalSince($0) < newItemHighlight && state.now >= $0 } ?? false
        let textStyle = isNew && !selected ? theme.style(.new) : row.state.isApproved && !selected ? theme.style(.approved) : base
        // Findings say "open" (an alert), drift says "unapproved"; both name who acted when known.
        let status = row.isFinding && !row.state.isApproved && row.state.approval == nil ? "open" : statusText(row.state, now: state.now)
        let by: [(String, Style)] =
            feedShowsActors(state.data)
            ? [(row.actor ?? "", row.actor == "UNEXPLAINED" && !selected && !isNew ? theme.style(.high) : row.actor == nil ? muted : textStyle)] : []
        return [
            (row.severity.name + (row.escalation ? "!" : ""), isNew && !selected ? theme.style(.new) : severity(row.severity)),
            (age(state.now.timeIntervalSince(row.firstSeen)), textStyle), (status, textStyle),
        ] + by + [(row.summary, textStyle)]
    }
}

func statusText(_ state: ReviewState, now: Date) -> String {
    switch state {
    case .unapproved: return "unapproved"
    case .lapsed: return "LAPSED"
    case .approved(let approval, _):
        // "approved" and how long it has left; the ticket is on the item's page.
        return "approved \(remaining(approval.expiresAt.timeIntervalSince(now)))"
    }
}

/// Time left, to the nearest unit (an approval of 72 h reads `3d` a moment after it is made,
/// not `2d`): seconds below a minute, minutes below an hour, hours below two days, then days.
func remaining(_ seconds: TimeInterval) -> String {
    let s = Bounded.seconds(seconds, clampedTo: 0...1e12)
    if s < 60 { return "\(Int(s.rounded(.up)))s" }
    if s < 3600 { return "\(Int((s / 60).rounded()))m" }
    if s < 2 * 86_400 { return "\(Int((s / 3600).rounded()))h" }
    return "\(Int((s / 86_400).rounded()))d"
}

func renderFeedStrip(_ frame: inout Frame, _ state: AppState, top: Int, rows: Int) {
    let theme = state.theme
    let title = " Latest \(state.data.audit.rows.isEmpty ? "drift" : "drift and findings") (\(state.data.feed.count)) — 4 or Tab to browse "
    frame.fill(row: top - 1, column: 0, count: frame.width, style: theme.style(.border))
    var column = 0
    while column < frame.width { column += frame.put(state.glyphs.horizontal, row: top - 1, column: column, style: theme.style(.border)) }
    frame.put(title, row: top - 1, column: 2, style: theme.style(.title))
    let specs = columns(for: .feed, width: frame.width, actors: feedShowsActors(state.data))
    if state.data.feed.isEmpty {
        frame.put("  no drift since the baseline", row: top, column: 0, style: theme.style(.muted))
        return
    }
    for (line, index) in state.data.feed.indices.prefix(rows).enumerated() {
        putColumns(&frame, row: top + line, specs, rowCells(state, .feed, index, selected: false), fill: theme.style(.background))
    }
}

// MARK: Details

func renderDetail(_ frame: inout Frame, _ state: AppState, _ detail: DetailView, _ layout: Layout) {
    let theme = state.theme
    frame.fill(row: 2, column: 0, count: frame.width, style: theme.style(.background))
    let position = detail.lines.isEmpty ? "" : "  \(min(detail.offset + 1, detail.lines.count))–\(min(detail.lines.count, detail.offset + layout.detailRows))/\(detail.lines.count)"
    frame.put(" \(detail.title)\(position)", row: 2, column: 0, style: theme.style(.title))
    for (line, index) in (detail.offset..<min(detail.lines.count, detail.offset + layout.detailRows)).enumerated() {
        var column = 1
        for span in detail.lines[index] where column < frame.width {
            column += frame.put(span.text, row: 3 + line, column: column, style: theme.style(span.role))
        }
    }
}

// MARK: Footer and overlays

func renderFooter(_ frame: inout Frame, _ state: AppState, _ layout: Layout) {
    let theme = state.theme
    let row = layout.footer
    frame.fill(row: row, column: 0, count: frame.width, style: theme.style(.footer))
    switch state.mode {
    case .filter(let text):
        let used = frame.put(" /" + text, row: row, column: 0, style: theme.style(.dialog))
        frame.cursor = (row, min(frame.width - 1, used))
        frame.put("  Enter keep · Esc clear", row: row, column: used + 1, style: theme.style(.footer))
        return
    case .command(let text):
        let used = frame.put(" :" + text, row: row, column: 0, style: theme.style(.dialog))
        frame.cursor = (row, min(frame.width - 1, used))
        frame.put("  users|roles|inheritance|feed [risk>=high state=… drift unapproved] · approve · theme NAME · q", row: row, column: used + 1, style: theme.style(.footer))
        return
    default:
        break
    }
    if let message = state.message {
        // A message takes the footer, but not the way out: `? help  q quit` stay on the right.
        let keys: [(String, String)] = [("?", "help"), ("q", "quit")]
        let keysWidth = keys.reduce(0) { $0 + CellWidth.of($1.0) + CellWidth.of($1.1) + 3 }
        let room = frame.width - keysWidth - 1
        frame.put(" " + message.text + " ", row: row, column: 0, limit: max(0, room), style: message.isError ? theme.style(.error) : theme.style(.dialog))
        if room > 10 {
            var column = frame.width - keysWidth
            for (key, text) in keys {
                column += frame.put(key, row: row, column: column, style: theme.style(.key))
                column += frame.put(" \(text)  ", row: row, column: column, style: theme.style(.footer))
            }
        }
        return
    }
    var column = 1
    let inDetail = !state.details.isEmpty
    let filtered = !state.view.filter.isEmpty || !state.view.query.isEmpty
    var canApprove = !state.readOnly
    if case .item(let fingerprint) = state.details.last?.subject {
        canApprove = canApprove && state.data.feed.contains { $0.fingerprint == fingerprint && !$0.failure }
    } else {
        canApprove = canApprove && !inDetail && state.pane == .feed
            && state.selectedRow(.feed).map { !state.data.feed[$0].failure } == true
    }
    let room = state.readOnly ? frame.width - 12 : frame.width
    // The way out and the way to every other key are always shown: the others fill the room
    // left before them, most useful first.
    let always: [Action] = [.help, .quit]
    func entry(_ action: Action) -> (key: String, text: String, width: Int)? {
        guard let binding = KeyMap.bindings.first(where: { $0.action == action }), let text = binding.footer else { return nil }
        let key = binding.label.split(separator: " ").first.map(String.init) ?? binding.label
        return (key, text, CellWidth.of(key) + CellWidth.of(text) + 3)
    }
    let reserved = always.compactMap(entry).reduce(0) { $0 + $1.width }
    var shown: [(key: String, text: String, width: Int)] = []
    var used = 0
    for action in KeyMap.footerOrder where !always.contains(action) {
        guard let item = entry(action) else { continue }
        switch action {
        case .approve where !canApprove: continue
        case .back where !inDetail && !filtered: continue
        case .open, .nextPane, .filter: if inDetail { continue }
        default: break
        }
        guard column + used + item.width + reserved <= room else { break }
        shown.append(item)
        used += item.width
    }
    for item in shown + always.compactMap(entry) where column < room {
        column += frame.put(item.key, row: row, column: column, style: theme.style(.key))
        column += frame.put(" \(item.text)  ", row: row, column: column, limit: max(0, room - column), style: theme.style(.footer))
    }
    if state.readOnly {
        frame.put(" read-only ", row: row, column: max(0, frame.width - 11), style: theme.style(.muted))
    }
}

/// A box centred on the screen; returns its inner rectangle.
func drawBox(_ frame: inout Frame, _ state: AppState, width: Int, height: Int, title: String) -> (row: Int, column: Int, width: Int, height: Int) {
    let theme = state.theme
    let g = state.glyphs
    let w = min(width, frame.width - 2)
    let h = min(height, frame.height - 2)
    let top = max(0, (frame.height - h) / 2)
    let left = max(0, (frame.width - w) / 2)
    let style = theme.style(.dialog)
    for row in top..<(top + h) { frame.fill(row: row, column: left, count: w, style: style) }
    frame.put(g.topLeft, row: top, column: left, style: style)
    frame.put(g.topRight, row: top, column: left + w - 1, style: style)
    frame.put(g.bottomLeft, row: top + h - 1, column: left, style: style)
    frame.put(g.bottomRight, row: top + h - 1, column: left + w - 1, style: style)
    for column in (left + 1)..<(left + w - 1) {
        frame.put(g.horizontal, row: top, column: column, style: style)
        frame.put(g.horizontal, row: top + h - 1, column: column, style: style)
    }
    for row in (top + 1)..<(top + h - 1) {
        frame.put(g.vertical, row: row, column: left, style: style)
        frame.put(g.vertical, row: row, column: left + w - 1, style: style)
    }
    var titleStyle = theme.style(.title)
    titleStyle.background = style.background
    frame.put(" \(title) ", row: top, column: left + 2, limit: w - 4, style: titleStyle)
    return (top + 1, left + 2, w - 4, h - 2)
}

func renderHelp(_ frame: inout Frame, _ state: AppState) {
    let groups = KeyMap.bindings.reduce(into: [String]()) { if !$0.contains($1.group) { $0.append($1.group) } }
    let height = KeyMap.bindings.count + groups.count * 2 + 3
    let inner = drawBox(&frame, state, width: 72, height: height, title: "Keys — any key closes")
    var row = inner.row
    let style = state.theme.style(.dialog)
    var keyStyle = state.theme.style(.key)
    keyStyle.background = style.background
    for group in groups where row < inner.row + inner.height {
        var title = state.theme.style(.title)
        title.background = style.background
        frame.put(group, row: row, column: inner.column, style: title)
        row += 1
        for binding in KeyMap.bindings where binding.group == group && row < inner.row + inner.height {
            frame.put(binding.label, row: row, column: inner.column + 2, limit: 12, style: keyStyle)
            frame.put(binding.help, row: row, column: inner.column + 15, limit: inner.width - 15, style: style)
            row += 1
        }
        row += 1
    }
}

func renderApproval(_ frame: inout Frame, _ state: AppState, _ draft: ApprovalDraft) {
    let inner = drawBox(&frame, state, width: 76, height: 13, title: "Approve \(draft.finding ? "finding" : "drift item") \(draft.fingerprint.prefix(12))")
    let theme = state.theme
    let style = theme.style(.dialog)
    frame.put(draft.summary, row: inner.row, column: inner.column, limit: inner.width, style: style)
    let fields = [("Ticket", draft.ticket), ("Note", draft.note), ("Expires", draft.expires)]
    for (index, (label, value)) in fields.enumerated() {
        let row = inner.row + 2 + index * 2
        var labelStyle = theme.style(.muted)
        labelStyle.background = style.background
        frame.put(label, row: row, column: inner.column, style: labelStyle)
        let fieldStyle = index == draft.field ? theme.style(.selection) : theme.style(.background)
        frame.fill(row: row, column: inner.column + 10, count: inner.width - 10, style: fieldStyle)
        let used = frame.put(value, row: row, column: inner.column + 10, limit: inner.width - 11, style: fieldStyle)
        if index == draft.field { frame.cursor = (row, inner.column + 10 + used) }
    }
    if let error = draft.error {
        frame.put(error, row: inner.row + 8, column: inner.column, limit: inner.width, style: theme.style(.error))
    }
    var hint = theme.style(.muted)
    hint.background = style.background
    frame.put("Tab next field · Enter next/confirm · Esc cancel", row: inner.row + inner.height - 1, column: inner.column, limit: inner.width, style: hint)
}
