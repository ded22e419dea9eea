import Foundation

/// One Genesys Cloud audit event (`AuditLogMessage`), normalised: dates parsed, empty values
/// (`""`, `{}`, `[]`) read as absent, the raw message kept for the record.
public struct AuditEvent: Sendable, Hashable, Identifiable {
    public struct Change: Sendable, Hashable {
        public var property: String
        public var oldValues: [String]
        public var newValues: [String]

        public init(property: String, oldValues: [String] = [], newValues: [String] = []) {
            self.property = property
            self.oldValues = oldValues
            self.newValues = newValues
        }

        /// Values present after and not before.
        public var added: [String] { newValues.filter { !oldValues.contains($0) } }
        /// Values present before and not after.
        public var removed: [String] { oldValues.filter { !newValues.contains($0) } }
    }

    /// The fields, in one box shared between copies until one is changed: an event passes
    /// through pages, the reorder buffer, the rules and batches, and a copy is then one
    /// reference count, not fifteen.
    struct Fields: Sendable, Hashable {
        var id: String
        var date: Date
        var serviceName: String
        var entityType: String
        var action: String
        var entityId: String
        var entityName: String
        var userId: String?
        var userName: String?
        var clientId: String?
        var remoteIp: [String]
        var level: String
        var status: String
        var changes: [Change]
        var transactionId: String?
    }

    final class Box: @unchecked Sendable {
        var fields: Fields
        init(_ fields: Fields) { self.fields = fields }
    }

    private var box: Box

    /// The fields, copied out of a shared box before a change.
    private var fields: Fields {
        get { box.fields }
        _modify {
            if !isKnownUniquelyReferenced(&box) { box = Box(box.fields) }
            yield &box.fields
        }
    }

    public var id: String {
        get { box.fields.id }
        set { fields.id = newValue }
    }
    /// `eventDate`, to the millisecond.
    public var date: Date {
        get { box.fields.date }
        set { fields.date = newValue }
    }
    public var serviceName: String {
        get { box.fields.serviceName }
        set { fields.serviceName = newValue }
    }
    public var entityType: String {
        get { box.fields.entityType }
        set { fields.entityType = newValue }
    }
    public var action: String {
        get { box.fields.action }
        set { fields.action = newValue }
    }
    public var entityId: String {
        get { box.fields.entityId }
        set { fields.entityId = newValue }
    }
    public var entityName: String {
        get { box.fields.entityName }
        set { fields.entityName = newValue }
    }
    public var userId: String? {
        get { box.fields.userId }
        set { fields.userId = newValue }
    }
    public var userName: String? {
        get { box.fields.userName }
        set { fields.userName = newValue }
    }
    public var clientId: String? {
        get { box.fields.clientId }
        set { fields.clientId = newValue }
    }
    public var remoteIp: [String] {
        get { box.fields.remoteIp }
        set { fields.remoteIp = newValue }
    }
    public var level: String {
        get { box.fields.level }
        set { fields.level = newValue }
    }
    public var status: String {
        get { box.fields.status }
        set { fields.status = newValue }
    }
    public var changes: [Change] {
        get { box.fields.changes }
        set { fields.changes = newValue }
    }
    public var transactionId: String? {
        get { box.fields.transactionId }
        set { fields.transactionId = newValue }
    }

    public init(
        id: String, date: Date, serviceName: String, entityType: String, action: String, entityId: String, entityName: String = "",
        userId: String? = nil, userName: String? = nil, clientId: String? = nil, remoteIp: [String] = [], level: String = "USER",
        status: String = "SUCCESS", changes: [Change] = [], transactionId: String? = nil
    ) {
        box = Box(
            Fields(id: id, date: date, serviceName: serviceName, entityType: entityType, action: action, entityId: entityId, entityName: entityName, userId: userId, userName: userName, clientId: clientId, remoteIp: remoteIp, level: level, status: status, changes: changes, transactionId: transactionId))
    }

    public static func == (a: AuditEvent, b: AuditEvent) -> Bool { a.box === b.box || a.box.fields == b.box.fields }
    public func hash(into hasher: inout Hasher) { hasher.combine(box.fields) }

    /// Who acted, for people: the user's name, else their id, else the OAuth client.
    public var actor: String {
        if let userName, !userName.isEmpty { return userName }
        if let userId { return userId }
        if let clientId { return "client \(clientId)" }
        return "unknown"
    }

    /// The key correlation rules group by: the user, else the client.
    public var actorKey: String { userId ?? clientId.map { "client:\($0)" } ?? "unknown" }

    public func change(_ property: String) -> Change? { changes.first { $0.property == property } }

    /// Epoch milliseconds of `date`.
    public var epochMilliseconds: Int64 { Int64((date.timeIntervalSince1970 * 1000).rounded()) }
}

public struct AuditEventError: Error, CustomStringConvertible, Sendable {
    public var description: String
}

