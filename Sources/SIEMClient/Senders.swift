import AuditCore
import Foundation
import GenesysClient

// The receivers' API shapes: what each kind of destination is sent and how its answers read.
// Which answers are retried, dead-lettered or pause a destination is `DeliveryResult`'s
// meaning, decided by the engine.

/// A reply's status read the way every receiver here agrees on: 2xx delivered, 408 / 429 / 5xx
/// transient (with `Retry-After`), 401 / 403 configuration, other 4xx a rejected payload.
func classify(_ response: HTTPResponseData, what: String) -> DeliveryResult {
    let detail = "\(what) answered \(response.status)" + (summary(response.body).map { ": \($0)" } ?? "")
    switch response.status {
    case 200..<300: return .delivered
    case 408, 429, 500...599: return .transient(detail, retryAfter: retryAfter(response))
    case 401, 403: return .configuration(detail)
    case 410: return .configuration(detail + " (410 Gone: the receiver asks to stop)")
    default: return .rejected(detail)
    }
}

/// `Retry-After` in seconds (the delta form), clamped to a day; nil when absent or unreadable.
func retryAfter(_ response: HTTPResponseData) -> Double? {
    guard let text = response.header("Retry-After"), let seconds = Double(text.trimmingCharacters(in: .whitespaces)), !seconds.isNaN else {
        return nil
    }
    return Bounded.seconds(seconds, clampedTo: 0...86_400)
}

/// A reply body as one short, inert line.
func summary(_ body: [UInt8]) -> String? {
    guard !body.isEmpty else { return nil }
    let text = String(decoding: body.prefix(200), as: UTF8.self).replacingOccurrences(of: "\n", with: " ")
    return TerminalSafe.sanitize(text)
}

/// A failure below HTTP: a name that does not resolve and a TLS handshake that fails are the
/// operator's to fix (pause); the rest passes (retry).
func transportFailure(_ error: TransportError, what: String) -> DeliveryResult {
    switch error.kind {
    case .nameResolution, .tls: .configuration("\(what): \(error.message)")
    default: .transient("\(what): \(error.message)", retryAfter: nil)
    }
}

/// Splunk HTTP Event Collector: envelopes concatenated in one body; with indexer
/// acknowledgement, a channel on every request and the ack polled.
public struct HECSender: DeliverySender {
    let transport: any HTTPTransport
    let base: String
    let token: Secret
    let envelope: SplunkHEC.Envelope
    let channel: String?
    let timeout: Duration

    public init(transport: any HTTPTransport, destination: Destination, token: Secret, host: String) {
        self.transport = transport
        self.base = String((destination.url ?? "").reversed().drop(while: { $0 == "/" }).reversed())
        self.token = token
        self.envelope = SplunkHEC.Envelope(host: host, source: destination.source, sourcetype: destination.sourcetype, index: destination.index)
        // One stable channel per destination and token: acks survive a restart of the process.
        self.channel = destination.acknowledgement ? Self.channel(destination.name, token: token.reveal()) : nil
        self.timeout = destination.timeout
    }

    /// A GUID derived from the destination's name and token.
    static func channel(_ name: String, token: String) -> String {
        let hex = Array(ContentHash.sha256Hex(Array("rbacwatch-hec-channel\u{1}\(name)\u{1}\(token)".utf8)).prefix(32))
        let text = String(hex)
        func part(_ from: Int, _ count: Int) -> Substring { text.dropFirst(from).prefix(count) }
        return "\(part(0, 8))-\(part(8, 4))-4\(part(13, 3))-a\(part(17, 3))-\(part(20, 12))"
    }

    var headers: [(String, String)] {
        var headers = [("Authorization", "Splunk \(token.reveal())"), ("Content-Type", "application/json")]
        if let channel { headers.append(("X-Splunk-Request-Channel", channel)) }
        return headers
    }

    public func send(_ payloads: [DeliveryPayload]) async -> DeliveryResult {
        var body: [UInt8] = []
        for payload in payloads { body += SplunkHEC.event(payload, envelope) }
        let response: HTTPResponseData
        do {
            response = try await transport.send(HTTPRequestData(method: "POST", url: base + "/services/collector/event", headers: headers, body: body, timeout: timeout))
        } catch {
            return transportFailure(error, what: "Splunk HEC")
        }
        let reply = JSONValue.parse(response.body)
        var code: Int?
        if case .number(let number)? = reply?["code"] { code = Int(exactly: number) }
        let text = reply?["text"]?.string.map(TerminalSafe.sanitize) ?? summary(response.body) ?? ""
        let detail = "Splunk HEC answered \(response.status)\(code.map { " code \($0)" } ?? ""): \(text)"
        switch (response.status, code) {
        case (200, _):
            guard channel != nil else { return .delivered }
            guard case .number(let ack)? = reply?["ackId"], let ackId = Int(exactly: ack) else {
                return .configuration("Splunk HEC accepted without an ackId: indexer acknowledgement is not enabled on this token")
            }
            return .awaitingAck(ackId)
        case (400, 10?), (400, 11?), (400, 14?), (401, _), (403, _):
            return .configuration(detail)
        case (400, _):
            return .rejected(detail)
        case (408, _), (429, _), (500...599, _):
            return .transient(detail, retryAfter: retryAfter(response))
        default:
            return classify(response, what: "Splunk HEC")
        }
    }

