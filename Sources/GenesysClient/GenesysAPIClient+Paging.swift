import Foundation

/// Ceilings on walking one list: a server that claims a billion pages, repeats a page or a
/// cursor, or points `nextUri` back at itself gets a walk that stops, with a reason, instead of
/// driving requests or memory without end.
public struct PagingLimits: Sendable, Equatable {
    /// Pages one walk may read (100,000 users at 500 a page is 200 pages).
    public var maxPages = 10_000
    /// Rows one walk may hold (about half a gigabyte of users).
    public var maxItems = 1_000_000
    /// Pages requested at once after the first: a walk starts with `initialWindow` and widens by
    /// two for every page that brings new rows, up to `window` — a long honest list is fetched
    /// with all the concurrency there is (its pages queue for the client's request slots beside
    /// the other lists'), a server repeating itself costs a few requests, and the server's
    /// `pageCount` never sizes anything.
    public var initialWindow = 8
    public var window = 64

    public init() {}
}

/// The result of walking one paged list once.
public struct ListWalk<Entity: Sendable>: Sendable {
    /// Entities in page order, first occurrence of each id kept.
    public var items: [Entity]
    public var pages: Int
    /// Every `total` the pages reported.
    public var totals: Set<Int>
    /// Rows seen more than once (a sign the list shifted under the walk).
    public var duplicates: Int
    /// Why the walk stopped before the end of the list, when it did (a ceiling reached, a server
    /// repeating itself): the items are then a part of the list.
    public var truncation: String?

    public init(items: [Entity], pages: Int, totals: Set<Int>, duplicates: Int, truncation: String? = nil) {
        self.items = items
        self.pages = pages
        self.totals = totals
        self.duplicates = duplicates
        self.truncation = truncation
    }

    /// Whether the walk saw one stable list: a single total, no repeated row, as many rows as
    /// the total says. Offset paging has no snapshot, so anything else means rows moved.
    public var isConsistent: Bool {
        totals.count <= 1 && duplicates == 0 && (totals.first.map { $0 == items.count } ?? true)
    }

