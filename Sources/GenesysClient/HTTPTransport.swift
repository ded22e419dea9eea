/// One HTTP exchange, fully buffered. The client's only view of the network.
public struct HTTPRequestData: Sendable {
    public var method: String
    /// Absolute URL.
    public var url: String
    public var headers: [(String, String)]
    public var body: [UInt8]?
    public var timeout: Duration

    public init(method: String, url: String, headers: [(String, String)] = [], body: [UInt8]? = nil, timeout: Duration = .seconds(30)) {
        self.method = method
        self.url = url
        self.headers = headers
        self.body = body
        self.timeout = timeout
    }
}

public struct HTTPResponseData: Sendable {
    public var status: Int
    public var headers: [(String, String)]
    public var body: [UInt8]

    public init(status: Int, headers: [(String, String)], body: [UInt8]) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// The first value of a header, matched case-insensitively.
    public func header(_ name: String) -> String? {
        let lowered = name.lowercased()
        return headers.first { $0.0.lowercased() == lowered }?.1
    }
}

/// A failure below HTTP: nothing usable came back.
public struct TransportError: Error, CustomStringConvertible, Sendable {
    public enum Kind: Sendable, Equatable {
        /// The host could not be reached (refused, unreachable).
        case connect
        /// The host's name does not resolve.
        case nameResolution
        /// The TLS handshake failed (an untrusted or mismatched certificate, say).
        case tls
        /// The connection closed or reset before a full reply.
        case reset
        case timeout
        /// The reply was larger than the transport accepts.
        case tooLarge
        case other
    }

    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }

    /// Worth trying again: everything but an oversized reply.
    public var isRetriable: Bool { kind != .tooLarge }
}

/// Sends HTTP requests. Implementations: `AsyncHTTPClientTransport` (the network); tests may
/// script one. Shut it down when done.
public protocol HTTPTransport: Sendable {
    func send(_ request: HTTPRequestData) async throws(TransportError) -> HTTPResponseData
    func shutdown() async
}
