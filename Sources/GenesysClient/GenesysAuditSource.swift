import AuditCore
import Foundation

/// The audit API as an `AuditSource`: `servicemapping`, the realtime query paged by number
/// (ascending, so events that arrive while we page can only push others later: seen twice,
/// never skipped), and the async query polled until it succeeds, then read by cursor.
///
/// 429s are not waited out here: the client is built with few rate-limit retries so that the
/// ingestor sees them and backs off (and, if they persist, narrows what it asks for).
public struct GenesysAuditSource: AuditSource {
    public let client: GenesysAPIClient
    public let pageSize: Int
    /// How long to wait between status polls of an async query.
    public let pollInterval: Duration
    /// Longest an async query may stay Queued/Running before it is given up.
    public let queryTimeout: Duration
    /// Pages one query may read, and events it may hold: past either, it stops with what it has
    /// and says so (the ingestor continues from the last event read).
    public let maxPages: Int
    public let maxEvents: Int

    public init(
        client: GenesysAPIClient, pageSize: Int = 500, pollInterval: Duration = .seconds(2), queryTimeout: Duration = .seconds(300),
        maxPages: Int = 1000, maxEvents: Int = 100_000
    ) {
        self.client = client
        self.pageSize = min(max(1, pageSize), 500)
        self.pollInterval = max(pollInterval, .milliseconds(10))
        self.queryTimeout = queryTimeout
        self.maxPages = max(1, maxPages)
        self.maxEvents = max(1, maxEvents)
    }

    struct ServiceMapping: Decodable, Sendable {
        struct Service: Decodable, Sendable { var name: String? }
        var services: [Service]?
    }

    public func services() async throws -> [String] {
        try await mapped {
            let mapping = try await client.get("/api/v2/audits/query/servicemapping", as: ServiceMapping.self)
            // At most a thousand names of at most a hundred characters: a list, not a payload.
            let names = Set((mapping.services ?? []).compactMap(\.name).filter { !$0.isEmpty && $0.count <= 100 })
            return Array(names.sorted().prefix(1000))
        }
    }

    public func fetch(from: Date, to: Date, service: String, entityType: String?, realtime: Bool) async throws -> AuditFetch {
        try await fetch(from: from, to: to, service: service, entityType: entityType, realtime: realtime, known: nil)
    }

    public func fetch(from: Date, to: Date, service: String, entityType: String?, realtime: Bool, known: KnownEvents) async throws -> AuditFetch {
        try await fetch(from: from, to: to, service: service, entityType: entityType, realtime: realtime, known: Optional(known))
    }

    func fetch(from: Date, to: Date, service: String, entityType: String?, realtime: Bool, known: KnownEvents?) async throws -> AuditFetch {
        try await mapped {
            realtime
                ? try await realtimeEvents(from: from, to: to, service: service, entityType: entityType, known: known)
                : try await asyncEvents(from: from, to: to, service: service, entityType: entityType, known: known)
        }
    }

    /// Collects pages, deduplicated by id, and stops at the ceilings.
    struct Accumulator {
        let from: Date
        let maxEvents: Int
        var events: [AuditEvent] = []
        var quarantined: [QuarantinedRecord] = []
        var seen = Set<String>()
        var truncation: AuditFetch.Truncation?
        /// Records skipped as known, and the newest date among them.
        var skipped = 0
        var latestSkipped: Date?
        var records: [String: KnownEvents.Entry] = [:]

        /// Adds a page; returns how many of its records (events or skipped) were new.
        mutating func add(_ page: AuditQueryPage) -> Int {
            var added = 0
            for event in page.events where seen.insert(event.id).inserted {
                events.append(event)
                if let record = page.records[event.id] { records[event.id] = record }
                added += 1
            }
            for record in page.skipped where seen.insert(record.id).inserted {
                skipped += 1
                latestSkipped = max(latestSkipped ?? record.date, record.date)
                added += 1
            }
            quarantined += page.unreadable
            return added
        }

        /// Stops with `reason`: what was read is complete up to the last record's date.
        mutating func stop(_ reason: String) {
            let last = [events.last?.date, latestSkipped].compactMap { $0 }.max()
            truncation = AuditFetch.Truncation(before: last.map { max($0, from) } ?? from, reason: reason)
        }

        /// Stops at the event or page ceiling; true when it did.
        mutating func stopAtCeiling(pages: Int, maxPages: Int) -> Bool {
            if events.count + skipped >= maxEvents {
                stop("\(events.count + skipped) events in one query, the ceiling")
                return true
            }
            if pages >= maxPages {
                stop("\(maxPages) pages in one query, the ceiling")
                return true
            }
            return false
        }

        var result: AuditFetch {
            var fetch = AuditFetch(events: events, quarantined: quarantined, truncation: truncation)
            fetch.skipped = skipped
            fetch.records = records
            return fetch
        }
    }