    public func acknowledged(_ ids: [Int]) async -> Result<[Int: Bool], DeliveryFailure> {
        guard let channel, !ids.isEmpty else { return .success([:]) }
        let body = Array("{\"acks\":[\(ids.map(String.init).joined(separator: ","))]}".utf8)
        let response: HTTPResponseData
        do {
            response = try await transport.send(
                HTTPRequestData(method: "POST", url: base + "/services/collector/ack?channel=\(channel)", headers: headers, body: body, timeout: timeout))
        } catch {
            return .failure(DeliveryFailure("Splunk HEC ack: \(error.message)"))
        }
        guard response.status == 200, case .object(let acks)? = JSONValue.parse(response.body)?["acks"] else {
            return .failure(DeliveryFailure("Splunk HEC ack answered \(response.status)" + (summary(response.body).map { ": \($0)" } ?? "")))
        }
        var out: [Int: Bool] = [:]
        for (key, value) in acks {
            if let id = Int(key), case .bool(let flag) = value { out[id] = flag }
        }
        return .success(out)
    }

    public func shutdown() async { await transport.shutdown() }
}

/// Datadog Logs API v2: an array of log objects.
public struct DatadogSender: DeliverySender {
    let transport: any HTTPTransport
    let url: String
    let key: Secret
    let tags: DatadogLogs.Tags
    let timeout: Duration
    let gzip: Bool

    public init(transport: any HTTPTransport, destination: Destination, key: Secret, host: String) {
        self.transport = transport
        let base = String((destination.url ?? "").reversed().drop(while: { $0 == "/" }).reversed())
        self.url = base.hasSuffix("/api/v2/logs") ? base : base + "/api/v2/logs"
        self.key = key
        self.tags = DatadogLogs.Tags(service: destination.service, hostname: host, tags: destination.tags)
        self.timeout = destination.timeout
        self.gzip = destination.gzip
    }

    public func send(_ payloads: [DeliveryPayload]) async -> DeliveryResult {
        var body = DatadogLogs.batch(payloads.map { DatadogLogs.log($0, tags) })
        var headers = [("DD-API-KEY", key.reveal()), ("Content-Type", "application/json")]
        if gzip {
            do {
                body = try Gzip.compress(body)
                headers.append(("Content-Encoding", "gzip"))
            } catch {
                return .rejected(error.description)
            }
        }
        do {
            let response = try await transport.send(HTTPRequestData(method: "POST", url: url, headers: headers, body: body, timeout: timeout))
            return classify(response, what: "Datadog")
        } catch {
            return transportFailure(error, what: "Datadog")
        }
    }

    public func shutdown() async { await transport.shutdown() }
}

/// A Standard Webhooks receiver: one payload per request, signed; `webhook-id` is the payload's
/// id, the same on every retry and replay.
public struct WebhookSender: DeliverySender {
    let transport: any HTTPTransport
    let url: String
    let key: [UInt8]
    let timeout: Duration
    let now: @Sendable () -> Date

    public init(transport: any HTTPTransport, destination: Destination, secret: Secret, now: @escaping @Sendable () -> Date = { Date() }) throws(StandardWebhooks.SecretError) {
        self.transport = transport
        self.url = destination.url ?? ""
        self.key = try StandardWebhooks.key(secret.reveal())
        self.timeout = destination.timeout
        self.now = now
    }

    public func send(_ payloads: [DeliveryPayload]) async -> DeliveryResult {
        for payload in payloads {
            let stamp = Int64(now().timeIntervalSince1970)
            let signature = StandardWebhooks.signature(key: key, id: payload.id, timestamp: stamp, body: payload.body)
            let headers = [
                ("Content-Type", "application/json"), ("webhook-id", payload.id), ("webhook-timestamp", String(stamp)), ("webhook-signature", signature),
            ]
            do {
                let response = try await transport.send(HTTPRequestData(method: "POST", url: url, headers: headers, body: payload.body, timeout: timeout))
                let result = classify(response, what: "the webhook")
                guard result == .delivered else { return result }
            } catch {
                return transportFailure(error, what: "the webhook")
            }
        }
        return .delivered
    }

    public func shutdown() async { await transport.shutdown() }
}

/// JSON lines appended to a private file (0600), made inert for a terminal.
public struct JSONLFileSender: DeliverySender {
    let path: String

    public init(path: String) {
        self.path = path
    }

    public func send(_ payloads: [DeliveryPayload]) async -> DeliveryResult {
        var bytes: [UInt8] = []
        for payload in payloads { bytes += TerminalSafe.sanitizeJSON(payload.body) + [UInt8(ascii: "\n")] }
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o600)
        guard fd >= 0 else { return .transient("cannot open \(path): \(String(cString: strerror(errno)))", retryAfter: nil) }
        defer { close(fd) }
        var written = 0
        while written < bytes.count {
            let n = bytes[written...].withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                return .transient("cannot write \(path): \(String(cString: strerror(errno)))", retryAfter: nil)
            }
            written += n
        }
        guard fsync(fd) == 0 else { return .transient("cannot sync \(path): \(String(cString: strerror(errno)))", retryAfter: nil) }
        return .delivered
    }

    public func shutdown() async {}
}
