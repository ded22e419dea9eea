import AsyncHTTPClient
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Synchronization

/// `HTTPTransport` over async-http-client, with its own connection pool. Call `shutdown()`.
///
/// Every exchange is bounded: the connection must be made within `connectTimeout`, the reply's
/// headers must arrive before the request's deadline (`HTTPRequestData.timeout`), and so must
/// every piece of its body, with no silence longer than `idleTimeout` — a server that trickles
/// a reply a byte at a time (slow-loris) cannot hold a request past its deadline. Replies larger
/// than `maxBodyBytes` are refused.
public final class AsyncHTTPClientTransport: HTTPTransport {
    private let client: HTTPClient
    private let maxBodyBytes: Int
    private let idleTimeout: Duration

    /// Largest reply body accepted by default: a page of 500 users with their groups is about
    /// 1.5 MB, a page of 500 audit events about 0.5 MB.
    public static let defaultMaxBodyBytes = 64 << 20

    /// - Parameters:
    ///   - connectTimeout: how long to wait for a TCP (and TLS) connection.
    ///   - maxBodyBytes: replies larger than this fail with `.tooLarge`.
    ///   - idleTimeout: longest silence while a reply arrives (a stalled body ends here even
    ///     before the request's deadline).
    ///   - caFile: PEM certificates to trust instead of the system's.
    ///   - insecureSkipVerify: no certificate verification at all (the caller warns).
    public init(
        connectTimeout: Duration = .seconds(10), idleTimeout: Duration = .seconds(30),
        maxBodyBytes: Int = AsyncHTTPClientTransport.defaultMaxBodyBytes, caFile: String? = nil, insecureSkipVerify: Bool = false
    ) {
        var configuration = HTTPClient.Configuration()
        if caFile != nil || insecureSkipVerify {
            var tls = TLSConfiguration.makeClientConfiguration()
            if let caFile { tls.trustRoots = .file(caFile) }
            if insecureSkipVerify { tls.certificateVerification = .none }
            configuration.tlsConfiguration = tls
        }
        configuration.timeout = .init(connect: Self.timeAmount(connectTimeout), read: Self.timeAmount(idleTimeout))
        configuration.redirectConfiguration = .disallow
        configuration.connectionPool = .init(idleTimeout: .seconds(30))
        // A refused or failed connection fails its request at once, and `RetryPolicy` decides
        // (a few attempts with backoff). Left on, the pool retries on its own until the connect
        // timeout for every attempt: 20 s to report that nothing listens on a port.
        configuration.connectionPool.retryConnectionEstablishment = false
        self.client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        self.maxBodyBytes = maxBodyBytes
        self.idleTimeout = idleTimeout
    }

    static func timeAmount(_ duration: Duration) -> TimeAmount {
        let (seconds, attoseconds) = duration.components
        return .nanoseconds(min(seconds, 1_000_000_000) * 1_000_000_000 + attoseconds / 1_000_000_000)
    }

    /// What a request was waiting for when its deadline passed.
    private enum Phase: Sendable {
        case headers
        case body
    }

    public func send(_ request: HTTPRequestData) async throws(TransportError) -> HTTPResponseData {
        var outgoing = HTTPClientRequest(url: request.url)
        outgoing.method = HTTPMethod(rawValue: request.method)
        for (name, value) in request.headers { outgoing.headers.add(name: name, value: value) }
        if let body = request.body { outgoing.body = .bytes(ByteBuffer(bytes: body)) }
        let deadline = NIODeadline.now() + Self.timeAmount(request.timeout)
        var phase = Phase.headers
        let limit = maxBodyBytes
        do {
            let response = try await client.execute(outgoing, deadline: deadline)
            phase = .body
            // The body is read under the same deadline (async-http-client's own ends when the
            // headers arrive), checked as each piece arrives; a silence between pieces is cut by
            // the idle timeout.
            var body = ByteBuffer()
            for try await piece in response.body {
                guard NIODeadline.now() < deadline else { throw DeadlinePassed() }
                guard body.readableBytes + piece.readableBytes <= limit else { throw NIOTooManyBytesError(maxBytes: limit) }
                if body.readableBytes == 0 {
                    body = piece  // most replies are one piece: no copy
                } else {
                    var piece = piece
                    body.writeBuffer(&piece)
                }
            }
            return HTTPResponseData(
                status: Int(response.status.code), headers: response.headers.map { ($0.name, $0.value) },
                body: Array(buffer: body))
        } catch is DeadlinePassed {
            throw Self.timedOut(request, waitingFor: phase)
        } catch let error as HTTPClientError where error == .deadlineExceeded {
            throw Self.timedOut(request, waitingFor: phase)
        } catch let error as HTTPClientError where error == .readTimeout {
            // A silence as long as the whole deadline is the deadline: one wording, whichever
            // timer fired first.
            if idleTimeout >= request.timeout { throw Self.timedOut(request, waitingFor: phase) }
            throw TransportError(
                .timeout,
                "\(Self.host(of: request.url)) went silent for \(DurationWords.seconds(idleTimeout)) "
                    + (phase == .headers ? "(waiting for the headers)" : "(the body was still arriving)"))
        } catch {
            throw Self.classify(error, url: request.url)
        }
    }

