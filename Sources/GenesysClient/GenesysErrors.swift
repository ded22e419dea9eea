import Foundation

/// An error reply from the Platform API (`ErrorBody`), with what is needed to act on it or to
/// quote it to Genesys support.
public struct GenesysAPIError: Error, CustomStringConvertible, Sendable {
    public var method: String
    /// Path and query of the failed request.
    public var path: String
    public var status: Int
    public var code: String?
    public var message: String?
    /// `inin-correlation-id` of the reply.
    public var correlationId: String?
    public var retryAfter: Duration?
    /// For `missing.permissions`: the permissions the API named.
    public var missingPermissions: [String]

    public init(
        method: String, path: String, status: Int, code: String? = nil, message: String? = nil,
        correlationId: String? = nil, retryAfter: Duration? = nil, missingPermissions: [String] = []
    ) {
        self.method = method
        self.path = path
        self.status = status
        self.code = code
        self.message = message
        self.correlationId = correlationId
        self.retryAfter = retryAfter
        self.missingPermissions = missingPermissions
    }

    public var endpoint: String { "\(method) \(GenesysAPIError.stripQuery(path))" }

    public var description: String {
        var text = "\(endpoint) answered \(status)"
        if let code { text += " \(code)" }
        if let message, !message.isEmpty { text += ": \(message)" }
        if let correlationId { text += " (correlation id \(correlationId))" }
        return text
    }

    static func stripQuery(_ path: String) -> String {
        String(path.split(separator: "?", maxSplits: 1).first ?? Substring(path))
    }

    /// Reads `[a, b]` out of a `missing.permissions` message.
    static func permissions(inMessage message: String) -> [String] {
        guard let open = message.lastIndex(of: "["), let close = message.lastIndex(of: "]"), open < close else { return [] }
        return message[message.index(after: open)..<close].split(separator: ",")
            .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }
}

/// Everything else that stops the client: login refused, host unreachable, a reply that is not
/// what the API promises, retries exhausted. One line, saying what failed and what to check.
public struct GenesysClientError: Error, CustomStringConvertible, Sendable {
    public enum Kind: Sendable, Equatable {
        case authenticationFailed
        case unreachable
        case timeout
        case malformedReply
        case retriesExhausted
        case configuration
    }

    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}

