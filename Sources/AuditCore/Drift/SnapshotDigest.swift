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
        var words: [UInt64] = [0, 0, 0, 0]
        for (index, byte) in digest.enumerated() { words[index / 8] = words[index / 8] << 8 | UInt64(byte) }
        (a, b, c, d) = (words[0], words[1], words[2], words[3])
    }

    var bytes: [UInt8] {
        var out = [UInt8](repeating: 0, count: 32)
        for (index, word) in [a, b, c, d].enumerated() {
            for byte in 0..<8 { out[index * 8 + byte] = UInt8(truncatingIfNeeded: word >> UInt64(56 - byte * 8)) }
        }
        return out
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

    public init(_ snapshot: Snapshot) {
        var entities: [EntityKey: Hash256] = [:]
        entities.reserveCapacity(snapshot.users.count * 2 + snapshot.roles.count + snapshot.groups.count + 64)
        var writer = CanonicalJSONWriter(reservingCapacity: 4096)
        var rootHasher = SHA256()

        // Entities are added in (kind, id) order — arrays are sorted by id, grants by subject — so
        // the root can be hashed as they come.
        func add(_ key: EntityKey, _ encode: (inout CanonicalJSONWriter) -> Void) {
            writer.reset()
            encode(&writer)
            var hasher = SHA256()
            hasher.update(data: [key.kind.rawValue])
            hasher.update(data: writer.bytes)
            let hash = Hash256(hasher.finalize())
            entities[key] = hash
            rootHasher.update(data: [key.kind.rawValue])
            rootHasher.update(data: Array(key.id.utf8))
            rootHasher.update(data: [0])
            rootHasher.update(data: hash.bytes)
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
        self.root = ContentHash.hex(rootHasher.finalize())
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
