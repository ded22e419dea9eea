import Foundation

/// Which role ids are the same role over time. Genesys edits roles in place (the id stays), but
/// administrators also delete a role and create it again — a new id with the same name or nearly
/// the same permissions. Such roles form one lineage, named by its first role's id; the index is
/// kept in the state store so lineages survive across runs.
public struct RoleLineage: Sendable, Equatable {
    /// role id → lineage id, for roles that joined an earlier lineage.
    public private(set) var links: [String: String]

    public init(links: [String: String] = [:]) {
        self.links = links
    }

    public func lineage(of roleId: String) -> String {
        var id = roleId
        var hops = 0
        while let next = links[id], next != id, hops < 64 {
            id = next
            hops += 1
        }
        return id
    }

    /// Makes `newRoleId` part of `oldRoleId`'s lineage.
    public mutating func link(_ newRoleId: String, to oldRoleId: String) {
        let root = lineage(of: oldRoleId)
        if root != newRoleId { links[newRoleId] = root }
    }

    /// Pairs deleted roles with created ones that continue them: a known lineage first, then the
    /// same name (case and surrounding space aside), then the closest permission set with a
    /// Jaccard similarity of at least `threshold`. Each role is paired at most once.
    public func matchRecreated(deleted: [Role], created: [Role], threshold: Double) -> [(old: Role, new: Role)] {
        var pairs: [(Role, Role)] = []
        var remainingOld = deleted.sorted { $0.id < $1.id }
        var remainingNew = created.sorted { $0.id < $1.id }

        func take(_ match: (Role, Role) -> Bool) {
            for old in remainingOld {
                if let index = remainingNew.firstIndex(where: { match(old, $0) }) {
                    pairs.append((old, remainingNew.remove(at: index)))
                    remainingOld.removeAll { $0.id == old.id }
                }
            }
        }
        take { lineage(of: $0.id) == lineage(of: $1.id) }
        take { Self.normalised($0.name) == Self.normalised($1.name) }

        var candidates: [(similarity: Double, old: Role, new: Role)] = []
        for old in remainingOld {
            let oldSet = Set(old.permissions)
            for new in remainingNew {
                let similarity = Self.jaccard(oldSet, Set(new.permissions))
                if similarity >= threshold { candidates.append((similarity, old, new)) }
            }
        }
        candidates.sort { ($0.similarity, $1.old.id, $1.new.id) > ($1.similarity, $0.old.id, $0.new.id) }
        var usedOld = Set<String>()
        var usedNew = Set<String>()
        for candidate in candidates where !usedOld.contains(candidate.old.id) && !usedNew.contains(candidate.new.id) {
            usedOld.insert(candidate.old.id)
            usedNew.insert(candidate.new.id)
            pairs.append((candidate.old, candidate.new))
        }
        return pairs.sorted { $0.0.id < $1.0.id }
    }

    static func normalised(_ name: String) -> String {
        name.trimmingCharacters(in: .whitespacesAndNewlines).lowercased()
    }

    /// |a ∩ b| / |a ∪ b|; two empty sets are identical.
    public static func jaccard(_ a: Set<String>, _ b: Set<String>) -> Double {
        let union = a.union(b).count
        return union == 0 ? 1 : Double(a.intersection(b).count) / Double(union)
    }
}

