import AuditCore
import AuditEngine
import Foundation
import Testing

@testable import TerminalUI

let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

@Suite("Dashboard: themes and keymap")
struct ThemeAndKeyMapTests {
    static var themeFiles: [URL] {
        let directory = packageRoot.appendingPathComponent("themes")
        return ((try? FileManager.default.contentsOfDirectory(at: directory, includingPropertiesForKeys: nil)) ?? [])
            .filter { $0.pathExtension == "json" }.sorted { $0.path < $1.path }
    }

    @Test("every file in themes/ loads, defines every role it needs, and is the built-in theme of its name")
    func everyThemeFile() throws {
        let files = Self.themeFiles
        #expect(files.count >= 4, "themes/ should hold at least default, light, high-contrast and monochrome")
        var names: Set<String> = []
        for file in files {
            let theme = try Theme(json: Array(try Data(contentsOf: file)))
            #expect(file.deletingPathExtension().lastPathComponent == theme.name, "\(file.lastPathComponent) is named \(theme.name)")
            #expect(Theme.builtIn[theme.name] == theme, "themes/\(file.lastPathComponent) differs from the compiled-in copy in BuiltInThemes.swift")
            names.insert(theme.name)
            // Severity levels must be distinguishable from plain text in colour and without it.
            for depth in [ColorDepth.truecolor, .none] {
                let adapted = theme.adapted(to: depth)
                for role in [ThemeRole.critical, .selection, .header, .tabActive, .new, .error] {
                    #expect(adapted.style(role) != adapted.style(.text), "\(theme.name) at \(depth): \(role) looks like text")
                }
            }
        }
        #expect(names.isSuperset(of: ["default", "light", "high-contrast", "monochrome"]))
        #expect(Set(Theme.builtIn.keys) == names)
    }

    /// WCAG relative luminance and contrast ratio.
    static func contrast(_ a: RGB, _ b: RGB) -> Double {
        func luminance(_ c: RGB) -> Double {
            func channel(_ v: UInt8) -> Double {
                let x = Double(v) / 255
                return x <= 0.03928 ? x / 12.92 : pow((x + 0.055) / 1.055, 2.4)
            }
            return 0.2126 * channel(c.r) + 0.7152 * channel(c.g) + 0.0722 * channel(c.b)
        }
        let (x, y) = (luminance(a), luminance(b))
        return (max(x, y) + 0.05) / (min(x, y) + 0.05)
    }

    @Test("every theme's text meets WCAG 4.5:1 against its background, header badges included")
    func contrast() throws {
        var themes = Theme.builtIn
        for file in Self.themeFiles { themes[file.lastPathComponent] = try Theme(json: Array(try Data(contentsOf: file))) }
        for (name, theme) in themes {
            let base = theme.style(.background).background
            for role in ThemeRole.allCases where role != .border {  // border: box lines, not text
                let style = theme.style(role)
                guard let foreground = style.foreground, let background = style.background ?? base else { continue }
                let ratio = Self.contrast(foreground, background)
                #expect(ratio >= 4.5, "\(name): \(role) is \(String(format: "%.2f", ratio)):1")
            }
            // What the header draws: its own text, and each severity count as a badge on it.
            for role in [ThemeRole.critical, .high, .medium, .low] {
                let badge = headerBadge(theme, role, on: theme.style(.header))
                guard let foreground = badge.foreground, let background = badge.background ?? base else { continue }
                let ratio = Self.contrast(foreground, background)
                #expect(ratio >= 4.5, "\(name): the header's \(role) count is \(String(format: "%.2f", ratio)):1")
            }
        }
        // The check itself can fail: the old default header's low count, green on cyan.
        #expect(Self.contrast(RGB(0xa3, 0xbe, 0x8c), RGB(0x88, 0xc0, 0xd0)) < 1.1)
    }

    @Test("a broken theme says what is wrong in one line")
    func brokenTheme() {
        let cases: [(String, String)] = [
            ("{", "not a theme file"),
            (##"{"name":"x","roles":{"sparkle":{"fg":"#ffffff"}}}"##, "unknown role sparkle"),
            (##"{"name":"x","roles":{"text":{"fg":"chartreuse"}}}"##, "colour chartreuse"),
            (##"{"name":"x","palette":{"a":"#12345"}}"##, "palette colour a"),
            (##"{"name":"x","monochrome":{"text":["blink"]}}"##, "unknown attribute blink"),
        ]
        for (json, expected) in cases {
            #expect(throws: ThemeError.self) { try Theme(json: Array(json.utf8)) }
            do {
                _ = try Theme(json: Array(json.utf8))
            } catch {
                #expect(error.description.contains(expected), "\(json): \(error.description)")
                #expect(!error.description.contains("\n"))
            }
        }
    }

    @Test("colour depth falls back truecolor → 256 → 16 → none, and NO_COLOR wins")
    func depth() {
        #expect(ColorDepth.detect(environment: ["COLORTERM": "truecolor"], terminalColors: 256) == .truecolor)
        #expect(ColorDepth.detect(environment: ["COLORTERM": "24bit"], terminalColors: 16_777_216) == .truecolor)
        #expect(ColorDepth.detect(environment: [:], terminalColors: 256) == .xterm256)
        #expect(ColorDepth.detect(environment: ["COLORTERM": "truecolor"], terminalColors: 8) == .ansi16)
        #expect(ColorDepth.detect(environment: [:], terminalColors: 16) == .ansi16)
        #expect(ColorDepth.detect(environment: [:], terminalColors: 0) == .none)
        #expect(ColorDepth.detect(environment: ["NO_COLOR": "1", "COLORTERM": "truecolor"], terminalColors: 256) == .none)
        #expect(ColorDepth.detect(environment: ["NO_COLOR": ""], terminalColors: 256) == .xterm256)
    }

    @Test("colours map to the nearest xterm-256 and ANSI-16 entries")
    func mapping() {
        #expect(ColorMapping.xterm256(RGB(255, 0, 0)) == 196)
        #expect(ColorMapping.xterm256(RGB(0, 0, 0)) == 16)
        #expect(ColorMapping.xterm256(RGB(128, 128, 128)) == 244)
        #expect(ColorMapping.xterm256(RGB(0x5f, 0x87, 0xaf)) == 67)
        #expect(ColorMapping.ansi16(RGB(250, 10, 10)) == 9)
        #expect(ColorMapping.ansi16(RGB(10, 10, 10)) == 0)
        #expect(ColorMapping.direct(RGB(0x12, 0x34, 0x56)) == 0x123456)
    }

    @Test("the keymap: every action has a key, no key does two things, the README's table is generated from it")
    func keymap() throws {
        var seen: [Key: Action] = [:]
        for binding in KeyMap.bindings {
            for key in binding.keys {
                #expect(seen[key] == nil, "\(key) is bound to \(seen[key].map { "\($0)" } ?? "") and \(binding.action)")
                seen[key] = binding.action
            }
        }
        #expect(Set(seen.values) == Set(Action.allCases))
        let readme = try String(contentsOf: packageRoot.appendingPathComponent("README.md"), encoding: .utf8)
        #expect(readme.contains(KeyMap.markdownTable()), "README's key table is stale: paste the output of rbacwatch keys")
        // The help overlay lists every binding.
        var state = Fixture.state(width: 120, height: 45)
        press(&state, .character("?"))
        let help = render(state).text
        for binding in KeyMap.bindings { #expect(help.contains(binding.help), "help lacks \(binding.help)") }
    }
}
