import AuditCore
import Foundation
import Synchronization

/// Writing to the terminal. Everything that came from the API goes through `TerminalSafe`.
enum Console {
    static func out(_ line: String) {
        FileHandle.standardOutput.write(Data((line + "\n").utf8))
    }

    static func err(_ line: String) {
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }

    /// One line on stderr explaining why the command failed.
    static func fail(_ message: String) {
        err("rbacwatch: \(TerminalSafe.sanitize(message))")
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
            FileHandle.standardError.write(Data("\r\u{1B}[K\(TerminalSafe.sanitize(text))".utf8))
        }
    }

    /// Erases the line for good: later `show` calls draw nothing.
    func clear() {
        guard enabled else { return }
        state.withLock { state in
            if state.shown && !state.done { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
            state.done = true
        }
    }
}
