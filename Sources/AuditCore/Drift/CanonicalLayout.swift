import Crypto
import Foundation

/// Where everything lies in a canonical snapshot file (`Snapshot.canonicalJSON()`): its sections
/// and their elements, one per line, found without decoding anything. Comparing two files then
/// costs a merge of their sorted elements — bytes against bytes — and decoding only what
/// differs; the root hash comes from the elements' own bytes (the same `SnapshotDigest` would
/// compute from the decoded snapshot).
///
/// Only files in the exact layout the writer produces are indexed; anything else (a file edited
/// by hand, written by another tool) gives nil and is read the ordinary way.
struct CanonicalLayout: Sendable {
    let bytes: [UInt8]
    /// Element byte ranges (trailing comma excluded) of each list section, in file order.
    private(set) var sections: [String: [Range<Int>]] = [:]
    private(set) var organization: Range<Int>?
    private(set) var partial = false
    private(set) var problemsEmpty = true

    static let listSections: Set<String> = ["divisions", "grants", "groups", "oauthClients", "problems", "roles", "teams", "users"]

    init?(_ bytes: [UInt8]) {
        self.bytes = bytes
        var lines: [Range<Int>] = []
        lines.reserveCapacity(bytes.count / 200 + 16)
        bytes.withUnsafeBufferPointer { buffer in
            guard let base = buffer.baseAddress else { return }
            var start = 0
            let count = buffer.count
            while start < count, let newline = memchr(base + start, 0x0A, count - start) {
                let index = base.distance(to: newline.assumingMemoryBound(to: UInt8.self))
                lines.append(start..<index)
                start = index + 1
            }
            if start < count { lines.append(start..<count) }
        }
        guard lines.count >= 3, Self.equal(bytes, lines[0], "{"), Self.equal(bytes, lines[1], "\"schema\":\"\(Snapshot.schema)\",") else { return nil }
        var index = 2
        var seenEnd = false
        while index < lines.count {
            let line = lines[index]
            if Self.equal(bytes, line, "}") {
                seenEnd = true
                index += 1
                break
            }
            guard let (key, rest) = Self.member(bytes, line) else { return nil }
            let trimmed = Self.dropComma(bytes, rest)
            if Self.equal(bytes, trimmed, "[") {
                guard Self.listSections.contains(key) else { return nil }
                var elements: [Range<Int>] = []
                index += 1
                while index < lines.count {
                    let element = lines[index]
                    if Self.equal(bytes, element, "]") || Self.equal(bytes, element, "],") { break }
                    let body = Self.dropComma(bytes, element)
                    guard !body.isEmpty, bytes[body.lowerBound] == UInt8(ascii: "{"), bytes[body.upperBound - 1] == UInt8(ascii: "}") else { return nil }
                    elements.append(body)
                    index += 1
                }
                guard index < lines.count else { return nil }
                sections[key] = elements
            } else if Self.equal(bytes, trimmed, "[]") {
                guard Self.listSections.contains(key) else { return nil }
                sections[key] = []
            } else if key == "organization" {
                guard !trimmed.isEmpty, bytes[trimmed.lowerBound] == UInt8(ascii: "{") else { return nil }
                organization = trimmed
            } else if key == "partial" {
                if Self.equal(bytes, trimmed, "true") { partial = true } else if !Self.equal(bytes, trimmed, "false") { return nil }
            } else {
                return nil
            }
            index += 1
        }
        guard seenEnd, index >= lines.count || lines[index...].allSatisfy(\.isEmpty) else { return nil }
        problemsEmpty = sections["problems"]?.isEmpty ?? true
        for name in Self.listSections where sections[name] == nil { sections[name] = [] }
    }

    // MARK: Bytes

