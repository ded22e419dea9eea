import AuditTestSupport
import Foundation
import GenesysClient
import Testing

/// The dashboard in a real terminal: `rbacwatch demo` and `rbacwatch tui` under tmux.
@Suite("Dashboard under tmux")
struct DashboardTmuxTests {
    /// A name that would clear the screen, turn text red and retitle the window if printed raw.
    static let hostile = "Mallory\u{1B}[2J\u{1B}[31m\u{1B}]0;pwned\u{07}Evil"
    static let hostileShown = #"Mallory\x1B[2J\x1B[31m\x1B]0;pwned\x07Evil"#
    static let wide = "山田太郎 Yamada"

    /// Activity is slow enough that an item approved in the walkthrough is rarely undone (a
    /// role recreated, a grant removed) before the test looks for it again, on a loaded machine too.
    static func demo(activity: Int = 30, directory: URL) async throws -> Tmux {
        try await Tmux.start(
            [
                "demo", "--users", "300", "--interval", "2s", "--activity", String(activity), "--extra-user", hostile, "--extra-user", wide,
                "--state", directory.appendingPathComponent("state.sqlite").path, "--approver", "tester",
            ])
    }

    /// The users pane's rows, by name.
    static func row(_ screen: String, containing text: String) -> String? {
        screen.split(separator: "\n").map(String.init).first { $0.contains(text) }
    }

