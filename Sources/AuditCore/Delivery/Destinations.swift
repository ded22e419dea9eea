import Foundation

/// Where findings and drift items are delivered: one entry of a destinations file.
public struct Destination: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable {
        case splunkHEC = "splunk-hec"
        case datadog
        case webhook
        /// RFC 5424 over TCP or TLS with octet counting (`url` `tcp://host:port` or `tls://host:port`).
        case syslog
        /// JSON lines appended to a local file (0600).
        case file
    }

    /// Where a secret comes from: never the destinations file itself.
    public enum SecretSource: Sendable, Equatable {
        case environment(String)
        case file(String)
    }

    public var name: String
    public var kind: Kind
    /// HEC: the collector's base URL (`https://splunk:8088`); Datadog: the intake URL (or from
    /// `site`); webhook: the receiver's URL.
    public var url: String?
    /// For `file`: the path.
    public var path: String?
    public var secret: SecretSource?
    public var minimumSeverity: Severity = .low
    /// Payload kinds sent (default: both).
    public var kinds: Set<DeliveryPayload.Kind> = Set(DeliveryPayload.Kind.allCases)
    /// Rule ids or drift kinds sent, as patterns with `*` (empty: all).
    public var rules: [String] = []
    /// Payloads per request, and bytes per request body, at most.
    public var batchSize = 100
    public var batchBytes = 1_000_000
    /// Whole-request deadline.
    public var timeout: Duration = .seconds(30)
    /// Send payloads as OCSF 1.7 events (Detection Finding, Compliance Finding) instead of
    /// rbacwatch's own schema.
    public var ocsf = false
    // HEC.
    public var index: String?
    public var source = "rbacwatch"
    public var sourcetype = "rbacwatch:json"
    /// Indexer acknowledgement: a batch counts as delivered only once its ackId is acknowledged.
    public var acknowledgement = false
    // Datadog.
    public var service = "rbacwatch"
    public var tags: [String] = []
    /// Datadog: send the body gzip-compressed (the default).
    public var gzip = true
    // Syslog.
    public var message: Syslog.Message = .json
    public var facility = 13
    public var appName = "rbacwatch"
    // TLS (https://, tls://): a CA file to trust, or no verification at all (said loudly).
    public var caFile: String?
    public var insecureSkipVerify = false

    /// Syslog: host and port from `tcp://host:port` / `tls://host:port`, and whether TLS.
    public var syslogAddress: (host: String, port: Int, tls: Bool)? {
        guard kind == .syslog, let url else { return nil }
        let tls = url.hasPrefix("tls://")
        guard tls || url.hasPrefix("tcp://") else { return nil }
        let rest = url.dropFirst(6)
        guard let colon = rest.lastIndex(of: ":"), let port = Int(rest[rest.index(after: colon)...]), (1...65535).contains(port) else { return nil }
        var host = String(rest[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return host.isEmpty ? nil : (host, port, tls)
    }

    public init(name: String, kind: Kind) {
        self.name = name
        self.kind = kind
    }

    /// Whether this destination wants the payload.
    public func wants(_ payload: DeliveryPayload) -> Bool {
        guard kinds.contains(payload.kind), payload.severity >= minimumSeverity else { return false }
        return rules.isEmpty || rules.contains { Self.matches(pattern: $0, payload.rule) }
    }

    /// `*` matches any run of characters; case-insensitive.
    static func matches(pattern: String, _ text: String) -> Bool {
        let parts = pattern.lowercased().split(separator: "*", omittingEmptySubsequences: false).map(String.init)
        var rest = Substring(text.lowercased())
        guard let first = parts.first, rest.hasPrefix(first) else { return false }
        rest = rest.dropFirst(first.count)
        if parts.count == 1 { return rest.isEmpty }
        for (index, part) in parts.dropFirst().enumerated() {
            if index == parts.count - 2 { return part.isEmpty || rest.hasSuffix(part) }
            guard let range = rest.range(of: part) else { return false }
            rest = rest[range.upperBound...]
        }
        return true
    }
}

/// Reads a destinations file: `{"destinations": [ {...}, ... ]}`.
public enum DestinationsFile {
    public struct ParseError: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    static let sites: Set<String> = ["datadoghq.com", "us3.datadoghq.com", "us5.datadoghq.com", "datadoghq.eu", "ap1.datadoghq.com", "ddog-gov.com"]
    static let secretNames: Set<String> = ["secret", "token", "apiKey", "api_key", "password", "key"]

    public static func parse(_ bytes: [UInt8]) throws(ParseError) -> [Destination] {
        guard let root = JSONValue.parse(bytes) else { throw ParseError(description: "the destinations file is not JSON") }
        guard case .array(let entries)? = root["destinations"] else { throw ParseError(description: "the destinations file needs a \"destinations\" array") }
        guard entries.count <= 64 else { throw ParseError(description: "at most 64 destinations") }
        var destinations: [Destination] = []
        for (index, entry) in entries.enumerated() {
            let destination = try parse(entry, at: index)
            if destinations.contains(where: { $0.name == destination.name }) {
                throw ParseError(description: "destination \(destination.name): the name is used twice")
            }
            destinations.append(destination)
        }
        return destinations
    }

    static func parse(_ entry: JSONValue, at index: Int) throws(ParseError) -> Destination {
        guard case .object(let members) = entry else { throw ParseError(description: "destination \(index + 1): not an object") }
        guard let name = members["name"]?.string, !name.isEmpty, name.count <= 64,
            name.unicodeScalars.allSatisfy({ CharacterSet.alphanumerics.contains($0) || $0 == "-" || $0 == "_" || $0 == "." })
        else { throw ParseError(description: "destination \(index + 1): a name of letters, digits, - _ . (at most 64) is required") }
        func fail(_ text: String) -> ParseError { ParseError(description: "destination \(name): \(text)") }
        guard let kindName = members["kind"]?.string, let kind = Destination.Kind(rawValue: kindName) else {
            throw fail("kind must be one of \(Destination.Kind.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let known: Set<String> = [
            "name", "kind", "url", "site", "path", "secretEnv", "secretFile", "minimumSeverity", "kinds", "rules", "batchSize", "batchBytes",
            "timeoutSeconds", "index", "source", "sourcetype", "acknowledgement", "service", "tags", "format", "facility", "appName", "caFile",
            "insecureSkipVerify", "gzip", "ocsf",
        ]
        for key in members.keys.sorted() where !known.contains(key) {
            if secretNames.contains(key) {
                throw fail("\(key): secrets are never written in this file — name an environment variable (secretEnv) or a file (secretFile)")
            }
            throw fail("unknown member \(key)")
        }
        var destination = Destination(name: name, kind: kind)
        func string(_ key: String) throws(ParseError) -> String? {
            guard let value = members[key] else { return nil }
            guard let text = value.string, !text.isEmpty, text.count <= 2048 else { throw fail("\(key) must be a non-empty string") }
            return text
        }
        func integer(_ key: String, _ range: ClosedRange<Int>) throws(ParseError) -> Int? {
            guard let value = members[key] else { return nil }
            guard case .number(let number) = value, number.rounded() == number, number >= Double(range.lowerBound), number <= Double(range.upperBound) else {
                throw fail("\(key) must be a whole number from \(range.lowerBound) to \(range.upperBound)")
            }
            return Int(number)
        }
        func strings(_ key: String) throws(ParseError) -> [String]? {
            guard let value = members[key] else { return nil }
            guard case .array(let items) = value, items.count <= 100 else { throw fail("\(key) must be a list of strings") }
            var out: [String] = []
            for item in items {
                guard let text = item.string, !text.isEmpty else { throw fail("\(key) must be a list of strings") }
                out.append(text)
            }
            return out
        }
        destination.url = try string("url")
        destination.path = try string("path")
        if let variable = try string("secretEnv") { destination.secret = .environment(variable) }
        if let file = try string("secretFile") {
            guard destination.secret == nil else { throw fail("secretEnv or secretFile, not both") }
            destination.secret = .file(file)
        }
        if let severity = try string("minimumSeverity") {
            guard let parsed = Severity(name: severity) else { throw fail("minimumSeverity must be low, medium, high or critical") }
            destination.minimumSeverity = parsed
        }
        if let kinds = try strings("kinds") {
            var set = Set<DeliveryPayload.Kind>()
            for name in kinds {
                guard let kind = DeliveryPayload.Kind(rawValue: name) else { throw fail("kinds: finding or drift-item, not \(name)") }
                set.insert(kind)
            }
            destination.kinds = set
        }
        destination.rules = try strings("rules") ?? []
        destination.batchSize = try integer("batchSize", 1...1000) ?? destination.batchSize
        destination.batchBytes = try integer("batchBytes", 1024...5_000_000) ?? destination.batchBytes
        destination.timeout = .seconds(try integer("timeoutSeconds", 1...300) ?? 30)
        destination.index = try string("index")
        destination.source = try string("source") ?? destination.source
        destination.sourcetype = try string("sourcetype") ?? destination.sourcetype
        if let ack = members["acknowledgement"] {
            guard case .bool(let flag) = ack else { throw fail("acknowledgement must be true or false") }
            destination.acknowledgement = flag
        }
        destination.service = try string("service") ?? destination.service
        destination.tags = try strings("tags") ?? []
        if let format = try string("format") {
            guard let parsed = Syslog.Message(rawValue: format) else { throw fail("format must be json or cef") }
            destination.message = parsed
        }
        destination.facility = try integer("facility", 0...23) ?? destination.facility
        if let ocsf = members["ocsf"] {
            guard case .bool(let flag) = ocsf else { throw fail("ocsf must be true or false") }
            destination.ocsf = flag
        }
        if let gzip = members["gzip"] {
            guard case .bool(let flag) = gzip, kind == .datadog else { throw fail("gzip (true or false) is for datadog") }
            destination.gzip = flag
        }
        destination.appName = try string("appName") ?? destination.appName
        destination.caFile = try string("caFile")
        if let skip = members["insecureSkipVerify"] {
            guard case .bool(let flag) = skip else { throw fail("insecureSkipVerify must be true or false") }
            destination.insecureSkipVerify = flag
        }
        switch kind {
        case .splunkHEC, .webhook:
            guard let url = destination.url, url.hasPrefix("https://") || url.hasPrefix("http://") else { throw fail("url (http or https) is required") }
            guard destination.secret != nil else { throw fail("secretEnv or secretFile is required (the \(kind == .webhook ? "whsec_ signing secret" : "HEC token"))") }
        case .datadog:
            if let site = try string("site") {
                guard sites.contains(site) else { throw fail("site must be one of \(sites.sorted().joined(separator: ", "))") }
                destination.url = destination.url ?? "https://http-intake.logs.\(site)"
            }
            guard let url = destination.url, url.hasPrefix("https://") || url.hasPrefix("http://") else { throw fail("site or url is required") }
            guard destination.secret != nil else { throw fail("secretEnv or secretFile is required (the API key)") }
            destination.batchSize = min(destination.batchSize, 1000)
        case .file:
            guard destination.path != nil else { throw fail("path is required") }
        case .syslog:
            guard destination.syslogAddress != nil else { throw fail("url must be tcp://host:port or tls://host:port") }
        }
        if destination.caFile != nil || destination.insecureSkipVerify {
            let encrypted = destination.syslogAddress?.tls == true || destination.url?.hasPrefix("https://") == true
            guard encrypted else { throw fail("caFile and insecureSkipVerify are for https:// and tls:// destinations") }
        }
        if destination.acknowledgement && kind != .splunkHEC { throw fail("acknowledgement is for splunk-hec only") }
        if destination.ocsf && kind == .syslog && destination.message == .cef { throw fail("ocsf goes where JSON goes: not with format cef") }
        return destination
    }
}

/// What a receiver's answer to one batch means for delivery.
public enum DeliveryResult: Sendable, Equatable {
    /// Accepted (for HEC with acknowledgement: acknowledged).
    case delivered
    /// HEC with acknowledgement: accepted, awaiting the ack of this id.
    case awaitingAck(Int)
    /// Worth retrying the same bytes later: a connection failure, a timeout, 408, 429, 5xx.
    case transient(String, retryAfter: Double?)
    /// The payload is bad: retrying the same bytes cannot help.
    case rejected(String)
    /// The destination is misconfigured (401/403, a refused signature, 410 Gone): pause.
    case configuration(String)
}

/// Sends batches to one receiver. Implementations: `SIEMClient`'s senders.
public protocol DeliverySender: Sendable {
    /// Sends entries' payloads as one request.
    func send(_ payloads: [DeliveryPayload]) async -> DeliveryResult
    /// HEC with acknowledgement: which of these ack ids are acknowledged (absent: unknown).
    func acknowledged(_ ids: [Int]) async -> Result<[Int: Bool], DeliveryFailure>
    func shutdown() async
}

/// Why acknowledgements could not be read.
public struct DeliveryFailure: Error, Sendable, Equatable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

extension DeliverySender {
    public func acknowledged(_ ids: [Int]) async -> Result<[Int: Bool], DeliveryFailure> { .success([:]) }
}
