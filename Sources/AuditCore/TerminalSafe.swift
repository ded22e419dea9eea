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
