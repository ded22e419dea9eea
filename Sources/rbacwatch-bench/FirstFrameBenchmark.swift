import ArgumentParser
import AuditCore
import AuditStore
import AuditTestSupport
import Foundation
import GenesysClient
import GenesysSimulator

/// `rbacwatch-bench firstframe`: how long the real dashboard (`rbacwatch tui` in a private tmux
/// server, a real terminal) takes from start to a users pane with rows — opening on the newest
/// snapshot in the state store (after), and on a store without one, which waits for the first
/// collection (before). Both against the same in-process simulator (no rate limit), alternating.
struct FirstFrameBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "firstframe", abstract: "Measure the dashboard's first useful frame: from start to the users pane, stored snapshot vs none.")

    @Option(help: "Users in the generated organisation.")
    var users = 100_000

    @Option(help: "Runs of each case (the median is reported).")
    var runs = 3

    @Option(help: "The rbacwatch executable (default: next to this benchmark).")
    var binary: String?

    @Option(help: "Also write the results as JSON to this file.")
    var json: String?

    struct Output: Codable {
        var benchmark = "firstframe"
        var build: String
        var machine: String
        var users: Int
        var storedSeconds: [Double]
        var emptySeconds: [Double]
        var medianStoredSeconds: Double
        var medianEmptySeconds: Double
    }

    func validate() throws {
        guard (10...1_000_000).contains(users), (1...50).contains(runs) else { throw ValidationError("--users 10…1000000, --runs 1…50") }
    }

    static let tmux: String? = ["/usr/bin/tmux", "/usr/local/bin/tmux"].first { FileManager.default.isExecutableFile(atPath: $0) }

    func run() async throws {
        let executable = binary ?? URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent("rbacwatch").path
        guard FileManager.default.isExecutableFile(atPath: executable) else {
            throw ValidationError("no rbacwatch executable at \(executable): build it (swift build -c release) or pass --binary")
        }
        guard let tmux = Self.tmux else { throw ValidationError("tmux is not installed (apt-get install -y tmux)") }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("rbacwatch-bench-firstframe-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }

        Bench.log("generating \(users) users")
        var configuration = SimulatorConfiguration()
        configuration.users = users
        configuration.seed = 1
        configuration.rateLimitPerMinute = 0
        let sim = await GenesysSimulator.generating(configuration)
        let output = try await sim.withRunning { endpoint in
            // A state file holding the baseline and a newer snapshot (1 % drift), as a day of
            // watching leaves it; and one with the baseline only.
            let client = Bench.client(endpoint, concurrency: 8)
            let baseline = try await Collector(client: client).collect().0
            await client.shutdown()
            let current = DriftGenerator(seed: 1).apply(0.01, to: baseline)
            let storedPath = directory.appendingPathComponent("stored.sqlite").path
            do {
                let store = try SQLiteAuditStore(path: storedPath)
                _ = try await store.acceptBaseline(snapshot: baseline, collectedAt: Date().addingTimeInterval(-86_400), acceptedBy: "bench", note: nil, at: Date())
                try await store.storeSnapshot(current, collectedAt: Date().addingTimeInterval(-3600))
            }
            // The users pane's first row: the stored (drifted) snapshot's, or the collected one's.
            func first(_ snapshot: Snapshot) -> String? { snapshot.users.min { ($0.name.lowercased(), $0.id) < ($1.name.lowercased(), $1.id) }?.name }
            guard let firstStored = first(current), let firstCollected = first(baseline) else { throw ValidationError("the organisation has no users") }
            Bench.log("state file ready (\((try? FileManager.default.attributesOfItem(atPath: storedPath)[.size] as? Int).map { $0 / 1_000_000 } ?? 0) MB)")

            var stored: [Double] = []
            var empty: [Double] = []
            for run in 1...runs {
                for withSnapshot in [true, false] {
                    let path = directory.appendingPathComponent("run-\(run)-\(withSnapshot).sqlite").path
                    if withSnapshot {
                        try FileManager.default.copyItem(atPath: storedPath, toPath: path)
                    } else {
                        let store = try SQLiteAuditStore(path: path)
                        _ = store
                    }
                    let seconds = try await Self.timeToUsersPane(
                        tmux: tmux, executable: executable, endpoint: endpoint, state: path, users: baseline.users.count, firstUser: withSnapshot ? firstStored : firstCollected,
                        directory: directory)
                    Bench.log("run \(run) \(withSnapshot ? "stored snapshot" : "empty store"): \(seconds) s")
                    if withSnapshot { stored.append(seconds) } else { empty.append(seconds) }
                }
            }
            return Output(
                build: Bench.buildConfiguration, machine: Bench.machine(), users: baseline.users.count, storedSeconds: stored, emptySeconds: empty,
                medianStoredSeconds: Bench.median(stored) ?? 0, medianEmptySeconds: Bench.median(empty) ?? 0)
        }
        print("")
        print("firstframe: rbacwatch tui in tmux (120×40), \(output.users) users, \(runs) runs each, alternating — \(output.build) build, \(output.machine)")
        print("state store                                   start → users pane (median)   runs")
        print("--------------------------------------------  ---------------------------   ----")
        print("before: no snapshot (waits for a collection)  " + String(format: "%25.2f s", output.medianEmptySeconds) + "   \(output.emptySeconds)")
        print("after: newest stored snapshot (goal ≤ 1 s)     " + String(format: "%25.2f s", output.medianStoredSeconds) + "   \(output.storedSeconds)")
        try Bench.writeJSON(output, to: json)
    }

    /// Starts the dashboard in a fresh tmux server and polls the pane until the users pane shows
    /// every user and the first user's row.
    static func timeToUsersPane(
        tmux: String, executable: String, endpoint: SimulatorEndpoint, state: String, users: Int, firstUser: String, directory: URL
    ) async throws -> Double {
        let socket = "rbw-bench-\(UUID().uuidString.prefix(8))"
        let environment = [
            "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8", "TERM": "xterm-256color", "HOME": directory.path, "RBACWATCH_API_URL": endpoint.apiBaseURL,
            "GENESYSCLOUD_OAUTHCLIENT_ID": endpoint.clientId, "GENESYSCLOUD_OAUTHCLIENT_SECRET": endpoint.clientSecret, "RBACWATCH_STATE": state,
        ]
        var command = ["-L", socket, "-f", "/dev/null", "new-session", "-d", "-s", "rbw", "-x", "120", "-y", "40"]
        for (key, value) in environment.sorted(by: { $0.key < $1.key }) { command += ["-e", "\(key)=\(value)"] }
        command += [executable, "tui", "--no-audit"]
        defer { _ = try? Self.run(tmux, ["-L", socket, "kill-server"], directory: directory) }
        let started = ContinuousClock.now
        _ = try Self.run(tmux, command, directory: directory)
        let deadline = started + .seconds(600)
        let tab = "1 Users \(users)"
        while ContinuousClock.now < deadline {
            let screen = try Self.run(tmux, ["-L", socket, "capture-pane", "-p", "-t", "rbw"], directory: directory)
            // The tab's count and rows under it (not the "collecting the organisation…" placeholder).
            if screen.contains(tab) && !screen.contains("collecting the organisation") && screen.contains(firstUser) {
                return Bench.seconds(ContinuousClock.now - started)
            }
            try await Task.sleep(for: .milliseconds(10))
        }
        throw ValidationError("the users pane never showed within 600 s")
    }

    /// Runs tmux to completion (posix_spawn, descriptors ≥ 3 closed, output to a file).
    static func run(_ tmux: String, _ arguments: [String], directory: URL) throws -> String {
        let name = "tmux-\(UUID().uuidString.prefix(8))"
        let process = try ChildProcess(
            name: name, executable: tmux, arguments: arguments,
            environment: ["PATH": "/usr/bin:/bin", "HOME": directory.path, "LANG": "C.UTF-8"], directory: directory)
        defer {
            unlink(process.stdoutPath)
            unlink(process.stderrPath)
        }
        let deadline = ContinuousClock.now + .seconds(20)
        while !process.hasExited() {
            guard ContinuousClock.now < deadline else { throw ValidationError("tmux \(arguments.prefix(4)) did not finish in 20 s") }
            usleep(1000)
        }
        return process.output
    }
}
