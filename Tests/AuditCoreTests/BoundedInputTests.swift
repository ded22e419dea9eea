import Foundation
import Testing

@testable import AuditCore

/// Numbers, durations, JSON and records from outside: read into ranges, never trapped on.
@Suite("Bounded input")
struct BoundedInputTests {
    @Test("numbers from outside: finite decimals only", arguments: [
        ("12", 12.0), ("-3", -3.0), ("1.5", 1.5), ("2e3", 2000.0), (" 7 ", 7.0),
    ])
    func numbers(_ text: String, _ expected: Double) {
        #expect(Bounded.number(text) == expected)
    }

    @Test("inf, nan, hex floats, overflow and junk are refused", arguments: [
        "inf", "-inf", "Infinity", "nan", "NaN", "0x1p3", "1e400", "", " ", "1.2.3", "1e", "e5", "--1", "1-", "12abc", "１２",
    ])
    func refusedNumbers(_ text: String) {
        #expect(Bounded.number(text) == nil)
    }

    @Test("durations clamp instead of trapping")
    func durations() {
        #expect(Bounded.duration(seconds: .infinity, clampedTo: 0...300) == .seconds(300))
        #expect(Bounded.duration(seconds: -.infinity, clampedTo: 0...300) == .zero)
        #expect(Bounded.duration(seconds: .nan, clampedTo: 1...300) == .seconds(1))
        #expect(Bounded.duration(seconds: 1e300, clampedTo: 0...1e300) > .seconds(1_000_000))
        #expect(Bounded.duration(seconds: 1.5, clampedTo: 0...10) == .milliseconds(1500))
        #expect(Bounded.epochMilliseconds(Date(timeIntervalSince1970: 1e300)) == Bounded.latestMilliseconds)
        #expect(Bounded.epochMilliseconds(Date(timeIntervalSince1970: -1e300)) == Bounded.earliestMilliseconds)
        #expect(Bounded.epochMilliseconds(Date(timeIntervalSince1970: 1.5)) == 1500)
    }

    @Test("duration text within a range, or nil", arguments: [
        ("90s", 90.0), ("45m", 2700.0), ("72h", 259_200.0), ("3d", 259_200.0), ("2w", 1_209_600.0), ("30", 30.0), ("1.5h", 5400.0),
    ])
    func durationText(_ text: String, _ expected: Double) {
        #expect(DurationText.seconds(text, range: 1...(366 * 86_400)) == expected)
    }

    @Test("duration text out of range or absurd is refused", arguments: ["1e300d", "infd", "nanh", "-5m", "0s", "400d", "d", "", "5x"])
    func refusedDurationText(_ text: String) {
        #expect(DurationText.seconds(text, range: 1...(366 * 86_400)) == nil)
    }

    @Test("approval lifetimes: a second to a year and a day")
    func approvalLifetimes() {
        #expect(Approval.lifetime(parsing: "72h") == 259_200)
        #expect(Approval.lifetime(parsing: "24") == 86_400, "bare numbers are hours")
        #expect(Approval.lifetime(parsing: "1e300w") == nil)
        #expect(Approval.lifetime(parsing: "0s") == nil)
        #expect(Approval.lifetime(parsing: "30s") == 30)
        #expect(Approval.lifetime(parsing: "367d") == nil)
        #expect(DurationText.describe(Approval.lifetimeRange) == "between 1s and 366d")
    }

    @Test("ISO times outside the years 0001–9999 once their offset is applied are refused (found by the fuzzer)", arguments: [
        "9999-12-31T23:59:59-01:00", "9999-12-31T23:59:60.9Z", "0000-01-01T00:00:00+01:00", "0000-01-01T00:00:00Z",
    ])
    func timesOutOfRange(_ text: String) {
        #expect(ISOTimestamp.milliseconds(text) == nil, "\(text)")
    }

    @Test("every time that reads writes back and reads again equal", arguments: [
        "0001-01-01T00:00:00Z", "9999-12-31T23:59:59.999Z", "2024-02-29T12:00:00+14:00", "1970-01-01T00:00:00.5Z", "2024-06-01T00:12:56-23:59",
    ])
    func timesRoundTrip(_ text: String) throws {
        let ms = try #require(ISOTimestamp.milliseconds(text))
        #expect(ISOTimestamp.milliseconds(ISOTimestamp.string(epochMilliseconds: ms)) == ms)
    }

