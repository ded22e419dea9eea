import Synchronization
import Foundation

/// The request pipeline: latency, injected faults, login, bearer tokens, per-token rate limits,
/// routing, permission checks, error bodies and the headers every reply carries.
extension GenesysSimulator {
    enum Outcome: Sendable {
        case response(status: Int, headers: [(String, String)], body: [UInt8])
        /// Close the connection without answering.
        case drop
    }

    struct Route: Sendable {
        enum Segment: Sendable, Equatable {
            case literal(String)
            case parameter
        }

        let method: String
        let segments: [Segment]
        /// `GET /api/v2/users/{id}`: what request counts are kept under.
        let name: String
        /// Permission the caller must hold in some division; nil when none is needed.
        let permission: String?
        let handler: @Sendable (GenesysSimulator, SimRequest, [String]) throws -> SimResponse

        init(
            _ method: String, _ pattern: String, permission: String? = nil,
            _ handler: @escaping @Sendable (GenesysSimulator, SimRequest, [String]) throws -> SimResponse
        ) {
            self.method = method
            self.name = "\(method) \(pattern)"
            self.segments = pattern.split(separator: "/").map { $0.hasPrefix("{") ? .parameter : .literal(String($0)) }
            self.permission = permission
            self.handler = handler
        }

        func match(_ parts: [Substring]) -> [String]? {
            guard parts.count == segments.count else { return nil }
            var parameters: [String] = []
            for (segment, part) in zip(segments, parts) {
                switch segment {
                case .literal(let literal): if literal != part { return nil }
                case .parameter: parameters.append(String(part))
                }
            }
            return parameters
        }
    }

    func handle(_ request: SimRequest) async -> Outcome {
        let delay = faultController.latency()
        if delay > .zero { try? await Task.sleep(for: delay) }

        var request = request
        var headers: [(String, String)] = [("inin-correlation-id", request.correlationId)]

        if request.path.hasPrefix("/__simulator/") {
            return finish(respondToAdmin(request), headers: headers, request: request)
        }

        switch faultController.decide(path: request.path) {
        case .drop:
            return .drop
        case .serverError(let status):
            let code = status == 504 ? "request.timeout" : status == 503 ? "service.unavailable" : "internal.server.error"
            let error = APIError(status: status, code: code, message: "The service is currently unavailable. Try again.")
            return finish(errorResponse(error, request: request), headers: headers + rateHeaders(nil), request: request)
        case .rateLimited(let retryAfter):
            headers.append(("Retry-After", String(retryAfter)))
            return finish(rateLimitedResponse(retryAfter: retryAfter, request: request), headers: headers + rateHeaders(nil), request: request)
        case .expireTokens:
            expireAllTokens()
        case .proceed:
            break
        }

        if request.path == "/oauth/token" {
            return finish(respondToLogin(request), headers: headers, request: request)
        }
        guard request.path.hasPrefix("/api/v2/") else {
            return finish(errorResponse(.notFound("resource"), request: request), headers: headers, request: request)
        }

        // Bearer token.
        guard let authorization = request.header("Authorization"), authorization.lowercased().hasPrefix("bearer "),
            !authorization.dropFirst(7).trimmingCharacters(in: .whitespaces).isEmpty
        else {
            let error = APIError(
                status: 401, code: "authentication.required",
                message: "No authentication bearer token specified in authorization header.")
            return finish(errorResponse(error, request: request), headers: headers + rateHeaders(nil), request: request)
        }
        let token = String(authorization.dropFirst(7)).trimmingCharacters(in: .whitespaces)
        let now = seconds()
        let record: TokenStore.Record
        switch tokens.withLock({ $0.lookup(token, now: now) }) {
        case .valid(let valid): record = valid
        case .expired, .unknown:
            let error = APIError(status: 401, code: "bad.credentials", message: "Invalid login credentials.")
            return finish(errorResponse(error, request: request), headers: headers + rateHeaders(nil), request: request)
        }
        request.clientId = record.clientId

        // Rate limit, per token.
        let budget = tokens.withLock { $0.count(token, limit: configuration.rateLimitPerMinute, window: configuration.rateLimitWindowSeconds, now: now) }
        headers += rateHeaders(budget)
        if let retryAfter = budget.retryAfter {
            headers.append(("Retry-After", String(retryAfter)))
            return finish(rateLimitedResponse(retryAfter: retryAfter, request: request), headers: headers, request: request)
        }

        // The audit API's own limit, per token, when configured; its window runs on the wall
        // clock, so a test can move through it without waiting.
        let auditLimit = faultController.plan.auditRateLimitPerMinute ?? configuration.auditRateLimitPerMinute
        let wallSeconds = Double(nowMilliseconds()) / 1000
        if request.path.hasPrefix("/api/v2/audits/"),
            let retryAfter = tokens.withLock({
                $0.countAudit(token, limit: auditLimit, window: configuration.rateLimitWindowSeconds, now: wallSeconds)
            })
        {
            headers.append(("Retry-After", String(retryAfter)))
            return finish(rateLimitedResponse(retryAfter: retryAfter, request: request), headers: headers, request: request)
        }

        // Route and permission.
        let parts = request.path.split(separator: "/")
        var response: SimResponse
        if let (route, parameters) = Self.routes.lazy.compactMap({ route in
            route.method == request.method ? route.match(parts).map { (route, $0) } : nil
        }).first {
            routeCounts.withLock { $0[route.name, default: 0] += 1 }
            if let permission = route.permission, !holds(permission, client: record.clientId) {
                response = errorResponse(
                    APIError(
                        status: 403, code: "missing.permissions",
                        message: "Unable to perform the requested action. You are missing the following permission(s): [\(permission)]",
                        params: ["permissions": permission]),
                    request: request)
            } else {
                do {
                    response = try route.handler(self, request, parameters)
                } catch let error as APIError {
                    response = errorResponse(error, request: request)
                } catch let error as WriteError {
                    response = errorResponse(APIError(error), request: request)
                } catch {
                    response = errorResponse(
                        APIError(status: 500, code: "internal.server.error", message: "The server encountered an error."),
                        request: request)
                }
            }
        } else if Self.routes.contains(where: { $0.match(parts) != nil }) {
            response = errorResponse(
                APIError(status: 405, code: "method.not.allowed", message: "\(request.method) is not supported here."),
                request: request)
        } else {
            response = errorResponse(.notFound("resource"), request: request)
        }

        let outcome = finish(response, headers: headers, request: request)
        if let pageNumber = response.pageNumber {
            let due = faultController.dueMutations(path: request.path, pageNumber: pageNumber)
            if !due.isEmpty {
                let date = timestamp()
                org.withLock { org in
                    for change in due {
                        org.apply(change, actor: AuditActor(userId: nil, clientId: credentials.adminClientId), date: date)
                    }
                }
            }
        }
        publishAuditPushes()
        return outcome
    }

