import Foundation

/// Where audit events come from: the Platform API's audit queries (`GenesysAuditSource`), or
/// anything that answers the same questions.
public protocol AuditSource: Sendable {
    /// The services the audit API knows (`servicemapping`).
    func services() async throws -> [String]
    /// Events of `service` (`*`: every service), of `entityType` if given, dated in `[from, to)`,
    /// as many pages as it takes up to the source's ceilings; records that do not read as events
    /// are returned quarantined, and a stop before the end of the interval says why.
    /// `realtime`: the synchronous query (the last 14 days); otherwise the asynchronous one (full
    /// retention).
    func fetch(from: Date, to: Date, service: String, entityType: String?, realtime: Bool) async throws -> AuditFetch
    /// The same, leaving unparsed the records `known` already holds byte for byte (the overlap
    /// of each window fetches most events again): they are counted in `skipped`.
    func fetch(from: Date, to: Date, service: String, entityType: String?, realtime: Bool, known: KnownEvents) async throws -> AuditFetch
}

extension AuditSource {
    /// A source that cannot skip parses everything.
    public func fetch(from: Date, to: Date, service: String, entityType: String?, realtime: Bool, known: KnownEvents) async throws -> AuditFetch {
        try await fetch(from: from, to: to, service: service, entityType: entityType, realtime: realtime)
    }

    /// The events alone (what attribution and tests want).
    public func events(from: Date, to: Date, service: String, entityType: String? = nil, realtime: Bool) async throws -> [AuditEvent] {
        try await fetch(from: from, to: to, service: service, entityType: entityType, realtime: realtime).events
    }
}

/// Why a source could not answer, in the terms ingestion acts on.
public enum AuditSourceError: Error, Sendable, CustomStringConvertible {
    /// 429: wait `retryAfter` (when given), then back off.
    case rateLimited(retryAfter: Duration?)
    /// Anything else: the message, one line.
    case failed(String)

    public var description: String {
        switch self {
        case .rateLimited(let after): "the audit API is rate limiting us" + (after.map { " (retry after \($0.components.seconds) s)" } ?? "")
        case .failed(let message): message
        }
    }
}

/// Records a reader already holds, as the bytes they came in: a page's record with exactly
/// those bytes is the same event, and is skipped unparsed. Found by a hash of the bytes (seeded
/// per process, so a record cannot be crafted to collide) and confirmed byte for byte.
public struct KnownEvents: Sendable {
    public struct Entry: Sendable, Equatable {
        public var id: String
        public var date: Date
        public var bytes: [UInt8]
        public var hash: Int
        public init(id: String, date: Date, bytes: [UInt8]) {
            self.id = id
            self.date = date
            self.bytes = bytes
            hash = KnownEvents.hash(bytes[...])
        }
    }

    public private(set) var byHash: [Int: Entry] = [:]

    public init(_ entries: some Sequence<Entry> = [Entry]()) {
        for entry in entries { byHash[entry.hash] = entry }
    }

    public static func hash(_ bytes: ArraySlice<UInt8>) -> Int {
        var hasher = Hasher()
        bytes.withUnsafeBytes { hasher.combine(bytes: $0) }
        return hasher.finalize()
    }

    /// The entry with exactly these bytes, if any.
    public func entry(for bytes: ArraySlice<UInt8>) -> Entry? {
        guard !byHash.isEmpty, let entry = byHash[Self.hash(bytes)], entry.bytes.count == bytes.count else { return nil }
        let equal = entry.bytes.withUnsafeBytes { known in bytes.withUnsafeBytes { seen in
            seen.isEmpty || memcmp(known.baseAddress!, seen.baseAddress!, seen.count) == 0
        } }
        return equal ? entry : nil
    }
}

/// One page of an audit query reply: realtime (`pageCount`) or async results (`cursor`).
public struct AuditQueryPage: Sendable {
    public var events: [AuditEvent]
    /// Elements of `entities` that are valid JSON but not audit events: kept raw, with why.
    public var unreadable: [QuarantinedRecord] = []
    /// Records left unparsed because the reader already held them byte for byte: id and date.
    public var skipped: [(id: String, date: Date)] = []
    /// With a `known` list: each parsed event's bytes, by id (for the next list).
    public var records: [String: KnownEvents.Entry] = [:]
    public var pageCount: Int?
    public var total: Int?
    public var cursor: String?
    public var state: String?
    public var id: String?

