import Crypto
import Foundation

// What each kind of receiver is sent, built from a `DeliveryPayload`: Splunk HEC envelopes,
// Datadog log objects, Standard Webhooks signatures, RFC 5424 syslog (JSON or CEF message)
// with RFC 6587 octet counting. Pure: bytes in, bytes out.

/// Splunk HTTP Event Collector: one envelope per payload; a batch is the envelopes concatenated.
public enum SplunkHEC {
    public struct Envelope: Sendable, Equatable {
        public var host: String
        public var source: String
        public var sourcetype: String
        public var index: String?

        public init(host: String, source: String = "rbacwatch", sourcetype: String = "rbacwatch:json", index: String? = nil) {
            self.host = host
            self.source = source
            self.sourcetype = sourcetype
            self.index = index
        }
    }

    /// `{"event": payload, "fields": {...}, "host", "index", "source", "sourcetype", "time"}`.
    public static func event(_ payload: DeliveryPayload, _ envelope: Envelope, event: [UInt8]? = nil) -> [UInt8] {
        var w = CanonicalJSONWriter(reservingCapacity: payload.body.count + 256)
        w.beginObject()
        w.key("event")
        w.raw(event ?? payload.body)
        w.key("fields")
        w.beginObject()
        w.field("id", payload.id)
        w.field("kind", payload.kind.rawValue)
        w.field("rule", payload.rule)
        w.field("severity", payload.severity.name)
        w.endObject()
        w.field("host", envelope.host)
        w.field("index", envelope.index)
        w.field("source", envelope.source)
        w.field("sourcetype", envelope.sourcetype)
        w.key("time")
        w.value(milliseconds: Int64((payload.time.timeIntervalSince1970 * 1000).rounded()))
        w.endObject()
        return w.bytes
    }
}

/// Datadog Logs API v2: a JSON array of log objects.
public enum DatadogLogs {
    public struct Tags: Sendable, Equatable {
        public var service: String
        public var hostname: String
        public var source: String
        /// `key:value` tags, joined with commas.
        public var tags: [String]

        public init(service: String = "rbacwatch", hostname: String, source: String = "genesys-cloud", tags: [String] = []) {
            self.service = service
            self.hostname = hostname
            self.source = source
            self.tags = tags
        }
    }

    /// Datadog's log status for a severity.
    public static func status(_ severity: Severity) -> String {
        switch severity {
        case .low: "info"
        case .medium: "warning"
        case .high: "error"
        case .critical: "critical"
        }
    }

    /// One log object: `ddsource`, `ddtags`, `hostname`, `message`, `service`, `status`, and the
    /// payload under `rbacwatch`.
    public static func log(_ payload: DeliveryPayload, _ tags: Tags, event: [UInt8]? = nil) -> [UInt8] {
        var w = CanonicalJSONWriter(reservingCapacity: payload.body.count + 256)
        w.beginObject()
        w.field("ddsource", tags.source)
        let all = tags.tags + ["kind:\(payload.kind.rawValue)", "rule:\(payload.rule)", "severity:\(payload.severity.name)"]
        w.field("ddtags", all.joined(separator: ","))
        w.field("hostname", tags.hostname)
        w.field("message", payload.title)
        w.key("rbacwatch")
        w.raw(event ?? payload.body)
        w.field("service", tags.service)
        w.field("status", status(payload.severity))
        w.endObject()
        return w.bytes
    }

    /// Log objects as one array body.
    public static func batch(_ logs: [[UInt8]]) -> [UInt8] {
        var out: [UInt8] = [UInt8(ascii: "[")]
        for (index, log) in logs.enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            out += log
        }
        out.append(UInt8(ascii: "]"))
        return out
    }
}

/// The Standard Webhooks signature scheme.
public enum StandardWebhooks {
    public struct SecretError: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    /// The key of a `whsec_<base64>` secret.
    public static func key(_ secret: String) throws(SecretError) -> [UInt8] {
        let trimmed = secret.trimmingCharacters(in: .whitespacesAndNewlines)
        let encoded = trimmed.hasPrefix("whsec_") ? String(trimmed.dropFirst(6)) : trimmed
        guard let data = Data(base64Encoded: encoded), data.count >= 16 else {
            throw SecretError(description: "a webhook secret must be whsec_ followed by base64 of at least 16 bytes")
        }
        return Array(data)
    }

    /// `v1,<base64(HMAC-SHA256(key, "<id>.<timestamp>.<body>"))>`.
    public static func signature(key: [UInt8], id: String, timestamp: Int64, body: [UInt8]) -> String {
        var message = Array("\(id).\(timestamp).".utf8)
        message += body
        let mac = HMAC<SHA256>.authenticationCode(for: message, using: SymmetricKey(data: key))
        return "v1," + Data(mac).base64EncodedString()
    }

    /// Whether any of the space-separated signatures in `header` is right for the message, and
    /// the timestamp within `tolerance` seconds of `now` (what a receiver checks).
    public static func verify(key: [UInt8], id: String, timestamp: Int64, body: [UInt8], header: String, now: Date, tolerance: Double = 300) -> Bool {
        guard abs(now.timeIntervalSince1970 - Double(timestamp)) <= tolerance else { return false }
        let expected = signature(key: key, id: id, timestamp: timestamp, body: body)
        return header.split(separator: " ").contains { constantTimeEqual(Array($0.utf8), Array(expected.utf8)) }
    }

    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for index in a.indices { difference |= a[index] ^ b[index] }
        return difference == 0
    }
}

