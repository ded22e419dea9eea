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
    /// Longest an async query may stay Queued/Running.
    public let queryTimeout: Duration

    public init(client: GenesysAPIClient, pageSize: Int = 500, pollInterval: Duration = .seconds(2), queryTimeout: Duration = .seconds(600)) {
        self.client = client
        self.pageSize = min(max(1, pageSize), 500)
        self.pollInterval = pollInterval
        self.queryTimeout = queryTimeout
    }

    struct ServiceMapping: Decodable, Sendable {
        struct Service: Decodable, Sendable { var name: String? }
        var services: [Service]?
    }

    public func services() async throws -> [String] {
        try await mapped {
            let mapping = try await client.get("/api/v2/audits/query/servicemapping", as: ServiceMapping.self)
            return (mapping.services ?? []).compactMap(\.name).sorted()
        }
    }

    public func events(from: Date, to: Date, service: String, entityType: String?, realtime: Bool) async throws -> [AuditEvent] {
        try await mapped {
            realtime
                ? try await realtimeEvents(from: from, to: to, service: service, entityType: entityType)
                : try await asyncEvents(from: from, to: to, service: service, entityType: entityType)
        }
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

    func realtimeEvents(from: Date, to: Date, service: String, entityType: String?) async throws -> [AuditEvent] {
        var events: [AuditEvent] = []
        var seen = Set<String>()
        var page = 1
        while true {
            let reply = try await client.send("POST", "/api/v2/audits/query/realtime?expand=user", body: body(from: from, to: to, service: service, entityType: entityType, page: page))
            let parsed = try parse(reply.body)
            for event in parsed.events where seen.insert(event.id).inserted { events.append(event) }
            // Stop at the last page; also when a page comes back empty (the set shrank under us).
            guard let count = parsed.pageCount, page < count, !parsed.events.isEmpty else { break }
            page += 1
        }
        return events
    }

    func asyncEvents(from: Date, to: Date, service: String, entityType: String?) async throws -> [AuditEvent] {
        let created = try parse(
            try await client.send("POST", "/api/v2/audits/query", body: body(from: from, to: to, service: service, entityType: entityType, page: nil)).body)
        guard let id = created.id else { throw AuditSourceError.failed("the audit API accepted a query but returned no transaction id") }
        var state = created.state ?? "Queued"
        var waited = Duration.zero
        while state != "Succeeded" {
            switch state {
            case "Failed", "Cancelled": throw AuditSourceError.failed("audit query \(id) ended \(state)")
            default: break
            }
            guard waited < queryTimeout else { throw AuditSourceError.failed("audit query \(id) still \(state) after \(queryTimeout.components.seconds) s") }
            try await client.clock.sleep(for: pollInterval)
            waited += pollInterval
            state = try parse(try await client.send("GET", "/api/v2/audits/query/\(id)").body).state ?? "Running"
        }
        var events: [AuditEvent] = []
        var seen = Set<String>()
        var cursor: String?
        repeat {
            var path = "/api/v2/audits/query/\(id)/results?pageSize=\(pageSize)&expand=user"
            if let cursor { path += "&cursor=" + (cursor.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? cursor) }
            let page = try parse(try await client.send("GET", path).body)
            for event in page.events where seen.insert(event.id).inserted { events.append(event) }
            cursor = page.events.isEmpty ? nil : page.cursor
        } while cursor != nil
        return events
    }

    func parse(_ body: [UInt8]) throws -> AuditQueryPage {
        do {
            return try AuditQueryPage.parse(body)
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
