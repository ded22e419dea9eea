import Crypto
import Foundation
import Synchronization

/// The receivers rbacwatch delivers to, simulated with each vendor's documented semantics and a
/// fault plan per receiver: Splunk HEC (`/services/collector/event`, `/ack`, `/health`, token
/// auth, indexer acknowledgement by channel, the HEC error codes), Datadog Logs v2
/// (`/api/v2/logs`, `DD-API-KEY`, array limits, 202) and a Standard Webhooks receiver
/// (`/webhook`, verifying signatures and timestamps, deduping by `webhook-id`). What each one
/// accepted is kept for tests to read.
public final class SIEMReceivers: Sendable {
    public enum Kind: String, Sendable, CaseIterable {
        case hec, datadog, webhook
    }

    public struct Configuration: Sendable {
        public var host = "127.0.0.1"
        public var port = 0
        public var hecToken = "0b8c2d3e-hec-token-simulated"
        /// The token has indexer acknowledgement enabled: requests need a channel, answers carry
        /// an ackId, events count as indexed only when acknowledged.
        public var hecAck = false
        public var datadogKey = "dd-api-key-simulated"
        /// `whsec_` + base64 of the shared key.
        public var webhookSecret = "whsec_" + Data("rbacwatch-simulated-webhook-key".utf8).base64EncodedString()
        /// The receivers' clock (webhook timestamp tolerance).
        public var clock: @Sendable () -> Date = { Date() }

        public init() {}
    }

    /// How a receiver misbehaves. Changed while running with `plan(_:_:)`.
    public struct FaultPlan: Sendable {
        /// Down: every request gets 503 (HEC: code 9, server busy).
        public var down = false
        /// Close the connection without an answer.
        public var dropConnections = false
        /// The credential is refused (HEC 403 code 4, Datadog 403, webhook 401).
        public var unauthorized = false
        /// Answer 429 with this `Retry-After` (seconds).
        public var rateLimited: Int?
        /// A payload whose bytes contain this is refused as malformed (HEC 400 code 6, Datadog
        /// 400, webhook 422) — the whole request, as the real receivers do.
        public var poison: String?
        /// Answers wait this long.
        public var delay: Duration = .zero
        /// HEC: acknowledgements turn true after this many ack polls of the channel (nil: never).
        public var ackAfterPolls: Int? = 1
        /// Webhook: answer 410 Gone.
        public var gone = false

        public init() {}
    }

    /// One event or log or message a receiver accepted.
    public struct Received: Sendable, Equatable {
        public var kind: Kind
        /// The payload's `id` (rbacwatch's stable id), when it has one.
        public var id: String?
        /// The event (HEC), the log object (Datadog) or the body (webhook), as sent.
        public var body: [UInt8]
        /// HEC with acknowledgement: acknowledged (indexed) yet.
        public var indexed: Bool
    }

    public let configuration: Configuration
    let state = Mutex(State())

    struct State {
        var plans: [Kind: FaultPlan] = Dictionary(uniqueKeysWithValues: Kind.allCases.map { ($0, FaultPlan()) })
        var received: [Received] = []
        var requests: [Kind: Int] = [:]
        var nextAckId = 0
        /// Per channel: ack id → (indexes into `received`, polls so far).
        var pendingAcks: [String: [Int: (entries: [Int], polls: Int)]] = [:]
        var webhookIds = Set<String>()
        var duplicateWebhooks = 0
        var gzipped = 0
    }

    public init(configuration: Configuration = Configuration()) {
        self.configuration = configuration
    }

    /// Changes a receiver's fault plan.
    public func plan(_ kind: Kind, _ change: (inout FaultPlan) -> Void) {
        state.withLock { change(&$0.plans[kind, default: FaultPlan()]) }
    }

    /// What a receiver accepted, in order.
    public func received(_ kind: Kind) -> [Received] {
        state.withLock { $0.received.filter { $0.kind == kind } }
    }

    /// Requests a receiver answered (any status).
    public func requests(_ kind: Kind) -> Int {
        state.withLock { $0.requests[kind] ?? 0 }
    }

    /// Datadog requests that came gzip-compressed.
    public var gzippedRequests: Int { state.withLock { $0.gzipped } }

    /// Webhook messages received again with an id already seen (deduped, answered 200).
    public var duplicateWebhooks: Int { state.withLock { $0.duplicateWebhooks } }

    /// How to reach the receivers once listening.
    public struct Endpoints: Sendable, Equatable {
        public var port: Int
        public var hecURL: String
        public var datadogURL: String
        public var webhookURL: String
    }