    static func equal(_ bytes: [UInt8], _ range: Range<Int>, _ text: StaticString) -> Bool {
        guard range.count == text.utf8CodeUnitCount else { return false }
        return text.withUTF8Buffer { expected in
            var index = 0
            while index < expected.count {
                if bytes[range.lowerBound + index] != expected[index] { return false }
                index += 1
            }
            return true
        }
    }

    static func equal(_ bytes: [UInt8], _ range: Range<Int>, _ text: String) -> Bool {
        let expected = Array(text.utf8)
        return range.count == expected.count && bytes[range].elementsEqual(expected)
    }

    static func dropComma(_ bytes: [UInt8], _ range: Range<Int>) -> Range<Int> {
        range.count > 0 && bytes[range.upperBound - 1] == UInt8(ascii: ",") ? range.lowerBound..<(range.upperBound - 1) : range
    }

    /// `"key":rest` → the key and the range of `rest`.
    static func member(_ bytes: [UInt8], _ line: Range<Int>) -> (String, Range<Int>)? {
        guard line.count > 3, bytes[line.lowerBound] == UInt8(ascii: "\"") else { return nil }
        var index = line.lowerBound + 1
        while index < line.upperBound, bytes[index] != UInt8(ascii: "\"") {
            if bytes[index] == UInt8(ascii: "\\") { return nil }
            index += 1
        }
        guard index + 1 < line.upperBound, bytes[index + 1] == UInt8(ascii: ":") else { return nil }
        return (String(decoding: bytes[(line.lowerBound + 1)..<index], as: UTF8.self), (index + 2)..<line.upperBound)
    }

    /// The value of the first `"name":"…"` member in `range` (an element's own key: every
    /// nested object the format has is read before the element's `id` only if its keys sort
    /// first, and none of them is called `id` or `subjectId`). Nil when it holds an escape.
    static func stringValue(_ bytes: [UInt8], in range: Range<Int>, key pattern: [UInt8]) -> Range<Int>? {
        guard range.count > pattern.count else { return nil }
        return bytes.withUnsafeBufferPointer { buffer -> Range<Int>? in
            pattern.withUnsafeBufferPointer { key -> Range<Int>? in
                // A user's element holds its whole access list before its id: searched with memchr.
                guard let found = find(key, in: buffer, range) else { return nil }
                let start = found + key.count
                var end = start
                while end < range.upperBound, buffer[end] != UInt8(ascii: "\"") {
                    if buffer[end] == UInt8(ascii: "\\") { return nil }
                    end += 1
                }
                return end < range.upperBound ? start..<end : nil
            }
        }
    }

