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
        var index = range.lowerBound
        let last = range.upperBound - pattern.count
        let first = pattern[0]
        while index <= last {
            if bytes[index] == first {
                var matched = true
                var offset = 1
                while offset < pattern.count {
                    if bytes[index + offset] != pattern[offset] {
                        matched = false
                        break
                    }
                    offset += 1
                }
                if matched {
                    let start = index + pattern.count
                    var end = start
                    while end < range.upperBound, bytes[end] != UInt8(ascii: "\"") {
                        if bytes[end] == UInt8(ascii: "\\") { return nil }
                        end += 1
                    }
                    return end < range.upperBound ? start..<end : nil
                }
            }
            index += 1
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

    /// The entity's hash, as `SnapshotDigest` computes it from the decoded entity.
    func hash(_ kind: EntityKind, _ entity: Entity, _ buffer: UnsafeBufferPointer<UInt8>) -> Hash256 {
        var hasher = SHA256()
        withUnsafeBytes(of: kind.rawValue) { hasher.update(bufferPointer: $0) }
        let elements = self.elements(kind, entity)
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

    /// The root hash `SnapshotDigest` gives the decoded snapshot; nil when the problems list is
    /// not empty (it is hashed from its decoded form: a partial snapshot is read the ordinary way).
    func rootHash(_ entities: [EntityKind: [Entity]]) -> String? {
        guard problemsEmpty else { return nil }
        var organizationId: Range<Int>?
        if let organization {
            guard let id = Self.stringValue(bytes, in: organization, key: Self.idKey) else { return nil }
            organizationId = id
        }
        var root = RootHasher()
        func add(_ kind: EntityKind, _ id: UnsafeRawBufferPointer, _ hash: Hash256) {
            root.add(kind, id: id, hash: hash)
        }
        bytes.withUnsafeBufferPointer { buffer in
            if let organization, let organizationId {
                var hasher = SHA256()
                hasher.update(data: [EntityKind.organization.rawValue])
                hasher.update(bufferPointer: UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: buffer[organization])))
                add(.organization, UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: buffer[organizationId])), Hash256(hasher.finalize()))
            }
            for (_, kind) in Self.sectionKinds {
                for entity in entities[kind] ?? [] {
                    add(kind, UnsafeRawBufferPointer(UnsafeBufferPointer(rebasing: buffer[entity.id])), hash(kind, entity, buffer))
                }
            }
            var problems = CanonicalJSONWriter(reservingCapacity: 64)
            problems.beginObject()
            problems.field("partial", partial)
            problems.field("problems", each: [CollectionProblem]()) { $0.encode(to: &$1) }
            problems.endObject()
            var hasher = SHA256()
            hasher.update(data: [EntityKind.problems.rawValue])
            hasher.update(data: problems.bytes)
            add(.problems, UnsafeRawBufferPointer(start: nil, count: 0), Hash256(hasher.finalize()))
        }
        return root.finalize()
    }
}
