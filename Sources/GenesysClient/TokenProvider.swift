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
                    var expires_in: Int?
                }
                guard let reply = try? JSONDecoder().decode(Reply.self, from: Data(response.body)), !reply.access_token.isEmpty
                else {
                    throw GenesysClientError(.malformedReply, "login at \(loginBaseURL) returned a reply without an access_token")
                }
                let lifetime = Duration.seconds(max(1, reply.expires_in ?? 86_399))
                current = (reply.access_token, clock.now() + lifetime - Self.renewalBuffer(lifetime: lifetime))
                logins += 1
                logger.debug("logged in", metadata: ["token.lifetime_s": "\(reply.expires_in ?? 86_399)"])
                return reply.access_token
            }
            if response.status == 429 || RetryPolicy.isRetriable(status: response.status), attempt < retry.maxAttempts {
                let retryAfter = response.header("Retry-After").flatMap(Int.init).map { Duration.seconds($0) }
                try await clock.sleep(for: retry.rateLimitDelay(retryAfter: retryAfter, attempt: attempt, random: .random(in: 0...1)))
                continue
            }
            struct OAuthError: Decodable {
                var error: String?
                var error_description: String?
                var description: String?
            }
            let body = try? JSONDecoder().decode(OAuthError.self, from: Data(response.body))
            let reason = [body?.error, body?.error_description ?? body?.description].compactMap { $0 }.joined(separator: ": ")
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