    /// Whether the client holds `permission` in at least one division.
    func holds(_ permission: String, client: String) -> Bool {
        org.withLock { !$0.divisions(where: client, has: permission).isEmpty }
    }

    func rateHeaders(_ budget: TokenStore.Budget?) -> [(String, String)] {
        let budget = budget ?? TokenStore.Budget(
            allowed: configuration.rateLimitPerMinute, count: 0, resetSeconds: Int(configuration.rateLimitWindowSeconds.rounded(.up)))
        return [
            ("inin-ratelimit-allowed", String(budget.allowed)),
            ("inin-ratelimit-count", String(budget.count)),
            ("inin-ratelimit-reset", String(budget.resetSeconds)),
        ]
    }

    func errorResponse(_ error: APIError, request: SimRequest) -> SimResponse {
        SimResponse(
            status: error.status,
            body: Wire.error(
                status: error.status, code: error.code, message: error.message, correlationId: request.correlationId,
                params: error.params))
    }

    func rateLimitedResponse(retryAfter: Int, request: SimRequest) -> SimResponse {
        errorResponse(
            APIError(
                status: 429, code: "too.many.requests.retry.after",
                message: "Rate limit exceeded the maximum. Retry the request in [\(retryAfter)] seconds"),
            request: request)
    }

    private func finish(_ response: SimResponse, headers: [(String, String)], request: SimRequest) -> Outcome {
        var allHeaders = headers + response.headers
        guard let body = response.body else {
            return .response(status: response.status, headers: allHeaders, body: [])
        }
        var bytes = body.serialized()
        if response.status == 200, faultController.corruptReply(path: request.path) {
            bytes = Array(bytes.prefix(max(1, bytes.count / 2)))
        }
        allHeaders.append(("Content-Type", "application/json"))
        return .response(status: response.status, headers: allHeaders, body: bytes)
    }
}

// MARK: Paging

extension GenesysSimulator {
    struct Page {
        var number: Int
        var size: Int
    }

    /// Reads `pageSize`/`pageNumber` (defaults 25 and 1); oversized pages are capped, not refused.
    func page(_ query: QueryParameters, cap: Int? = nil) throws -> Page {
        let cap = cap ?? configuration.maxPageSize
        var size = 25
        var number = 1
        if let raw = query.first("pageSize") {
            guard let value = Int(raw), value >= 1 else {
                throw APIError.badRequest("The value of pageSize must be a positive integer.", code: "invalid.value")
            }
            size = min(value, cap)
        }
        if let raw = query.first("pageNumber") {
            guard let value = Int(raw), value >= 1 else {
                throw APIError.badRequest("The value of pageNumber must be a positive integer.", code: "invalid.value")
            }
            number = value
        }
        return Page(number: number, size: size)
    }

    /// The entities of `page` among `total` items, via `render` for just that slice.
    func pageSlice<T>(_ items: [T], _ page: Page) -> ArraySlice<T> {
        let (offset, overflow) = (page.number - 1).multipliedReportingOverflow(by: page.size)
        let start = overflow ? items.count : min(items.count, offset)
        let end = min(items.count, start + page.size)
        return items[start..<end]
    }

    /// The offset-paging envelope: `entities, pageSize, pageNumber, total, pageCount` and, unless
    /// `bare`, `firstUri, selfUri, nextUri, previousUri, lastUri` carrying the other parameters.
    func pageEnvelope(_ entities: [JSON], page: Page, total: Int, request: SimRequest, bare: Bool = false) -> SimResponse {
        let pageCount = total == 0 ? 0 : (total + page.size - 1) / page.size
        var o = JSONObject()
        o.set("entities", array: entities, keepEmpty: true)
        o.set("pageSize", page.size)
        o.set("pageNumber", page.number)
        o.set("total", total)
        o.set("pageCount", pageCount)
        if !bare {
            let rest = request.query.rawQuery(excluding: ["pageSize", "pageNumber"])
            func uri(_ number: Int) -> String {
                "\(request.path)?pageSize=\(page.size)&pageNumber=\(number)" + (rest.isEmpty ? "" : "&" + rest)
            }
            o.set("firstUri", uri(1))
            o.set("selfUri", uri(page.number))
            if page.number < pageCount { o.set("nextUri", uri(page.number + 1)) }
            if page.number > 1 { o.set("previousUri", uri(min(page.number - 1, max(1, pageCount)))) }
            o.set("lastUri", uri(max(1, pageCount)))
        }
        return .ok(o.json, pageNumber: page.number)
    }
}