/// RFC 5424 syslog messages, framed by RFC 6587 octet counting, with the payload's JSON or a
/// CEF line as the message.
public enum Syslog {
    public enum Message: String, Sendable, CaseIterable {
        case json, cef
    }

    public struct Header: Sendable, Equatable {
        /// 0–23; 13 is "log audit".
        public var facility: Int
        public var hostname: String
        public var appName: String
        public var procId: String

        public init(facility: Int = 13, hostname: String, appName: String = "rbacwatch", procId: String = "-") {
            self.facility = min(max(facility, 0), 23)
            self.hostname = hostname
            self.appName = appName
            self.procId = procId
        }
    }

    /// The syslog severity of a payload: critical 2, high 3 (error), medium 4 (warning), low 5 (notice).
    public static func severity(_ severity: Severity) -> Int {
        switch severity {
        case .critical: 2
        case .high: 3
        case .medium: 4
        case .low: 5
        }
    }

    /// `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID - MSG`.
    public static func message(_ payload: DeliveryPayload, _ header: Header, as format: Message) -> [UInt8] {
        let pri = header.facility * 8 + severity(payload.severity)
        let head =
            "<\(pri)>1 \(ISOTimestamp.string(payload.time)) \(field(header.hostname, max: 255)) \(field(header.appName, max: 48)) "
            + "\(field(header.procId, max: 128)) \(field(payload.kind.rawValue, max: 32)) - "
        var out = Array(head.utf8)
        switch format {
        case .json: out += TerminalSafe.sanitizeJSON(payload.body)
        case .cef: out += Array(CEF.line(payload).utf8)
        }
        return out
    }

    /// RFC 6587 octet counting: `<length> <message>`.
    public static func framed(_ message: [UInt8]) -> [UInt8] {
        Array("\(message.count) ".utf8) + message
    }

    /// A header field: printable ASCII without spaces, at most `max` characters, `-` when empty.
    static func field(_ text: String, max: Int) -> String {
        let kept = text.unicodeScalars.filter { $0.value >= 33 && $0.value <= 126 }.prefix(max)
        return kept.isEmpty ? "-" : String(String.UnicodeScalarView(kept))
    }
}

/// ArcSight Common Event Format.
public enum CEF {
    /// CEF severity 0–10: low 3, medium 5, high 8, critical 10.
    public static func severity(_ severity: Severity) -> Int {
        switch severity {
        case .low: 3
        case .medium: 5
        case .high: 8
        case .critical: 10
        }
    }

    /// `CEF:0|rbacwatch|rbacwatch|2|<rule>|<title>|<severity>|<extension>`.
    public static func line(_ payload: DeliveryPayload) -> String {
        let json = JSONValue.parse(payload.body)
        var extensions: [(String, String)] = [
            ("rt", String(Int64((payload.time.timeIntervalSince1970 * 1000).rounded()))),
            ("externalId", payload.id),
            ("cat", payload.kind.rawValue),
        ]
        func add(_ key: String, _ value: JSONValue?) {
            if let text = value?.string, !text.isEmpty { extensions.append((key, text)) }
        }
        let actor = json?["actor"]
        add("suser", actor?["name"])
        add("suid", actor?["id"])
        if case .array(let ips)? = actor?["remoteIp"], let first = ips.first { add("src", first) }
        add("act", json?["action"] ?? json?["kind"])
        if let target = json?["target"] {
            add("duser", target["name"])
            add("duid", target["id"])
            add("cs2", target["type"])
            if target["type"] != nil { extensions.append(("cs2Label", "targetType")) }
        } else if let subject = json?["subject"] {
            add("duser", subject["name"])
            add("duid", subject["id"])
        }
        if let organization = json?["organization"] {
            add("cs1", organization["id"])
            extensions.append(("cs1Label", "organizationId"))
        }
        add("cs3", json?["status"])
        extensions.append(("cs3Label", "reviewStatus"))
        add("msg", .string(payload.title))
        let header = ["CEF:0", "rbacwatch", "rbacwatch", "2", header(payload.rule), header(String(payload.title.prefix(512))), String(severity(payload.severity))]
        return header.joined(separator: "|") + "|" + extensions.map { "\($0.0)=\(value($0.1))" }.joined(separator: " ")
    }

    /// A header field: `\` and `|` escaped, line breaks as spaces (they end a header), other
    /// control characters shown inert (`\\x1B`: a reader sees the text `\x1B`).
    public static func header(_ text: String) -> String { escape(text, header: true) }

    /// An extension value: `\` and `=` escaped, newlines as `\n`, carriage returns as `\r`, other
    /// control characters shown inert.
    public static func value(_ text: String) -> String { escape(text, header: false) }

    static func escape(_ text: String, header: Bool) -> String {
        var out = ""
        for character in text.unicodeScalars {
            switch character {
            case "\\": out += "\\\\"
            case "|" where header: out += "\\|"
            case "=" where !header: out += "\\="
            case "\n": out += header ? " " : "\\n"
            case "\r": out += header ? " " : "\\r"
            default: out += inert(character)
            }
        }
        return out
    }

    /// A scalar as itself, or, when a terminal would act on it, as visible text.
    static func inert(_ scalar: Unicode.Scalar) -> String {
        guard TerminalSafe.isUnsafe(scalar) else { return String(scalar) }
        return TerminalSafe.sanitize(String(scalar)).replacingOccurrences(of: "\\", with: "\\\\")
    }
}
