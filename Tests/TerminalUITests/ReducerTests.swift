import AuditCore
import AuditEngine
import Foundation
import Testing

@testable import TerminalUI

@Suite("Dashboard: keys and state")
struct ReducerTests {
    func selectedUser(_ state: AppState) -> String? {
        state.selectedRow(.users).map { state.data.users[$0].name }
    }

    @Test("j/k, arrows, g/G, PgDn/PgUp move the cursor within bounds and keep it on screen")
    func navigation() {
        var state = Fixture.state(width: 100, height: 12)  // a list of 8 rows
        let rows = Layout(width: 100, height: 12, pane: .users).listRows
        #expect(state.view.selected == 0)
        press(&state, .character("k"))
        #expect(state.view.selected == 0)
        press(&state, .character("j"), .down)
        #expect(state.view.selected == 2)
        press(&state, .character("G"))
        #expect(state.view.selected == state.data.users.count - 1)
        #expect(state.view.offset == max(0, state.data.users.count - rows))
        press(&state, .character("g"))
        #expect(state.view.selected == 0 && state.view.offset == 0)
        press(&state, .pageDown)
        #expect(state.view.selected == min(rows, state.data.users.count - 1))
        press(&state, .pageUp, .up)
        #expect(state.view.selected == 0)
        press(&state, .end, .home)
        #expect(state.view.selected == 0)
    }

    @Test("Tab and Shift-Tab cycle the panes; 1–4 jump; each pane keeps its own cursor")
    func panes() {
        var state = Fixture.state()
        press(&state, .character("j"), .character("j"))
        press(&state, .tab)
        #expect(state.pane == .roles)
        press(&state, .tab, .tab, .tab)
        #expect(state.pane == .users)
        press(&state, .backTab)
        #expect(state.pane == .feed)
        press(&state, .character("3"))
        #expect(state.pane == .inheritance)
        press(&state, .character("1"))
        #expect(state.view.selected == 2)
    }

    @Test("/ filters as you type, Enter keeps it, n/N walk the matches and wrap, Esc clears it")
    func filter() {
        var state = Fixture.state()
        let all = state.view.visible.count
        press(&state, .character("/"))
        type(&state, "silva")
        #expect(state.view.visible.count == 1)
        #expect(selectedUser(state) == "Ana Silva")
        press(&state, .backspace, .backspace)
        #expect(state.view.visible.count == state.data.users.filter { $0.search.contains("sil") }.count)
        press(&state, .backspace, .backspace, .backspace)
        #expect(state.view.visible.count == all)
        type(&state, "support")
        let matches = state.view.visible.count
        #expect(matches > 1 && matches < all)
        press(&state, .enter)
        #expect(state.mode == .normal)
        #expect(state.view.filter == "support")
        press(&state, .character("N"))
        #expect(state.view.selected == matches - 1)
        press(&state, .character("n"))
        #expect(state.view.selected == 0)
        press(&state, .escape)
        #expect(state.view.filter.isEmpty && state.view.visible.count == all)
    }

    @Test("the filter matches names the way they are shown, wide and hostile ones too")
    func filterUnicode() {
        var state = Fixture.state()
        press(&state, .character("/"))
        type(&state, "山田")
        #expect(state.view.visible.map { state.data.users[$0].name } == [Fixture.wideName])
        press(&state, .escape)
        press(&state, .character("/"))
        type(&state, "mallory")
        #expect(state.view.visible.map { state.data.users[$0].name } == [Fixture.hostileName])
    }

    @Test(":users risk>=high and friends set a structured query; unknown words are reported")
    func commands() {
        var state = Fixture.state(pane: .roles)
        press(&state, .character(":"))
        type(&state, "users risk>=high")
        #expect(state.mode == .command("users risk>=high"))
        press(&state, .enter)
        #expect(state.pane == .users)
        #expect(state.view.query.minimumRisk == .high)
        let risks = state.view.visible.map { state.data.users[$0].risk }
        #expect(!risks.isEmpty && risks.allSatisfy { ($0 ?? .low) >= .high })
        // A new question starts at the top of its answer, whatever row the cursor was on.
        #expect(state.view.selected == 0 && state.view.offset == 0)
        press(&state, .character("G"), .character(":"))
        type(&state, "users risk>=critical")
        press(&state, .enter)
        #expect(state.view.selected == 0, "the cursor is on the first row of the new answer")

        press(&state, .character(":"))
        type(&state, "feed unapproved risk>=medium")
        press(&state, .enter)
        #expect(state.pane == .feed)
        let rows = state.view.visible.map { state.data.feed[$0] }
        #expect(!rows.isEmpty && rows.allSatisfy { !$0.state.isApproved && $0.severity >= .medium })

        press(&state, .character(":"))
        type(&state, "users state=inactive")
        press(&state, .enter)
        #expect(state.view.visible.map { state.data.users[$0].name } == ["Cai Wen"])

        press(&state, .character(":"))
        type(&state, "users risk>=extreme")
        press(&state, .enter)
        #expect(state.message?.isError == true)
        #expect(state.message?.text.contains("risk>=extreme") == true)

        press(&state, .character(":"))
        type(&state, "frobnicate")
        press(&state, .enter)
        #expect(state.message?.text.contains("unknown command :frobnicate") == true)

        press(&state, .character(":"))
        type(&state, "theme light")
        #expect(press(&state, .enter) == [.setTheme("light")])
        press(&state, .character(":"))
        type(&state, "q")
        #expect(press(&state, .enter) == [.quit])
        #expect(state.quitting)
    }

