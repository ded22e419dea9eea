import AuditCore
import Foundation
import Synchronization

/// Writing to the terminal. Everything that came from the API goes through `TerminalSafe`.
enum Console {
    static func out(_ line: String) {
        write(Array((line + "\n").utf8), to: STDOUT_FILENO)
    }

    static func err(_ line: String) {
        write(Array((line + "\n").utf8), to: STDERR_FILENO)
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
