import Foundation

/// A long-running child process (a worker, a server) for tests and benches: started with
/// posix_spawn, its stdout and stderr in files, signalled and reaped by pid — never through
/// Foundation's Process, whose exit notification rides on a dispatch queue a busy test process
/// may starve.
public final class ChildProcess: @unchecked Sendable {
    public struct SpawnError: Error, CustomStringConvertible {
        public var description: String
    }

    public let name: String
    public let pid: pid_t
    public let stdoutPath: String
    public let stderrPath: String
    private let state = NSLock()
    private var exited = false
    private var status: Int32?

    /// Starts `executable arguments…` with exactly `environment`; output goes to
    /// `directory/NAME.out` and `NAME.err` (0600).
    public init(name: String, executable: String, arguments: [String], environment: [String: String], directory: URL) throws {
        self.name = name
        stdoutPath = directory.appendingPathComponent("\(name).out").path
        stderrPath = directory.appendingPathComponent("\(name).err").path
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, stdoutPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_addopen(&actions, 2, stderrPath, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        // Nothing else of this process's leaks into the child: a server it starts would otherwise
        // hold open the pipes of every other test's child, and their readers never see the end.
        ChildProcess.closeInheritedDescriptors(&actions)
        let argv: [UnsafeMutablePointer<CChar>?] = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp: [UnsafeMutablePointer<CChar>?] = environment.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for pointer in argv + envp { free(pointer) } }
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        ChildProcess.cleanSignals(&attributes)
        var pid: pid_t = 0
        let status = posix_spawn(&pid, executable, &actions, &attributes, argv, envp)
        guard status == 0 else { throw SpawnError(description: "cannot start \(executable): \(String(cString: strerror(status)))") }
        self.pid = pid
    }

    public func signal(_ number: Int32) { _ = kill(pid, number) }

    /// A clean signal mask and default dispositions for a child: the calling thread (a
    /// concurrency worker) may block signals, and a child (a tmux server, PostgreSQL) that
    /// inherited the mask could neither reap its own children nor be stopped.
    public static func cleanSignals(_ attributes: inout posix_spawnattr_t) {
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attributes, &empty)
        var all = sigset_t()
        sigfillset(&all)
        sigdelset(&all, SIGKILL)
        sigdelset(&all, SIGSTOP)
        posix_spawnattr_setsigdefault(&attributes, &all)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
    }

    /// Adds "close every descriptor from 3 up" to spawn actions (glibc's
    /// posix_spawn_file_actions_addclosefrom_np, which Swift's Glibc module does not import: looked
    /// up by name). Without it a child inherits whatever the process has open, pipes included.
    public static func closeInheritedDescriptors(_ actions: inout posix_spawn_file_actions_t) {
        typealias CloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, Int32) -> Int32
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "posix_spawn_file_actions_addclosefrom_np") else { return }
        let closeFrom = unsafeBitCast(symbol, to: CloseFrom.self)
        _ = closeFrom(&actions, 3)
    }

    /// What it wrote to stderr so far.
    public var log: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }
    public var output: String { (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? "" }

    /// Reaps it if it has exited; true once it has.
    public func hasExited() -> Bool {
        state.lock()
        defer { state.unlock() }
        if exited { return true }
        var raw: Int32 = 0
        if waitpid(pid, &raw, WNOHANG) == pid {
            exited = true
            // WIFEXITED / WEXITSTATUS; a signal as 128 + its number, as shells report it.
            status = (raw & 0x7f) == 0 ? (raw >> 8) & 0xff : 128 + (raw & 0x7f)
        }
        return exited
    }

    /// Its exit status once reaped (128 + the signal's number if a signal ended it).
    public var exitStatus: Int32? {
        _ = hasExited()
        state.lock()
        defer { state.unlock() }
        return status
    }

    /// Waits (polling, bounded) until it exits; false if it is still running at the deadline.
    public func waitForExit(within limit: Duration) async -> Bool {
        let deadline = ContinuousClock.now + limit
        while ContinuousClock.now < deadline {
            if hasExited() { return true }
            try? await Task.sleep(for: .milliseconds(50))
        }
        return hasExited()
    }

    /// SIGTERM (after SIGCONT, in case it is stopped), then SIGKILL if it has not exited within
    /// `grace`; returns whether it exited by itself.
    @discardableResult
    public func stop(grace: Duration = .seconds(20)) async -> Bool {
        if hasExited() { return false }
        signal(SIGCONT)
        signal(SIGTERM)
        if await waitForExit(within: grace) { return true }
        signal(SIGKILL)
        _ = await waitForExit(within: .seconds(10))
        return false
    }

    /// SIGKILL, and reaped.
    public func kill9() async {
        signal(SIGKILL)
        _ = await waitForExit(within: .seconds(10))
    }
}
