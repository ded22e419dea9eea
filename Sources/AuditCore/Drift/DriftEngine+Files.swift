import Foundation
import Synchronization

/// Comparing two canonical snapshot files without reparsing the world: both files are indexed
/// (on both cores), their sorted elements merged byte against byte, and only what differs — with
/// what the comparison needs around it — is decoded: every role, division, group, team and OAuth
/// client (small lists), users whose records differ or who hold a changed role, groups' grants,
/// and the grants of subjects whose grants differ. The result is the one `diff(baseline:current:)`
/// gives the fully decoded snapshots (`rbacwatch-bench diff` checks it on every run).
extension DriftEngine {
    public struct FileComparison: Sendable {
        public var result: DriftResult
        /// Users decoded from the two files together (the rest were compared as bytes).
        public var decodedUsers: Int
        /// Whether both files were in the canonical layout (false: both were read whole).
        public var indexed: Bool
    }

    public static func diff(
        baselineBytes: [UInt8], currentBytes: [UInt8], lineage: RoleLineage = RoleLineage(), options: DriftOptions = DriftOptions()
    ) throws(SnapshotFileError) -> FileComparison {
        // Index both files at once.
        let sides = Mutex<[Int: Indexed?]>([:])
        let inputs = [baselineBytes, currentBytes]
        DispatchQueue.concurrentPerform(iterations: 2) { index in
            var indexed: Indexed?
            if let layout = CanonicalLayout(inputs[index]), layout.problemsEmpty, let entities = layout.allEntities() {
                indexed = Indexed(layout: layout, entities: entities)
            }
            sides.withLock { $0[index] = indexed }
        }
        let (old, new) = sides.withLock { ($0[0] ?? nil, $0[1] ?? nil) }
        if let old, let new {
            // The root hashes (SHA-256 of every entity, once for an entity the files share) on a
            // thread of their own, while the comparison runs on the other core.
            let roots = Joinable { CanonicalLayout.rootHashes(old.layout, old.entities, new.layout, new.entities) }
            let comparison = try indexedDiff(old, new, roots: { roots.join() }, lineage: lineage, options: options)
            _ = roots.join()
            if let comparison { return comparison }
        }
        let baseline = try Snapshot(canonicalBytes: baselineBytes)
        let current = try Snapshot(canonicalBytes: currentBytes)
        return FileComparison(
            result: diff(baseline: baseline, current: current, lineage: lineage, options: options),
            decodedUsers: baseline.users.count + current.users.count, indexed: false)
    }

    /// One file indexed: its layout, its entities by kind.
    struct Indexed: Sendable {
        var layout: CanonicalLayout
        var entities: [EntityKind: [CanonicalLayout.Entity]]
    }

    /// Work on a thread of its own (not the concurrency pool or dispatch's, which the caller may
    /// be occupying), joined when its result is needed.
    final class Joinable<T: Sendable>: Sendable {
        private let done = DispatchSemaphore(value: 0)
        private let value = Mutex<T?>(nil)

        init(_ work: @escaping @Sendable () -> T) {
            let thread = Thread { [self] in
                let result = work()
                value.withLock { $0 = result }
                done.signal()
            }
            thread.start()
        }

        /// The work's result, waiting for it if it is not there yet (joined from one thread).
        func join() -> T {
            if let known = value.withLock({ $0 }) { return known }
            done.wait()
            return value.withLock { $0 }!
        }
    }

