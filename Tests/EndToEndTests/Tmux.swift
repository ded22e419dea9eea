import AuditTestSupport
import Foundation
import Testing

/// A private tmux server with one 120×40 UTF-8 session running a command: the dashboard's tests
/// drive a real terminal with it. Frames are awaited by polling `capture-pane` with a deadline,
/// never by fixed sleeps. Every tmux call runs on a thread of its own (`onOwnThread`), never on
/// the pool the other tests share.
final class Tmux: Sendable {
    let socket: String
    let session = "rbw"

    /// tmux itself, or nil (the tests then fail and say how to install it: never a silent skip).
    static let executable: String? = ["/usr/bin/tmux", "/usr/local/bin/tmux", "/opt/homebrew/bin/tmux"].first {
        FileManager.default.isExecutableFile(atPath: $0)
    }

    /// Starts `arguments` (rbacwatch's) in a new session. After the program ends the pane prints
    /// `EXIT=<status>` and the terminal's `icanon`/`echo` modes, then stays open.
    static func start(_ arguments: [String], environment: [String: String] = [:], width: Int = 120, height: Int = 40) async throws -> Tmux {
        try await onOwnThread { try Tmux(arguments, environment: environment, width: width, height: height) }
    }

    private init(_ arguments: [String], environment: [String: String], width: Int, height: Int) throws {
        guard let tmux = Self.executable else {
            throw TmuxError("tmux is not installed: the dashboard's end-to-end tests need it (apt-get install -y tmux; .ci/run does)")
        }
        socket = "rbw-test-\(UUID().uuidString.prefix(8))"
        let quoted = ([CommandRunner.binary] + arguments).map(Self.shellQuote).joined(separator: " ")
        // The shell traps (rather than ignores, which children would inherit) SIGINT and SIGTERM
        // so that a Ctrl-C meant for the program does not end the shell before it reports.
        // The test runner's own NO_COLOR (set when its output is not a terminal) must not leak
        // into the dashboard under test unless a test asks for it.
        let unset = environment["NO_COLOR"] == nil ? "unset NO_COLOR; " : ""
        let script = "trap true INT TERM; \(unset)\(quoted); echo \"EXIT=$?\"; stty -a | tr ' ;' '\\n\\n' | grep -E '^-?(icanon|echo)$' | tr '\\n' ' '; echo; sleep 600"
        var command = [tmux, "-L", socket, "-f", "/dev/null", "new-session", "-d", "-s", session, "-x", String(width), "-y", String(height)]
        let env = ["LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "TERM": "xterm-256color", "HOME": NSTemporaryDirectory()]
            .merging(environment) { $1 }
        for (key, value) in env.sorted(by: { $0.key < $1.key }) { command += ["-e", "\(key)=\(value)"] }
        command += ["/bin/sh", "-c", script]
        try Self.run(command)
    }

    deinit {
        guard let tmux = Self.executable else { return }
        let socket = self.socket
        Thread {
            blockAllSignals()
            _ = try? Self.run([tmux, "-L", socket, "kill-server"], check: false)
        }.start()
    }

    /// Runs a command to completion on a thread of its own.
    @discardableResult
    static func runAsync(_ command: [String], check: Bool = true) async throws -> String {
        try await onOwnThread { try run(command, check: check) }
    }

    static func shellQuote(_ text: String) -> String {
        "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }

    /// Runs a command to completion and returns what it printed (stdout and stderr together).
    ///
    /// Spawned with `posix_spawn` and reaped with `waitpid`, output to a file: `new-session -d`
    /// forks the tmux server, which keeps inherited descriptors open for its whole life (a pipe
    /// would never reach end-of-file).
    @discardableResult
    static func run(_ command: [String], check: Bool = true) throws -> String {
        let outputPath = FileManager.default.temporaryDirectory.appendingPathComponent("rbw-tmux-\(UUID().uuidString)").path
        defer { unlink(outputPath) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        // A clean signal mask and default dispositions: the calling thread (a Swift concurrency
        // worker) blocks most signals, and a tmux server that inherited that mask could neither
        // reap its panes nor be killed.
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        ChildProcess.cleanSignals(&attributes)
        var argv: [UnsafeMutablePointer<CChar>?] = command.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, command[0], &actions, &attributes, &argv, environ)
        guard spawned == 0 else { throw TmuxError("cannot run \(command[0]): \(String(cString: strerror(spawned)))") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        let text = String(decoding: FileManager.default.contents(atPath: outputPath) ?? Data(), as: UTF8.self)
        let exited = (status & 0x7f) == 0
        let code = (status >> 8) & 0xff
        if check && !(exited && code == 0) {
            throw TmuxError("\(command.dropFirst().prefix(4).joined(separator: " ")) failed: \(text)")
        }
        return text
    }

    private func tmux(_ arguments: [String]) async throws -> String {
        try await Self.runAsync([Self.executable!, "-L", socket] + arguments)
    }

    /// The screen as text, one line per row.
    func screen() async throws -> String { try await tmux(["capture-pane", "-p", "-t", session]) }

    /// The screen with its colours and attributes as escape sequences.
    func styledScreen() async throws -> String { try await tmux(["capture-pane", "-p", "-e", "-t", session]) }

    /// The screen's rows (capture-pane ends every row, the last too, with a newline).
    static func rows(_ screen: String) -> [String] {
        var rows = screen.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if rows.last == "" { rows.removeLast() }
        return rows
    }

    func lines() async throws -> [String] { Self.rows(try await screen()) }

    /// tmux key names: `j`, `Enter`, `Escape`, `Tab`, `BTab`, `C-c`, `NPage`…
    func keys(_ keys: String...) async throws { _ = try await tmux(["send-keys", "-t", session] + keys) }

    /// Text typed as it is.
    func type(_ text: String) async throws { _ = try await tmux(["send-keys", "-t", session, "-l", text]) }

    func resize(width: Int, height: Int) async throws {
        _ = try await tmux(["resize-window", "-t", session, "-x", String(width), "-y", String(height)])
    }

    func paneTitle() async throws -> String { try await tmux(["display-message", "-p", "-t", session, "#{pane_title}"]).trimmingCharacters(in: .newlines) }

    /// The shell's pid; the program under test is its child.
    func shellPid() async throws -> Int32 { Int32(try await tmux(["display-message", "-p", "-t", session, "#{pane_pid}"]).trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0 }

    /// Polls the screen until `predicate` holds; fails with the last screen after `timeout`.
    @discardableResult
    func waitFor(
        _ what: String, timeout: Duration = .seconds(30), sourceLocation: SourceLocation = #_sourceLocation, _ predicate: (String) -> Bool
    ) async throws -> String {
        let deadline = ContinuousClock.now + timeout
        var last = ""
        while ContinuousClock.now < deadline {
            last = try await screen()
            if predicate(last) { return last }
            try await Task.sleep(for: .milliseconds(50))
        }
        // One last look: a slow machine may have slept past the deadline since the last poll.
        last = try await screen()
        if predicate(last) { return last }
        Issue.record("timed out after \(timeout) waiting for \(what); the screen:\n\(last)", sourceLocation: sourceLocation)
        throw TmuxError("timed out waiting for \(what)")
    }

    func waitFor(_ text: String, timeout: Duration = .seconds(30), sourceLocation: SourceLocation = #_sourceLocation) async throws -> String {
        try await waitFor("\"\(text)\"", timeout: timeout, sourceLocation: sourceLocation) { $0.contains(text) }
    }

    /// Waits for the program to end and returns its exit status and the terminal modes after it.
    func waitForExit(timeout: Duration = .seconds(30)) async throws -> (status: Int, modes: String) {
        let screen = try await waitFor("the program to exit", timeout: timeout) { screen in
            screen.split(separator: "\n").contains { $0.hasPrefix("EXIT=") } && screen.contains("icanon")
        }
        let lines = screen.split(separator: "\n").map(String.init)
        let index = lines.firstIndex { $0.hasPrefix("EXIT=") }!
        let status = Int(lines[index].dropFirst(5)) ?? -1
        return (status, index + 1 < lines.count ? lines[index + 1] : "")
    }
}

struct TmuxError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Display columns of text as a terminal counts them, for the few scripts these tests use: CJK
/// ideographs take two columns, everything else here one. (Independent of the code under test.)
func displayWidth(_ text: Substring) -> Int {
    text.unicodeScalars.reduce(0) { $0 + ((0x4E00...0x9FFF).contains($1.value) ? 2 : 1) }
}

/// The display column at which `needle` starts in `line`, if it does.
func displayColumn(of needle: String, in line: String) -> Int? {
    guard let range = line.range(of: needle) else { return nil }
    return displayWidth(line[..<range.lowerBound])
}
