import AuditCore
import AuditEngine
import Foundation
import Testing

@testable import TerminalUI

@Suite("Dashboard: rendering")
struct RenderTests {
    @Test("each pane at 110×30 and 80×24 matches its golden frame", arguments: Pane.allCases)
    func panes(_ pane: Pane) throws {
        try Golden.check(render(Fixture.state(pane: pane)), "pane-\(pane.title.lowercased())-110x30")
        try Golden.check(render(Fixture.state(width: 80, height: 24, pane: pane)), "pane-\(pane.title.lowercased())-80x24")
    }

    @Test("a user's page says why their risk is what it is: a medium role held in every division makes a high user")
    func userRiskExplained() throws {
        // Zoë holds Reporting (recording:recording:view after the edit: medium) in every division.
        var snapshot = Fixture.snapshot(drifted: true)
        snapshot = Snapshot.resolving(
            organization: snapshot.organization, divisions: snapshot.divisions, roles: snapshot.roles,
            users: snapshot.users, groups: snapshot.groups + [Group(id: "g-social", name: "Social Club", rolesEnabled: false, memberIds: [])],
            teams: snapshot.teams, oauthClients: snapshot.oauthClients,
            grants: snapshot.grants.filter { $0.subjectId != "u06" } + [Grant(subjectId: "u06", subjectKind: .user, roleId: "r-report", divisionId: "*")],
            problems: [])
        let data = DashboardBuilder.build(
            snapshot: snapshot, review: nil, baselineVersion: 3, lineage: RoleLineage(), firstSeen: [:],
            risk: RiskRollup(snapshot: snapshot, policy: .standard), status: .ready,
            collectedAt: Fixture.collectedAt, nextRefresh: nil)
        #expect(data.users.first { $0.id == "u06" }?.risk == .high, "the users pane says high")
        var state = AppState(theme: .standard, readOnly: false, now: Fixture.now, width: 110, height: 30)
        _ = reduce(&state, .data(data))
        while state.data.users[state.selectedRow(.users)!].id != "u06" { press(&state, .character("j")) }
        press(&state, .enter)
        let text = render(state).text
        #expect(text.contains("Risk high  the heaviest of the roles held:"))
        #expect(text.contains("Reporting in * (all divisions) (direct): medium, raised to high: held in every division"))
        #expect(text.contains("high     Reporting  in * (all divisions)  direct  (medium in one division)"))
        try Golden.check(render(state), "detail-user-raised")

        // A group that holds no roles: its members were not read, and the pane says so.
        #expect(data.inheritance.first { $0.id == "g-social" }?.members == nil)
        press(&state, .escape, .character("3"))
        let groups = render(state).text
        #expect(groups.contains("Social Club") && groups.contains("not read"), "\(groups)")
    }

