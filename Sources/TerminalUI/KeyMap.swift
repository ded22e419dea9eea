/// A key as the terminal reports it.
public enum Key: Sendable, Hashable {
    case character(Character)
    case control(Character)
    case up, down, left, right, pageUp, pageDown, home, end
    case enter, escape, tab, backTab, backspace, delete
}

/// What a key does.
public enum Action: String, Sendable, CaseIterable {
    case down, up, pageDown, pageUp, top, bottom
    case nextPane, previousPane, usersPane, rolesPane, inheritancePane, feedPane
    case open, back, filter, nextMatch, previousMatch, command
    case approve, refresh, fullRefresh, help, redraw, quit
}

/// One line of the keymap: the single table that drives the keys, the help overlay, the footer
/// and the README's key table.
public struct KeyBinding: Sendable {
    public var keys: [Key]
    /// How the keys are written for people: `j ↓`.
    public var label: String
    public var action: Action
    public var help: String
    public var group: String
    /// The footer's short text, for the keys that belong there (where they apply).
    public var footer: String?
}

public enum KeyMap {
    public static let bindings: [KeyBinding] = [
        KeyBinding(keys: [.character("j"), .down], label: "j ↓", action: .down, help: "move down", group: "Navigate", footer: nil),
        KeyBinding(keys: [.character("k"), .up], label: "k ↑", action: .up, help: "move up", group: "Navigate", footer: nil),
        KeyBinding(keys: [.pageDown, .control("f")], label: "PgDn ^F", action: .pageDown, help: "page down", group: "Navigate", footer: nil),
        KeyBinding(keys: [.pageUp, .control("b")], label: "PgUp ^B", action: .pageUp, help: "page up", group: "Navigate", footer: nil),
        KeyBinding(keys: [.character("g"), .home], label: "g Home", action: .top, help: "first row", group: "Navigate", footer: nil),
        KeyBinding(keys: [.character("G"), .end], label: "G End", action: .bottom, help: "last row", group: "Navigate", footer: nil),
        KeyBinding(keys: [.tab, .right, .character("l")], label: "Tab l →", action: .nextPane, help: "next pane", group: "Panes", footer: "next pane"),
        KeyBinding(keys: [.backTab, .left, .character("h")], label: "S-Tab h ←", action: .previousPane, help: "previous pane", group: "Panes", footer: nil),
        KeyBinding(keys: [.character("1")], label: "1", action: .usersPane, help: "users", group: "Panes", footer: nil),
        KeyBinding(keys: [.character("2")], label: "2", action: .rolesPane, help: "roles", group: "Panes", footer: nil),
        KeyBinding(keys: [.character("3")], label: "3", action: .inheritancePane, help: "inheritance (groups and teams)", group: "Panes", footer: nil),
        KeyBinding(keys: [.character("4")], label: "4", action: .feedPane, help: "drift feed", group: "Panes", footer: nil),
        KeyBinding(keys: [.enter], label: "Enter", action: .open, help: "details", group: "Panes", footer: "details"),
        KeyBinding(keys: [.escape], label: "Esc", action: .back, help: "back, clear filter", group: "Panes", footer: "back"),
        KeyBinding(keys: [.character("/")], label: "/", action: .filter, help: "filter rows", group: "Find", footer: "filter"),
        KeyBinding(keys: [.character("n")], label: "n", action: .nextMatch, help: "next match", group: "Find", footer: nil),
        KeyBinding(keys: [.character("N")], label: "N", action: .previousMatch, help: "previous match", group: "Find", footer: nil),
        KeyBinding(keys: [.character(":")], label: ":", action: .command, help: "command (:users risk>=high, :theme NAME, :q)", group: "Find", footer: "command"),
        KeyBinding(keys: [.character("a")], label: "a", action: .approve, help: "approve the selected drift item or finding", group: "Act", footer: "approve"),
        KeyBinding(keys: [.character("r")], label: "r", action: .refresh, help: "collect and compare now", group: "Act", footer: "refresh"),
        KeyBinding(
            keys: [.character("R")], label: "R", action: .fullRefresh, help: "walk the whole organisation and compare now", group: "Act", footer: nil),
        KeyBinding(keys: [.character("?")], label: "?", action: .help, help: "this help", group: "Act", footer: "help"),
        KeyBinding(keys: [.control("l")], label: "^L", action: .redraw, help: "redraw the screen", group: "Act", footer: nil),
        KeyBinding(keys: [.character("q"), .control("c")], label: "q ^C", action: .quit, help: "quit", group: "Act", footer: "quit"),
    ]

    /// The footer's keys, most useful first (it shows as many as fit).
    public static let footerOrder: [Action] = [.approve, .open, .back, .filter, .command, .nextPane, .refresh, .help, .quit]

    private static let index: [Key: Action] = {
        var map: [Key: Action] = [:]
        for binding in bindings {
            for key in binding.keys where map[key] == nil { map[key] = binding.action }
        }
        return map
    }()

    public static func action(for key: Key) -> Action? { index[key] }

    /// `| Keys | Action |` rows grouped, as the README shows them (generated, never hand-written:
    /// `rbacwatch keys` prints it and a test checks the README against it).
    public static func markdownTable() -> String {
        var lines = ["| keys | does | group |", "|---|---|---|"]
        for binding in bindings {
            let keys = binding.label.split(separator: " ").map { "`\($0)`" }.joined(separator: " ")
            lines.append("| \(keys) | \(binding.help) | \(binding.group) |")
        }
        return lines.joined(separator: "\n")
    }
}