    static func indexedDiff(
        _ old: Indexed, _ new: Indexed, roots: () -> (String?, String?), lineage: RoleLineage, options: DriftOptions
    ) throws(SnapshotFileError) -> FileComparison? {
        // Identical files: nothing to merge.
        if old.layout.bytes == new.layout.bytes {
            guard case let (a?, b?) = roots() else { return nil }
            return FileComparison(
                result: DriftResult(baselineRoot: a, currentRoot: b, items: [], newLineage: [:], changedEntities: 0, principalsCompared: 0),
                decodedUsers: 0, indexed: true)
        }
        var changed = Set<EntityKey>()
        var added = Set<EntityKey>()
        var removed = Set<EntityKey>()
        for (_, kind) in CanonicalLayout.sectionKinds {
            guard merge(kind, old, new, changed: &changed, added: &added, removed: &removed) else { return nil }
        }
        if let a = old.layout.organization, let b = new.layout.organization {
            if !Self.same(old.layout.bytes, a, new.layout.bytes, b) {
                guard let id = CanonicalLayout.stringValue(new.layout.bytes, in: b, key: CanonicalLayout.idKey) else { return nil }
                changed.insert(EntityKey(.organization, String(decoding: new.layout.bytes[id], as: UTF8.self)))
            }
        } else if (old.layout.organization == nil) != (new.layout.organization == nil) {
            return nil  // rare: read whole
        }
        if changed.isEmpty && added.isEmpty && removed.isEmpty, case let (a?, b?) = roots(), a == b {
            return FileComparison(
                result: DriftResult(baselineRoot: a, currentRoot: b, items: [], newLineage: [:], changedEntities: 0, principalsCompared: 0),
                decodedUsers: 0, indexed: true)
        }

        // What the comparison needs beyond the entities that differ.
        var touched: [EntityKind: Set<String>] = [:]
        for key in changed.union(added).union(removed) { touched[key.kind, default: []].insert(key.id) }
        var users = touched[.user] ?? []
        let grantSubjects = touched[.grants] ?? []
        users.formUnion(grantSubjects)
        // Holders of a changed role, and the groups, in each file: one file per core.
        let wanted = (touched[.role] ?? []).map { Array($0.utf8) }
        let scans = Mutex<[Int: (holders: [String], groups: Result<[Group], SnapshotFileError>)]>([:])
        let sides = [old, new]
        DispatchQueue.concurrentPerform(iterations: 2) { index in
            let side = sides[index]
            var holders: [String] = []
            if !wanted.isEmpty {
                let elements = side.layout.sections["users"] ?? []
                for entity in side.entities[.user] ?? [] where holdsAny(side.layout.bytes, accessPrefix(side.layout.bytes, elements[entity.first]), wanted) {
                    holders.append(String(decoding: side.layout.bytes[entity.id], as: UTF8.self))
                }
            }
            let groups: Result<[Group], SnapshotFileError>
            do throws(SnapshotFileError) {
                groups = .success(try decodeAll(side.layout, "groups", SnapshotReader.group))
            } catch {
                groups = .failure(error)
            }
            scans.withLock { $0[index] = (holders, groups) }
        }
        let scanned = scans.withLock { $0 }
        guard let oldScan = scanned[0], let newScan = scanned[1] else { return nil }
        users.formUnion(oldScan.holders)
        users.formUnion(newScan.holders)
        let oldGroups = try oldScan.groups.get()
        let newGroups = try newScan.groups.get()
        // Members who joined or left a changed group.
        if let groups = touched[.group] {
            let before = ByID(oldGroups)
            let after = ByID(newGroups)
            for id in groups {
                users.formUnion(Set(before[id]?.memberIds ?? []).symmetricDifference(after[id]?.memberIds ?? []))
            }
        }
        // What each file contributes, one file per core.
        let wantedUsers = users
        let decoded = Mutex<[Int: Result<Snapshot, SnapshotFileError>]>([:])
        let groupsBySide = [oldGroups, newGroups]
        DispatchQueue.concurrentPerform(iterations: 2) { index in
            let result: Result<Snapshot, SnapshotFileError>
            do throws(SnapshotFileError) {
                result = .success(try decode(sides[index], groups: groupsBySide[index], users: wantedUsers, grantSubjects: grantSubjects))
            } catch {
                result = .failure(error)
            }
            decoded.withLock { $0[index] = result }
        }
        let parts = decoded.withLock { $0 }
        guard let oldPart = parts[0], let newPart = parts[1] else { return nil }
        let baseline = try oldPart.get()
        let current = try newPart.get()
        // The comparison runs while the root hashes finish on the other core; they only label
        // its result (or, equal, say there is nothing to report).
        var result = diff(
            baseline: baseline, current: current, roots: ("", ""), changed: changed, added: added, removed: removed,
            lineage: lineage, options: options)
        guard case let (oldRoot?, newRoot?) = roots() else { return nil }
        if oldRoot == newRoot {
            return FileComparison(
                result: DriftResult(baselineRoot: oldRoot, currentRoot: newRoot, items: [], newLineage: [:], changedEntities: 0, principalsCompared: 0),
                decodedUsers: 0, indexed: true)
        }
        result.baselineRoot = oldRoot
        result.currentRoot = newRoot
        return FileComparison(result: result, decodedUsers: baseline.users.count + current.users.count, indexed: true)
    }

