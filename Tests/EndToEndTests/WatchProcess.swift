import Foundation
import Testing

/// `rbacwatch watch` as a user runs it, for the end-to-end tests: the real binary with its
/// findings and drift items on stdout (a file) and its log in a file, both read as they grow.
struct WatchProcess {
    let process: Process
    let logPath: String
    let outPath: String
    private let output: FileHandle

    init(_ arguments: [String], environment: [String: String], directory: URL) throws {
        logPath = directory.appendingPathComponent("watch.log").path
        outPath = directory.appendingPathComponent("watch.jsonl").path
        _ = FileManager.default.createFile(atPath: outPath, contents: nil)
        output = try FileHandle(forWritingTo: URL(fileURLWithPath: outPath))
        process = Process()
        process.executableURL = URL(fileURLWithPath: CommandRunner.binary)
        process.arguments = ["watch"] + arguments + ["--log-file", logPath]
        process.environment = environment
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        process.standardInput = FileHandle.nullDevice
        try process.run()
    }

    static func text(_ path: String) -> String { (try? String(contentsOfFile: path, encoding: .utf8)) ?? "" }
    var log: String { Self.text(logPath) }
    var out: String { Self.text(outPath) }

    /// Polls `path` until `predicate` holds; records the log's tail and throws at the deadline.
    func waitFor(_ what: String, in path: String, timeout: Duration = .seconds(90), _ predicate: (String) -> Bool) async throws -> String {
        let deadline = ContinuousClock.now + timeout
        while ContinuousClock.now < deadline {
            let current = Self.text(path)
            if predicate(current) { return current }
            try await Task.sleep(for: .milliseconds(50))
        }
        Issue.record("timed out waiting for \(what): \(log.suffix(3000))")
        throw CancellationError()
    }

    /// Where its `--http` endpoint listens, from its log.
    var httpBase: String? {
        let log = self.log
        return log.range(of: #"http://127\.0\.0\.1:[0-9]+"#, options: .regularExpression).map { String(log[$0]) }
    }

    /// SIGTERM, then waits (30 s at most) for it to exit; its exit status.
    func stop() async throws -> Int32? {
        process.terminate()
        let stopBy = ContinuousClock.now + .seconds(30)
        while process.isRunning && ContinuousClock.now < stopBy { try await Task.sleep(for: .milliseconds(50)) }
        try? output.close()
        return process.isRunning ? nil : process.terminationStatus
    }
}
