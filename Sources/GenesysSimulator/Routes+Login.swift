import Synchronization
import Foundation

/// The login host (`/oauth/token`), token introspection and OAuth clients.
extension GenesysSimulator {
    func oauthError(_ status: Int, _ error: String, _ description: String) -> SimResponse {
        var o = JSONObject()
        o.set("error", error)
        o.set("description", description)
        o.set("error_description", description)
        return SimResponse(status: status, body: o.json)
    }

    /// `POST /oauth/token`: client credentials by HTTP Basic authentication and a form body.
    func respondToLogin(_ r: SimRequest) -> SimResponse {
        guard r.method == "POST" else { return oauthError(405, "invalid_request", "use POST") }
        let contentType = r.header("Content-Type")?.lowercased() ?? ""
        guard contentType.hasPrefix("application/x-www-form-urlencoded") else {
            return oauthError(400, "invalid_request", "the body must be application/x-www-form-urlencoded")
        }
        let form = QueryParameters(String(decoding: r.body, as: UTF8.self))
        guard let grantType = form.first("grant_type") else {
            return oauthError(400, "invalid_request", "grant_type is required")
        }
        guard grantType == "client_credentials" else {
            return oauthError(400, "unsupported_grant_type", "unsupported grant type: \(grantType)")
        }
        var clientId = form.first("client_id")
        var secret = form.first("client_secret")
        if let header = r.header("Authorization"), header.lowercased().hasPrefix("basic ") {
            let encoded = header.dropFirst(6).trimmingCharacters(in: .whitespaces)
            if let data = Data(base64Encoded: encoded), let text = String(data: data, encoding: .utf8),
                let colon = text.firstIndex(of: ":")
            {
                clientId = QueryParameters.decode(String(text[..<colon]))
                secret = QueryParameters.decode(String(text[text.index(after: colon)...]))
            }
        }
        guard let clientId, let secret else {
            return oauthError(400, "invalid_client", "authentication failed")
        }
        let client = org.withLock { $0.clients[clientId] }
        guard let client, Self.constantTimeEqual(client.secret, secret), client.state == "active" else {
            return oauthError(400, "invalid_client", "authentication failed")
        }
        guard client.grantType == "CLIENT-CREDENTIALS" else {
            return oauthError(400, "unauthorized_client", "the client may not use the client credentials grant")
        }
        let lifetime = configuration.tokenTTL
        let now = seconds()
        let token = tokens.withLock { $0.issue(clientId: clientId, lifetime: lifetime, now: now) }
        var o = JSONObject()
        o.set("access_token", token)
        o.set("token_type", "bearer")
        o.set("expires_in", max(1, lifetime - 1))
        return .ok(o.json)
    }

    static func constantTimeEqual(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8)
        let y = Array(b.utf8)
        var difference = UInt8(x.count == y.count ? 0 : 1)
        for i in 0..<max(x.count, y.count) {
            difference |= (i < x.count ? x[i] : 0) ^ (i < y.count ? y[i] : 0)
        }
        return difference == 0
    }

    /// `GET /api/v2/tokens/me` (TokenInfo).
    func tokenInfo(_ r: SimRequest) -> SimResponse {
        org.withLock { org in
            var organization = JSONObject()
            organization.set("id", org.id)
            organization.set("name", org.name)
            organization.set("selfUri", "/api/v2/organizations/\(org.id)")
            var client = JSONObject()
            if let clientId = r.clientId, let c = org.clients[clientId] {
                client.set("id", c.id)
                client.set("name", c.name)
                client.set("dateCreated", c.dateCreated)
                client.set("organization", Wire.ref(org.id, name: org.name, path: "/api/v2/organizations"))
            }
            var o = JSONObject()
            o.set("organization", organization.json)
            o.set("homeOrganization", organization.json)
            o.set("OAuthClient", client.json)
            return .ok(o.json)
        }
    }

    func revokeToken(_ r: SimRequest) -> SimResponse {
        if let header = r.header("Authorization") {
            let token = String(header.dropFirst(7)).trimmingCharacters(in: .whitespaces)
            tokens.withLock { $0.revoke(token) }
        }
        return .noContent
    }

    func listClients(_ r: SimRequest) throws -> SimResponse {
        let page = try page(r.query)
        return org.withLock { org in
            let entities = pageSlice(org.clientOrder, page).map { Wire.client(org, org.clients[$0]!) }
            return pageEnvelope(entities, page: page, total: org.clientOrder.count, request: r)
        }
    }

    func getClient(_ r: SimRequest, _ id: String) throws -> SimResponse {
        try org.withLock { org in
            guard let client = org.clients[id] else { throw APIError.notFound("OAuth client") }
            return .ok(Wire.client(org, client))
        }
    }
}
