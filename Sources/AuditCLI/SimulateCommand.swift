import ArgumentParser
import GenesysSimulator
import Logging
import ServiceLifecycle
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

    func run() async throws {
        var configuration = try simulator.configuration()
        configuration.host = host
        configuration.port = port
        let sim = GenesysSimulator(configuration: configuration)
        let app = sim.application(onReady: { endpoint in
            Console.out(endpoint.readyLine)
        })
        let group = ServiceGroup(
            configuration: .init(
                services: [.init(service: app)], gracefulShutdownSignals: [.sigterm, .sigint],
                logger: Logger(label: "rbacwatch.simulate", factory: { _ in SwiftLogNoOpLogHandler() })))
        try await group.run()
    }
}