    /// Merges two sections sorted by id; false when a section is not strictly ascending (the
    /// files are then read whole).
    static func merge(
        _ kind: EntityKind, _ old: Indexed, _ new: Indexed, changed: inout Set<EntityKey>, added: inout Set<EntityKey>, removed: inout Set<EntityKey>
    ) -> Bool {
        let a = old.entities[kind] ?? []
        let b = new.entities[kind] ?? []
        let aBytes = old.layout.bytes
        let bBytes = new.layout.bytes
        let aSection = old.layout.sections[CanonicalLayout.section(of: kind)] ?? []
        let bSection = new.layout.sections[CanonicalLayout.section(of: kind)] ?? []
        func key(_ bytes: [UInt8], _ entity: CanonicalLayout.Entity) -> EntityKey { EntityKey(kind, String(decoding: bytes[entity.id], as: UTF8.self)) }
        var i = 0
        var j = 0
        while i < a.count || j < b.count {
            let order: Int
            if i == a.count {
                order = 1
            } else if j == b.count {
                order = -1
            } else {
                order = compare(aBytes, a[i].id, bBytes, b[j].id)
            }
            if order == 0 {
                let x = aSection[a[i].first..<(a[i].first + a[i].count)]
                let y = bSection[b[j].first..<(b[j].first + b[j].count)]
                if x.count != y.count || !zip(x, y).allSatisfy({ same(aBytes, $0, bBytes, $1) }) { changed.insert(key(bBytes, b[j])) }
                i += 1
                j += 1
            } else if order < 0 {
                removed.insert(key(aBytes, a[i]))
                i += 1
            } else {
                added.insert(key(bBytes, b[j]))
                j += 1
            }
            // Strictly ascending ids on both sides, or the merge means nothing.
            if i > 0, i < a.count, order <= 0, compare(aBytes, a[i - 1].id, aBytes, a[i].id) >= 0 { return false }
            if j > 0, j < b.count, order >= 0, compare(bBytes, b[j - 1].id, bBytes, b[j].id) >= 0 { return false }
        }
        return true
    }

    /// Byte order of two ids: negative, zero or positive.
    static func order(_ x: UnsafeBufferPointer<UInt8>, _ y: UnsafeBufferPointer<UInt8>) -> Int {
        let common = min(x.count, y.count)
        let result = common == 0 ? 0 : memcmp(x.baseAddress!, y.baseAddress!, common)
        if result != 0 { return Int(result) }
        return x.count - y.count
    }

