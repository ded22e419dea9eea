import ArgumentParser
import AuditCore
import Foundation
import GenesysClient
import GenesysSimulator

/// Benchmarks print a table on stdout (progress on stderr) and can write JSON. Build them in
/// release mode: `swift build -c release --product rbacwatch-bench`.
@main
struct BenchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rbacwatch-bench", abstract: "rbacwatch benchmarks.", subcommands: [CollectBenchmark.self, DiffBenchmark.self, DiffWorker.self, RenderBenchmark.self, RulesBenchmark.self, DeliverBenchmark.self, FleetBenchmark.self, IncrementalBenchmark.self, FirstFrameBenchmark.self, LatencyBenchmark.self])
}

enum Bench {
    static var buildConfiguration: String {
        #if DEBUG
            "debug"
        #else
            "release"
        #endif
    }

    /// The machine a figure was measured on, for every table and JSON file.
    static func machine() -> String {
        let cores = ProcessInfo.processInfo.activeProcessorCount
        let memory = Double(ProcessInfo.processInfo.physicalMemory) / 1_073_741_824
        return "\(cores) cores, \(String(format: "%.1f", memory)) GiB, \(ProcessInfo.processInfo.operatingSystemVersionString)"
    }

    /// This process's own peak resident memory (`VmHWM`), in MB. Not `ru_maxrss`: Linux carries
    /// that across `execve` from the parent's address space, so a worker spawned by a
    /// benchmark that holds a gigabyte would report the parent's gigabyte as its own.
    static func peakMemoryMB() -> Double? {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") }),
            let kilobytes = line.split(separator: " ").compactMap({ Double($0) }).first
        else { return nil }
        return kilobytes / 1024
    }

    /// Writes a benchmark's results as JSON (sorted keys, pretty) to `path`, if one was given.
    static func writeJSON<T: Encodable>(_ output: T, to path: String?) throws {
        guard let path else { return }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(output).write(to: URL(fileURLWithPath: path))
        print("wrote \(path)")
    }

    static func log(_ line: String) {
        FileHandle.standardError.write(Data("[bench] \(line)\n".utf8))
    }

    static func seconds(_ duration: Duration) -> Double {
        (Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18 * 1).rounded(toPlaces: 3)
    }

    static func median(_ values: [Double]) -> Double? {
        guard !values.isEmpty else { return nil }
        let sorted = values.sorted()
        return sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
    }

    static func pages(_ count: Int, _ size: Int) -> Int {
        (count + size - 1) / size
    }

    /// A generated organisation, collected over loopback with no rate limit: the `diff` and
    /// `render` benchmarks start from it.
    static func collectedOrganisation(users: Int, seed: UInt64) async throws -> Snapshot {
        var configuration = SimulatorConfiguration()
        configuration.users = users
        configuration.seed = seed
        configuration.rateLimitPerMinute = 0
        return try await GenesysSimulator(configuration: configuration).withRunning { endpoint in
            let client = client(endpoint, concurrency: 8)
            let snapshot = try await Collector(client: client).collect().0
            await client.shutdown()
            return snapshot
        }
    }

    static func client(_ endpoint: SimulatorEndpoint, concurrency: Int) -> GenesysAPIClient {
        GenesysAPIClient(
            connection: GenesysConnection(
                apiBaseURL: endpoint.apiBaseURL, loginBaseURL: endpoint.loginBaseURL, clientId: endpoint.clientId,
                clientSecret: Secret(endpoint.clientSecret)),
            transport: AsyncHTTPClientTransport(), maxConcurrentRequests: concurrency)
    }
}

extension Double {
    func rounded(toPlaces places: Int) -> Double {
        let factor = pow(10, Double(places))
        return (self * factor).rounded() / factor
    }
}