    @Test("the header counts unapproved drift and open audit findings; the footer keeps ? help and q quit at any width")
    func headerAndFooter() throws {
        var state = Fixture.state(width: 80, height: 24, pane: .feed)
        let before = render(state).text.split(separator: "\n").first.map(String.init) ?? ""
        let finding = AuditFinding(
            fingerprint: "f1", ruleId: "RBW-002", title: "Administrator role granted", severity: .critical, controls: [], eventIds: ["e1"],
            date: Fixture.now.addingTimeInterval(-10), serviceName: "PeoplePermissions", entityType: "Role", entityId: "r-admin",
            entityName: "Master Admin", action: "MemberAdd", actor: "Ana", actorId: "u01", clientId: nil, remoteIp: [], evidence: [],
            status: .open, approval: nil)
        _ = reduce(&state, .audit(AuditFeed(rows: AuditFeed.rows([finding]))))
        let after = render(state).text.split(separator: "\n").first.map(String.init) ?? ""
        let count = { (line: String) in Int(line.components(separatedBy: " critical").first?.split(separator: " ").last ?? "") ?? -1 }
        #expect(count(after) == count(before) + 1, "\(before)\n\(after)")
        for width in [60, 70, 80, 110] {
            for pane in Pane.allCases {
                let frame = render(Fixture.state(width: width, height: 24, pane: pane))
                let footer = frame.text.split(separator: "\n", omittingEmptySubsequences: false)[23]
                #expect(footer.contains("? help") && footer.contains("q quit"), "\(width) columns, \(pane): \(footer)")
            }
        }
        // What the feed has to say shows in the header when there is room.
        var wide = Fixture.state(width: 200, height: 30)
        _ = reduce(
            &wide,
            .audit(AuditFeed(health: IngestionView(mode: .normal, lagSeconds: 30, lastEvent: nil, message: "the audit feed is kept by rbacwatch watch (pid 42)"))))
        let header = render(wide).text.split(separator: "\n").first.map(String.init) ?? ""
        #expect(header.contains("audit lag 30s") && header.contains("the audit feed is kept by rbacwatch watch (pid 42)"), "\(header)")

        // While a collection runs, at 120 columns, the feed's quiet state stays in the
        // header (the baseline's version goes first; a feed in trouble is a badge at any width).
        for width in [120, 160] {
            var busy = Fixture.state(width: width, height: 24)
            _ = reduce(&busy, .audit(AuditFeed(health: IngestionView(mode: .normal, lagSeconds: 12, lastEvent: nil, message: nil))))
            busy.data.status = .collecting
            busy.data.organization = "Simulated Contact Centre 1"
            busy.data.baselineVersion = 1
            let busyHeader = render(busy).text.split(separator: "\n").first.map(String.init) ?? ""
            #expect(busyHeader.contains("collecting…") && busyHeader.contains(" audit "), "\(width) columns: \(busyHeader)")
        }

        // Audit push: said beside the lag, live or why the feed polls only (sanitised: the reason
        // may quote the API).
        func pushHeader(_ push: IngestionView.PushView) -> String {
            var state = Fixture.state(width: 200, height: 24)
            _ = reduce(&state, .audit(AuditFeed(health: IngestionView(mode: .normal, lagSeconds: 5, lastEvent: nil, message: nil, push: push))))
            return render(state).text.split(separator: "\n").first.map(String.init) ?? ""
        }
        #expect(pushHeader(.live).contains("audit lag 5s · audit push"), "\(pushHeader(.live))")
        let down = pushHeader(.pollingOnly("socket closed 2m ago\u{1B}[2J"))
        #expect(down.contains("audit lag 5s · audit polling only: socket closed 2m ago\\x1B[2J"), "\(down)")

        // Delivery to SIEMs: quiet when sent, a badge when it lags, pauses or dead-letters.
        func deliveryHeader(_ view: DeliveryView) -> String {
            var state = Fixture.state(width: 200, height: 24)
            var feed = AuditFeed()
            feed.delivery = view
            _ = reduce(&state, .audit(feed))
            return render(state).text.split(separator: "\n").first.map(String.init) ?? ""
        }
        #expect(deliveryHeader(DeliveryView(destinations: 2)).contains(" SIEM ok "))
        let lagging = deliveryHeader(DeliveryView(destinations: 2, queued: 120, oldestQueued: Fixture.now.addingTimeInterval(-240)))
        #expect(lagging.contains(" SIEM 120 queued, 4m "), "\(lagging)")
        let paused = deliveryHeader(DeliveryView(destinations: 2, queued: 3, deadLettered: 2, paused: ["splunk: 403 invalid token\u{1B}[2J"]))
        #expect(paused.contains(" SIEM PAUSED: splunk: 403 invalid token\\x1B[2J ") && paused.contains(" DLQ 2 "), "\(paused)")

        // A message on the footer leaves the way out beside it.
        var noticed = Fixture.state(width: 80, height: 24)
        _ = reduce(&noticed, .notice("approval not saved: the state file is busy: another rbacwatch is writing it; try again", isError: true))
        let footer = render(noticed).text.split(separator: "\n", omittingEmptySubsequences: false)[23]
        #expect(footer.contains("approval not saved") && footer.contains("? help") && footer.contains("q quit"), "\(footer)")
    }