    static func compare(_ a: [UInt8], _ x: Range<Int>, _ b: [UInt8], _ y: Range<Int>) -> Int {
        a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                let common = min(x.count, y.count)
                let result = common == 0 ? 0 : memcmp(pa.baseAddress! + x.lowerBound, pb.baseAddress! + y.lowerBound, common)
                if result != 0 { return result < 0 ? -1 : 1 }
                return x.count == y.count ? 0 : (x.count < y.count ? -1 : 1)
            }
        }
    }

    static func same(_ a: [UInt8], _ x: Range<Int>, _ b: [UInt8], _ y: Range<Int>) -> Bool {
        x.count == y.count && compare(a, x, b, y) == 0
    }

    /// A user element's `access` list (its first member, the keys being sorted): where every
    /// `roleId` of the user is. The whole element when it does not start so.
    static func accessPrefix(_ bytes: [UInt8], _ element: Range<Int>) -> Range<Int> {
        let key = Array("{\"access\":[".utf8)
        guard element.count > key.count, bytes[element.lowerBound..<(element.lowerBound + key.count)].elementsEqual(key) else { return element }
        return bytes.withUnsafeBufferPointer { buffer in
            guard let close = memchr(buffer.baseAddress! + element.lowerBound, Int32(UInt8(ascii: "]")), element.count) else { return element }
            return element.lowerBound..<(buffer.baseAddress!.distance(to: close.assumingMemoryBound(to: UInt8.self)) + 1)
        }
    }

    static let roleIdKey = Array("\"roleId\":\"".utf8)

    /// Whether an element names one of `roles` as a `roleId`.
    static func holdsAny(_ bytes: [UInt8], _ range: Range<Int>, _ roles: [[UInt8]]) -> Bool {
        bytes.withUnsafeBufferPointer { buffer in
            roleIdKey.withUnsafeBufferPointer { key in
                var index = range.lowerBound
                while index < range.upperBound {
                    guard let found = CanonicalLayout.find(key, in: buffer, index..<range.upperBound) else { return false }
                    let start = found + key.count
                    var end = start
                    while end < range.upperBound, buffer[end] != UInt8(ascii: "\"") { end += 1 }
                    for role in roles where role.count == end - start && memcmp(buffer.baseAddress! + start, role, role.count) == 0 { return true }
                    index = end
                }
                return false
            }
        }
    }

    static func decodeAll<T>(
        _ layout: CanonicalLayout, _ section: String, _ reader: (inout JSONScanner) throws(JSONScanner.ScanError) -> T
    ) throws(SnapshotFileError) -> [T] {
        var out: [T] = []
        for range in layout.sections[section] ?? [] { out.append(try decodeOne(layout, range, reader)) }
        return out
    }

    static func decodeOne<T>(
        _ layout: CanonicalLayout, _ range: Range<Int>, _ reader: (inout JSONScanner) throws(JSONScanner.ScanError) -> T
    ) throws(SnapshotFileError) -> T {
        var scanner = JSONScanner(layout.bytes)
        scanner.index = range.lowerBound
        do {
            return try reader(&scanner)
        } catch {
            throw SnapshotFileError(kind: .malformed, detail: "\(error.reason) (byte \(error.offset))")
        }
    }

    /// The part of a file the comparison reads: the small lists whole, the named users, the grants
    /// of groups and of the named subjects.
    static func decode(_ side: Indexed, groups: [Group], users: Set<String>, grantSubjects: Set<String>) throws(SnapshotFileError) -> Snapshot {
        let layout = side.layout
        let groupIds = Set(groups.map(\.id))
        // The wanted ids, sorted as bytes, walked beside the file's sorted entities: no string
        // is made for an entity that is not wanted.
        func select(_ kind: EntityKind, _ wanted: Set<String>) -> [CanonicalLayout.Entity] {
            let targets = wanted.map { Array($0.utf8) }.sorted { $0.lexicographicallyPrecedes($1) }
            var out: [CanonicalLayout.Entity] = []
            var next = 0
            for entity in side.entities[kind] ?? [] {
                while next < targets.count, targets[next].withUnsafeBufferPointer({ target in
                    layout.bytes.withUnsafeBufferPointer { buffer in
                        Self.order(UnsafeBufferPointer(rebasing: buffer[entity.id]), target) > 0
                    }
                }) {
                    next += 1
                }
                guard next < targets.count else { break }
                if targets[next].count == entity.id.count, layout.bytes[entity.id].elementsEqual(targets[next]) { out.append(entity) }
            }
            return out
        }
        var selectedUsers: [User] = []
        let userElements = layout.sections["users"] ?? []
        for entity in select(.user, users) { selectedUsers.append(try decodeOne(layout, userElements[entity.first], SnapshotReader.user)) }
        var grants: [Grant] = []
        for entity in select(.grants, grantSubjects.union(groupIds)) {
            for element in layout.elements(.grants, entity) { grants.append(try decodeOne(layout, element, SnapshotReader.grant)) }
        }
        return Snapshot(
            organization: try layout.organization.map { range throws(SnapshotFileError) in try decodeOne(layout, range, SnapshotReader.organization) },
            divisions: try decodeAll(layout, "divisions", SnapshotReader.division), roles: try decodeAll(layout, "roles", SnapshotReader.role),
            users: selectedUsers, groups: groups, teams: try decodeAll(layout, "teams", SnapshotReader.team),
            oauthClients: try decodeAll(layout, "oauthClients", SnapshotReader.client), grants: grants, problems: [])
    }
}