    public var inconsistency: String? {
        guard !isConsistent else { return nil }
        var reasons: [String] = []
        if totals.count > 1 {
            let shown = totals.sorted().prefix(4).map(String.init).joined(separator: " → ")
            reasons.append("total changed (\(shown)\(totals.count > 4 ? " …" : ""))")
        }
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

    /// An id from a reply, made safe to put in a path: percent-encoded, so an id holding `/`,
    /// `?`, `..` or a line break cannot change which endpoint is called.
    public static func segment(_ id: String) -> String {
        var allowed = CharacterSet.alphanumerics
        allowed.insert(charactersIn: "-_~")
        let encoded = id.addingPercentEncoding(withAllowedCharacters: allowed) ?? ""
        return encoded.isEmpty || encoded == "." ? "%2E" : encoded
    }

    /// Walks an offset-paged list once. Pages are fetched a window at a time (page 1, then up
    /// to `limits.window` at once) while the pages say there are more: to the last page the
    /// server counts, then along `nextUri` in case the list grew. The walk stops at an empty
    /// page, at `limits`, at a page that repeats rows already read, and at a `nextUri` already
    /// followed; the last three are a truncation, with the reason in the result.
    public func walkPages<Entity: Decodable & Sendable>(
        _ path: String, query: [(String, String)] = [], pageSize: Int, id: @escaping @Sendable (Entity) -> String,
        onPage: (@Sendable () -> Void)? = nil
    ) async throws -> ListWalk<Entity> {
        let limits = paging
        func pageURI(_ number: Int, size: Int) -> String {
            Self.uri(path, [("pageSize", String(size)), ("pageNumber", String(number))] + query)
        }
        var walk = PageAccumulator<Entity>(limits: limits, id: id)
        let first: PageEnvelope<Entity> = try await get(pageURI(1, size: pageSize))
        onPage?()
        walk.add(first, number: 1)
        // A server may cap the page size; never believe a larger one than was asked for.
        let size = min(max(first.pageSize ?? pageSize, 1), pageSize)
        var claimed = first.pageCount ?? 1
        var last = first
        var lastNumber = 1
        var repeated = 0
        if !(first.entities ?? []).isEmpty, claimed > 1 {
            // A sliding window of requests: at most `limits.window` pages in flight, results
            // taken in page order, no request past an empty page or a ceiling.
            try await withThrowingTaskGroup(of: (Int, PageEnvelope<Entity>).self) { group in
                var nextToAsk = 2
                var inFlight = 0
                var window = min(limits.initialWindow, limits.window)
                var stop = false
                var arrived: [Int: PageEnvelope<Entity>] = [:]
                func launch() {
                    while !stop, inFlight < window, nextToAsk <= min(claimed, limits.maxPages) {
                        let number = nextToAsk
                        group.addTask {
                            let page: PageEnvelope<Entity> = try await self.get(pageURI(number, size: size))
                            onPage?()
                            return (number, page)
                        }
                        nextToAsk += 1
                        inFlight += 1
                    }
                }
                launch()
                while let (number, page) = try await group.next() {
                    inFlight -= 1
                    if stop { continue }
                    arrived[number] = page
                    while let page = arrived.removeValue(forKey: lastNumber + 1) {
                        let added = walk.add(page, number: lastNumber + 1)
                        last = page
                        lastNumber += 1
                        let rows = page.entities ?? []
                        if rows.isEmpty {
                            stop = true
                            break
                        }
                        if added > 0 {
                            window = min(limits.window, window + 2)
                        } else {
                            // A whole page of rows already read: rows shifting under a walk
                            // repeat a few, never a page; twice means the server is not paging.
                            repeated += 1
                            if repeated >= 2 {
                                walk.truncation = "page \(lastNumber) repeats rows already read: the server is not paging"
                            }
                        }
                        if walk.truncation != nil {
                            stop = true
                            break
                        }
                        // A later page may count more pages (the list grew).
                        if let count = page.pageCount, count > claimed { claimed = count }
                    }
                    launch()
                }
            }
            if walk.truncation == nil, claimed > limits.maxPages, lastNumber >= limits.maxPages {
                walk.truncation = "stopped at \(limits.maxPages) pages, the ceiling (the server counts \(claimed))"
            }
        }
        // Follow nextUri from the last page: the list may have grown since page 1.
        var followed = Set<String>()
        while walk.truncation == nil, lastNumber >= claimed, let uri = last.nextUri, !(last.entities ?? []).isEmpty {
            guard followed.insert(uri).inserted, walk.pages < limits.maxPages else {
                walk.truncation =
                    walk.pages >= limits.maxPages
                    ? "stopped at \(limits.maxPages) pages, the ceiling" : "nextUri leads back to a page already read: the server is not paging"
                break
            }
            let page: PageEnvelope<Entity> = try await get(uri)
            onPage?()
            let number = page.pageNumber ?? lastNumber + 1
            if number <= lastNumber && walk.hasPage(number) {
                walk.truncation = "nextUri leads back to page \(number): the server is not paging"
                break
            }
            let added = walk.add(page, number: number)
            if added == 0, !(page.entities ?? []).isEmpty {
                repeated += 1
                if repeated >= 2 { walk.truncation = "page \(number) repeats rows already read: the server is not paging" }
            }
            last = page
            lastNumber = max(lastNumber, number)
        }
        return walk.result
    }

    /// Walks a cursor-paged list (`after`), following `nextUri` until it is absent, a cursor
    /// repeats, a page brings no new rows, or a ceiling is reached.
    public func walkCursor<Entity: Decodable & Sendable>(
        _ path: String, query: [(String, String)] = [], pageSize: Int, id: @escaping @Sendable (Entity) -> String,
        onPage: (@Sendable () -> Void)? = nil
    ) async throws -> ListWalk<Entity> {
        let limits = paging
        var walk = PageAccumulator<Entity>(limits: limits, id: id)
        var next: String? = Self.uri(path, [("pageSize", String(pageSize))] + query)
        var followed = Set<String>()
        while let uri = next, walk.truncation == nil {
            guard followed.insert(uri).inserted else {
                walk.truncation = "nextUri repeats a cursor already followed: the server is not paging"
                break
            }
            guard walk.pages < limits.maxPages else {
                walk.truncation = "stopped at \(limits.maxPages) pages, the ceiling"
                break
            }
            let page: CursorEnvelope<Entity> = try await get(uri)
            onPage?()
            let added = walk.add(entities: page.entities ?? [], number: walk.pages + 1)
            if added == 0, !(page.entities ?? []).isEmpty, page.nextUri != nil {
                walk.truncation = "a page repeats rows already read: the server is not paging"
            }
            next = (page.entities ?? []).isEmpty ? nil : page.nextUri
        }
        return walk.result
    }
}

/// The rows of a walk so far, deduplicated by id, within the item ceiling.
struct PageAccumulator<Entity: Decodable & Sendable> {
    let limits: PagingLimits
    let id: @Sendable (Entity) -> String
    var items: [Entity] = []
    var seen = Set<String>()
    var numbers = Set<Int>()
    var totals = Set<Int>()
    var duplicates = 0
    var pages = 0
    var truncation: String?

    init(limits: PagingLimits, id: @escaping @Sendable (Entity) -> String) {
        self.limits = limits
        self.id = id
    }

    func hasPage(_ number: Int) -> Bool { numbers.contains(number) }

    /// Adds an offset page; returns how many of its rows were new.
    @discardableResult
    mutating func add(_ page: PageEnvelope<Entity>, number: Int) -> Int {
        if let total = page.total, totals.count < 64 { totals.insert(total) }
        return add(entities: page.entities ?? [], number: number)
    }

    mutating func add(entities: [Entity], number: Int) -> Int {
        pages += 1
        numbers.insert(number)
        var added = 0
        for entity in entities {
            guard items.count < limits.maxItems else {
                truncation = truncation ?? "stopped at \(limits.maxItems) rows, the ceiling"
                break
            }
            if seen.insert(id(entity)).inserted {
                items.append(entity)
                added += 1
            } else {
                duplicates += 1
            }
        }
        return added
    }

    var result: ListWalk<Entity> {
        ListWalk(items: items, pages: pages, totals: totals, duplicates: duplicates, truncation: truncation)
    }
}
