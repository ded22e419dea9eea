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
    case approve, refresh, help, redraw, quit
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
    /// Shown in the footer (where it applies).
    public var footer: Bool
}

public enum KeyMap {
    public static let bindings: [KeyBinding] = [
        KeyBinding(keys: [.character("j"), .down], label: "j ↓", action: .down, help: "move down", group: "Navigate", footer: false),
        KeyBinding(keys: [.character("k"), .up], label: "k ↑", action: .up, help: "move up", group: "Navigate", footer: false),
        KeyBinding(keys: [.pageDown, .control("f")], label: "PgDn ^F", action: .pageDown, help: "page down", group: "Navigate", footer: false),
        KeyBinding(keys: [.pageUp, .control("b")], label: "PgUp ^B", action: .pageUp, help: "page up", group: "Navigate", footer: false),
        KeyBinding(keys: [.character("g"), .home], label: "g Home", action: .top, help: "first row", group: "Navigate", footer: false),
        KeyBinding(keys: [.character("G"), .end], label: "G End", action: .bottom, help: "last row", group: "Navigate", footer: false),
        KeyBinding(keys: [.tab, .right, .character("l")], label: "Tab", action: .nextPane, help: "next pane", group: "Panes", footer: true),
        KeyBinding(keys: [.backTab, .left, .character("h")], label: "S-Tab", action: .previousPane, help: "previous pane", group: "Panes", footer: false),
        KeyBinding(keys: [.character("1")], label: "1", action: .usersPane, help: "users", group: "Panes", footer: false),
        KeyBinding(keys: [.character("2")], label: "2", action: .rolesPane, help: "roles", group: "Panes", footer: false),
        KeyBinding(keys: [.character("3")], label: "3", action: .inheritancePane, help: "inheritance (groups and teams)", group: "Panes", footer: false),
        KeyBinding(keys: [.character("4")], label: "4", action: .feedPane, help: "drift feed", group: "Panes", footer: false),
        KeyBinding(keys: [.enter], label: "Enter", action: .open, help: "details", group: "Panes", footer: true),
        KeyBinding(keys: [.escape], label: "Esc", action: .back, help: "back, clear filter", group: "Panes", footer: true),
        KeyBinding(keys: [.character("/")], label: "/", action: .filter, help: "filter rows", group: "Find", footer: true),
        KeyBinding(keys: [.character("n")], label: "n", action: .nextMatch, help: "next match", group: "Find", footer: false),
        KeyBinding(keys: [.character("N")], label: "N", action: .previousMatch, help: "previous match", group: "Find", footer: false),
        KeyBinding(keys: [.character(":")], label: ":", action: .command, help: "command (:users risk>=high, :theme NAME, :q)", group: "Find", footer: true),
        KeyBinding(keys: [.character("a")], label: "a", action: .approve, help: "approve the selected drift item", group: "Act", footer: true),
        KeyBinding(keys: [.character("r")], label: "r", action: .refresh, help: "collect and compare now", group: "Act", footer: true),
        KeyBinding(keys: [.character("?")], label: "?", action: .help, help: "this help", group: "Act", footer: true),
        KeyBinding(keys: [.control("l")], label: "^L", action: .redraw, help: "redraw the screen", group: "Act", footer: false),
        KeyBinding(keys: [.character("q"), .control("c")], label: "q", action: .quit, help: "quit", group: "Act", footer: true),
    ]

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