    func realtimeEvents(from: Date, to: Date, service: String, entityType: String?, known: KnownEvents? = nil) async throws -> AuditFetch {
        var read = Accumulator(from: from, maxEvents: maxEvents)
        var page = 1
        while true {
            let reply = try await client.send(
                "POST", "/api/v2/audits/query/realtime?expand=user", body: body(from: from, to: to, service: service, entityType: entityType, page: page))
            let parsed = try parse(reply.body, known: known)
            let added = read.add(parsed)
            // The last page, or an empty one (the set shrank under us): done. The server's
            // pageCount only ever ends a walk early; it never sizes one.
            let records = !parsed.events.isEmpty || !parsed.skipped.isEmpty
            guard let count = parsed.pageCount, page < count, records || !parsed.unreadable.isEmpty else { break }
            if added == 0 && records {
                read.stop("page \(page) of the realtime query repeats events already read: the server is not paging")
                break
            }
            if read.stopAtCeiling(pages: page, maxPages: maxPages) { break }
            page += 1
        }
        return read.result
    }

    func asyncEvents(from: Date, to: Date, service: String, entityType: String?, known: KnownEvents? = nil) async throws -> AuditFetch {
        let created = try parse(
            try await client.send("POST", "/api/v2/audits/query", body: body(from: from, to: to, service: service, entityType: entityType, page: nil)).body)
        guard let id = created.id, Self.isTransactionId(id) else {
            throw AuditSourceError.failed("POST /api/v2/audits/query accepted a query but returned no usable transaction id")
        }
        var state = created.state ?? "Queued"
        let started = client.clock.now()
        while state != "Succeeded" {
            switch state {
            case "Failed", "Cancelled": throw AuditSourceError.failed("audit query \(id) ended \(state)")
            default: break
            }
            guard client.clock.now() - started < queryTimeout else {
                throw AuditSourceError.failed(
                    "GET /api/v2/audits/query/\(id): the async audit query was still \(state.prefix(40)) after \(DurationWords.seconds(queryTimeout)) (waited for Succeeded)")
            }
            try await client.clock.sleep(for: pollInterval)
            state = try parse(try await client.send("GET", "/api/v2/audits/query/\(id)").body).state ?? "Running"
        }
        var read = Accumulator(from: from, maxEvents: maxEvents)
        var cursor: String?
        var cursors = Set<String>()
        var pages = 0
        repeat {
            var path = "/api/v2/audits/query/\(id)/results?pageSize=\(pageSize)&expand=user"
            if let cursor { path += "&cursor=" + (cursor.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? cursor) }
            let page = try parse(try await client.send("GET", path).body, known: known)
            pages += 1
            let added = read.add(page)
            let records = !page.events.isEmpty || !page.skipped.isEmpty
            cursor = !records && page.unreadable.isEmpty ? nil : page.cursor
            guard let next = cursor else { break }
            if next.utf8.count > 4096 || !cursors.insert(next).inserted || (added == 0 && records) {
                read.stop("the async results repeat a cursor or events already read: the server is not paging")
                break
            }
            if read.stopAtCeiling(pages: pages, maxPages: maxPages) { break }
        } while cursor != nil
        return read.result
    }

    /// A transaction id goes into a path: letters, digits, `-` and `_`, at most 100 of them.
    static func isTransactionId(_ id: String) -> Bool {
        !id.isEmpty && id.utf8.count <= 100
            && id.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x2D || $0 == 0x5F }
    }

    func body(from: Date, to: Date, service: String, entityType: String?, page: Int?) -> [UInt8] {
        var w = CanonicalJSONWriter(reservingCapacity: 256)
        w.beginObject()
        if let entityType {
            w.key("filters")
            w.beginArray()
            w.beginObject()
            w.field("property", "EntityType")
            w.field("value", entityType)
            w.endObject()
            w.endArray()
        }
        w.field("interval", ISOTimestamp.string(from) + "/" + ISOTimestamp.string(to))
        if let page {
            w.field("pageNumber", page)
            w.field("pageSize", pageSize)
        }
        if service != "*" { w.field("serviceName", service) }
        w.key("sort")
        w.beginArray()
        w.beginObject()
        w.field("name", "Timestamp")
        w.field("sortOrder", "ascending")
        w.endObject()
        w.endArray()
        w.endObject()
        return w.bytes
    }

    func parse(_ body: [UInt8], known: KnownEvents? = nil) throws -> AuditQueryPage {
        do {
            return try AuditQueryPage.parse(body, known: known)
        } catch {
            throw AuditSourceError.failed(error.description)
        }
    }

    /// Maps the client's errors onto what ingestion acts on.
    func mapped<T>(_ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as GenesysAPIError where error.status == 429 {
            throw AuditSourceError.rateLimited(retryAfter: error.retryAfter)
        } catch let error as AuditSourceError {
            throw error
        } catch is CancellationError {
            throw CancellationError()
        } catch {
            throw AuditSourceError.failed("\(error)")
        }
    }
}
