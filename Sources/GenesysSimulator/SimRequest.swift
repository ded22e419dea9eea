import Foundation

/// A request as the simulator's handlers see it: method, decoded path segments, query, body.
struct SimRequest: Sendable {
    var method: String
    var path: String
    var query: QueryParameters
    var headers: [(String, String)]
    var body: [UInt8]
    var correlationId: String
    /// Set once the bearer token has been checked.
    var clientId: String?

    func header(_ name: String) -> String? {
        headers.first { $0.0.lowercased() == name.lowercased() }?.1
    }
}

/// What a handler answers.
struct SimResponse: Sendable {
    var status: Int
    var body: JSON?
    var headers: [(String, String)] = []
    /// Set on list pages so mutation triggers know which page was served.
    var pageNumber: Int?

    static func ok(_ body: JSON, pageNumber: Int? = nil) -> SimResponse {
        SimResponse(status: 200, body: body, pageNumber: pageNumber)
    }

    static let noContent = SimResponse(status: 204, body: nil)
}

/// Handlers throw this to answer with an `ErrorBody`.
struct APIError: Error, Sendable {
    var status: Int
    var code: String
    var message: String
    var params: [String: String] = [:]

    static func notFound(_ what: String) -> APIError {
        APIError(status: 404, code: "not.found", message: "The requested \(what) was not found.")
    }

    static func badRequest(_ message: String, code: String = "bad.request") -> APIError {
        APIError(status: 400, code: code, message: message)
    }

    init(status: Int, code: String, message: String, params: [String: String] = [:]) {
        self.status = status
        self.code = code
        self.message = message
        self.params = params
    }

    init(_ error: WriteError) {
        self.init(status: error.status, code: error.code, message: error.message)
    }
}

/// Query parameters, percent-decoded, in order. Lists are accepted both as `a=x,y` (the Python
/// SDK) and as `a=x&a=y` (the other SDKs).
struct QueryParameters: Sendable {
    var items: [(name: String, value: String)]
    /// The raw `name=value` pairs, to carry along into `nextUri` and friends.
    var rawItems: [(name: String, raw: String)]

    init(_ query: String?) {
        items = []
        rawItems = []
        guard let query, !query.isEmpty else { return }
        for pair in query.split(separator: "&", omittingEmptySubsequences: true) {
            let parts = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = QueryParameters.decode(String(parts[0]))
            let raw = parts.count > 1 ? String(parts[1]) : ""
            items.append((name, QueryParameters.decode(raw)))
            rawItems.append((name, raw))
        }
    }

    func first(_ name: String) -> String? {
        items.first { $0.name == name }?.value
    }

    /// Every value of a list parameter, split on commas, empty entries dropped.
    func list(_ name: String) -> [String] {
        items.filter { $0.name == name }.flatMap { $0.value.split(separator: ",").map(String.init) }
            .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
    }

    func bool(_ name: String) -> Bool? {
        first(name).map { $0.lowercased() == "true" }
    }

    /// The query without the named parameters, raw, for building paging URIs.
    func rawQuery(excluding names: Set<String>) -> String {
        rawItems.filter { !names.contains($0.name) }.map { "\($0.name)=\($0.raw)" }.joined(separator: "&")
    }

    static func decode(_ text: String) -> String {
        let replaced = text.replacingOccurrences(of: "+", with: " ")
        return replaced.removingPercentEncoding ?? replaced
    }
}
