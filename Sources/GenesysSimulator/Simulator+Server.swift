import HTTPTypes
import Hummingbird
import HummingbirdWebSocket
import HummingbirdCore
import Logging
import NIOCore
import ServiceLifecycle

/// The request context: Hummingbird's core storage plus the channel, so a fault can drop the
/// connection without answering.
struct SimulatorContext: RequestContext {
    var coreContext: CoreRequestContextStorage
    let channel: any Channel

    init(source: ApplicationRequestContextSource) {
        self.coreContext = .init(source: source)
        self.channel = source.channel
    }

    var maxUploadSize: Int { 4 * 1024 * 1024 }
}

struct SimulatorResponder: HTTPResponder {
    let simulator: GenesysSimulator
    /// Picks the organisation a request is for (a fleet: by its credentials); nil: `simulator`.
    var route: (@Sendable (SimRequest) -> GenesysSimulator)?

    struct DroppedConnection: Error {}

    func respond(to request: Request, context: SimulatorContext) async throws -> Response {
        var request = request
        let body = try await request.collectBody(upTo: context.maxUploadSize)
        var headers = request.headers.map { ($0.name.canonicalName, $0.value) }
        // HTTP/1's Host arrives as the authority; the notification channels' connectUri names it.
        if let authority = request.head.authority { headers.append(("Host", authority)) }
        let simRequest = SimRequest(
            method: request.method.rawValue, path: request.uri.path, query: QueryParameters(request.uri.query),
            headers: headers, body: Array(buffer: body), correlationId: simulator.nextCorrelationId())
        let target = route?(simRequest) ?? simulator
        switch await target.handle(simRequest) {
        case .drop:
            try? await context.channel.close()
            throw DroppedConnection()
        case .response(let status, let headerPairs, let bytes):
            var fields = HTTPFields()
            for (name, value) in headerPairs {
                if let field = HTTPField.Name(name) { fields.append(HTTPField(name: field, value: value)) }
            }
            return Response(
                status: HTTPResponse.Status(code: status), headers: fields,
                body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
        }
    }
}

extension GenesysSimulator {
    /// The simulator as a Hummingbird application, ready to run in a `ServiceGroup`.
    /// `onReady` receives the bound endpoint once the server listens.
    public func application(
        logger: Logger = Logger(label: "rbacwatch.simulator", factory: { _ in SwiftLogNoOpLogHandler() }),
        onReady: @escaping @Sendable (SimulatorEndpoint) async -> Void = { _ in }
    ) -> some Service {
        Application(
            responder: SimulatorResponder(simulator: self),
            server: Self.serverBuilder { [self] _ in self },
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: nil),
            onServerRunning: { [self] channel in
                let port = channel.localAddress?.port ?? configuration.port
                await onReady(endpoint(port: port))
            },
            logger: logger)
    }

    /// HTTP/1.1 with the Notifications API's sockets: `GET /channels/{id}` upgrades to a
    /// WebSocket when `lookup` finds the simulator that holds that channel.
    static func serverBuilder(lookup: @escaping @Sendable (String) -> GenesysSimulator?) -> HTTPServerBuilder {
        .http1WebSocketUpgrade { request, _, _ in
            guard let id = NotificationHub.channelId(fromPath: request.path ?? ""), let simulator = lookup(id),
                let accepted = simulator.acceptNotificationSocket(channelId: id)
            else { return .dontUpgrade }
            return .upgrade([:]) { inbound, outbound, _ in
                await simulator.serveNotificationSocket(channelId: id, accepted: accepted, inbound: inbound, outbound: outbound)
            }
        }
    }

    func endpoint(port: Int) -> SimulatorEndpoint {
        let base = "http://\(configuration.host):\(port)"
        return SimulatorEndpoint(
            apiBaseURL: base, loginBaseURL: base, clientId: credentials.auditorClientId,
            clientSecret: credentials.auditorSecret, adminClientId: credentials.adminClientId,
            adminClientSecret: credentials.adminSecret, port: port)
    }

    /// Runs the simulator on a free port for the duration of `body`, then shuts it down
    /// gracefully. For tests, benchmarks and the demo.
    public func withRunning<T: Sendable>(
        _ body: @Sendable (SimulatorEndpoint) async throws -> T
    ) async throws -> T {
        try await runServer({ ready in application(onReady: ready) }, body)
    }
}

/// Runs a server (the simulator, the receivers) on a free port for the duration of `body`, then
/// shuts it down gracefully; `body` gets what the server reported once listening.
func runServer<Ready: Sendable, T: Sendable, S: Service>(
    _ makeApp: (@escaping @Sendable (Ready) async -> Void) -> S, _ body: @Sendable (Ready) async throws -> T
) async throws -> T {
    let (readyStream, readyContinuation) = AsyncStream.makeStream(of: Ready.self)
    let app = makeApp { ready in
        readyContinuation.yield(ready)
        readyContinuation.finish()
    }
    let group = ServiceGroup(
        configuration: .init(
            services: [.init(service: app)], gracefulShutdownSignals: [],
            logger: Logger(label: "rbacwatch.simulator", factory: { _ in SwiftLogNoOpLogHandler() })))
    return try await withThrowingTaskGroup(of: T?.self) { tasks in
        tasks.addTask {
            defer { readyContinuation.finish() }
            try await group.run()
            return nil
        }
        var iterator = readyStream.makeAsyncIterator()
        guard let ready = await iterator.next() else {
            // The server stopped before listening: surface its error (a port in use, say).
            while try await tasks.next() != nil {}
            throw SimulatorStartError()
        }
        do {
            let result = try await body(ready)
            await group.triggerGracefulShutdown()
            for try await _ in tasks {}
            return result
        } catch {
            await group.triggerGracefulShutdown()
            while let _ = try? await tasks.next() {}
            throw error
        }
    }
}

public struct SimulatorStartError: Error, CustomStringConvertible {
    public var description: String { "the simulator stopped before it was listening" }
}
