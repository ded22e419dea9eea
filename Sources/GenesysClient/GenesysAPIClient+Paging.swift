import Foundation

/// The result of walking one paged list once.
public struct ListWalk<Entity: Sendable>: Sendable {
    /// Entities in page order, first occurrence of each id kept.
    public var items: [Entity]
    public var pages: Int
    /// Every `total` the pages reported.
    public var totals: Set<Int>
    /// Rows seen more than once (a sign the list shifted under the walk).
    public var duplicates: Int

    /// Whether the walk saw one stable list: a single total, no repeated row, as many rows as
    /// the total says. Offset paging has no snapshot, so anything else means rows moved.
    public var isConsistent: Bool {
        totals.count <= 1 && duplicates == 0 && (totals.first.map { $0 == items.count } ?? true)
    }

    public var inconsistency: String? {
        guard !isConsistent else { return nil }
        var reasons: [String] = []
        if totals.count > 1 { reasons.append("total changed (\(totals.sorted().map(String.init).joined(separator: " → ")))") }
        if duplicates > 0 { reasons.append("\(duplicates) row\(duplicates == 1 ? "" : "s") repeated") }
        if totals.count == 1, let total = totals.first, total != items.count {
            reasons.append("\(items.count) rows for a total of \(total)")
        }
        return reasons.joined(separator: ", ")
    }
}

extension GenesysAPIClient {
    /// Builds `/path?name=value&…` with values percent-encoded (commas kept, as the SDKs send lists).
    public static func uri(_ path: String, _ query: [(String, String)]) -> String {
        guard !query.isEmpty else { return path }
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-._~,:*")
        let items = query.map { name, value in
            "\(name)=\(value.addingPercentEncoding(withAllowedCharacters: allowed) ?? value)"
        }
        return path + "?" + items.joined(separator: "&")
    }

    /// Walks an offset-paged list once. Page 1 tells the page count; the remaining pages are
    /// fetched concurrently, then `nextUri` is followed from the last page in case the list grew.
    public func walkPages<Entity: Decodable & Sendable>(
        _ path: String, query: [(String, String)] = [], pageSize: Int, id: @escaping @Sendable (Entity) -> String,
        onPage: (@Sendable () -> Void)? = nil
    ) async throws -> ListWalk<Entity> {
        func pageURI(_ number: Int, size: Int) -> String {
            Self.uri(path, [("pageSize", String(size)), ("pageNumber", String(number))] + query)
        }
        let first: PageEnvelope<Entity> = try await get(pageURI(1, size: pageSize))
        onPage?()
        let size = first.pageSize ?? pageSize
        var pages: [Int: PageEnvelope<Entity>] = [1: first]
        if let pageCount = first.pageCount, pageCount > 1 {
            try await withThrowingTaskGroup(of: (Int, PageEnvelope<Entity>).self) { group in
                for number in 2...pageCount {
                    group.addTask {
                        let page: PageEnvelope<Entity> = try await self.get(pageURI(number, size: size))
                        onPage?()
                        return (number, page)
                    }
                }
                for try await (number, page) in group { pages[number] = page }
            }
        }
        // Follow nextUri from the highest page: the list may have grown since page 1.
        var highest = pages.keys.max() ?? 1
        var guardCount = 0
        while let next = pages[highest]?.nextUri {
            guardCount += 1
            guard guardCount < 100_000 else { break }
            let page: PageEnvelope<Entity> = try await get(next)
            onPage?()
            highest = page.pageNumber ?? highest + 1
            if pages[highest] != nil { break }  // a server looping on itself
            pages[highest] = page
        }

        var seen = Set<String>()
        var items: [Entity] = []
        var duplicates = 0
        for number in pages.keys.sorted() {
            for entity in pages[number]?.entities ?? [] {
                if seen.insert(id(entity)).inserted { items.append(entity) } else { duplicates += 1 }
            }
        }
        return ListWalk(
            items: items, pages: pages.count, totals: Set(pages.values.compactMap(\.total)), duplicates: duplicates)
    }

    /// Walks a cursor-paged list (`after`), following `nextUri` until it is absent.
    public func walkCursor<Entity: Decodable & Sendable>(
        _ path: String, query: [(String, String)] = [], pageSize: Int, id: @escaping @Sendable (Entity) -> String,
        onPage: (@Sendable () -> Void)? = nil
    ) async throws -> ListWalk<Entity> {
        var next: String? = Self.uri(path, [("pageSize", String(pageSize))] + query)
        var seen = Set<String>()
        var items: [Entity] = []
        var duplicates = 0
        var pages = 0
        while let uri = next, pages < 100_000 {
            let page: CursorEnvelope<Entity> = try await get(uri)
            onPage?()
            pages += 1
            for entity in page.entities ?? [] {
                if seen.insert(id(entity)).inserted { items.append(entity) } else { duplicates += 1 }
            }
            next = page.nextUri
        }
        return ListWalk(items: items, pages: pages, totals: [], duplicates: duplicates)
    }
}