    /// Reads `{"entities": [...], "pageCount", "total", "cursor", ...}`; other members are skipped.
    /// One element that does not read as an event (a bad `eventDate`, no id, a field of the
    /// wrong type) is set aside in `unreadable` and the rest of the page is read; only a reply
    /// that is not JSON at all fails as a whole.
    public static func parse(_ bytes: [UInt8], known: KnownEvents? = nil) throws(AuditEventError) -> AuditQueryPage {
        var scanner = JSONScanner(bytes)
        var page = AuditQueryPage(events: [])
        // With a list (even an empty one), every record's bytes are kept for the next list.
        do {
            try scanner.object { s, key throws(JSONScanner.ScanError) in
                switch key {
                case "entities", "results":
                    if s.takeNull() { break }
                    try s.array { a throws(JSONScanner.ScanError) in
                        a.skipSpace()
                        let start = a.index
                        var raw: ArraySlice<UInt8>?
                        if let known {
                            // Where the record ends: one known byte for byte is not parsed again.
                            // (Not even JSON: the usual path below says so.)
                            if a.skipBracketed() {
                                let slice = bytes[start..<a.index]
                                if let entry = known.entry(for: slice) {
                                    page.skipped.append((entry.id, entry.date))
                                    return
                                }
                                raw = slice
                            }
                            a.index = start
                        }
                        do {
                            let event = try AuditEvent.read(&a)
                            if let raw { page.records[event.id] = KnownEvents.Entry(id: event.id, date: event.date, bytes: Array(raw)) }
                            page.events.append(event)
                        } catch {
                            let reason: String
                            if let error = error as? JSONScanner.ScanError {
                                reason = "\(error.reason) at byte \(error.offset - start) of the record"
                            } else {
                                reason = "\(error)"
                            }
                            // Valid JSON that is not an event is quarantined; invalid JSON ends the page.
                            a.index = start
                            try a.skipValue()
                            let raw = Array(bytes[start..<a.index])
                            page.unreadable.append(
                                QuarantinedRecord(
                                    kind: .unreadable, eventId: AuditEvent.readableId(raw), reason: reason, raw: raw,
                                    receivedAt: .distantPast))
                        }
                    }
                case "pageCount": page.pageCount = s.takeNull() ? nil : try s.int()
                case "total": page.total = s.takeNull() ? nil : try s.int()
                case "cursor": page.cursor = try s.optionalString().flatMap { $0.isEmpty ? nil : $0 }
                case "state": page.state = try s.optionalString()
                case "id": page.id = try s.optionalString()
                default: try s.skipValue()
                }
            }
        } catch {
            throw AuditEventError(description: "an audit query reply that does not parse: \(error.reason) at byte \(error.offset)")
        }
        return page
    }
}

extension AuditEvent {
    /// The `id` of a record that is an object with a string id, whatever else is wrong with it.
    static func readableId(_ raw: [UInt8]) -> String? {
        var scanner = JSONScanner(raw)
        var id: String?
        try? scanner.object { s, key throws(JSONScanner.ScanError) in
            if key == "id", s.peekString { id = try s.string() } else { try s.skipValue() }
        }
        return id.flatMap { $0.isEmpty ? nil : $0 }
    }
}

/// Wall-clock time for long-running services: the real one, or a test's, moved by hand.
public protocol WallClock: Sendable {
    func now() -> Date
    func sleep(for duration: Duration) async throws
}

public struct SystemWallClock: WallClock {
    public init() {}
    public func now() -> Date { Date() }
    public func sleep(for duration: Duration) async throws { try await Task.sleep(for: duration) }
}

/// Events held back until they are older than the safety lag, then let out in `eventDate`
/// order (ties by id), so rules judge late and out-of-order arrivals in the order they happened.
/// An event dated beyond the clock skew past its arrival (the future) is let out once it has
/// been held for the lag: waiting for its date would hold it as long as the server likes.
public struct ReorderBuffer: Sendable {
    private var pending: [String: (event: AuditEvent, arrivedAt: Date)] = [:]

    public init() {}

    public var count: Int { pending.count }
    public func contains(_ id: String) -> Bool { pending[id] != nil }
    public func event(_ id: String) -> AuditEvent? { pending[id]?.event }
    public var oldest: Date? { pending.values.map(\.event.date).min() }

    /// Adds events not already held; returns how many were added.
    @discardableResult
    public mutating func insert(_ events: [AuditEvent], arrivedAt: Date = .distantPast) -> Int {
        var added = 0
        for event in events where pending[event.id] == nil {
            pending[event.id] = (event, arrivedAt)
            added += 1
        }
        return added
    }

    /// Removes and returns the events dated before `cutoff`, and the future-dated ones (dated
    /// more than `skew` seconds after they arrived) that arrived before `futureHeldSince`;
    /// oldest first.
    public mutating func release(before cutoff: Date, futureHeldSince: Date = .distantPast, skew: TimeInterval = .infinity) -> [AuditEvent] {
        let due = pending.values.filter { entry in
            entry.event.date < cutoff
                || (entry.arrivedAt < futureHeldSince && entry.event.date.timeIntervalSince(entry.arrivedAt) > skew)
        }.map(\.event)
        for event in due { pending[event.id] = nil }
        return due.sorted { $0.date != $1.date ? $0.date < $1.date : $0.id < $1.id }
    }
}
