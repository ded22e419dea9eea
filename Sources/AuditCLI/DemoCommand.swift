import ArgumentParser
import AuditCore
import Foundation
import GenesysClient
import GenesysSimulator

/// `rbacwatch demo`: the whole product on the embedded simulator, no account needed.
/// Until the dashboard lands it starts the simulator, collects a snapshot and prints the summary.
struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run rbacwatch against the embedded Genesys Cloud simulator.")

    @Option(help: "Number of users in the generated organisation.")
    var users = 2000

    @Option(help: "Seed of the generated organisation.")
    var seed: UInt64 = 1

    @Option(name: .long, help: "Also write the canonical snapshot to this file.")
    var out: String?

    @Option(help: "Cross-check this many random users against authorization/subjects/{id}.")
    var verify = 25

    func validate() throws {
        guard users >= 1 else { throw ValidationError("--users must be at least 1.") }
    }

    func run() async throws {
        var configuration = SimulatorConfiguration()
        configuration.users = users
        configuration.seed = seed
        configuration.rateLimitPerMinute = 0  // the demo is about the product, not about waiting
        let simulator = GenesysSimulator(configuration: configuration)
        let (userCount, seed) = (users, seed)
        let progress = ProgressLine(enabled: Console.stderrIsTerminal)
        let logger = CLILogging.logger(label: "rbacwatch.demo", level: "warning")
        let verify = verify
        let out = out
        do {
            let code = try await simulator.withRunning { endpoint in
                Console.out("Simulator listening at \(endpoint.apiBaseURL) with \(userCount) users (seed \(seed)).")
                let connection = GenesysConnection(
                    apiBaseURL: endpoint.apiBaseURL, loginBaseURL: endpoint.loginBaseURL, clientId: endpoint.clientId,
                    clientSecret: Secret(endpoint.clientSecret))
                var settings = SnapshotRunner.Settings()
                settings.collector.verifySample = verify
                let (snapshot, report) = try await SnapshotRunner.collect(
                    connection, settings: settings, logger: logger, progress: progress)
                var written: (String, Int, String)?
                if let out {
                    let bytes = snapshot.canonicalJSON()
                    try AtomicFile.write(bytes, to: out)
                    written = (out, bytes.count, ContentHash.sha256Hex(bytes))
                }
                for line in SnapshotSummaryText.lines(snapshot, report, written: written) { Console.out(line) }
                return snapshot.isPartial ? RBACWatchExit.partial : RBACWatchExit.success
            }
            if code != 0 { throw ExitCode(code) }
        } catch let exit as ExitCode {
            throw exit
        } catch {
            let (message, code) = SnapshotRunner.explain(error)
            Console.fail(message)
            throw ExitCode(code)
        }
    }
}
