import Foundation

/// Prometheus's own checker of the text exposition format (`promtool check metrics`, Debian
/// package `prometheus`; `.ci/run` installs it). Missing, it is a failure that says so.
public enum Promtool {
    public struct Check: Sendable {
        /// nil when promtool is not installed.
        public var status: Int32?
        public var output: String
    }

    public static var path: String? {
        let candidates = (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":").map { "\($0)/promtool" }
        return (candidates + ["/usr/bin/promtool"]).first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// Runs `promtool check metrics` over `exposition`, on a thread of its own (it blocks).
    public static func check(_ exposition: String) async -> Check {
        guard let path else {
            return Check(status: nil, output: "promtool is not installed (Debian package prometheus; .ci/run installs it)")
        }
        return await withCheckedContinuation { continuation in
            let thread = Thread {
                let input = FileManager.default.temporaryDirectory.appendingPathComponent("rbw-metrics-\(UUID().uuidString).txt")
                defer { try? FileManager.default.removeItem(at: input) }
                do {
                    try Data(exposition.utf8).write(to: input)
                    let process = Process()
                    process.executableURL = URL(fileURLWithPath: path)
                    process.arguments = ["check", "metrics"]
                    process.standardInput = try FileHandle(forReadingFrom: input)
                    let output = Pipe()
                    process.standardOutput = output
                    process.standardError = output
                    try process.run()
                    let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
                    process.waitUntilExit()
                    continuation.resume(returning: Check(status: process.terminationStatus, output: text))
                } catch {
                    continuation.resume(returning: Check(status: -1, output: "promtool could not run: \(error)"))
                }
            }
            thread.start()
        }
    }
}