    @Test("a approves the selected drift item: ticket, note and expiry, then one approve effect")
    func approve() throws {
        var state = Fixture.state(pane: .feed)
        let row = try #require(state.selectedRow(.feed).map { state.data.feed[$0] })
        press(&state, .character("a"))
        guard case .approve(let draft) = state.mode else {
            Issue.record("a did not open the approval dialog")
            return
        }
        #expect(draft.fingerprint == row.fingerprint)
        type(&state, "CHG-9")
        press(&state, .enter)
        type(&state, "expected")
        press(&state, .enter)
        press(&state, .control("u"))
        type(&state, "soon")
        #expect(press(&state, .enter).isEmpty)
        guard case .approve(let bad) = state.mode else {
            Issue.record("a bad expiry closed the dialog")
            return
        }
        #expect(bad.error?.contains("duration") == true)
        press(&state, .backspace, .backspace, .backspace, .backspace)
        type(&state, "2d")
        let effects = press(&state, .enter)
        #expect(effects == [.approve(fingerprint: row.fingerprint, ticket: "CHG-9", note: "expected", lifetime: 2 * 86_400)])
        #expect(state.mode == .normal)
    }

    @Test("Esc cancels an approval; read-only refuses one; a collection failure cannot be approved; outside the feed a hint")
    func approvalRefusals() {
        var state = Fixture.state(pane: .feed)
        press(&state, .character("a"))
        type(&state, "x")
        #expect(press(&state, .escape).isEmpty)
        #expect(state.mode == .normal)

        var readOnly = Fixture.state(pane: .feed, readOnly: true)
        press(&readOnly, .character("a"))
        #expect(readOnly.mode == .normal)
        #expect(readOnly.message?.text.contains("read-only") == true)

        var users = Fixture.state(pane: .users)
        press(&users, .character("a"))
        #expect(users.mode == .normal)
        #expect(users.message?.text.contains("Feed") == true)

        var failed = Fixture.state(pane: .feed)
        _ = reduce(&failed, .data(Fixture.data(failures: [CollectionFailure(first: Fixture.now, at: Fixture.now, message: "timeout")])))
        press(&failed, .character("g"))
        #expect(failed.selectedRow(.feed).map { failed.data.feed[$0].failure } == true)
        press(&failed, .character("a"))
        #expect(failed.mode == .normal)
        #expect(failed.message?.text.contains("nothing to approve") == true)
    }

    @Test("Enter drills down, Esc comes back; an open drill-down follows new data (an approval shows at once)")
    func drillDown() throws {
        var state = Fixture.state(pane: .feed)
        let unapproved = try #require(state.view.visible.first { !state.data.feed[$0].state.isApproved && !state.data.feed[$0].failure })
        while state.selectedRow(.feed) != unapproved { press(&state, .character("j")) }
        let fingerprint = state.data.feed[unapproved].fingerprint
        press(&state, .enter)
        #expect(state.details.last?.subject == .item(fingerprint))
        let before = render(state).text
        #expect(before.contains("status        unapproved"))
        _ = reduce(&state, .data(Fixture.data(review: Fixture.review(approving: fingerprint))))
        #expect(state.details.count == 1)
        let after = render(state).text
        #expect(after.contains("status        approved (CHG-1042)"))
        press(&state, .character("j"), .character("j"))
        #expect(state.details.last?.offset == 2)
        press(&state, .escape)
        #expect(state.details.isEmpty)
        #expect(state.selectedRow(.feed).map { state.data.feed[$0].fingerprint } == fingerprint)
    }

    @Test("new data keeps the cursor on the same row even when rows move; a vanished row leaves the cursor in range")
    func cursorFollowsRow() throws {
        var state = Fixture.state()
        while selectedUser(state) != "Eli Novak" { press(&state, .character("j")) }
        var data = Fixture.data()
        data.users.insert(data.users[0], at: 0)
        data.users[0].id = "u00"
        data.users[0].name = "Aaron First"
        _ = reduce(&state, .data(data))
        #expect(selectedUser(state) == "Eli Novak")
        data.users.removeAll { $0.name == "Eli Novak" }
        _ = reduce(&state, .data(data))
        #expect(state.view.selected < state.view.visible.count)
    }

