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
            (Master Admin, for the write endpoints), and port. With --orgs N it serves N distinct \
            organisations (their own ids, names, credentials, audit logs and rate limits) from one \
            port, routed by credentials as Genesys Cloud does, and its ready line is \
            {"organizations": [{"name", "organizationId", the fields above}, …], "port"}; \
            --orgs-file writes an organisations file for watch --orgs (secrets in files beside it, 0600).
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

    @Option(name: .customLong("orgs"), help: "Serve this many distinct organisations from one port (1-1000).")
    var organizations = 1

    @Option(name: .customLong("orgs-file"), help: "With --orgs: once listening, write an organisations file here (names sim-01…; each secret in PATH.secrets/NAME.secret, 0600).")
    var orgsFile: String?

    func validate() throws {
        try FlagCheck.range(organizations, 1...1000, "--orgs")
        if orgsFile != nil && envFile != nil { throw ValidationError("--orgs-file or --env-file, not both.") }
        if let orgsFile { try OutputFile.check(orgsFile, flag: "--orgs-file") }
        try FlagCheck.activity(activity)
        try FlagCheck.range(port, 0...65_535, "--port")
        if let envFile { try OutputFile.check(envFile, flag: "--env-file") }
    }

    func run() async throws {
        var configuration = try simulator.configuration()
        configuration.host = host
        configuration.port = port
        if organizations > 1 || orgsFile != nil {
            try await runFleet(configuration)
            return
        }
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

    /// `--orgs N`: a fleet of organisations behind one port.
    func runFleet(_ configuration: SimulatorConfiguration) async throws {
        let fleet = await SimulatorFleet.generating(count: organizations, configuration: configuration)
        let names = SimulatorFleet.names(count: organizations)
        let orgsFile = self.orgsFile
        let app = fleet.application(host: host, port: port) { endpoints in
            if let orgsFile {
                do {
                    let bytes = try SimulatorFleet.organizationsFile(endpoints, names: names, secretDirectory: orgsFile + ".secrets")
                    try AtomicFile.write(bytes, to: orgsFile)
                } catch {
                    Console.fail("--orgs-file: \(error)")
                }
            }
            Console.out(Self.fleetReadyLine(endpoints, names: names, ids: fleet.simulators.map(\.organizationId)))
        }
        let group = ServiceGroup(
            configuration: .init(
                services: [.init(service: app)], gracefulShutdownSignals: [.sigterm, .sigint],
                logger: Logger(label: "rbacwatch.simulate", factory: { _ in SwiftLogNoOpLogHandler() })))
        try await group.run()
    }

    static func fleetReadyLine(_ endpoints: [SimulatorEndpoint], names: [String], ids: [String]) -> String {
        let organizations = zip(zip(endpoints, names), ids).map { pair, id in
            var line = pair.0.readyLine
            line.removeFirst()
            return "{\"name\":\"\(pair.1)\",\"organizationId\":\"\(id)\"," + line
        }
        return "{\"organizations\":[\(organizations.joined(separator: ","))],\"port\":\(endpoints.first?.port ?? 0)}"
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
