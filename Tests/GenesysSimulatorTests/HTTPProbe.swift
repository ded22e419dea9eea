import AsyncHTTPClient
import AuditTestSupport
import Foundation
import GenesysSimulator
import NIOCore
import NIOHTTP1

/// Raw HTTP against a running simulator: exactly what goes over the wire, no client logic.
struct HTTPProbe {
    struct Reply {
        var status: Int
        var headers: [(String, String)]
        var body: [UInt8]

        func header(_ name: String) -> String? {
            headers.first { $0.0.lowercased() == name.lowercased() }?.1
        }

        var json: Any? { try? JSONSerialization.jsonObject(with: Data(body), options: [.fragmentsAllowed]) }
        var object: [String: Any] { json as? [String: Any] ?? [:] }
        var text: String { String(decoding: body, as: UTF8.self) }
    }

    let endpoint: SimulatorEndpoint
    let client: HTTPClient

    static func with<T: Sendable>(_ endpoint: SimulatorEndpoint, _ body: (HTTPProbe) async throws -> T) async throws -> T {
        let client = HTTPClient(eventLoopGroupProvider: .singleton)
        do {
            let result = try await body(HTTPProbe(endpoint: endpoint, client: client))
            try await client.shutdown()
            return result
        } catch {
            try? await client.shutdown()
            throw error
        }
    }

    func send(_ method: String, _ path: String, headers: [(String, String)] = [], body: String? = nil) async throws -> Reply {
        var request = HTTPClientRequest(url: endpoint.apiBaseURL + path)
        request.method = HTTPMethod(rawValue: method)
        for (name, value) in headers { request.headers.add(name: name, value: value) }
        if let body { request.body = .bytes(ByteBuffer(string: body)) }
        let response = try await client.execute(request, timeout: .seconds(30))
        let bytes = try await response.body.collect(upTo: 64 * 1024 * 1024)
        return Reply(status: Int(response.status.code), headers: response.headers.map { ($0.name, $0.value) }, body: Array(buffer: bytes))
    }

    func token(clientId: String? = nil, secret: String? = nil) async throws -> String {
        let basic = Data("\(clientId ?? endpoint.clientId):\(secret ?? endpoint.clientSecret)".utf8).base64EncodedString()
        let reply = try await send(
            "POST", "/oauth/token",
            headers: [("Authorization", "Basic \(basic)"), ("Content-Type", "application/x-www-form-urlencoded")],
            body: "grant_type=client_credentials")
        return reply.object["access_token"] as? String ?? ""
    }

    func get(_ path: String, token: String) async throws -> Reply {
        try await send("GET", path, headers: [("Authorization", "Bearer \(token)")])
    }

    func call(_ method: String, _ path: String, token: String, json: String? = nil) async throws -> Reply {
        var headers = [("Authorization", "Bearer \(token)")]
        if json != nil { headers.append(("Content-Type", "application/json")) }
        return try await send(method, path, headers: headers, body: json)
    }
}

/// Every `null` in a JSON document, by path.
func nulls(in value: Any?, path: String = "$") -> [String] {
    switch value {
    case is NSNull: return [path]
    case let object as [String: Any]: return object.flatMap { nulls(in: $0.value, path: "\(path).\($0.key)") }
    case let array as [Any]: return array.enumerated().flatMap { nulls(in: $0.element, path: "\(path)[\($0.offset)]") }
    default: return []
    }
}

func simulator(users: Int = 300, seed: UInt64 = 3, _ adjust: (inout SimulatorConfiguration) -> Void = { _ in }) -> GenesysSimulator {
    TestSupport.simulator(users: users, seed: seed, adjust)
}