    @Test("demo: panes show data, keys navigate and filter, drift arrives, a keypress approves it (screen and store), resize, quit restores the terminal")
    func walkthrough() async throws {
        let directory = try CommandRunner.temporaryDirectory()
        let tmux = try await Self.demo(directory: directory)

        // Users: the header, the tabs, a full list.
        var screen = try await tmux.waitFor("the users pane") { $0.contains("baseline v1") && $0.contains("1 Users 302") }
        #expect(screen.contains("NAME") && screen.contains("STATE") && screen.contains("DIVISION") && screen.contains("PERMS"))
        // The demo delivers to its simulated receivers; the header says how that goes.
        _ = try await tmux.waitFor("delivery health in the header") { $0.split(separator: "\n").first?.contains("SIEM ") == true }
        #expect(try await tmux.lines().count == 40)

        // Roles, inheritance, feed — by number and by Tab.
        try await tmux.keys("2")
        screen = try await tmux.waitFor("USERS GROUPS CLIENTS")
        #expect(screen.contains("Master Admin"))
        try await tmux.keys("Tab")
        screen = try await tmux.waitFor("ROLES GRANTED")
        #expect(screen.contains("group ") && screen.contains(" @ "))
        try await tmux.keys("Tab")
        _ = try await tmux.waitFor("SEVERITY")
        try await tmux.keys("BTab", "BTab", "BTab")
        _ = try await tmux.waitFor("the users pane again") { $0.contains("DIVISION") && !$0.contains("SEVERITY    AGE") }

        // The hostile and the wide name render inert and aligned.
        try await tmux.keys("/")
        try await tmux.type("mallory")
        screen = try await tmux.waitFor("the hostile user") { $0.contains("1 Users 1/302") && $0.contains("Mallory") }
        let header = try #require(Self.row(screen, containing: "STATE"))
        let hostileRow = try #require(Self.row(screen, containing: "Mallory"))
        #expect(hostileRow.contains(Self.hostileShown), "\(hostileRow)")
        #expect(displayColumn(of: "active", in: hostileRow) == displayColumn(of: "STATE", in: header))
        #expect(try await tmux.paneTitle() != "pwned")
        #expect(!(try await tmux.styledScreen()).contains("\u{1B}]0;"))
        try await tmux.keys("Escape")
        try await tmux.keys("/")
        try await tmux.type("yamada")
        screen = try await tmux.waitFor("the wide user") { $0.contains("1 Users 1/302") && $0.contains("山田太郎") }
        let wideRow = try #require(Self.row(screen, containing: "山田太郎"))
        #expect(displayColumn(of: "active", in: wideRow) == displayColumn(of: "STATE", in: header), "\(wideRow)")
        #expect(displayColumn(of: "PERMS", in: header).map { $0 > 0 } == true)

        // Enter ends the filter prompt, a second Enter drills down into that user; Esc comes
        // back; Esc clears the filter.
        try await tmux.keys("Enter")
        _ = try await tmux.waitFor("n/N next/prev")
        try await tmux.keys("Enter")
        // (Waited for whole: with push, drift checks follow every change, and a capture can land
        // mid-repaint.)
        screen = try await tmux.waitFor("the user's page") { screen in
            screen.contains("User 山田太郎 Yamada") && screen.contains("Effective permissions by division") && screen.contains("direct (")
        }
        try await tmux.keys("Escape")
        _ = try await tmux.waitFor("1 Users 1/302")
        try await tmux.keys("Escape")
        _ = try await tmux.waitFor("1 Users 302")

        // j moves the cursor: Enter on the second row opens the second user.
        try await tmux.keys("g", "j", "Enter")
        screen = try await tmux.waitFor("a user's page") { $0.contains("Roles held") }
        // The page says why the user's risk is what it is.
        #expect(screen.contains("Risk ") && (screen.contains("the heaviest of the roles held") || screen.contains("no roles held")), "\(screen)")
        let title = try #require(screen.split(separator: "\n").dropFirst(2).first).trimmingCharacters(in: .whitespaces)
        try await tmux.keys("Escape")
        screen = try await tmux.waitFor("the list") { $0.contains("DIVISION") }
        let listed = screen.split(separator: "\n").map(String.init)
        let secondName = listed[4].trimmingCharacters(in: .whitespaces).components(separatedBy: "  ").first ?? ""
        #expect(!secondName.isEmpty && title.hasPrefix("User \(secondName)"), "\(title) vs \(listed[4])")

        // Drift arrives while we watch; approve the newest unapproved item with a keypress.
        try await tmux.keys("4")
        screen = try await tmux.waitFor("drift in the feed", timeout: .seconds(60)) { $0.contains("SEVERITY") && $0.contains(" unapproved ") }
        // The demo's administrators keep working: an approved item can be undone (its grant
        // removed, its role edited again) before its row is looked for. Then another is approved,
        // up to three times; each approval is checked in the store and on screen.
        var shownApproved = false
        for attempt in 1...3 where !shownApproved {
            try await tmux.keys("g")
            var approvedFingerprint = ""
            for _ in 0..<200 {
                try await tmux.keys("a")
                screen = try await tmux.waitFor("the approval dialog or a refusal") {
                    $0.contains("Approve drift item") || $0.contains("Approve finding") || $0.contains("nothing to approve")
                }
                if let line = Self.row(screen, containing: "Approve drift item") {
                    approvedFingerprint = String(line.components(separatedBy: "Approve drift item ")[1].prefix(12))
                    break
                }
                if screen.contains("Approve finding") { try await tmux.keys("Escape") }
                try await tmux.keys("j")
            }
            #expect(approvedFingerprint.count == 12)
            let ticket = "CHG-7\(attempt)"
            try await tmux.type(ticket)
            try await tmux.keys("Enter")
            try await tmux.type("expected in the review")
            try await tmux.keys("Enter", "Enter")
            screen = try await tmux.waitFor("approved \(approvedFingerprint) (\(ticket))")
            // The store has it: the CLI sees the same record while the dashboard runs.
            let listedApprovals = try await CommandRunner.run(["approvals", "list", "--state", directory.appendingPathComponent("state.sqlite").path])
            #expect(listedApprovals.status == 0, "\(listedApprovals.stderr)")
            #expect(
                listedApprovals.stdout.contains(approvedFingerprint) && listedApprovals.stdout.contains(ticket) && listedApprovals.stdout.contains("tester"))
            // …and the feed row shows the ticket once the message is gone (unless the item was undone meanwhile).
            try await tmux.keys("/")
            try await tmux.type(approvedFingerprint)
            try await tmux.keys("Enter")
            screen = try await tmux.waitFor("the approved row, saying approved and its time left (or the item undone)") { screen in
                Tmux.rows(screen).dropFirst(3).dropLast().contains { $0.contains(" approved 3d ") } || screen.contains("no rows match the filter")
            }
            shownApproved = Tmux.rows(screen).dropFirst(3).dropLast().contains { $0.contains(" approved 3d ") }
            if !shownApproved { try await tmux.keys("Escape") }
        }
        #expect(shownApproved, "three approved items were each undone before their rows were seen")

        // Audit findings stream in beside the drift, with the rule and the actor; Enter shows
        // the rule that fired and the raw event. The header says how ingestion is doing.
        try await tmux.keys("Escape")
        screen = try await tmux.waitFor("a live audit finding", timeout: .seconds(60)) { $0.contains(" open ") && $0.contains("RBW-0") }
        #expect(Tmux.rows(screen)[0].contains(" audit "), "\(Tmux.rows(screen)[0])")
        try await tmux.keys("/")
        try await tmux.type("RBW-0")
        try await tmux.keys("Enter", "Enter")
        screen = try await tmux.waitFor("the finding's page") { $0.contains("Raw event") || $0.contains("Rule RBW-0") }
        try await tmux.keys("G")
        screen = try await tmux.waitFor("the raw event") { $0.contains("\"serviceName\"") && $0.contains("\"id\"") }
        try await tmux.keys("Escape", "Escape")
        _ = try await tmux.waitFor("the feed again") { $0.contains("SEVERITY    AGE") }

