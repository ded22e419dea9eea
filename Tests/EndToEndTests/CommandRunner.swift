import Foundation
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
