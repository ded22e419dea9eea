import AuditCore
import Foundation
import Synchronization

/// Writing to the terminal. Every line goes through `TerminalSafe` on its way out — text from
/// the API, from error messages, from flags — so no path can carry an escape sequence to stdout
/// or stderr (the only raw writes are the progress line's own cursor controls).
enum Console {
    static func out(_ line: String) {
        write(Array((TerminalSafe.sanitizeLines(line) + "\n").utf8), to: STDOUT_FILENO)
    }

    static func err(_ line: String) {
        write(Array((TerminalSafe.sanitizeLines(line) + "\n").utf8), to: STDERR_FILENO)
    }

    /// One JSON record on stdout (a finding, a drift item), its unsafe characters escaped the
    /// JSON way: the same value to a reader, inert on a terminal.
    static func jsonLine(_ bytes: [UInt8]) {
        write(TerminalSafe.sanitizeJSON(bytes) + [0x0A], to: STDOUT_FILENO)
    }

    /// A report or a file's bytes on stdout: as they are into a pipe or a file, and made inert
    /// when stdout is a terminal (`json`: escaped the JSON way, so it stays valid).
    static func output(_ bytes: [UInt8], json: Bool) {
        guard stdoutIsTerminal else { return write(bytes, to: STDOUT_FILENO) }
        write(json ? TerminalSafe.sanitizeJSON(bytes) : Array(TerminalSafe.sanitizeLines(String(decoding: bytes, as: UTF8.self)).utf8), to: STDOUT_FILENO)
    }

    /// Writes all of `bytes`. When the reader has gone (`| head`), ends the process the way Unix
    /// tools do, by SIGPIPE, instead of crashing.
    static func write(_ bytes: [UInt8], to fd: Int32) {
        var offset = 0
        bytes.withUnsafeBytes { buffer in
            while offset < buffer.count {
                let written = Foundation.write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    if errno == EPIPE {
                        signal(SIGPIPE, SIG_DFL)
                        raise(SIGPIPE)
                    }
                    return
                }
                offset += written
            }
        }
    }

    /// One line on stderr explaining why the command failed.
    static func fail(_ message: String) {
        err("rbacwatch: \(TerminalSafe.sanitize(message))")
    }

    /// Whether `path` is where stdout goes (`/dev/stdout`, `/proc/self/fd/1`, the file it was
    /// redirected to).
    static func isStdout(_ path: String) -> Bool {
        var file = stat()
        var out = stat()
        return stat(path, &file) == 0 && fstat(STDOUT_FILENO, &out) == 0 && file.st_dev == out.st_dev && file.st_ino == out.st_ino
    }

    static var stderrIsTerminal: Bool { isatty(STDERR_FILENO) == 1 }
    static var stdoutIsTerminal: Bool { isatty(STDOUT_FILENO) == 1 }
}

/// A progress line on stderr, redrawn in place at most ten times a second; only when stderr
/// is a terminal.
final class ProgressLine: Sendable {
    private let state = Mutex<(last: ContinuousClock.Instant?, shown: Bool, done: Bool)>((nil, false, false))
    let enabled: Bool

    init(enabled: Bool) {
        self.enabled = enabled
    }

    func show(_ text: String) {
        guard enabled else { return }
        let now = ContinuousClock.now
        // Drawn under the lock, so a line can never land after `clear`.
        state.withLock { state in
            if state.done { return }
            if let last = state.last, now - last < .milliseconds(100) { return }
            state.last = now
            state.shown = true
            Console.write(Array("\r\u{1B}[K\(TerminalSafe.sanitize(text))".utf8), to: STDERR_FILENO)
        }
    }

    /// Erases the line for good: later `show` calls draw nothing.
    func clear() {
        guard enabled else { return }
        state.withLock { state in
            if state.shown && !state.done { Console.write(Array("\r\u{1B}[K".utf8), to: STDERR_FILENO) }
            state.done = true
        }
    }
}

/// Rows as aligned columns (cells already made terminal-safe), the first row the header.
enum TextTable {
    static func render(_ rows: [[String]]) -> String {
        var widths: [Int] = []
        for row in rows {
            for (index, cell) in row.enumerated() {
                if index >= widths.count { widths.append(0) }
                widths[index] = max(widths[index], cell.count)
            }
        }
        return rows.map { row in
            row.enumerated().map { index, cell in
                index == row.count - 1 ? cell : cell.padding(toLength: widths[index], withPad: " ", startingAt: 0)
            }.joined(separator: "  ")
        }.joined(separator: "\n")
    }
}
