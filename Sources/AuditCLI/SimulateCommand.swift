import ArgumentParser
import AuditCore
import GenesysClient
import GenesysSimulator
import Logging
import ServiceLifecycle
import Synchronization
import UnixSignals

/// `rbacwatch simulate`: the local Genesys Cloud simulator as a standalone server.
struct SimulateCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulate",
        abstract: "Run the local Genesys Cloud API simulator until SIGINT or SIGTERM.",
        discussion: """
            Prints one JSON line on stdout when ready: apiBaseUrl, loginBaseUrl, clientId and \
            clientSecret (a read-only auditor client), adminClientId and adminClientSecret \
            (Master Admin, for the write endpoints), and port.
            """)

    @OptionGroup var simulator: SimulatorOptions

    @Option(help: "Address to listen on.")
    var host = "127.0.0.1"

    @Option(help: "Port to listen on (0 picks a free one).")
    var port = 0

    @Option(help: "Changes per minute a simulated administrator makes in the background, each audited (0: none).")
    var activity = 0.0

    @Option(
        name: .customLong("env-file"),
        help: "Once listening, write the auditor's credentials here as shell exports (mode 0600), to source before snapshot, diff or watch.")
    var envFile: String?

    func validate() throws {
        try FlagCheck.activity(activity)
        try FlagCheck.range(port, 0...65_535, "--port")
        if let envFile { try OutputFile.check(envFile) }
    }

    func run() async throws {
        var configuration = try simulator.configuration()
        configuration.host = host
        configuration.port = port
        let sim = GenesysSimulator(configuration: configuration)
        let (activity, seed) = (self.activity, configuration.seed)
        let background = Mutex<Task<Void, Never>?>(nil)
        let envFile = self.envFile
        let app = sim.application(onReady: { endpoint in
            if let envFile {
                do {
                    try AtomicFile.write(Array(Self.exports(endpoint).utf8), to: envFile)
                } catch {
                    Console.fail("\(error)")
                }
            }
            Console.out(endpoint.readyLine)
            guard activity > 0 else { return }
            background.withLock { task in
                task = Task {
                    let admin = GenesysAPIClient(
                        connection: GenesysConnection(
                            apiBaseURL: endpoint.apiBaseURL, loginBaseURL: endpoint.loginBaseURL, clientId: endpoint.adminClientId,
                            clientSecret: Secret(endpoint.adminClientSecret)),
                        transport: AsyncHTTPClientTransport())
                    var changes = DemoActivity(simulator: sim, admin: admin, pause: Bounded.duration(seconds: 60 / activity, clampedTo: 0.01...6000), rng: SplitMix64(seed: seed &+ 7))
                    await changes.run()
                    await admin.shutdown()
                }
            }
        })
        let group = ServiceGroup(
            configuration: .init(
                services: [.init(service: app)], gracefulShutdownSignals: [.sigterm, .sigint],
                logger: Logger(label: "rbacwatch.simulate", factory: { _ in SwiftLogNoOpLogHandler() })))
        try await group.run()
        // The background administrator stops with the server: cancelled, and waited for at most
        // five seconds (a request in flight to a server that is gone ends by itself).
        if let task = background.withLock({ $0 }) {
            task.cancel()
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await task.value }
                group.addTask { try? await Task.sleep(for: .seconds(5)) }
                await group.next()
                group.cancelAll()
            }
        }
    }

    /// The ready line's fields as the environment `snapshot`, `diff` and `watch` read.
    static func exports(_ endpoint: SimulatorEndpoint) -> String {
        """
        export RBACWATCH_API_URL='\(endpoint.apiBaseURL)'
        export GENESYSCLOUD_OAUTHCLIENT_ID='\(endpoint.clientId)'
        export GENESYSCLOUD_OAUTHCLIENT_SECRET='\(endpoint.clientSecret)'

        """
    }
}
