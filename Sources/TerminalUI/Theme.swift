import AuditCore
import AuditEngine
import Foundation

/// What a piece of the screen *is*; themes say how each looks.
public enum ThemeRole: String, Sendable, CaseIterable {
    case background, text, muted, border, header, title, tab, tabActive, selection, match
    case critical, high, medium, low, approved, new, error, dialog, footer, key
}

/// How many colours the terminal can show.
public enum ColorDepth: Int, Sendable, Comparable, CustomStringConvertible {
    case none = 0, ansi16 = 1, xterm256 = 2, truecolor = 3

    public static func < (a: ColorDepth, b: ColorDepth) -> Bool { a.rawValue < b.rawValue }

    public var description: String {
        switch self {
        case .none: "none"
        case .ansi16: "16"
        case .xterm256: "256"
        case .truecolor: "truecolor"
        }
    }

    /// The depth for a terminal: `NO_COLOR` means none; `COLORTERM=truecolor|24bit` with enough
    /// colours means truecolor; then what terminfo says.
    public static func detect(environment: [String: String], terminalColors: Int) -> ColorDepth {
        if let noColor = environment["NO_COLOR"], !noColor.isEmpty { return .none }
        let colorterm = environment["COLORTERM"]?.lowercased() ?? ""
        if (colorterm == "truecolor" || colorterm == "24bit"), terminalColors >= 256 { return .truecolor }
        if terminalColors >= 256 { return .xterm256 }
        if terminalColors >= 8 { return .ansi16 }
        return .none
    }
}

/// A theme: a style per role for colour terminals, and attributes only for terminals (or
/// people, `NO_COLOR`) without colour.
public struct Theme: Sendable, Equatable {
    public var name: String
    public var description: String
    var colored: [ThemeRole: Style]
    var monochrome: [ThemeRole: Style]
    /// Which set `style(_:)` answers from.
    public var depth: ColorDepth = .truecolor

    public func style(_ role: ThemeRole) -> Style {
        if depth == .none { return monochrome[role] ?? .plain }
        return colored[role] ?? colored[.text] ?? .plain
    }

    /// This theme for a terminal of `depth`.
    public func adapted(to depth: ColorDepth) -> Theme {
        var copy = self
        copy.depth = depth
        return copy
    }

    public static func role(for severity: Severity) -> ThemeRole {
        switch severity {
        case .critical: .critical
        case .high: .high
        case .medium: .medium
        case .low: .low
        }
    }
}

public struct ThemeError: Error, CustomStringConvertible, Equatable {
    public var description: String
}

extension Theme {
    private struct File: Decodable {
        struct RoleStyle: Decodable {
            var fg: String?
            var bg: String?
            var bold: Bool?
            var dim: Bool?
            var underline: Bool?
            var reverse: Bool?
        }
        var name: String
        var description: String?
        var palette: [String: String]?
        var roles: [String: RoleStyle]?
        var monochrome: [String: [String]]?
    }

    /// Reads a theme file. The error names the file's problem: unknown role, unknown colour,
    /// unknown attribute, or JSON that does not parse.
    public init(json: [UInt8]) throws(ThemeError) {
        let file: File
        do {
            file = try JSONDecoder().decode(File.self, from: Data(json))
        } catch {
            throw ThemeError(description: "not a theme file: \(error)")
        }
        let known = ThemeRole.allCases.map(\.rawValue).joined(separator: ", ")
        var palette: [String: RGB] = [:]
        for (name, value) in file.palette ?? [:] {
            guard let rgb = RGB(hex: value) else {
                throw ThemeError(description: "palette colour \(name) is \(value), not #rrggbb")
            }
            palette[name] = rgb
        }
        func colour(_ reference: String?, _ role: String) throws(ThemeError) -> RGB? {
            guard let reference else { return nil }
            if let named = palette[reference] { return named }
            if let rgb = RGB(hex: reference) { return rgb }
            throw ThemeError(description: "role \(role) uses colour \(reference), which is neither in the palette nor #rrggbb")
        }
        var colored: [ThemeRole: Style] = [:]
        for (name, spec) in file.roles ?? [:] {
            guard let role = ThemeRole(rawValue: name) else {
                throw ThemeError(description: "unknown role \(name) (roles: \(known))")
            }
            colored[role] = Style(
                foreground: try colour(spec.fg, name), background: try colour(spec.bg, name), bold: spec.bold ?? false,
                dim: spec.dim ?? false, underline: spec.underline ?? false, reverse: spec.reverse ?? false)
        }
        // Roles a theme leaves out look like its text.
        let text = colored[.text] ?? colored[.background] ?? .plain
        for role in ThemeRole.allCases where colored[role] == nil { colored[role] = text }
        var monochrome: [ThemeRole: Style] = [:]
        for (name, attributes) in file.monochrome ?? [:] {
            guard let role = ThemeRole(rawValue: name) else {
                throw ThemeError(description: "unknown role \(name) in monochrome (roles: \(known))")
            }
            var style = Style()
            for attribute in attributes {
                switch attribute {
                case "bold": style.bold = true
                case "dim": style.dim = true
                case "underline": style.underline = true
                case "reverse": style.reverse = true
                default: throw ThemeError(description: "unknown attribute \(attribute) for \(name) (use bold, dim, underline, reverse)")
                }
            }
            monochrome[role] = style
        }
        // Without colours at all a theme is monochrome everywhere.
        if file.roles?.isEmpty ?? true { colored = monochrome }
        self.init(name: file.name, description: file.description ?? "", colored: colored, monochrome: monochrome)
    }