extension AuditEvent {
    /// Reads one AuditLogMessage (or the JSON-lines form `rbacwatch` writes, which is the same
    /// shape). Required: `id`, `eventDate`; everything else may be missing or empty.
    public static func parse(_ bytes: [UInt8]) throws(AuditEventError) -> AuditEvent {
        var scanner = JSONScanner(bytes)
        do {
            let event = try read(&scanner)
            guard scanner.atEnd else { throw AuditEventError(description: "trailing data after the audit event") }
            return event
        } catch let error as JSONScanner.ScanError {
            throw AuditEventError(description: "not an audit event: \(error.reason) at byte \(error.offset)")
        } catch let error as AuditEventError {
            throw error
        } catch {
            throw AuditEventError(description: "not an audit event: \(error)")
        }
    }

    /// Reads an array of AuditLogMessages, such as a query reply's `entities`.
    static func read(_ scanner: inout JSONScanner) throws -> AuditEvent {
        var id: String?
        var date: Date?
        var event = AuditEvent(id: "", date: .distantPast, serviceName: "", entityType: "", action: "", entityId: "")
        try scanner.object { s, key throws(JSONScanner.ScanError) in
            switch key {
            case "id": id = try s.optionalString()
            case "eventDate", "eventTime":
                let text = try s.optionalString() ?? ""
                date = ISOTimestamp.date(text)
                if date == nil { throw s.fail("eventDate \(text.debugDescription) is not an ISO-8601 time") }
            case "serviceName": event.serviceName = try s.optionalString() ?? ""
            case "entityType": event.entityType = try s.optionalString() ?? ""
            case "action": event.action = try s.optionalString() ?? ""
            case "level": event.level = try s.optionalString() ?? ""
            case "status": event.status = try s.optionalString() ?? ""
            case "remoteIp":
                if s.takeNull() { break }
                event.remoteIp = try s.strings().filter { !$0.isEmpty }
            case "user", "username":
                if s.takeNull() { break }
                try s.object { u, k throws(JSONScanner.ScanError) in
                    switch k {
                    case "id": event.userId = try u.optionalString().flatMap { $0.isEmpty ? nil : $0 }
                    case "name": event.userName = try u.optionalString().flatMap { $0.isEmpty ? nil : $0 }
                    default: try u.skipValue()
                    }
                }
            case "userId": event.userId = try s.optionalString().flatMap { $0.isEmpty ? nil : $0 }
            case "client", "clientId":
                if s.takeNull() { break }
                if s.peekString {
                    event.clientId = try s.string()
                } else {
                    try s.object { c, k throws(JSONScanner.ScanError) in
                        if k == "id" { event.clientId = try c.optionalString().flatMap { $0.isEmpty ? nil : $0 } } else { try c.skipValue() }
                    }
                }
            case "entity":
                if s.takeNull() { break }
                try s.object { e, k throws(JSONScanner.ScanError) in
                    switch k {
                    case "id": event.entityId = try e.optionalString() ?? ""
                    case "name": event.entityName = try e.optionalString() ?? ""
                    default: try e.skipValue()
                    }
                }
            case "initiatingAction":
                if s.takeNull() { break }
                try s.object { e, k throws(JSONScanner.ScanError) in
                    if k == "transactionId" { event.transactionId = try e.optionalString().flatMap { $0.isEmpty ? nil : $0 } } else { try e.skipValue() }
                }
            case "propertyChanges":
                if s.takeNull() { break }
                try s.array { a throws(JSONScanner.ScanError) in
                    var change = Change(property: "")
                    try a.object { c, k throws(JSONScanner.ScanError) in
                        switch k {
                        case "property": change.property = try c.optionalString() ?? ""
                        case "oldValues": if !c.takeNull() { change.oldValues = try c.strings() }
                        case "newValues": if !c.takeNull() { change.newValues = try c.strings() }
                        default: try c.skipValue()
                        }
                    }
                    event.changes.append(change)
                }
            default: try s.skipValue()
            }
        }
        guard let id, !id.isEmpty else { throw AuditEventError(description: "an audit event without an id") }
        guard let date else { throw AuditEventError(description: "audit event \(id) has no eventDate") }
        event.id = id
        event.date = date
        return event
    }

    /// The events of a JSON array (`[{…}, {…}]`).
    public static func parseArray(_ bytes: [UInt8]) throws(AuditEventError) -> [AuditEvent] {
        var scanner = JSONScanner(bytes)
        var events: [AuditEvent] = []
        do {
            try scanner.array { s throws(JSONScanner.ScanError) in
                do {
                    events.append(try read(&s))
                } catch let error as JSONScanner.ScanError {
                    throw error
                } catch {
                    throw s.fail("\(error)")
                }
            }
        } catch {
            throw AuditEventError(description: "not a list of audit events: \(error.reason) at byte \(error.offset)")
        }
        return events
    }