        // Resize: the layout follows at once.
        try await tmux.resize(width: 80, height: 24)
        screen = try await tmux.waitFor("the 80×24 layout") { screen in
            let lines = Tmux.rows(screen)
            // The footer too: a capture can land between the resize and the repaint of the last row.
            return lines.count == 24 && lines.allSatisfy { displayWidth($0[...]) <= 80 } && lines[1].contains("4 Feed") && lines[2].contains("SEVERITY")
                && lines[23].contains("? help")
        }
        // The way out stays on screen at 80 columns.
        let footer = Tmux.rows(screen).last ?? ""
        #expect(footer.contains("? help") && footer.contains("q quit"), "\(footer)")
        try await tmux.resize(width: 120, height: 40)
        _ = try await tmux.waitFor("the 120×40 layout") { Tmux.rows($0).count == 40 && $0.contains("SEVERITY") }

        // q quits; the terminal is itself again.
        try await tmux.keys("Escape", "q")
        let (status, modes) = try await tmux.waitForExit()
        #expect(status == 0)
        #expect(modes.contains("icanon") && !modes.contains("-icanon") && !modes.contains("-echo"), "\(modes)")
        #expect(!(try await tmux.screen()).contains("1 Users"), "the dashboard left its screen behind")
    }

    @Test("SIGTERM and Ctrl-C end the dashboard cleanly and restore the terminal", arguments: ["TERM", "C-c"])
    func signals(_ how: String) async throws {
        let directory = try CommandRunner.temporaryDirectory()
        let tmux = try await Self.demo(activity: 0, directory: directory)
        _ = try await tmux.waitFor("the dashboard") { $0.contains("1 Users 302") }
        if how == "TERM" {
            let shell = try await tmux.shellPid()
            let children = try await Tmux.runAsync(["/usr/bin/pgrep", "-P", String(shell)]).split(separator: "\n").compactMap { Int32($0) }
            #expect(!children.isEmpty)
            for child in children { kill(child, SIGTERM) }
        } else {
            try await tmux.keys("C-c")
        }
        let (status, modes) = try await tmux.waitForExit()
        #expect(status == 0)
        #expect(!modes.contains("-icanon") && !modes.contains("-echo") && modes.contains("icanon"), "\(modes)")
    }

    @Test("themes switch with :theme, a broken theme file falls back with a message, --read-only refuses approvals")
    func themesAndReadOnly() async throws {
        let directory = try CommandRunner.temporaryDirectory()
        let broken = directory.appendingPathComponent("broken.json")
        try Data(##"{"name": "broken", "roles": {"sparkle": {"fg": "#ffffff"}}}"##.utf8).write(to: broken)
        let tmux = try await Tmux.start(
            ["demo", "--users", "100", "--activity", "0", "--theme", broken.path, "--read-only", "--state", directory.appendingPathComponent("s.sqlite").path])
        _ = try await tmux.waitFor("the broken-theme message") { $0.contains("using the default theme: broken.json: unknown role sparkle") }
        _ = try await tmux.waitFor("1 Users 100")
        let dark = try await tmux.styledScreen()
        try await tmux.keys(":")
        try await tmux.type("theme light")
        try await tmux.keys("Enter")
        // The colours change for good (the "theme light" notice is only shown for a moment).
        // Compared on a user row, which no message or prompt touches.
        func userRow(_ styled: String) -> String { Tmux.rows(styled).dropFirst(4).first ?? "" }
        let deadline = ContinuousClock.now + .seconds(30)
        var light = dark
        while ContinuousClock.now < deadline {
            light = try await tmux.styledScreen()
            if userRow(light) != userRow(dark) { break }
            try await Task.sleep(for: .milliseconds(50))
        }
        #expect(!userRow(dark).isEmpty && userRow(light) != userRow(dark), "switching theme changed no colour: \(userRow(dark).debugDescription) → \(light.debugDescription)")
        try await tmux.keys(":")
        try await tmux.type("theme no-such-theme")
        try await tmux.keys("Enter")
        _ = try await tmux.waitFor("no theme no-such-theme (built in: default, high-contrast, light, monochrome); theme unchanged")
        try await tmux.keys("4", "a")
        _ = try await tmux.waitFor("read-only: approvals are disabled")
        try await tmux.keys("q")
        #expect(try await tmux.waitForExit().status == 0)
    }

    @Test("NO_COLOR: attributes only, not one colour; without it, 256 colours on xterm-256color")
    func noColor() async throws {
        let directory = try CommandRunner.temporaryDirectory()
        func styled(_ environment: [String: String]) async throws -> String {
            let tmux = try await Tmux.start(
                ["demo", "--users", "50", "--activity", "0", "--state", directory.appendingPathComponent("\(environment.count).sqlite").path],
                environment: environment)
            _ = try await tmux.waitFor("1 Users 50")
            let screen = try await tmux.styledScreen()
            try await tmux.keys("q")
            #expect(try await tmux.waitForExit().status == 0)
            return screen
        }
        let plain = try await styled(["NO_COLOR": "1"])
        #expect(!plain.contains("38;5;") && !plain.contains("48;5;") && !plain.contains("38;2;"), "colour under NO_COLOR")
        #expect(plain.contains("\u{1B}[7m"), "no reverse video for the header")
        let coloured = try await styled([:])
        #expect(coloured.contains("48;5;"))
    }

    @Test("tui against a configured org: a failed collection shows in the header and the feed, and the dashboard carries on")
    func failedCollection() async throws {
        let directory = try CommandRunner.temporaryDirectory()
        let (simulator, line) = try await startSimulator(users: 120)
        defer { if simulator.isRunning { simulator.terminate() } }
        let environment = try simulatorEnvironment(line, directory: directory)
        let accepted = try await CommandRunner.run(["baseline", "accept"], environment: environment)
        #expect(accepted.status == 0, "\(accepted.stderr)")
        let tmux = try await Tmux.start(["tui", "--interval", "1s"], environment: environment)
        _ = try await tmux.waitFor("the dashboard") { $0.contains("baseline v1") && $0.contains("1 Users 120") }
        simulator.terminate()
        var screen = try await tmux.waitFor("the failure in the header") { $0.split(separator: "\n").first?.contains("collection failed") == true }
        try await tmux.keys("4")
        screen = try await tmux.waitFor("the failure in the feed") { screen in
            Self.row(screen, containing: "failure ").map { $0.contains("collection failed") } ?? false
        }
        #expect(screen.contains("4 Feed"))
        // Still responsive, still showing the last good data.
        try await tmux.keys("1")
        _ = try await tmux.waitFor("the users pane") { $0.contains("1 Users 120") && $0.contains("DIVISION") }
        try await tmux.keys("q")
        #expect(try await tmux.waitForExit().status == 0)
    }

    @Test("tui with audit push: the header says so, and a grant made now is a drift item on the feed within seconds while the next drift check is ten minutes away")
    func pushedDriftItem() async throws {
        let directory = try CommandRunner.temporaryDirectory()
        let (simulator, line, environment) = try await simulatorWithBaseline(users: 120, directory: directory)
        defer { if simulator.isRunning { simulator.terminate() } }
        let tmux = try await Tmux.start(["tui", "--interval", "10m"], environment: environment, width: 200, height: 40)
        _ = try await tmux.waitFor("the dashboard with push live", timeout: .seconds(60)) { screen in
            screen.contains("1 Users 120") && screen.split(separator: "\n").first?.contains("audit push") == true
        }

        // A grant through the API, as an administrator makes it.
        let admin = try simulatorAdmin(line).client
        struct Listing: Decodable { struct Entity: Decodable { var id: String; var name: String }; var entities: [Entity] }
        let made: ContinuousClock.Instant
        let role: Listing.Entity
        let user: Listing.Entity
        do {
            let roles = try await admin.get("/api/v2/authorization/roles?pageSize=100&userCount=false", as: Listing.self).entities
            role = try #require(roles.first { $0.name == "Master Admin" })
            let users = try await admin.get("/api/v2/users?pageSize=100&state=active", as: Listing.self).entities
            user = try #require(users.last)
            made = .now
            _ = try await admin.send("POST", "/api/v2/authorization/subjects/\(user.id)/divisions/*/roles/\(role.id)?subjectType=PC_USER")
        } catch {
            await admin.shutdown()
            throw error
        }
        await admin.shutdown()
        try await tmux.keys("4")
        let screen = try await tmux.waitFor("the pushed drift item", timeout: .seconds(90)) { screen in
            screen.split(separator: "\n").contains { $0.contains("user \(user.name) granted role Master Admin") }
        }
        // The next scheduled drift check is ten minutes away: anything well under that came
        // pushed. (How many seconds is the latency benchmark's to say; a test run loads both
        // cores with hundreds of tests, and a capture is polled.)
        let took = ContinuousClock.now - made
        #expect(took < .seconds(60), "the drift item showed after \(took)")
        #expect(screen.split(separator: "\n").first?.contains("audit push") == true)
        try await tmux.keys("q")
        #expect(try await tmux.waitForExit().status == 0)
    }
}