    @Test("JSON made terminal-safe stays the same JSON")
    func sanitizedJSON() throws {
        let hostile = "a\u{1B}]52;c;ZXZpbA==\u{07}b\u{9B}31m\u{202E}c\u{7F}"
        var w = CanonicalJSONWriter()
        w.beginObject()
        w.field("name", hostile)
        w.endObject()
        let safe = TerminalSafe.sanitizeJSON(w.bytes + [0x0A])
        for byte in [0x1B, 0x07, 0x7F] as [UInt8] { #expect(!safe.contains(byte)) }
        let text = String(decoding: safe, as: UTF8.self)
        #expect(!text.unicodeScalars.contains { TerminalSafe.isUnsafe($0) && $0 != "\n" })
        let decoded = try JSONSerialization.jsonObject(with: Data(safe)) as? [String: String]
        #expect(decoded?["name"] == hostile)
        let plain = Array(#"{"a":"b"}"#.utf8)
        #expect(TerminalSafe.sanitizeJSON(plain) == plain)
    }

    @Test("lines keep their breaks and tabs; everything else unsafe is shown as an escape")
    func sanitizedLines() {
        #expect(TerminalSafe.sanitizeLines("a\tb\nc\u{1B}[2Jd\r") == "a\tb\nc\\x1B[2Jd\\x0D")
        #expect(TerminalSafe.sanitizeLines("already \\x1B safe") == "already \\x1B safe")
    }

    @Test("a high surrogate not followed by a low one reads as U+FFFD, never traps")
    func loneSurrogates() throws {
        for text in [#""\uD800\u0041""#, #""\uD800""#, #""\uDC00""#, #""\uD83D\uDE00""#, #""\uD800\uD800""#] {
            var scanner = JSONScanner(Array(text.utf8))
            let value = try scanner.string()
            #expect(!value.isEmpty, "\(text)")
        }
        var scanner = JSONScanner(Array(#""\uD800\u0041""#.utf8))
        #expect(try scanner.string() == "\u{FFFD}A")
    }

    @Test("a page with one unreadable event: the others are read, that one is set aside raw with its reason")
    func quarantinedRecord() throws {
        let page = """
            {"pageCount":1,"entities":[
              {"id":"e1","eventDate":"2026-01-01T00:00:00Z","serviceName":"PeoplePermissions","entityType":"Role","action":"Create","entity":{"id":"r1"}},
              {"id":"e2","eventDate":"yesterday-ish","serviceName":"PeoplePermissions","entityType":"Role","action":"Create","entity":{"id":"r2"}},
              {"id":"e3","eventDate":"2026-01-01T00:00:01Z","remoteIp":5},
              {"eventDate":"2026-01-01T00:00:02Z"},
              {"id":"e5","eventDate":"2026-01-01T00:00:03Z","serviceName":"PeoplePermissions","entityType":"Role","action":"Delete","entity":{"id":"r5"}}
            ]}
            """
        let parsed = try AuditQueryPage.parse(Array(page.utf8))
        #expect(parsed.events.map(\.id) == ["e1", "e5"])
        #expect(parsed.unreadable.map(\.eventId) == ["e2", "e3", nil])
        #expect(parsed.unreadable[0].reason.contains("yesterday-ish"))
        #expect(String(decoding: parsed.unreadable[0].raw, as: UTF8.self).hasPrefix(#"{"id":"e2""#))
        #expect(parsed.unreadable[2].reason.contains("without an id"))
        // Not JSON at all: the page fails as a whole.
        #expect(throws: AuditEventError.self) { try AuditQueryPage.parse(Array(#"{"entities":[{"id":"e1",]}"#.utf8)) }
    }

    @Test("records known byte for byte are skipped unparsed with their known id and date; a changed one is parsed and kept; junk still quarantined")
    func knownRecords() throws {
        // Brackets and an escaped quote inside strings do not end the record early.
        let e1 = #"{"id":"e1","eventDate":"2026-01-01T00:00:00Z","serviceName":"PeoplePermissions","entityType":"Role","action":"Create","entity":{"id":"r1","name":"a}b\"]c{"},"remoteIp":["[1]"]}"#
        let e2 = #"{"id":"e2","eventDate":"2026-01-01T00:00:01Z","serviceName":"PeoplePermissions","entityType":"Role","action":"Create","entity":{"id":"r2"}}"#
        let e2before = e2.replacingOccurrences(of: "Create", with: "Update")
        let page = #"{"pageCount":1,"entities":["# + e1 + "," + e2 + #","junk",{"eventDate":"x"}]}"#
        let when = Date(timeIntervalSince1970: 1_767_225_600)
        let known = KnownEvents([
            KnownEvents.Entry(id: "e1", date: when, bytes: Array(e1.utf8)),
            // e2 was seen with other bytes: parsed again.
            KnownEvents.Entry(id: "e2", date: when, bytes: Array(e2before.utf8)),
        ])
        let parsed = try AuditQueryPage.parse(Array(page.utf8), known: known)
        #expect(parsed.skipped.map(\.id) == ["e1"] && parsed.skipped.first?.date == when)
        #expect(try AuditQueryPage.parse(Array(page.utf8)).events.first?.entityName == "a}b\"]c{")
        #expect(parsed.events.map(\.id) == ["e2"])
        #expect(parsed.records["e2"]?.bytes == Array(e2.utf8), "its bytes kept for the next list")
        #expect(parsed.unreadable.count == 2, "a string and a record without an id: set aside as without a known list")
        let plain = try AuditQueryPage.parse(Array(page.utf8))
        #expect(plain.events.map(\.id) == ["e1", "e2"] && plain.skipped.isEmpty && plain.records.isEmpty)
        // The same hash is not enough: the bytes must be equal.
        #expect(known.entry(for: ArraySlice(e1.utf8))?.id == "e1")
        #expect(known.entry(for: ArraySlice(e2.utf8)) == nil)
    }

    @Test("the reorder buffer lets a future-dated event out once held for the lag, others by their date")
    func reorderFuture() {
        let now = Date(timeIntervalSince1970: 1_000_000)
        var buffer = ReorderBuffer()
        let future = AuditEvent(id: "f", date: Date(timeIntervalSince1970: 253_402_300_799), serviceName: "s", entityType: "t", action: "a", entityId: "x")
        let recent = AuditEvent(id: "r", date: now.addingTimeInterval(-10), serviceName: "s", entityType: "t", action: "a", entityId: "x")
        buffer.insert([future, recent], arrivedAt: now)
        #expect(buffer.release(before: now.addingTimeInterval(-60), futureHeldSince: now.addingTimeInterval(-60), skew: 300).isEmpty)
        let later = now.addingTimeInterval(61)
        let due = buffer.release(before: later.addingTimeInterval(-60), futureHeldSince: later.addingTimeInterval(-60), skew: 300)
        #expect(due.map(\.id) == ["r", "f"])
        #expect(buffer.count == 0)
    }

    @Test("the rule engine's memory stays bounded on a feed of ever-new entities")
    func ruleEngineBound() {
        var engine = RuleEngine(rules: RuleSet.defaults())
        let start = Date(timeIntervalSince1970: 1_800_000_000)
        for index in 0..<60_000 {
            // Trunk edits fire a throttled rule per trunk; each a new trunk, a second apart.
            let event = AuditEvent(
                id: "e\(index)", date: start.addingTimeInterval(Double(index)), serviceName: "Telephony", entityType: "Trunk", action: "Update",
                entityId: "trunk-\(index)", changes: [.init(property: "state", oldValues: ["active"], newValues: ["inactive"])])
            _ = engine.judge(event)
        }
        #expect(engine.statistics.findings > 1000, "the rule really fired: \(engine.statistics.findings)")
        // A day's memory at one event a second, not sixty thousand entries.
        #expect(engine.stateSize < 30_000, "\(engine.stateSize)")
    }
}
