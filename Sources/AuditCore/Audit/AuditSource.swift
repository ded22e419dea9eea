import Foundation

/// Where audit events come from: the Platform API's audit queries (`GenesysAuditSource`), or
/// anything that answers the same questions.
public protocol AuditSource: Sendable {
    /// The services the audit API knows (`servicemapping`).
    func services() async throws -> [String]
    /// Events of `service` (`*`: every service), of `entityType` if given, dated in `[from, to)`,
    /// as many pages as it takes. `realtime`: the synchronous query (the last 14 days); otherwise
    /// the asynchronous one (full retention).
    func events(from: Date, to: Date, service: String, entityType: String?, realtime: Bool) async throws -> [AuditEvent]
}

extension AuditSource {
    /// Events of every entity type of `service`.
    public func events(from: Date, to: Date, service: String, realtime: Bool) async throws -> [AuditEvent] {
        try await events(from: from, to: to, service: service, entityType: nil, realtime: realtime)
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

/// One page of an audit query reply: realtime (`pageCount`) or async results (`cursor`).
public struct AuditQueryPage: Sendable {
    public var events: [AuditEvent]
    public var pageCount: Int?
    public var total: Int?
    public var cursor: String?
    public var state: String?
    public var id: String?

    /// Reads `{"entities": [...], "pageCount", "total", "cursor", ...}`; other members are skipped.
    public static func parse(_ bytes: [UInt8]) throws(AuditEventError) -> AuditQueryPage {
        var scanner = JSONScanner(bytes)
        var page = AuditQueryPage(events: [])
        do {
            try scanner.object { s, key throws(JSONScanner.ScanError) in
                switch key {
                case "entities", "results":
                    if s.takeNull() { break }
                    try s.array { a throws(JSONScanner.ScanError) in
                        do {
                            page.events.append(try AuditEvent.read(&a))
                        } catch let error as JSONScanner.ScanError {
                            throw error
                        } catch {
                            throw a.fail("\(error)")
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
public struct ReorderBuffer: Sendable {
    private var pending: [String: AuditEvent] = [:]

    public init() {}

    public var count: Int { pending.count }
    public func contains(_ id: String) -> Bool { pending[id] != nil }
    public var oldest: Date? { pending.values.map(\.date).min() }

    /// Adds events not already held; returns how many were added.
    @discardableResult
    public mutating func insert(_ events: [AuditEvent]) -> Int {
        var added = 0
        for event in events where pending[event.id] == nil {
            pending[event.id] = event
            added += 1
        }
        return added
    }

    /// Removes and returns the events dated before `cutoff`, oldest first.
    public mutating func release(before cutoff: Date) -> [AuditEvent] {
        let due = pending.values.filter { $0.date < cutoff }
        for event in due { pending[event.id] = nil }
        return due.sorted { $0.date != $1.date ? $0.date < $1.date : $0.id < $1.id }
    }
}