    @Test("drill-downs match their golden frames: user, role, group, team, drift item, collection failure")
    func drillDowns() throws {
        var state = Fixture.state(width: 110, height: 40)
        func open(_ pane: Pane, where predicate: (AppState) -> Bool, _ name: String) throws {
            state.details = []
            _ = reduce(&state, .key(.character(Character(String(pane.rawValue + 1)))))
            _ = reduce(&state, .key(.character("g")))
            var guardCount = 0
            while !predicate(state) {
                _ = reduce(&state, .key(.character("j")))
                guardCount += 1
                try #require(guardCount < 100, "row for \(name) not found")
            }
            _ = reduce(&state, .key(.enter))
            try #require(state.details.count == 1, "Enter opens \(name)")
            try Golden.check(render(state), "detail-\(name)")
        }
        try open(.users, where: { $0.data.users[$0.selectedRow(.users)!].id == "u04" }, "user-hostile")
        try open(.users, where: { $0.data.users[$0.selectedRow(.users)!].id == "u01" }, "user-inherited")
        try open(.roles, where: { $0.data.roles[$0.selectedRow(.roles)!].id == "r-sec" }, "role")
        try open(.inheritance, where: { $0.data.inheritance[$0.selectedRow(.inheritance)!].id == "g-leads" }, "group")
        try open(.inheritance, where: { $0.data.inheritance[$0.selectedRow(.inheritance)!].id == "t-night" }, "team")
        try open(.feed, where: { $0.data.feed[$0.selectedRow(.feed)!].kind == "grantAdded" }, "item-grant")
        try open(.feed, where: { $0.data.feed[$0.selectedRow(.feed)!].kind == "roleModified" }, "item-approved")
        _ = reduce(&state, .data(Fixture.data(failures: [CollectionFailure(first: Fixture.now.addingTimeInterval(-30), at: Fixture.now.addingTimeInterval(-5), message: "HTTP 503 from /api/v2/users", count: 3)])))
        try open(.feed, where: { $0.data.feed[$0.selectedRow(.feed)!].failure }, "item-failure")
    }

    @Test("overlays and modes match their golden frames: help, approval, filter, command, failure, read-only")
    func overlays() throws {
        var state = Fixture.state(pane: .users)
        press(&state, .character("?"))
        try Golden.check(render(state), "overlay-help")

        state = Fixture.state(pane: .feed)
        press(&state, .character("a"))
        type(&state, "CHG-7")
        press(&state, .tab)
        type(&state, "planned")
        try Golden.check(render(state), "overlay-approve")

        state = Fixture.state(pane: .users)
        press(&state, .character("/"))
        type(&state, "an")
        try Golden.check(render(state), "mode-filter")

        state = Fixture.state(pane: .users)
        press(&state, .character(":"))
        type(&state, "users risk>=high")
        try Golden.check(render(state), "mode-command")
        press(&state, .enter)
        try Golden.check(render(state), "query-users-risk-high")

        state = Fixture.state(pane: .feed)
        var data = Fixture.data(failures: [CollectionFailure(first: Fixture.now.addingTimeInterval(-30), at: Fixture.now.addingTimeInterval(-5), message: "HTTP 503 from /api/v2/users", count: 3)])
        data.status = .failed("HTTP 503 from /api/v2/users")
        _ = reduce(&state, .data(data))
        try Golden.check(render(state), "feed-collection-failed")

        state = Fixture.state(pane: .feed, readOnly: true)
        try Golden.check(render(state), "feed-read-only")
    }

    @Test("monochrome and ASCII: no colour at all when NO_COLOR, box drawing falls back to ASCII")
    func monochromeAscii() throws {
        var state = Fixture.state(pane: .users)
        state.theme = Theme.standard.adapted(to: .none)
        state.glyphs = .ascii
        press(&state, .character("?"))
        let frame = render(state)
        try Golden.check(frame, "overlay-help-monochrome-ascii")
        for row in 0..<frame.height {
            for column in 0..<frame.width {
                let cell = frame[row, column]
                #expect(cell.style.foreground == nil && cell.style.background == nil)
                #expect(asciiChrome[cell.text] == nil, "row \(row) column \(column): \(cell.text)")
            }
        }
    }

    @Test("hostile names: no control character reaches a cell, and every column stays aligned with wide names")
    func hostileAndWide() throws {
        let state = Fixture.state(width: 110, height: 30, pane: .users)
        let frame = render(state)
        for cell in frame.cells {
            #expect(!cell.text.unicodeScalars.contains { $0.value < 0x20 || (0x7F...0x9F).contains($0.value) })
        }
        #expect(frame.text.contains(#"Mallory\x1B[2J\x1B[31mRed\x07"#))
        #expect(frame.text.contains("山田太郎"))
        // The STATE column starts at the same cell on every user row, whatever the name.
        let specs = columns(for: .users, width: frame.width)
        let stateColumn = 1 + specs[0].width + 1
        let layout = Layout(width: frame.width, height: frame.height, pane: .users)
        for line in 0..<state.data.users.count {
            let row = layout.listTop + line
            let user = state.data.users[state.views[Pane.users.rawValue].visible[line]]
            #expect(frame[row, stateColumn].text == String(user.state.prefix(1)), "row \(row) \(user.name)")
            #expect(frame[row, stateColumn - 1].text == " " || frame[row, stateColumn - 1].text == "…")
        }
        // A wide character takes two cells: its own and an empty continuation.
        let wideRow = try #require((0..<frame.height).first { r in (0..<frame.width).contains { frame[r, $0].text == "山" } })
        let wideColumn = try #require((0..<frame.width).first { frame[wideRow, $0].text == "山" })
        #expect(frame[wideRow, wideColumn + 1].text.isEmpty)
        #expect(frame[wideRow, wideColumn + 2].text == "田")
    }