    /// Where `key` (a `"name":"` pattern) first starts within `range`: memchr to each `:`, the
    /// rest compared around it (a colon comes once a member; quotes and letters far more often).
    static func find(_ key: UnsafeBufferPointer<UInt8>, in buffer: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> Int? {
        guard let base = buffer.baseAddress, let anchor = key.lastIndex(of: UInt8(ascii: ":")), key.count <= range.count else { return nil }
        var index = range.lowerBound + anchor
        let end = range.upperBound - (key.count - anchor)  // the last place the anchor can be
        while index <= end {
            guard let colon = memchr(base + index, Int32(UInt8(ascii: ":")), end - index + 1) else { return nil }
            let at = base.distance(to: colon.assumingMemoryBound(to: UInt8.self))
            if memcmp(base + at - anchor, key.baseAddress!, key.count) == 0 { return at - anchor }
            index = at + 1
        }
        return nil
    }

    static let idKey = Array("\"id\":\"".utf8)
    static let subjectKey = Array("\"subjectId\":\"".utf8)

    // MARK: Entities

    /// One entity as the digest sees it: its id's bytes and its elements (`count` lines from
    /// `first` in its section; a grant run is one subject's consecutive grants).
    struct Entity {
        var id: Range<Int>
        var first: Int
        var count: Int
    }

    static let sectionKinds: [(String, EntityKind)] = [
        ("divisions", .division), ("roles", .role), ("users", .user), ("groups", .group), ("teams", .team), ("oauthClients", .oauthClient),
        ("grants", .grants),
    ]

    static func section(of kind: EntityKind) -> String {
        sectionKinds.first { $0.1 == kind }?.0 ?? ""
    }

    /// The element ranges of an entity.
    func elements(_ kind: EntityKind, _ entity: Entity) -> ArraySlice<Range<Int>> {
        sections[Self.section(of: kind)]![entity.first..<(entity.first + entity.count)]
    }

    /// The entities of one section in file order (sorted by id); nil when an id cannot be read
    /// without decoding.
    func entities(_ kind: EntityKind) -> [Entity]? {
        let elements = sections[Self.section(of: kind)] ?? []
        var out: [Entity] = []
        out.reserveCapacity(elements.count)
        if kind == .grants {
            var start = 0
            while start < elements.count {
                guard let subject = Self.stringValue(bytes, in: elements[start], key: Self.subjectKey) else { return nil }
                var end = start + 1
                while end < elements.count, let next = Self.stringValue(bytes, in: elements[end], key: Self.subjectKey),
                    DriftEngine.same(bytes, next, bytes, subject)
                {
                    end += 1
                }
                out.append(Entity(id: subject, first: start, count: end - start))
                start = end
            }
            return out
        }
        for (index, element) in elements.enumerated() {
            guard let id = Self.stringValue(bytes, in: element, key: Self.idKey) else { return nil }
            out.append(Entity(id: id, first: index, count: 1))
        }
        return out
    }

    /// Every section's entities, by kind; nil when one cannot be indexed.
    func allEntities() -> [EntityKind: [Entity]]? {
        var all: [EntityKind: [Entity]] = [:]
        for (_, kind) in Self.sectionKinds {
            guard let entities = entities(kind) else { return nil }
            all[kind] = entities
        }
        return all
    }

    /// The entity's hash, as `SnapshotDigest` computes it from the decoded entity: its kind, then
    /// its elements (a subject's grants as one JSON array).
    static func hash(_ kind: EntityKind, _ elements: ArraySlice<Range<Int>>, _ buffer: UnsafeBufferPointer<UInt8>) -> Hash256 {
        var hasher = SHA256()
        withUnsafeBytes(of: kind.rawValue) { hasher.update(bufferPointer: $0) }
        if kind == .grants {
            withUnsafeBytes(of: UInt8(ascii: "[")) { hasher.update(bufferPointer: $0) }
            var first = true
            for element in elements {
                if !first { withUnsafeBytes(of: UInt8(ascii: ",")) { hasher.update(bufferPointer: $0) } }
                first = false
                hasher.update(bufferPointer: UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: buffer[element])))
            }
            withUnsafeBytes(of: UInt8(ascii: "]")) { hasher.update(bufferPointer: $0) }
        } else {
            for element in elements { hasher.update(bufferPointer: UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: buffer[element]))) }
        }
        return Hash256(hasher.finalize())
    }

    /// Both files' root hashes (`SnapshotDigest`'s, from the elements' bytes; nil for a file whose
    /// problems list is not empty: it is hashed from its decoded form) in one pass: an entity whose
    /// bytes are the same in both files (in a drift check, nearly all of them) is hashed once.
    static func rootHashes(
        _ old: CanonicalLayout, _ oldEntities: [EntityKind: [Entity]], _ new: CanonicalLayout, _ newEntities: [EntityKind: [Entity]]
    ) -> (String?, String?) {
        old.bytes.withUnsafeBufferPointer { a in
            new.bytes.withUnsafeBufferPointer { b in
                var left = RootBuilder(old, a)
                var right = RootBuilder(new, b)
                guard left != nil || right != nil else { return (nil, nil) }
                for (section, kind) in sectionKinds {
                    let x = oldEntities[kind] ?? [], y = newEntities[kind] ?? []
                    let xElements = old.sections[section] ?? [], yElements = new.sections[section] ?? []
                    var i = 0, j = 0
                    // Each side's entities go to its root in its own order; a pair with the same
                    // id and the same bytes shares one hash.
                    while i < x.count || j < y.count {
                        let side = i == x.count ? 1 : j == y.count ? -1 : order(a, x[i].id, b, y[j].id)
                        let xs = i < x.count ? xElements[x[i].first..<(x[i].first + x[i].count)] : []
                        let ys = j < y.count ? yElements[y[j].first..<(y[j].first + y[j].count)] : []
                        if side == 0 {
                            let hash = hash(kind, xs, a)
                            left?.add(kind, x[i].id, hash)
                            right?.add(kind, y[j].id, same(a, xs, b, ys) ? hash : Self.hash(kind, ys, b))
                            i += 1
                            j += 1
                        } else if side < 0 {
                            left?.add(kind, x[i].id, hash(kind, xs, a))
                            i += 1
                        } else {
                            right?.add(kind, y[j].id, hash(kind, ys, b))
                            j += 1
                        }
                    }
                }
                return (left?.finish(), right?.finish())
            }
        }
    }

    /// Byte order of two ids in two files: negative, zero or positive.
    static func order(_ a: UnsafeBufferPointer<UInt8>, _ x: Range<Int>, _ b: UnsafeBufferPointer<UInt8>, _ y: Range<Int>) -> Int {
        DriftEngine.order(UnsafeBufferPointer(rebasing: a[x]), UnsafeBufferPointer(rebasing: b[y]))
    }

    /// Whether two entities' elements are the same bytes.
    static func same(_ a: UnsafeBufferPointer<UInt8>, _ xs: ArraySlice<Range<Int>>, _ b: UnsafeBufferPointer<UInt8>, _ ys: ArraySlice<Range<Int>>) -> Bool {
        guard xs.count == ys.count else { return false }
        for (x, y) in zip(xs, ys) {
            guard x.count == y.count else { return false }
            if !x.isEmpty, memcmp(a.baseAddress! + x.lowerBound, b.baseAddress! + y.lowerBound, x.count) != 0 { return false }
        }
        return true
    }

    /// One file's root, built as `SnapshotDigest` builds it: the organisation, every entity in
    /// (kind, id) order, then the (empty) problems list.
    struct RootBuilder {
        private var root = RootHasher()
        private let buffer: UnsafeBufferPointer<UInt8>
        private let partial: Bool

        /// Nil when the file's root cannot be hashed from its bytes (problems, an unreadable
        /// organisation id).
        init?(_ layout: CanonicalLayout, _ buffer: UnsafeBufferPointer<UInt8>) {
            guard layout.problemsEmpty else { return nil }
            self.buffer = buffer
            partial = layout.partial
            if let organization = layout.organization {
                guard let id = CanonicalLayout.stringValue(layout.bytes, in: organization, key: CanonicalLayout.idKey) else { return nil }
                var hasher = SHA256()
                hasher.update(data: [EntityKind.organization.rawValue])
                hasher.update(bufferPointer: UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: buffer[organization])))
                add(.organization, id, Hash256(hasher.finalize()))
            }
        }

        mutating func add(_ kind: EntityKind, _ id: Range<Int>, _ hash: Hash256) {
            root.add(kind, id: UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: buffer[id])), hash: hash)
        }

        mutating func finish() -> String {
            var problems = CanonicalJSONWriter(reservingCapacity: 64)
            problems.beginObject()
            problems.field("partial", partial)
            problems.field("problems", each: [CollectionProblem]()) { $0.encode(to: &$1) }
            problems.endObject()
            var hasher = SHA256()
            hasher.update(data: [EntityKind.problems.rawValue])
            hasher.update(data: problems.bytes)
            root.add(.problems, id: UnsafeRawBufferPointer(start: nil, count: 0), hash: Hash256(hasher.finalize()))
            return root.finalize()
        }
    }
}