    func endpoints(port: Int) -> Endpoints {
        let base = "http://\(configuration.host):\(port)"
        return Endpoints(port: port, hecURL: base, datadogURL: base, webhookURL: base + "/webhook")
    }

    // MARK: - Answers

    enum Answer {
        case drop
        case respond(status: Int, headers: [(String, String)], body: [UInt8])
    }

    func handle(_ request: SimRequest) async -> Answer {
        let kind: Kind
        switch request.path {
        case "/services/collector/event", "/services/collector/event/1.0", "/services/collector/ack", "/services/collector/health",
            "/services/collector/health/1.0":
            kind = .hec
        case "/api/v2/logs": kind = .datadog
        case "/webhook": kind = .webhook
        default: return .respond(status: 404, headers: [], body: Array(#"{"text":"Not found"}"#.utf8))
        }
        let plan = state.withLock { state -> FaultPlan in
            state.requests[kind, default: 0] += 1
            return state.plans[kind] ?? FaultPlan()
        }
        if plan.delay > .zero { try? await Task.sleep(for: plan.delay) }
        if plan.dropConnections { return .drop }
        if let retryAfter = plan.rateLimited {
            return .respond(status: 429, headers: [("Retry-After", String(retryAfter))], body: Array(#"{"text":"Too many requests"}"#.utf8))
        }
        switch kind {
        case .hec: return hec(request, plan: plan)
        case .datadog: return datadog(request, plan: plan)
        case .webhook: return webhook(request, plan: plan)
        }
    }

    static func hecAnswer(_ status: Int, _ code: Int, _ text: String, extra: String = "") -> Answer {
        .respond(status: status, headers: [("Content-Type", "application/json")], body: Array(#"{"text":"\#(text)","code":\#(code)\#(extra)}"#.utf8))
    }

    func hec(_ request: SimRequest, plan: FaultPlan) -> Answer {
        if request.path.hasPrefix("/services/collector/health") {
            return plan.down ? Self.hecAnswer(503, 18, "HEC is unhealthy, queues are full") : Self.hecAnswer(200, 17, "HEC is healthy")
        }
        if plan.down { return Self.hecAnswer(503, 9, "Server is busy") }
        guard let authorization = request.header("Authorization") else { return Self.hecAnswer(401, 2, "Token is required") }
        guard authorization.hasPrefix("Splunk ") else { return Self.hecAnswer(401, 3, "Invalid authorization") }
        guard String(authorization.dropFirst(7)) == configuration.hecToken else { return Self.hecAnswer(403, 4, "Invalid token") }
        if plan.unauthorized { return Self.hecAnswer(403, 1, "Token disabled") }
        let channel = request.header("X-Splunk-Request-Channel") ?? request.query.first("channel")
        if request.path == "/services/collector/ack" {
            guard configuration.hecAck else { return Self.hecAnswer(400, 14, "ACK is disabled") }
            guard let channel else { return Self.hecAnswer(400, 10, "Data channel is missing") }
            guard let body = try? JSON.parse(request.body), let ids = body["acks"]?.arrayValue?.compactMap(\.intValue) else {
                return Self.hecAnswer(400, 6, "Invalid data format")
            }
            let answers = state.withLock { state -> [(Int, Bool)] in
                ids.map { id in
                    guard var pending = state.pendingAcks[channel]?[id] else { return (id, false) }
                    pending.polls += 1
                    if let after = plan.ackAfterPolls, pending.polls >= after {
                        for index in pending.entries { state.received[index].indexed = true }
                        state.pendingAcks[channel]?[id] = nil
                        // Acknowledged once; later polls of the same id answer false, as Splunk does.
                        return (id, true)
                    }
                    state.pendingAcks[channel]?[id] = pending
                    return (id, false)
                }
            }
            let reply = "{\"acks\":{" + answers.map { "\"\($0.0)\":\($0.1)" }.joined(separator: ",") + "}}"
            return .respond(status: 200, headers: [("Content-Type", "application/json")], body: Array(reply.utf8))
        }
        if configuration.hecAck && channel == nil { return Self.hecAnswer(400, 10, "Data channel is missing") }
        if request.body.isEmpty { return Self.hecAnswer(400, 5, "No data") }
        guard let events = try? JSON.parseConcatenated(request.body) else { return Self.hecAnswer(400, 6, "Invalid data format") }
        var accepted: [Received] = []
        for (number, envelope) in events.enumerated() {
            guard let event = envelope["event"] else { return Self.hecAnswer(400, 12, "Event field is required", extra: ",\"invalid-event-number\":\(number)") }
            if event == .string("") || event == .object([]) {
                return Self.hecAnswer(400, 13, "Event field cannot be blank", extra: ",\"invalid-event-number\":\(number)")
            }
            let bytes = event.serialized()
            if let poison = plan.poison, String(decoding: bytes, as: UTF8.self).contains(poison) {
                return Self.hecAnswer(400, 6, "Invalid data format", extra: ",\"invalid-event-number\":\(number)")
            }
            accepted.append(Received(kind: .hec, id: event["id"]?.stringValue, body: bytes, indexed: !configuration.hecAck))
        }
        guard configuration.hecAck, let channel else {
            state.withLock { $0.received += accepted }
            return Self.hecAnswer(200, 0, "Success")
        }
        let ackId = state.withLock { state -> Int in
            let first = state.received.count
            state.received += accepted
            let id = state.nextAckId
            state.nextAckId += 1
            state.pendingAcks[channel, default: [:]][id] = (Array(first..<state.received.count), 0)
            return id
        }
        return Self.hecAnswer(200, 0, "Success", extra: ",\"ackId\":\(ackId)")
    }

    func datadog(_ request: SimRequest, plan: FaultPlan) -> Answer {
        func answer(_ status: Int, _ message: String) -> Answer {
            .respond(status: status, headers: [("Content-Type", "application/json")], body: Array(#"{"errors":[{"status":"\#(status)","title":"\#(message)"}]}"#.utf8))
        }
        if plan.down { return answer(503, "Service Unavailable") }
        guard request.header("DD-API-KEY") == configuration.datadogKey, !plan.unauthorized else { return answer(403, "Forbidden") }
        var raw = request.body
        switch request.header("Content-Encoding")?.lowercased() {
        case nil, "identity": break
        case "gzip":
            // The 5 MB limit is on the uncompressed payload.
            guard let inflated = Gunzip.decompress(raw, limit: 5_000_000) else { return answer(400, "Bad Request: not gzip, or larger than 5 MB inflated") }
            raw = inflated
            state.withLock { $0.gzipped += 1 }
        case let other?: return answer(415, "Unsupported Content-Encoding: \(other)")
        }
        guard raw.count <= 5_000_000 else { return answer(413, "Payload Too Large") }
        guard let body = try? JSON.parse(raw), let logs = body.arrayValue else { return answer(400, "Bad Request: not a JSON array") }
        guard logs.count <= 1000 else { return answer(413, "Payload Too Large: more than 1000 logs") }
        var accepted: [Received] = []
        for log in logs {
            let bytes = log.serialized()
            if let poison = plan.poison, String(decoding: bytes, as: UTF8.self).contains(poison) { return answer(400, "Bad Request") }
            accepted.append(Received(kind: .datadog, id: log["rbacwatch"]?["id"]?.stringValue, body: bytes, indexed: true))
        }
        state.withLock { $0.received += accepted }
        return .respond(status: 202, headers: [("Content-Type", "application/json")], body: Array("{}".utf8))
    }

    func webhook(_ request: SimRequest, plan: FaultPlan) -> Answer {
        func answer(_ status: Int, _ message: String) -> Answer {
            .respond(status: status, headers: [("Content-Type", "text/plain")], body: Array(message.utf8))
        }
        if plan.down { return answer(503, "unavailable") }
        if plan.gone { return answer(410, "gone: stop sending") }
        guard let id = request.header("webhook-id"), let stamp = request.header("webhook-timestamp").flatMap({ Int64($0) }),
            let signatures = request.header("webhook-signature")
        else { return answer(400, "missing webhook headers") }
        guard abs(configuration.clock().timeIntervalSince1970 - Double(stamp)) <= 300 else { return answer(401, "timestamp outside tolerance") }
        guard !plan.unauthorized, let key = Data(base64Encoded: String(configuration.webhookSecret.dropFirst(6))) else {
            return answer(401, "signature verification failed")
        }
        let mac = HMAC<SHA256>.authenticationCode(for: Array("\(id).\(stamp).".utf8) + request.body, using: SymmetricKey(data: key))
        let expected = "v1," + Data(mac).base64EncodedString()
        guard signatures.split(separator: " ").contains(where: { $0 == expected }) else { return answer(401, "signature verification failed") }
        if let poison = plan.poison, String(decoding: request.body, as: UTF8.self).contains(poison) { return answer(422, "unprocessable") }
        let duplicate = state.withLock { state -> Bool in
            guard state.webhookIds.insert(id).inserted else {
                state.duplicateWebhooks += 1
                return true
            }
            let payloadId = (try? JSON.parse(request.body))?["id"]?.stringValue
            state.received.append(Received(kind: .webhook, id: payloadId, body: request.body, indexed: true))
            return false
        }
        return answer(duplicate ? 200 : 204, duplicate ? "duplicate" : "")
    }
}