    @Test("the feed follows its newest item while the cursor is on the first row; moved down, the cursor stays on its item")
    func feedFollowsNewest() throws {
        var state = Fixture.state(pane: .feed)
        #expect(state.view.selected == 0)
        let newer = CollectionFailure(first: Fixture.now, at: Fixture.now, message: "timed out")
        _ = reduce(&state, .data(Fixture.data(failures: [newer])))
        let top = try #require(state.selectedRow(.feed))
        #expect(state.data.feed[top].failure, "the newest item (the failure) should be selected")
        press(&state, .character("j"))
        let held = try #require(state.selectedRow(.feed).map { state.data.feed[$0].fingerprint })
        let newest = CollectionFailure(first: Fixture.now.addingTimeInterval(5), at: Fixture.now.addingTimeInterval(5), message: "refused")
        _ = reduce(&state, .data(Fixture.data(failures: [newer, newest])))
        #expect(state.selectedRow(.feed).map { state.data.feed[$0].fingerprint } == held)
        #expect(state.view.selected == 2)
    }

    @Test("substring matching on UTF-8 bytes agrees with String.contains", arguments: [
        ("山田太郎 yamada active", "田太"), ("amélie tanaka", "élie"), ("amélie", "amelie"), ("mallory\u{1B}[2j", "\u{1B}["),
        ("abc", "abcd"), ("aab", "ab"), ("", "a"), ("abc", ""), ("zoë 👩‍💻 dev", "👩‍💻"),
    ])
    func matching(_ haystack: String, _ needle: String) {
        #expect(fastContains(haystack, needle) == (needle.isEmpty || haystack.contains(needle)), "\(haystack) / \(needle)")
    }

    @Test("a burst of data updates is coalesced to the newest; keys keep their order around it")
    func coalescing() {
        let older = Fixture.data()
        var newer = Fixture.data()
        newer.organization = "Newer"
        let events: [AppEvent] = [.data(older), .key(.character("j")), .data(newer), .key(.character("k")), .tick(Fixture.now)]
        let kept = coalesced(events)
        #expect(kept.count == 4)
        guard kept.count == 4, case .key(.character("j")) = kept[0], case .data(let data) = kept[1], case .key(.character("k")) = kept[2],
            case .tick = kept[3]
        else {
            Issue.record("unexpected order: \(kept)")
            return
        }
        #expect(data.organization == "Newer")
        #expect(coalesced([AppEvent.key(.enter)]).count == 1)
    }

    @Test("resize re-lays out at once: the cursor stays visible in a smaller window")
    func resize() {
        var state = Fixture.state(width: 100, height: 30, pane: .feed)
        press(&state, .character("G"))
        _ = reduce(&state, .resize(width: 60, height: 8))
        let rows = Layout(width: 60, height: 8, pane: .feed).listRows
        #expect(state.view.selected >= state.view.offset && state.view.selected < state.view.offset + rows)
        #expect(render(state).width == 60)
    }

    @Test("? opens help, any key closes it; r asks for a refresh; Ctrl-L a redraw; q and Ctrl-C quit")
    func misc() {
        var state = Fixture.state()
        press(&state, .character("?"))
        #expect(state.mode == .help)
        #expect(press(&state, .character("x")).isEmpty)
        #expect(state.mode == .normal)
        #expect(press(&state, .character("r")) == [.refresh])
        #expect(press(&state, .control("l")) == [.redraw])
        #expect(press(&state, .character("q")) == [.quit])
        var other = Fixture.state()
        press(&other, .character("/"))
        #expect(press(&other, .control("c")) == [.quit])
    }

    @Test("notices expire with the clock; errors stay until a key is pressed after their time")
    func messages() {
        var state = Fixture.state()
        _ = reduce(&state, .notice("approved", isError: false))
        #expect(state.message != nil)
        _ = reduce(&state, .tick(Fixture.now.addingTimeInterval(3)))
        #expect(state.message != nil)
        _ = reduce(&state, .tick(Fixture.now.addingTimeInterval(5)))
        #expect(state.message == nil)

        // An error outlives its time until a key is pressed: it cannot go unseen.
        _ = reduce(&state, .notice("theme broken.json: unknown role", isError: true))
        _ = reduce(&state, .tick(Fixture.now.addingTimeInterval(60)))
        #expect(state.message?.text == "theme broken.json: unknown role")
        press(&state, .character("j"))
        #expect(state.message == nil)
        // …but a key pressed at once does not wipe an error it has barely shown.
        _ = reduce(&state, .notice("approval not saved", isError: true))
        press(&state, .character("j"))
        #expect(state.message?.text == "approval not saved")
    }
}