    /// The shipped themes, compiled in so the binary needs no files; `themes/*.json` are the same
    /// files (a test keeps them equal), there for people to copy.
    public static let builtIn: [String: Theme] = {
        var themes: [String: Theme] = [:]
        for source in BuiltInThemes.sources {
            do {
                let theme = try Theme(json: Array(source.utf8))
                themes[theme.name] = theme
            } catch {
                preconditionFailure("a built-in theme does not parse: \(error)")
            }
        }
        return themes
    }()

    public static var standard: Theme { builtIn["default"]! }
    public static var mono: Theme { builtIn["monochrome"]! }
}

// MARK: Colour mapping (what the driver sends)

public enum ColorMapping {
    /// The xterm-256 index nearest to `rgb` (the 6×6×6 cube or the grey ramp).
    public static func xterm256(_ rgb: RGB) -> Int {
        func level(_ v: UInt8) -> Int {
            let value = Int(v)
            return value < 48 ? 0 : value < 115 ? 1 : (value - 35) / 40
        }
        let (r, g, b) = (level(rgb.r), level(rgb.g), level(rgb.b))
        let steps = [0, 95, 135, 175, 215, 255]
        let cube = 16 + 36 * r + 6 * g + b
        let cubeDistance = distance(rgb, RGB(UInt8(steps[r]), UInt8(steps[g]), UInt8(steps[b])))
        let average = (Int(rgb.r) + Int(rgb.g) + Int(rgb.b)) / 3
        let greyIndex = average > 238 ? 23 : max(0, (average - 3) / 10)
        let greyValue = UInt8(8 + greyIndex * 10)
        let greyDistance = distance(rgb, RGB(greyValue, greyValue, greyValue))
        return greyDistance < cubeDistance ? 232 + greyIndex : cube
    }

    /// The nearest of the 16 ANSI colours.
    public static func ansi16(_ rgb: RGB) -> Int {
        let table: [RGB] = [
            RGB(0, 0, 0), RGB(205, 0, 0), RGB(0, 205, 0), RGB(205, 205, 0), RGB(0, 0, 238), RGB(205, 0, 205),
            RGB(0, 205, 205), RGB(229, 229, 229), RGB(127, 127, 127), RGB(255, 0, 0), RGB(0, 255, 0), RGB(255, 255, 0),
            RGB(92, 92, 255), RGB(255, 0, 255), RGB(0, 255, 255), RGB(255, 255, 255),
        ]
        var best = 0
        var bestDistance = Int.max
        for (index, candidate) in table.enumerated() {
            let d = distance(rgb, candidate)
            if d < bestDistance {
                best = index
                bestDistance = d
            }
        }
        return best
    }

    /// For direct-colour terminals: the 24-bit value.
    public static func direct(_ rgb: RGB) -> Int {
        Int(rgb.r) << 16 | Int(rgb.g) << 8 | Int(rgb.b)
    }

    static func distance(_ a: RGB, _ b: RGB) -> Int {
        let dr = Int(a.r) - Int(b.r)
        let dg = Int(a.g) - Int(b.g)
        let db = Int(a.b) - Int(b.b)
        return 2 * dr * dr + 4 * dg * dg + 3 * db * db
    }
}

extension Theme {
    /// The built-in themes' JSON, as shipped (seeds for the fuzzer, copies for users).
    public static var builtInSources: [String] { BuiltInThemes.sources }
}