    private struct DeadlinePassed: Error {}

    private static func timedOut(_ request: HTTPRequestData, waitingFor phase: Phase) -> TransportError {
        let seconds = DurationWords.seconds(request.timeout)
        switch phase {
        case .headers:
            return TransportError(.timeout, "no reply from \(host(of: request.url)) within \(seconds) (waiting for the headers)")
        case .body:
            return TransportError(.timeout, "the reply from \(host(of: request.url)) did not finish within \(seconds) (the body was still arriving)")
        }
    }

    public func shutdown() async {
        if shutDown.withLock({ done in defer { done = true }; return done }) { return }
        try? await client.shutdown()
    }

    /// Whether `shutdown()` has run.
    private let shutDown = Mutex(false)

    /// A transport dropped without `shutdown()` (an error path that forgot it) must not take the
    /// process down: async-http-client traps when a client it never shut down is freed. The
    /// client is shut down in a task of its own, which holds it until it has.
    deinit {
        guard !shutDown.withLock({ $0 }) else { return }
        let client = self.client
        Task { try? await client.shutdown() }
    }

    static func host(of url: String) -> String {
        url.split(separator: "/").dropFirst(1).first.map(String.init) ?? "the server"
    }

    /// One line for a failure below HTTP. Never the error's own text: async-http-client's errors
    /// can quote the request, headers (and so the bearer token) included.
    static func classify(_ error: any Error, url: String) -> TransportError {
        let host = host(of: url)
        if let error = error as? HTTPClientError {
            switch error {
            case .connectTimeout: return TransportError(.timeout, "no connection to \(host) within the connect timeout")
            case .readTimeout, .deadlineExceeded, .writeTimeout: return TransportError(.timeout, "timed out talking to \(host)")
            case .remoteConnectionClosed, .cancelled: return TransportError(.reset, "\(host) closed the connection before replying")
            case .invalidURL, .emptyHost, .emptyScheme:
                return TransportError(.other, "a request to \(host) could not be sent: the URL is not valid")
            default: break
            }
            if String(describing: error).contains("HeaderField") {
                return TransportError(.other, "a request to \(host) could not be sent: a header is not valid HTTP (its value is not shown)")
            }
        }
        if error is NIOTooManyBytesError {
            return TransportError(.tooLarge, "the reply from \(host) is larger than the transport accepts")
        }
        if error is CancellationError { return TransportError(.reset, "the request to \(host) was cancelled") }
        // Classified by type and well-known words only; the text itself is never quoted.
        let text = String(describing: error)
        let kind = String(describing: type(of: error))
        if text.contains("connectTimeout") || text.contains("Timeout") {
            return TransportError(.timeout, "timed out talking to \(host)")
        }
        if let connection = error as? NIOConnectionError, connection.connectionErrors.isEmpty,
            connection.dnsAError != nil || connection.dnsAAAAError != nil
        {
            return TransportError(.nameResolution, "the name \(host) does not resolve")
        }
        if error is NIOSSLError || kind.contains("NIOSSL") || kind.contains("BoringSSL") || text.contains("handshake") {
            return TransportError(.tls, "TLS with \(host) failed: the certificate is not trusted for this name, or the handshake was refused")
        }
        if kind.contains("NIOConnectionError") || text.contains("connectionRefused") || text.contains("Connection refused")
            || text.contains("resolution") || text.contains("unreachable")
        {
            return TransportError(.connect, "cannot connect to \(host)")
        }
        if text.contains("ioOnClosedChannel") || text.contains("reset") || text.contains("EOF")
            || text.contains("closed") || text.contains("uncleanShutdown")
        {
            return TransportError(.reset, "\(host) closed the connection before replying")
        }
        if kind.contains("HTTPParser") || text.contains("HTTPParserError") {
            return TransportError(.reset, "\(host) sent a reply that is not valid HTTP")
        }
        return TransportError(.other, "the request to \(host) failed (\(kind))")
    }
}

/// Durations in words, for messages: `60 s`, `5 min`.
enum DurationWords {
    static func seconds(_ duration: Duration) -> String {
        let s = duration.components.seconds
        if s >= 120, s % 60 == 0 { return "\(s / 60) min" }
        if s == 0, duration > .zero { return "\(duration.components.attoseconds / 1_000_000_000_000_000) ms" }
        return "\(s) s"
    }
}
