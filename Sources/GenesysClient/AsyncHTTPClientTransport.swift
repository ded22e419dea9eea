import AsyncHTTPClient
import NIOCore
import NIOHTTP1

/// `HTTPTransport` over async-http-client, with its own connection pool. Call `shutdown()`.
public final class AsyncHTTPClientTransport: HTTPTransport {
    private let client: HTTPClient
    private let maxBodyBytes: Int

    /// - Parameters:
    ///   - connectTimeout: how long to wait for a TCP (and TLS) connection.
    ///   - maxBodyBytes: replies larger than this fail with `.tooLarge`.
    public init(connectTimeout: Duration = .seconds(5), maxBodyBytes: Int = 256 * 1024 * 1024) {
        var configuration = HTTPClient.Configuration()
        configuration.timeout = .init(connect: .nanoseconds(Int64(connectTimeout.components.seconds * 1_000_000_000)))
        configuration.redirectConfiguration = .disallow
        configuration.connectionPool = .init(idleTimeout: .seconds(30))
        self.client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        self.maxBodyBytes = maxBodyBytes
    }

    public func send(_ request: HTTPRequestData) async throws(TransportError) -> HTTPResponseData {
        var outgoing = HTTPClientRequest(url: request.url)
        outgoing.method = HTTPMethod(rawValue: request.method)
        for (name, value) in request.headers { outgoing.headers.add(name: name, value: value) }
        if let body = request.body { outgoing.body = .bytes(ByteBuffer(bytes: body)) }
        let timeout = TimeAmount.nanoseconds(
            request.timeout.components.seconds * 1_000_000_000 + request.timeout.components.attoseconds / 1_000_000_000)
        do {
            let response = try await client.execute(outgoing, timeout: timeout)
            let body = try await response.body.collect(upTo: maxBodyBytes)
            return HTTPResponseData(
                status: Int(response.status.code), headers: response.headers.map { ($0.name, $0.value) },
                body: Array(buffer: body))
        } catch {
            throw Self.classify(error, url: request.url)
        }
    }

    public func shutdown() async {
        try? await client.shutdown()
    }

    static func classify(_ error: any Error, url: String) -> TransportError {
        let host = url.split(separator: "/").dropFirst(1).first.map(String.init) ?? url
        if let error = error as? HTTPClientError {
            switch error {
            case .connectTimeout, .readTimeout, .deadlineExceeded, .writeTimeout:
                return TransportError(.timeout, "timed out talking to \(host)")
            case .remoteConnectionClosed, .cancelled:
                return TransportError(.reset, "\(host) closed the connection before replying")
            default:
                break
            }
        }
        if error is NIOTooManyBytesError {
            return TransportError(.tooLarge, "the reply from \(host) is larger than the transport accepts")
        }
        let text = String(describing: error)
        if text.contains("connectTimeout") || text.contains("Timeout") {
            return TransportError(.timeout, "timed out talking to \(host)")
        }
        if text.contains("NIOConnectionError") || text.contains("connectionRefused") || text.contains("Connection refused")
            || text.contains("resolution") || text.contains("unreachable")
        {
            return TransportError(.connect, "cannot connect to \(host)")
        }
        if text.contains("ioOnClosedChannel") || text.contains("reset") || text.contains("EOF")
            || text.contains("closed") || text.contains("uncleanShutdown")
        {
            return TransportError(.reset, "\(host) closed the connection before replying")
        }
        return TransportError(.other, "request to \(host) failed: \(text)")
    }
}