    /// Canonical JSON (sorted keys, no empty members), one line: what `rbacwatch` stores and
    /// writes as JSON lines, and what `parse` reads back to an equal event.
    public func canonicalJSON() -> [UInt8] {
        var w = CanonicalJSONWriter(reservingCapacity: 512)
        w.beginObject()
        w.field("action", action)
        if let clientId {
            w.key("client")
            w.beginObject()
            w.field("id", clientId)
            w.endObject()
        }
        w.key("entity")
        w.beginObject()
        w.field("id", entityId)
        if !entityName.isEmpty { w.field("name", entityName) }
        w.endObject()
        w.field("entityType", entityType)
        w.field("eventDate", ISOTimestamp.string(date))
        w.field("id", id)
        if let transactionId {
            w.key("initiatingAction")
            w.beginObject()
            w.field("transactionId", transactionId)
            w.endObject()
        }
        w.field("level", level)
        if !changes.isEmpty {
            w.key("propertyChanges")
            w.beginArray()
            for change in changes {
                w.beginObject()
                w.field("newValues", change.newValues)
                w.field("oldValues", change.oldValues)
                w.field("property", change.property)
                w.endObject()
            }
            w.endArray()
        }
        if !remoteIp.isEmpty { w.field("remoteIp", remoteIp) }
        w.field("serviceName", serviceName)
        w.field("status", status)
        if userId != nil || userName != nil {
            w.key("user")
            w.beginObject()
            w.field("id", userId)
            w.field("name", userName)
            w.endObject()
        }
        w.endObject()
        return w.bytes
    }
}

/// ISO-8601 UTC times as the API writes them (`2024-06-01T00:12:56Z`, `…56.123Z`, `+00:00`),
/// read by hand: a million events a second cannot go through a date formatter.
public enum ISOTimestamp {
    /// Epoch milliseconds, or nil when `text` is not such a time.
    public static func milliseconds(_ text: String) -> Int64? {
        var text = text
        return text.withUTF8 { milliseconds(utf8: $0) }
    }

    public static func date(_ text: String) -> Date? {
        milliseconds(text).map { Date(timeIntervalSince1970: Double($0) / 1000) }
    }

    static func milliseconds(utf8 b: UnsafeBufferPointer<UInt8>) -> Int64? {
        guard b.count >= 19 else { return nil }
        func digits(_ from: Int, _ count: Int) -> Int? {
            var value = 0
            for i in from..<(from + count) {
                let c = b[i]
                guard c >= 48, c <= 57 else { return nil }
                value = value * 10 + Int(c - 48)
            }
            return value
        }
        guard let year = digits(0, 4), b[4] == 45, let month = digits(5, 2), b[7] == 45, let day = digits(8, 2),
            b[10] == 84 || b[10] == 116 || b[10] == 32, let hour = digits(11, 2), b[13] == 58, let minute = digits(14, 2), b[16] == 58,
            let second = digits(17, 2), (1...12).contains(month), (1...31).contains(day), hour < 24, minute < 60, second < 61
        else { return nil }
        var index = 19
        var millis = 0
        if index < b.count, b[index] == 46 {
            index += 1
            var scale = 100
            let start = index
            while index < b.count, b[index] >= 48, b[index] <= 57 {
                millis += Int(b[index] - 48) * scale
                scale /= 10
                index += 1
            }
            guard index > start else { return nil }
        }
        var offsetMinutes = 0
        guard index < b.count else { return nil }
        if b[index] == 90 || b[index] == 122 {
            index += 1
        } else if b[index] == 43 || b[index] == 45, b.count >= index + 6, let h = digits(index + 1, 2), b[index + 3] == 58,
            let m = digits(index + 4, 2)
        {
            offsetMinutes = (h * 60 + m) * (b[index] == 45 ? -1 : 1)
            index += 6
        } else {
            return nil
        }
        guard index == b.count else { return nil }
        // Days from the civil date (Howard Hinnant's algorithm).
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let mp = (month + 9) % 12
        let doy = (153 * mp + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        let days = era * 146_097 + doe - 719_468
        let seconds = Int64(days) * 86_400 + Int64(hour * 3600 + minute * 60 + second) - Int64(offsetMinutes * 60)
        let result = seconds * 1000 + Int64(millis)
        // Within the years 0001–9999 once the offset is applied: what `string` writes must read
        // back (found by the fuzzer: 9999-12-31T23:59:59-01:00 is in the year 10000).
        guard (Bounded.earliestMilliseconds...Bounded.latestMilliseconds).contains(result) else { return nil }
        return result
    }

    /// `2024-06-01T00:12:56.123Z` (milliseconds always written).
    public static func string(_ date: Date) -> String {
        string(epochMilliseconds: Int64((date.timeIntervalSince1970 * 1000).rounded()))
    }

    public static func string(epochMilliseconds ms: Int64) -> String {
        let millis = Int(((ms % 1000) + 1000) % 1000)
        var seconds = (ms - Int64(millis)) / 1000
        let days = Int((seconds >= 0 ? seconds : seconds - 86_399) / 86_400)
        seconds -= Int64(days) * 86_400
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yoe + era * 400 + (month <= 2 ? 1 : 0)
        func pad(_ v: Int, _ width: Int) -> String {
            let text = String(v)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        let s = Int(seconds)
        return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))T\(pad(s / 3600, 2)):\(pad(s / 60 % 60, 2)):\(pad(s % 60, 2)).\(pad(millis, 3))Z"
    }
}
