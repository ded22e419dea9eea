/// Text from a remote API is untrusted: a user name can carry an escape sequence that moves the
/// cursor, rewrites the screen or sets the window title. Everything printed to a terminal goes
/// through `TerminalSafe.sanitize`, which renders such characters inert and visible.
public enum TerminalSafe {
    /// Replaces C0 and C1 control characters, DEL, and Unicode bidirectional overrides with a
    /// visible escape (`\x1B`, `\u{202E}`); leaves every other character as it is.
    public static func sanitize(_ text: String) -> String {
        guard text.unicodeScalars.contains(where: isUnsafe) else { return text }
        var out = String.UnicodeScalarView()
        for scalar in text.unicodeScalars {
            if isUnsafe(scalar) {
                let escaped =
                    scalar.value < 0x100
                    ? "\\x" + hex(scalar.value, width: 2)
                    : "\\u{" + hex(scalar.value, width: 4) + "}"
                out.append(contentsOf: escaped.unicodeScalars)
            } else {
                out.append(scalar)
            }
        }
        return String(out)
    }

    /// Text of several lines, for a terminal: as `sanitize`, but line breaks and tabs stay.
    public static func sanitizeLines(_ text: String) -> String {
        text.split(separator: "\n", omittingEmptySubsequences: false)
            .map { line in line.split(separator: "\t", omittingEmptySubsequences: false).map { sanitize(String($0)) }.joined(separator: "\t") }
            .joined(separator: "\n")
    }

    /// JSON text made safe for a terminal without changing what it means: every unsafe character
    /// (they can only stand inside strings) becomes a `\u` escape of four hex digits, which any
    /// JSON reader turns back into the same character. Line breaks between records stay.
    public static func sanitizeJSON(_ bytes: [UInt8]) -> [UInt8] {
        // Fast path: ASCII without DEL or C0 other than newline, and no multi-byte sequences to check.
        if !bytes.contains(where: { $0 >= 0x7F || ($0 < 0x20 && $0 != 0x0A) }) { return bytes }
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count + 64)
        for scalar in String(decoding: bytes, as: UTF8.self).unicodeScalars {
            if scalar != "\n", isUnsafe(scalar) {
                let digits = Array(String(scalar.value, radix: 16, uppercase: true).utf8)
                out.append(contentsOf: Array("\\u".utf8) + Array(repeating: UInt8(ascii: "0"), count: max(0, 4 - digits.count)) + digits)
            } else {
                out.append(contentsOf: Array(String(scalar).utf8))
            }
        }
        return out
    }

    static func isUnsafe(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x00...0x1F, 0x7F...0x9F: true
        // Bidirectional embedding, override and isolate controls (the "Trojan Source" set).
        case 0x202A...0x202E, 0x2066...0x2069, 0x200E, 0x200F, 0x061C: true
        default: false
        }
    }

    private static func hex(_ value: UInt32, width: Int) -> String {
        let digits = String(value, radix: 16, uppercase: true)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }
}
