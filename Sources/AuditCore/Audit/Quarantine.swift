import Foundation

/// An audit record that could not be taken at face value — one that does not read as an event
/// (an `eventDate` that is not a time, a missing id, a field of the wrong type) or an event id
/// seen again with different content — kept raw with the reason, so one bad record never stops
/// the feed and is never silently dropped either.
public struct QuarantinedRecord: Sendable, Equatable {
    public enum Kind: String, Sendable, Equatable {
        /// The record does not read as an audit event.
        case unreadable
        /// An event id recorded before came back with different content.
        case rewritten
    }

    public var kind: Kind
    /// The event id, when the record has a readable one.
    public var eventId: String?
    public var reason: String
    /// The record as the API sent it (at most `rawLimit` bytes; `rawTruncated` says when cut).
    public var raw: [UInt8]
    public var rawTruncated: Bool
    /// SHA-256 of the whole record: the same record read again (an overlapping window) is kept once.
    public var digest: String
    public var receivedAt: Date

    /// Bytes of a record kept.
    public static let rawLimit = 64 << 10

    public init(kind: Kind, eventId: String?, reason: String, raw: [UInt8], receivedAt: Date) {
        self.kind = kind
        self.eventId = eventId.map { String($0.prefix(200)) }
        self.reason = String(reason.prefix(500))
        // The key that keeps a record once: an unreadable one by its event id when it has one
        // (the API may send the same record with its keys in another order), else its bytes; a
        // rewritten one by its canonical content.
        switch (kind, eventId) {
        case (.unreadable, let id?): self.digest = ContentHash.sha256Hex(Array("unreadable\u{1}\(id)".utf8))
        case (.unreadable, nil): self.digest = ContentHash.sha256Hex(raw)
        case (.rewritten, _): self.digest = ContentHash.sha256Hex(Array("rewritten\u{1}".utf8) + raw)
        }
        self.rawTruncated = raw.count > Self.rawLimit
        self.raw = Array(raw.prefix(Self.rawLimit))
        self.receivedAt = receivedAt
    }

    /// The record as text for a terminal or a log: control characters made visible, cut short.
    public func preview(_ length: Int = 200) -> String {
        let text = String(decoding: raw.prefix(length * 4), as: UTF8.self)
        let cut = text.count > length ? String(text.prefix(length)) + "…" : text
        return TerminalSafe.sanitize(cut)
    }
}

/// What an audit source read for one interval: the events, the records it had to quarantine,
/// and whether it stopped early.
public struct AuditFetch: Sendable {
    public var events: [AuditEvent]
    public var quarantined: [QuarantinedRecord]
    /// Set when the source stopped before the end of the interval (a ceiling reached, a server
    /// repeating itself): the events are complete up to `before` (they arrive in ascending date
    /// order), and `reason` says why it stopped.
    public var truncation: Truncation?
    /// Records left unparsed as already known (see `KnownEvents`).
    public var skipped = 0
    /// With a `known` list: each returned event's bytes, by id (for the next list).
    public var records: [String: KnownEvents.Entry] = [:]

    public struct Truncation: Sendable, Equatable {
        public var before: Date
        public var reason: String
        public init(before: Date, reason: String) {
            self.before = before
            self.reason = reason
        }
    }

    public init(events: [AuditEvent] = [], quarantined: [QuarantinedRecord] = [], truncation: Truncation? = nil) {
        self.events = events
        self.quarantined = quarantined
        self.truncation = truncation
    }
}

extension AuditEvent {
    /// Whether `other` says the same thing: everything but the names of the actor and the
    /// entity, which change with renames and lookups and do not change what happened.
    public func sameSubstance(as other: AuditEvent) -> Bool {
        var a = self
        var b = other
        a.userName = nil
        b.userName = nil
        a.entityName = ""
        b.entityName = ""
        return a == b
    }

    /// Whether the polled copy of this pushed event says the same: the fields a push carries
    /// (`status` and the transaction are not in the push shape, so they are the poll's to give).
    public func samePushedSubstance(as polled: AuditEvent) -> Bool {
        var b = polled
        b.status = status
        b.transactionId = transactionId
        return sameSubstance(as: b)
    }

    /// The fields in which `other` differs from this event, for a quarantine reason.
    public func differences(from other: AuditEvent) -> [String] {
        var fields: [String] = []
        if date != other.date { fields.append("eventDate \(ISOTimestamp.string(date)) → \(ISOTimestamp.string(other.date))") }
        if action != other.action { fields.append("action \(action) → \(other.action)") }
        if serviceName != other.serviceName { fields.append("serviceName") }
        if entityType != other.entityType { fields.append("entityType") }
        if entityId != other.entityId { fields.append("entity id") }
        if userId != other.userId { fields.append("user") }
        if clientId != other.clientId { fields.append("client") }
        if remoteIp != other.remoteIp { fields.append("remoteIp") }
        if status != other.status { fields.append("status \(status) → \(other.status)") }
        if level != other.level { fields.append("level") }
        if changes != other.changes { fields.append("propertyChanges") }
        if transactionId != other.transactionId { fields.append("transaction") }
        return fields
    }
}
