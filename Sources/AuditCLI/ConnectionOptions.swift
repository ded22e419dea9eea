import ArgumentParser
import AuditCore
import AuditStore
import Foundation
import GenesysClient

/// How to reach an organisation: flags first, then the environment (the variable names the
/// Genesys Cloud Terraform provider and CLI use). The secret is never taken from the command line.
struct ConnectionOptions: ParsableArguments {
    @Option(help: "Genesys Cloud region, e.g. us-east-1 or mypurecloud.ie (env: GENESYSCLOUD_REGION).")
    var region: String?

    @Option(name: .customLong("api-url"), help: "API base URL, overriding the region (env: RBACWATCH_API_URL).")
    var apiURL: String?

    @Option(name: .customLong("login-url"), help: "Login base URL (default: derived from the API URL).")
    var loginURL: String?

    @Option(name: .customLong("client-id"), help: "OAuth client id (env: GENESYSCLOUD_OAUTHCLIENT_ID).")
    var clientId: String?

    @Option(
        name: .customLong("client-secret-file"),
        help: "File holding the OAuth client secret (env: GENESYSCLOUD_OAUTHCLIENT_SECRET, or _SECRET_FILE).")
    var clientSecretFile: String?

    @Option(name: .customLong("request-timeout"), help: "How long one request may take, its whole reply included.")
    var requestTimeout = Interval(argument: "60s")!

    @Option(name: .customLong("timeout"), help: "How long a whole collection of the organisation may take.")
    var collectionTimeout = Interval(argument: "1h")!

    func validate() throws {
        try requestTimeout.check("--request-timeout", 1...600)
        try collectionTimeout.check("--timeout", 10...(24 * 3600))
    }

    /// Resolves the connection, or explains in one line what is missing.
    func resolve(environment: [String: String]) throws(ConfigurationError) -> GenesysConnection {
        let env = environment.filter { !$0.value.isEmpty }
        guard let clientId = clientId ?? env["GENESYSCLOUD_OAUTHCLIENT_ID"] else {
            throw ConfigurationError("no OAuth client id: set GENESYSCLOUD_OAUTHCLIENT_ID or pass --client-id")
        }
        let secret: Secret
        if let file = clientSecretFile ?? env["GENESYSCLOUD_OAUTHCLIENT_SECRET_FILE"] {
            let bytes: [UInt8]
            do {
                bytes = try FileBytes.read(file, limit: 64 << 10)
            } catch {
                throw ConfigurationError("the client secret file: \(error.description)")
            }
            secret = Secret(String(decoding: bytes, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
        } else if let value = env["GENESYSCLOUD_OAUTHCLIENT_SECRET"] {
            secret = Secret(value)
        } else {
            throw ConfigurationError(
                "no OAuth client secret: set GENESYSCLOUD_OAUTHCLIENT_SECRET or pass --client-secret-file FILE")
        }
        guard !secret.isEmpty else { throw ConfigurationError("the OAuth client secret is empty") }

        var api: String
        var login: String?
        if let url = apiURL ?? env["RBACWATCH_API_URL"] {
            api = url
            login = loginURL ?? env["RBACWATCH_LOGIN_URL"]
        } else if let region = region ?? env["GENESYSCLOUD_REGION"] {
            guard let urls = GenesysRegion.baseURLs(for: region) else {
                let known = GenesysRegion.apiHosts.keys.sorted().joined(separator: ", ")
                throw ConfigurationError("unknown region \(region); known regions: \(known)")
            }
            api = urls.api
            login = loginURL ?? urls.login
        } else {
            throw ConfigurationError("no region: set GENESYSCLOUD_REGION, or pass --region or --api-url")
        }
        api = api.hasSuffix("/") ? String(api.dropLast()) : api
        guard let parsed = URL(string: api), let scheme = parsed.scheme, ["http", "https"].contains(scheme), parsed.host != nil
        else {
            throw ConfigurationError("the API URL \(api) is not an http(s) URL")
        }
        // The login host is the API host with `login.` for `api.`; a host without `api.` (a local
        // simulator) serves both.
        let derivedLogin = api.replacingOccurrences(of: "//api.", with: "//login.")
        var limits = GenesysConnection.Limits()
        limits.request = requestTimeout.duration
        limits.collection = collectionTimeout.duration
        return GenesysConnection(apiBaseURL: api, loginBaseURL: login ?? derivedLogin, clientId: clientId, clientSecret: secret, limits: limits)
    }
}

struct ConfigurationError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
