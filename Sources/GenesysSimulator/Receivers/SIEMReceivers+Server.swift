import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle

struct ReceiverResponder: HTTPResponder {
    let receivers: SIEMReceivers

    func respond(to request: Request, context: SimulatorContext) async throws -> Response {
        var request = request
        let body = try await request.collectBody(upTo: 8 * 1024 * 1024)
        let simRequest = SimRequest(
            method: request.method.rawValue, path: request.uri.path, query: QueryParameters(request.uri.query),
            headers: request.headers.map { ($0.name.canonicalName, $0.value) }, body: Array(buffer: body), correlationId: "")
        switch await receivers.handle(simRequest) {
        case .drop:
            try? await context.channel.close()
            throw SimulatorResponder.DroppedConnection()
        case .respond(let status, let headerPairs, let bytes):
            var fields = HTTPFields()
            for (name, value) in headerPairs {
                if let field = HTTPField.Name(name) { fields.append(HTTPField(name: field, value: value)) }
            }
            return Response(status: HTTPResponse.Status(code: status), headers: fields, body: ResponseBody(byteBuffer: ByteBuffer(bytes: bytes)))
        }
    }
}

extension SIEMReceivers {
    /// The receivers as one Hummingbird application, ready to run in a `ServiceGroup`.
    public func application(
        logger: Logger = Logger(label: "rbacwatch.receivers", factory: { _ in SwiftLogNoOpLogHandler() }),
        onReady: @escaping @Sendable (Endpoints) async -> Void = { _ in }
    ) -> some Service {
        Application(
            responder: ReceiverResponder(receivers: self),
            configuration: .init(address: .hostname(configuration.host, port: configuration.port), serverName: nil),
            onServerRunning: { [self] channel in
                await onReady(endpoints(port: channel.localAddress?.port ?? configuration.port))
            },
            logger: logger)
    }

    /// Runs the receivers on a free port for the duration of `body`.
    public func withRunning<T: Sendable>(_ body: @Sendable (Endpoints) async throws -> T) async throws -> T {
        try await runServer({ ready in application(onReady: ready) }, body)
    }
}
