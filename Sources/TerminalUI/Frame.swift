import AuditCore
import AuditEngine

/// A colour as the theme gives it; the driver maps it to what the terminal can show.
public struct RGB: Sendable, Hashable {
    public var r: UInt8, g: UInt8, b: UInt8

    public init(_ r: UInt8, _ g: UInt8, _ b: UInt8) {
        (self.r, self.g, self.b) = (r, g, b)
    }

    /// `#rrggbb`.
    public init?(hex: String) {
        let text = hex.hasPrefix("#") ? String(hex.dropFirst()) : hex
        guard text.count == 6, let value = UInt32(text, radix: 16) else { return nil }
        self.init(UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF))
    }
}

/// How one cell looks.
public struct Style: Sendable, Hashable {
    public var foreground: RGB?
    public var background: RGB?
    public var bold = false
    public var dim = false
    public var underline = false
    public var reverse = false

    public init(
        foreground: RGB? = nil, background: RGB? = nil, bold: Bool = false, dim: Bool = false, underline: Bool = false,
        reverse: Bool = false
    ) {
        self.foreground = foreground
        self.background = background
        self.bold = bold
        self.dim = dim
        self.underline = underline
        self.reverse = reverse
    }

    public static let plain = Style()
}

/// One terminal cell: a grapheme (a wide one spans this cell and an empty continuation cell).
public struct Cell: Sendable, Hashable {
    public var text: String
    public var style: Style

    public static func blank(_ style: Style) -> Cell { Cell(text: " ", style: style) }
    /// The second column of a wide character.
    static func continuation(_ style: Style) -> Cell { Cell(text: "", style: style) }
}

/// What the screen should show: the whole grid, computed purely from the state. Equal frames
/// are not drawn twice.
public struct Frame: Sendable, Equatable {
    public let width: Int
    public let height: Int
    public private(set) var cells: [Cell]
    /// Where the terminal cursor should be (for text input), if visible.
    public var cursor: (row: Int, column: Int)?

    public init(width: Int, height: Int, fill: Style = .plain) {
        self.width = max(0, width)
        self.height = max(0, height)
        cells = Array(repeating: .blank(fill), count: self.width * self.height)
    }

    public static func == (a: Frame, b: Frame) -> Bool {
        a.width == b.width && a.height == b.height && a.cursor?.row == b.cursor?.row && a.cursor?.column == b.cursor?.column
            && a.cells == b.cells
    }

    public subscript(row: Int, column: Int) -> Cell {
        cells[row * width + column]
    }

    /// Writes `text` from (row, column) within `limit` columns (default: to the edge), made
    /// terminal-safe first; cuts with `…` when it does not fit. Returns the columns used.
    @discardableResult
    public mutating func put(_ text: String, row: Int, column: Int, limit: Int? = nil, style: Style) -> Int {
        guard row >= 0, row < height, column >= 0, column < width else { return 0 }
        let available = min(limit ?? width - column, width - column)
        guard available > 0 else { return 0 }
        // Printable ASCII, most of what is drawn, is one cell per byte and needs no sanitising.
        let bytes = text.utf8
        if bytes.allSatisfy({ $0 >= 0x20 && $0 < 0x7F }) {
            let room = bytes.count > available ? available - 1 : available
            var used = 0
            for byte in bytes.prefix(room) {
                cells[row * width + column + used] = Cell(text: String(Unicode.Scalar(byte)), style: style)
                used += 1
            }
            if bytes.count > available {
                cells[row * width + column + used] = Cell(text: "…", style: style)
                used += 1
            }
            return used
        }
        let safe = TerminalSafe.sanitize(text)
        let total = CellWidth.of(safe)
        let room = total > available ? available - 1 : available
        var used = 0
        for character in safe {
            // Drawn as its first scalar and its combining marks: joiners, selectors and the rest
            // of an emoji sequence are dropped, so every cell is exactly as wide as the terminal
            // will make it (ncurses and tmux count scalars, not grapheme clusters).
            let scalars = character.unicodeScalars
            guard let base = scalars.first else { continue }
            let w = CellWidth.of(base)
            if w == 0 {
                // A lone combining mark joins the previous cell; a lone format control is dropped.
                if used > 0, CellWidth.isCombining(base) {
                    var index = row * width + column + used - 1
                    if cells[index].text.isEmpty, used > 1 { index -= 1 }
                    cells[index].text.unicodeScalars.append(base)
                }
                continue
            }
            guard used + w <= room else { break }
            var shown = String.UnicodeScalarView([base])
            for mark in scalars.dropFirst() where CellWidth.isCombining(mark) { shown.append(mark) }
            cells[row * width + column + used] = Cell(text: String(shown), style: style)
            if w == 2 { cells[row * width + column + used + 1] = .continuation(style) }
            used += w
        }
        if total > available {
            cells[row * width + column + used] = Cell(text: "…", style: style)
            used += 1
        }
        return used
    }

    /// Replaces whole cells by a table (used for the ASCII fallback).
    public mutating func replaceChrome(_ table: [String: String]) {
        for index in cells.indices {
            if let replacement = table[cells[index].text] { cells[index].text = replacement }
        }
    }

    /// Fills `count` cells with spaces in `style`.
    public mutating func fill(row: Int, column: Int, count: Int, style: Style) {
        guard row >= 0, row < height else { return }
        let start = max(0, column)
        let end = min(width, column + count)
        guard start < end else { return }
        for index in (row * width + start)..<(row * width + end) { cells[index] = .blank(style) }
        // Never leave half of a wide character behind at the left edge.
        if start > 0, cells[row * width + start - 1].text.isEmpty == false,
            CellWidth.of(cells[row * width + start - 1].text) == 2
        {
            cells[row * width + start - 1] = .blank(cells[row * width + start - 1].style)
        }
    }

    /// The characters of the frame, one line per row, trailing spaces removed: what a person
    /// sees, for golden tests and `tmux capture-pane` comparisons.
    public var text: String {
        var lines: [String] = []
        lines.reserveCapacity(height)
        for row in 0..<height {
            var line = ""
            for column in 0..<width { line += cells[row * width + column].text }
            while line.hasSuffix(" ") { line.removeLast() }
            lines.append(line)
        }
        return lines.joined(separator: "\n")
    }
}

/// Box-drawing characters, or ASCII where the terminal cannot show them.
public struct Glyphs: Sendable, Equatable {
    public var horizontal: String
    public var vertical: String
    public var topLeft: String
    public var topRight: String
    public var bottomLeft: String
    public var bottomRight: String
    public var bullet: String
    public var marker: String

    public static let unicode = Glyphs(
        horizontal: "─", vertical: "│", topLeft: "┌", topRight: "┐", bottomLeft: "└", bottomRight: "┘", bullet: "●", marker: "▸")
    public static let ascii = Glyphs(
        horizontal: "-", vertical: "|", topLeft: "+", topRight: "+", bottomLeft: "+", bottomRight: "+", bullet: "*", marker: ">")
}
