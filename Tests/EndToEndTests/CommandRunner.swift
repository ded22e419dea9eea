import Foundation
import AuditTestSupport
import Testing

/// Runs the built `rbacwatch` executable as a separate process, as a user would.
struct CommandRunner {
    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// The executable next to the test bundle (`swift test` builds it), or `RBACWATCH_BINARY`.
    static var binary: String {
        TimerWatch.start()
        if let path = ProcessInfo.processInfo.environment["RBACWATCH_BINARY"] { return path }
        let bundleDir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        let candidates = [
            bundleDir.appendingPathComponent("rbacwatch").path,
            bundleDir.deletingLastPathComponent().appendingPathComponent("rbacwatch").path,
            URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
                .appendingPathComponent(".build/debug/rbacwatch").path,
        ]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) } ?? candidates[0]
    }

    /// Runs `rbacwatch arguments…` with exactly `environment` (plus PATH), waiting up to `timeout`.
    static func run(
        _ arguments: [String], environment: [String: String] = [:], timeout: Duration = .seconds(120)
    ) async throws -> Result {
        try await runProcess(binary, arguments, environment: environment, timeout: timeout)
    }

    static func runProcess(
        _ executable: String, _ arguments: [String], environment: [String: String] = [:], timeout: Duration = .seconds(120)
    ) async throws -> Result {
        guard FileManager.default.isExecutableFile(atPath: executable) else {
            Issue.record("executable not found at \(executable): build the package first (swift build)")
            return Result(status: -1, stdout: "", stderr: "")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        var env = environment
        env["PATH"] = env["PATH"] ?? ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        env["HOME"] = env["HOME"] ?? NSTemporaryDirectory()
        process.environment = env
        let out = Pipe()
        let err = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = FileHandle.nullDevice
        try process.run()
        // Read both pipes on threads of their own so neither fills up.
        async let stdout = readToEnd(out.fileHandleForReading)
        async let stderr = readToEnd(err.fileHandleForReading)
        let deadline = ContinuousClock.now + timeout
        while process.isRunning {
            if ContinuousClock.now > deadline {
                process.terminate()
                Issue.record("\(executable) \(arguments.joined(separator: " ")) did not finish within \(timeout)")
                break
            }
            try await Task.sleep(for: .milliseconds(20))
        }
        process.waitUntilExit()
        return Result(
            status: process.terminationStatus, stdout: String(decoding: await stdout, as: UTF8.self),
            stderr: String(decoding: await stderr, as: UTF8.self))
    }

    /// Reads a pipe to its end on a thread of its own.
    static func readToEnd(_ handle: FileHandle) async -> Data {
        (try? await onOwnThread { handle.readDataToEndOfFile() }) ?? Data()
    }

    /// The first line `process` writes to `handle`, read on a thread of its own. If none comes within
    /// `timeout` the process is terminated (which ends the read) and the test fails.
    static func firstLine(of handle: FileHandle, from process: Process, timeout: Duration) async throws -> String {
        let watchdog = Task {
            try await Task.sleep(for: timeout)
            if process.isRunning { process.terminate() }
        }
        defer { watchdog.cancel() }
        let line: String? = try await onOwnThread {
            var data = Data()
            while true {
                let chunk = handle.availableData
                if chunk.isEmpty { return nil }
                data.append(chunk)
                if let newline = data.firstIndex(of: 0x0A) { return String(decoding: data[..<newline], as: UTF8.self) }
            }
        }
        return try #require(line, "the process ended without printing a line")
    }

    static func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("rbacwatch-test-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }
}

/// Runs blocking work (a read that waits for a child, `waitpid`) on a thread of its own.
///
/// Never on the cooperative pool, nor on GCD's global queues: on Linux they are the same few
/// threads, and a handful of tests each blocking one starves every other test in the process
/// (measured: in-process HTTP tests then time out in bulk on a loaded 2-core machine).
func onOwnThread<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        let thread = Thread {
            // Signals blocked, as on GCD's threads: a SIGCHLD landing here would interrupt a read
            // that Foundation does not retry (`readDataToEndOfFile` traps on EINTR).
            blockAllSignals()
            continuation.resume(with: Result { try body() })
        }
        thread.stackSize = 1 << 20
        thread.start()
    }
}

/// Blocks every signal in the calling thread.
func blockAllSignals() {
    var all = sigset_t()
    sigfillset(&all)
    pthread_sigmask(SIG_BLOCK, &all, nil)
}

