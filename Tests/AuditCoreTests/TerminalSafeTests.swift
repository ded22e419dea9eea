import AuditCore
import Testing

@Suite("Terminal-safe text")
struct TerminalSafeTests {
    @Test(
        "control characters and escape sequences are rendered inert and visible",
        arguments: [
            ("plain Zoë 李 😀", "plain Zoë 李 😀"),
            ("red\u{1B}[31mtext", "red\\x1B[31mtext"),
            ("title\u{1B}]0;pwned\u{07}", "title\\x1B]0;pwned\\x07"),
            ("line\nbreak\r", "line\\x0Abreak\\x0D"),
            ("c1\u{9B}2J", "c1\\x9B2J"),
            ("bidi\u{202E}txt.exe", "bidi\\u{202E}txt.exe"),
            ("del\u{7F}", "del\\x7F"),
        ])
    func sanitize(input: String, expected: String) {
        #expect(TerminalSafe.sanitize(input) == expected)
    }
}
