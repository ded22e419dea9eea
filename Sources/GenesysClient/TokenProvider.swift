import AuditCore
import Foundation
import Logging

/// OAuth client credentials against the login host. The token lives in memory only; it is
/// renewed before it expires (a buffer of a tenth of its lifetime, at most five minutes) and on
/// demand after a 401. Concurrent callers share one login.
public actor TokenProvider {
    private let transport: any HTTPTransport
    private let loginBaseURL: String
    private let clientId: String
    private let secret: Secret
    private let clock: any APIClock
    private let retry: RetryPolicy
    private let logger: Logger

    private var current: (token: String, renewAt: Duration)?
    /// Every token this provider received, so error text can be scrubbed of them.
    public private(set) var issued: [String] = []
    private var pending: Task<String, any Error>?
    /// Logins made, for reports.
    public private(set) var logins = 0

    public init(
        transport: any HTTPTransport, loginBaseURL: String, clientId: String, secret: Secret, clock: any APIClock,
        retry: RetryPolicy, logger: Logger
    ) {
        self.transport = transport
        self.loginBaseURL = loginBaseURL.hasSuffix("/") ? String(loginBaseURL.dropLast()) : loginBaseURL
        self.clientId = clientId
        self.secret = secret
        self.clock = clock
        self.retry = retry
        self.logger = logger
    }

    /// A token valid for a while yet.
    public func token() async throws -> String {
        if let current, clock.now() < current.renewAt { return current.token }
        if let pending { return try await pending.value }
        let task = Task { try await self.login() }
        pending = task
        defer { pending = nil }
        return try await task.value
    }

    /// Forgets `token` if it is the current one (the API refused it); the next call logs in again.
    public func invalidate(_ token: String) {
        if current?.token == token { current = nil }
    }

    /// Token lifetimes believed, in seconds: a minute to the API's 48 hours.
    static let lifetimeRange: ClosedRange<Double> = 60...172_800

    /// RFC 6750 `b64token`: what may follow `Bearer ` in a header, at most 16 KB of it.
    static func isBearerToken(_ token: String) -> Bool {
        guard !token.isEmpty, token.utf8.count <= 16 << 10 else { return false }
        var padding = false
        for byte in token.utf8 {
            switch byte {
            case UInt8(ascii: "="): padding = true
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"), UInt8(ascii: "+"), UInt8(ascii: "/"):
                if padding { return false }
            default: return false
            }
        }
        return true
    }

    /// Seconds of buffer before expiry at which a token is renewed.
    static func renewalBuffer(lifetime: Duration) -> Duration {
        min(.seconds(300), lifetime / 10)
    }

    private func login() async throws -> String {
        let basic = Data("\(clientId):\(secret.reveal())".utf8).base64EncodedString()
        let request = HTTPRequestData(
            method: "POST", url: "\(loginBaseURL)/oauth/token",
            headers: [
                ("Authorization", "Basic \(basic)"), ("Content-Type", "application/x-www-form-urlencoded"),
                ("Accept", "application/json"),
            ],
            body: Array("grant_type=client_credentials".utf8))
        var attempt = 0
        while true {
            attempt += 1
            let response: HTTPResponseData
            do {
                response = try await transport.send(request)
            } catch {
                if error.isRetriable, attempt < retry.attempts(for: error) {
                    logger.debug("login failed, retrying", metadata: ["error": "\(error)", "attempt": "\(attempt)"])
                    try await clock.sleep(for: retry.backoff(attempt: attempt, random: .random(in: 0...1)))
                    continue
                }
                throw GenesysClientError(
                    error.kind == .timeout ? .timeout : .unreachable,
                    "login at \(loginBaseURL) failed: \(error.message)")
            }
            if response.status == 200 {
                struct Reply: Decodable {
                    var access_token: String
                    var expires_in: Double?
                }
                guard response.body.count <= 64 << 10,
                    let reply = try? JSONDecoder().decode(Reply.self, from: Data(response.body)), !reply.access_token.isEmpty
                else {
                    throw GenesysClientError(.malformedReply, "login at \(loginBaseURL) returned a reply without an access_token")
                }
                guard Self.isBearerToken(reply.access_token) else {
                    // Never quoted: it is a credential, whatever else it is.
                    throw GenesysClientError(
                        .malformedReply, "login at \(loginBaseURL) returned an access_token that is not a valid bearer token (not shown)")
                }
                // The API issues tokens for 300 s to 48 h; a shorter claim would make every call a login.
                let seconds = Int(Bounded.seconds(reply.expires_in ?? 86_399, clampedTo: Self.lifetimeRange))
                let lifetime = Duration.seconds(seconds)
                current = (reply.access_token, clock.now() + lifetime - Self.renewalBuffer(lifetime: lifetime))
                if !issued.contains(reply.access_token) { issued = Array((issued + [reply.access_token]).suffix(16)) }
                logins += 1
                logger.debug("logged in", metadata: ["token.lifetime_s": "\(seconds)"])
                return reply.access_token
            }
            if response.status == 429 || RetryPolicy.isRetriable(status: response.status), attempt < retry.maxAttempts {
                let retryAfter = response.header("Retry-After").flatMap(RetryPolicy.retryAfter(header:))
                try await clock.sleep(for: retry.rateLimitDelay(retryAfter: retryAfter, attempt: attempt, random: .random(in: 0...1)))
                continue
            }
            struct OAuthError: Decodable {
                var error: String?
                var error_description: String?
                var description: String?
            }
            let body = response.body.count <= 64 << 10 ? try? JSONDecoder().decode(OAuthError.self, from: Data(response.body)) : nil
            var reason = [body?.error, body?.error_description ?? body?.description].compactMap { $0 }.joined(separator: ": ")
            reason = String(reason.prefix(300))
            if secret.reveal().count >= 4 { reason = reason.replacingOccurrences(of: secret.reveal(), with: "<secret>") }
            if (400...403).contains(response.status) {
                throw GenesysClientError(
                    .authenticationFailed,
                    "login refused by \(loginBaseURL) (\(response.status)\(reason.isEmpty ? "" : " " + reason)): "
                        + "check the client id and secret, and that the client is a client-credentials client of this region")
            }
            throw GenesysClientError(
                .unreachable, "login at \(loginBaseURL) answered \(response.status)\(reason.isEmpty ? "" : ": " + reason)")
        }
    }
}