    @Test("an emoji sequence is drawn as its first emoji, two cells wide; a combining mark stays on its letter")
    func graphemes() {
        var frame = Frame(width: 20, height: 1)
        let used = frame.put("Zoë 👩‍💻 e\u{301}x", row: 0, column: 0, style: .plain)
        #expect(used == 9)
        #expect(frame[0, 2].text == "ë")
        #expect(frame[0, 4].text == "👩")
        #expect(frame[0, 5].text.isEmpty)
        #expect(frame[0, 7].text == "e\u{301}")
        #expect(frame[0, 8].text == "x")
    }

    @Test("text that does not fit is cut with an ellipsis, never half a wide character")
    func truncation() {
        var frame = Frame(width: 6, height: 1)
        #expect(frame.put("山田太郎", row: 0, column: 0, style: .plain) == 5)
        #expect(frame.text == "山田…")
        var narrow = Frame(width: 4, height: 1)
        narrow.put("abcdef", row: 0, column: 0, style: .plain)
        #expect(narrow.text == "abc…")
    }

    @Test("rendering is pure: the same state gives the same frame; a tiny terminal gets a hint, not a crash")
    func pure() {
        let state = Fixture.state(pane: .roles)
        // Two states built apart, with another frame rendered between them: equal frames (no
        // hidden cache or counter), and a different state gives a different frame.
        let first = render(state)
        let other = render(Fixture.state(pane: .users))
        #expect(render(Fixture.state(pane: .roles)) == first)
        #expect(other != first)
        var tiny = state
        _ = reduce(&tiny, .resize(width: 12, height: 3))
        #expect(render(tiny).text.hasPrefix("rbacwatch:"))
        var zero = state
        _ = reduce(&zero, .resize(width: 0, height: 0))
        #expect(render(zero).width == 1)
    }

    @Test("a new feed item is highlighted for a few seconds, then looks like the others")
    func highlight() throws {
        var state = Fixture.state(pane: .feed)
        let newStyle = state.theme.style(.new)
        func highlighted() -> Int {
            let frame = render(state)
            let layout = Layout(width: frame.width, height: frame.height, pane: .feed)
            return (layout.listTop..<(layout.listTop + layout.listRows)).filter { frame[$0, 1].style == newStyle }.count
        }
        press(&state, .character("G"))  // the cursor away from the new items
        let before = highlighted()
        #expect(before > 0)
        _ = reduce(&state, .tick(Fixture.now.addingTimeInterval(newItemHighlight)))
        #expect(highlighted() == 0)
    }

    @Test("opened on a stored snapshot's preview: users listed, the other panes counted and marked as being read, names still sanitised")
    func preview() throws {
        var update = MonitorUpdate(status: .collecting)
        update.preview = SnapshotPreview(Fixture.snapshot(drifted: true))
        update.fromStore = true
        update.collectedAt = Fixture.collectedAt
        var state = AppState(theme: .standard, readOnly: false, now: Fixture.now, width: 110, height: 30)
        _ = reduce(&state, .data(DashboardFeed.dashboard(update)))
        let users = render(state).text
        let tabs = users.split(separator: "\n")[1]
        let full = Fixture.snapshot(drifted: true)
        #expect(tabs.contains("1 Users \(full.users.count) "), "\(tabs)")
        #expect(tabs.contains("2 Roles \(full.roles.count) ") && tabs.contains("3 Inheritance \(full.groups.count + full.teams.count) "), "\(tabs)")
        #expect(users.contains("stored snapshot") && users.contains("refreshing…"))
        #expect(users.contains(Fixture.users.sorted { $0.name.lowercased() < $1.name.lowercased() }[0].name))
        #expect(!users.contains("\u{1B}") && users.contains("Mallory"))
        state.pane = .roles
        #expect(render(state).text.contains("reading the stored snapshot…"))
        // The snapshot replaces the preview: rows everywhere, nothing being read.
        _ = reduce(&state, .data(Fixture.data()))
        #expect(!render(state).text.contains("reading the stored snapshot"))
    }
}
