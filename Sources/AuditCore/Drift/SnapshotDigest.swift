import Crypto

/// What kind of entity a hash belongs to. Raw values are part of the hash input: never reuse one.
public enum EntityKind: UInt8, Sendable, Hashable, Comparable, CaseIterable {
    case organization = 1
    case division = 2
    case role = 3
    case user = 4
    case group = 5
    case team = 6
    case oauthClient = 7
    /// The direct grants of one subject.
    case grants = 8
    /// Whether the snapshot is partial, and why.
    case problems = 9

    public static func < (a: EntityKind, b: EntityKind) -> Bool { a.rawValue < b.rawValue }
}

/// A SHA-256 value: 32 bytes in four words, cheap to store, hash and compare.
public struct Hash256: Sendable, Hashable {
    public var a: UInt64, b: UInt64, c: UInt64, d: UInt64

    init(_ digest: SHA256.Digest) {
        (a, b, c, d) = digest.withUnsafeBytes { raw in
            func word(_ index: Int) -> UInt64 { UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: index * 8, as: UInt64.self)) }
            return (word(0), word(1), word(2), word(3))
        }
    }

    /// The 32 bytes, appended (big-endian words: the digest's own order).
    func append(to out: inout [UInt8]) {
        withUnsafeBytes(of: (a.bigEndian, b.bigEndian, c.bigEndian, d.bigEndian)) { out.append(contentsOf: $0) }
    }

}

public struct EntityKey: Sendable, Hashable, Comparable {
    public var kind: EntityKind
    public var id: String

    public init(_ kind: EntityKind, _ id: String) {
        self.kind = kind
        self.id = id
    }

    public static func < (a: EntityKey, b: EntityKey) -> Bool {
        a.kind != b.kind ? a.kind < b.kind : a.id < b.id
    }
}

/// The root hash's input — each entity's kind, id, a zero byte and its hash, in (kind, id)
/// order — gathered and handed to SHA-256 in large pieces: the same digest as entity by entity,
/// without a call (or an allocation) per field.
struct RootHasher {
    private var hasher = SHA256()
    private var pending: [UInt8] = []

    init() { pending.reserveCapacity(1 << 16) }

    mutating func add(_ kind: EntityKind, id: some Sequence<UInt8>, hash: Hash256) {
        pending.append(kind.rawValue)
        pending.append(contentsOf: id)
        pending.append(0)
        hash.append(to: &pending)
        if pending.count >= (1 << 16) - 512 { flush() }
    }

    private mutating func flush() {
        hasher.update(data: pending)
        pending.removeAll(keepingCapacity: true)
    }

    mutating func finalize() -> String {
        flush()
        return ContentHash.hex(hasher.finalize())
    }
}

/// SHA-256 of every entity's canonical encoding, and a root hash over them all.
///
/// The snapshot model already leaves out what the API reports but does not mean (`selfUri`,
/// `version`, login and token dates, `userCount`…) and keeps arrays sorted by id; each entity is
/// encoded with `CanonicalJSONWriter`, prefixed with its kind, and hashed. The root is the hash of
/// the sorted `(kind, id, hash)` list, so two snapshots with equal roots are equal, and two with
/// different roots differ exactly in the entities whose hashes differ.
public struct SnapshotDigest: Sendable, Equatable {
    public var root: String
    public var entities: [EntityKey: Hash256]

    public init(_ snapshot: Snapshot) { self.init(snapshot, keepingEntities: true) }

    /// The root alone: the same walk without the table of entity hashes (for 100,000 users a few
    /// tens of megabytes that storing a snapshot does not need).
    public static func root(of snapshot: Snapshot) -> String { SnapshotDigest(snapshot, keepingEntities: false).root }

    private init(_ snapshot: Snapshot, keepingEntities: Bool) {
        var entities: [EntityKey: Hash256] = [:]
        if keepingEntities { entities.reserveCapacity(snapshot.users.count * 2 + snapshot.roles.count + snapshot.groups.count + 64) }
        var writer = CanonicalJSONWriter(reservingCapacity: 4096)
        var rootHasher = RootHasher()

        // Entities are added in (kind, id) order — arrays are sorted by id, grants by subject — so
        // the root can be hashed as they come.
        func add(_ key: EntityKey, _ encode: (inout CanonicalJSONWriter) -> Void) {
            writer.reset()
            encode(&writer)
            var hasher = SHA256()
            withUnsafeBytes(of: key.kind.rawValue) { hasher.update(bufferPointer: $0) }
            hasher.update(data: writer.bytes)
            let hash = Hash256(hasher.finalize())
            if keepingEntities { entities[key] = hash }
            rootHasher.add(key.kind, id: key.id.utf8, hash: hash)
        }

        if let organization = snapshot.organization {
            add(EntityKey(.organization, organization.id)) { w in
                w.beginObject()
                w.field("id", organization.id)
                w.field("name", organization.name)
                w.endObject()
            }
        }
        for division in snapshot.divisions { add(EntityKey(.division, division.id)) { division.encode(to: &$0) } }
        for role in snapshot.roles { add(EntityKey(.role, role.id)) { role.encode(to: &$0) } }
        for user in snapshot.users { add(EntityKey(.user, user.id)) { user.encode(to: &$0) } }
        for group in snapshot.groups { add(EntityKey(.group, group.id)) { group.encode(to: &$0) } }
        for team in snapshot.teams { add(EntityKey(.team, team.id)) { team.encode(to: &$0) } }
        for client in snapshot.oauthClients { add(EntityKey(.oauthClient, client.id)) { client.encode(to: &$0) } }
        // One entity per subject's run of grants.
        var start = 0
        let grants = snapshot.grants
        while start < grants.count {
            var end = start + 1
            while end < grants.count && grants[end].subjectId == grants[start].subjectId { end += 1 }
            let run = grants[start..<end]
            add(EntityKey(.grants, grants[start].subjectId)) { w in
                w.beginArray()
                for grant in run { grant.encode(to: &w) }
                w.endArray()
            }
            start = end
        }
        add(EntityKey(.problems, "")) { w in
            w.beginObject()
            w.field("partial", snapshot.isPartial)
            w.field("problems", each: snapshot.problems) { $0.encode(to: &$1) }
            w.endObject()
        }
        self.entities = entities
        self.root = rootHasher.finalize()
    }

    /// Keys present in both with different hashes, keys only here, keys only there.
    public func compare(to other: SnapshotDigest) -> (changed: Set<EntityKey>, added: Set<EntityKey>, removed: Set<EntityKey>) {
        var changed = Set<EntityKey>()
        var added = Set<EntityKey>()
        for (key, hash) in other.entities {
            if let mine = entities[key] {
                if mine != hash { changed.insert(key) }
            } else {
                added.insert(key)
            }
        }
        let removed = Set(entities.keys.filter { other.entities[$0] == nil })
        return (changed, added, removed)
    }
}