/// A run of the binary with what it cost: wall time and peak memory (`ru_maxrss` from
/// `wait4`, this child's own), for tests that bound both.
struct MeasuredRun {
    var status: Int32
    /// Set when the process ended by a signal (a trap is SIGILL or SIGTRAP).
    var signal: Int32?
    var stdout: String
    var stderr: String
    var wall: Duration
    /// Peak resident memory, in bytes.
    var peakBytes: Int
    /// Whether it had to be killed at the deadline.
    var timedOut: Bool

    var output: String { stdout + stderr }
    var stderrLines: [Substring] { stderr.split(separator: "\n") }
}

extension CommandRunner {
    /// Runs `rbacwatch arguments…` with exactly `environment` (plus PATH and HOME), killing it at
    /// `timeout`, and measures it.
    static func measure(
        _ arguments: [String], environment: [String: String] = [:], timeout: Duration = .seconds(60)
    ) async throws -> MeasuredRun {
        var env = environment
        env["PATH"] = env["PATH"] ?? ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        env["HOME"] = env["HOME"] ?? NSTemporaryDirectory()
        let executable = binary
        guard FileManager.default.isExecutableFile(atPath: executable) else {
            Issue.record("executable not found at \(executable): build the package first (swift build)")
            return MeasuredRun(status: -1, stdout: "", stderr: "", wall: .zero, peakBytes: 0, timedOut: false)
        }
        var outPipe: [Int32] = [0, 0]
        var errPipe: [Int32] = [0, 0]
        guard pipe(&outPipe) == 0, pipe(&errPipe) == 0 else { throw POSIXError(.EMFILE) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_adddup2(&actions, outPipe[1], 1)
        posix_spawn_file_actions_adddup2(&actions, errPipe[1], 2)
        for fd in outPipe + errPipe { posix_spawn_file_actions_addclose(&actions, fd) }
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for p in argv { free(p) }
            for p in envp { free(p) }
        }
        var pid: pid_t = 0
        let started = ContinuousClock.now
        let spawned = posix_spawn(&pid, executable, &actions, nil, argv, envp)
        close(outPipe[1])
        close(errPipe[1])
        guard spawned == 0 else {
            close(outPipe[0])
            close(errPipe[0])
            throw POSIXError(POSIXErrorCode(rawValue: spawned) ?? .EINVAL)
        }
        let (outFD, errFD, child) = (outPipe[0], errPipe[0], pid)
        async let stdout = onOwnThread { Self.drain(outFD) }
        async let stderr = onOwnThread { Self.drain(errFD) }
        let deadline = started + timeout
        let waited = try await onOwnThread { () -> (Int32, Int, Bool) in
            var status: Int32 = 0
            var usage = rusage()
            var killed = false
            // The peak is the child's own VmHWM, sampled until it exits: its `ru_maxrss` would
            // include this (large) test process, whose memory the child shares until it execs.
            var peak = 0
            while true {
                peak = max(peak, Self.highWaterMark(child))
                let result = wait4(child, &status, WNOHANG, &usage)
                if result == child { return (status, peak > 0 ? peak : Int(usage.ru_maxrss) * 1024, killed) }
                if result < 0 && errno != EINTR { return (status, peak, killed) }
                if !killed, ContinuousClock.now > deadline {
                    kill(child, SIGKILL)
                    killed = true
                }
                usleep(5_000)
            }
        }
        let wall = ContinuousClock.now - started
        let (status, peak, killed) = waited
        let signalled = (status & 0x7F) != 0 && (status & 0x7F) != 0x7F
        if killed { Issue.record("rbacwatch \(arguments.joined(separator: " ")) did not finish within \(timeout)") }
        return MeasuredRun(
            status: signalled ? -1 : (status >> 8) & 0xFF, signal: signalled ? status & 0x7F : nil,
            stdout: String(decoding: try await stdout, as: UTF8.self), stderr: String(decoding: try await stderr, as: UTF8.self),
            wall: wall, peakBytes: peak, timedOut: killed)
    }

    /// `VmHWM` of a running process, in bytes (0 when it cannot be read).
    static func highWaterMark(_ pid: pid_t) -> Int {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = text.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") })
        else { return 0 }
        return (Int(line.split(separator: " ", omittingEmptySubsequences: true).dropFirst().first ?? "") ?? 0) * 1024
    }

    /// Reads a descriptor to its end, then closes it.
    static func drain(_ fd: Int32) -> [UInt8] {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 65_536)
        while true {
            let got = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
            if got < 0 && errno == EINTR { continue }
            if got <= 0 { break }
            bytes += chunk[0..<got]
        }
        close(fd)
        return bytes
    }
}
