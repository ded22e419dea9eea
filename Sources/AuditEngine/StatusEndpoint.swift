import Foundation
import HTTPTypes
import Hummingbird
import Logging
import NIOCore
import Prometheus
import ServiceLifecycle

/// The engine's HTTP face for operators, as a `Service`: `/metrics` (Prometheus text
/// exposition of `registry`), `/healthz` (the process answers) and `/readyz` (`Readiness`: 200,
/// or 503 with a JSON reason). Nothing else is served; every other path is a 404.
public struct StatusEndpoint: Service {
    public let host: String
    public let port: Int
    let registry: PrometheusCollectorRegistry
    let readiness: @Sendable () async -> Readiness
    let onListening: @Sendable (_ port: Int) async -> Void
    let logger: Logger

    public init(
        host: String, port: Int, registry: PrometheusCollectorRegistry, logger: Logger,
        readiness: @escaping @Sendable () async -> Readiness, onListening: @escaping @Sendable (_ port: Int) async -> Void = { _ in }
    ) {
        self.host = host
        self.port = port
        self.registry = registry
        self.readiness = readiness
        self.onListening = onListening
        self.logger = logger
    }

    struct Responder: HTTPResponder {
        let registry: PrometheusCollectorRegistry
        let readiness: @Sendable () async -> Readiness

        func respond(to request: Request, context: BasicRequestContext) async throws -> Response {
            guard request.method == .get || request.method == .head else {
                return Self.reply(.methodNotAllowed, "text/plain; charset=utf-8", Array("only GET\n".utf8))
            }
            switch request.uri.path {
            case "/metrics":
                var buffer: [UInt8] = []
                buffer.reserveCapacity(8192)
                registry.emit(into: &buffer)
                return Self.reply(.ok, "text/plain; version=0.0.4; charset=utf-8", buffer)
            case "/healthz":
                return Self.reply(.ok, "text/plain; charset=utf-8", Array("ok\n".utf8))
            case "/readyz":
                let state = await readiness()
                return Self.reply(state.ready ? .ok : .serviceUnavailable, "application/json", state.json + [0x0A])
            default:
                return Self.reply(.notFound, "text/plain; charset=utf-8", Array("not found: /metrics, /healthz and /readyz are served\n".utf8))
            }
        }

        static func reply(_ status: HTTPResponse.Status, _ type: String, _ body: [UInt8]) -> Response {
            Response(status: status, headers: [.contentType: type], body: ResponseBody(byteBuffer: ByteBuffer(bytes: body)))
        }
    }

    public func run() async throws {
        let app = Application(
            responder: Responder(registry: registry, readiness: readiness),
            configuration: .init(address: .hostname(host, port: port), serverName: nil),
            onServerRunning: { [port, onListening] channel in
                await onListening(channel.localAddress?.port ?? port)
            },
            logger: logger)
        do {
            // As a service of the caller's group: `runService` would add a group of its own that
            // answers SIGTERM by itself, and end before its turn.
            try await app.run()
        } catch let error as IOError {
            throw StatusEndpointError(description: "cannot listen on \(host):\(port): \(String(cString: strerror(error.errnoCode)))")
        }
    }
}

/// Why the endpoint could not serve, in one line.
public struct StatusEndpointError: Error, CustomStringConvertible {
    public var description: String
}
