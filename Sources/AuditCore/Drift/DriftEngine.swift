import Foundation
import Synchronization

public struct DriftOptions: Sendable {
    /// Jaccard similarity of permission sets above which a deleted and a created role are one
    /// role recreated.
    public var recreateSimilarity = 0.8
    public var policy = RiskPolicy.standard

    public init() {}
}

public struct DriftResult: Sendable {
    public var baselineRoot: String
    public var currentRoot: String
    /// Sorted by severity (most severe first), then kind and subject.
    public var items: [DriftItem]
    /// Lineage links found in this comparison (new role id → lineage id), to persist.
    public var newLineage: [String: String]
    /// Entities whose hashes differed (or that exist on one side only).
    public var changedEntities: Int
    /// Principals whose effective permissions were recomputed.
    public var principalsCompared: Int

    public var isEmpty: Bool { items.isEmpty }
}

/// Semantic diff of two snapshots: hash first, then deep-diff only what differs.
///
/// Equal root hashes end the work at once. Otherwise the per-entity hashes say which entities
/// changed (linearly); only those are compared field by field, plus the holders of roles whose
/// permissions changed, whose effective permissions change with them.
public enum DriftEngine {
    public static func diff(
        baseline: Snapshot, current: Snapshot, lineage: RoleLineage = RoleLineage(), options: DriftOptions = DriftOptions(),
        baselineDigest: SnapshotDigest? = nil, currentDigest: SnapshotDigest? = nil
    ) -> DriftResult {
        let old = baselineDigest ?? SnapshotDigest(baseline)
        let new = currentDigest ?? SnapshotDigest(current)
        guard old.root != new.root else {
            return DriftResult(
                baselineRoot: old.root, currentRoot: new.root, items: [], newLineage: [:], changedEntities: 0,
                principalsCompared: 0)
        }
        let (changed, added, removed) = old.compare(to: new)
        return diff(
            baseline: baseline, current: current, roots: (old.root, new.root), changed: changed, added: added, removed: removed, lineage: lineage,
            options: options)
    }

    /// The comparison once the entities that differ are known (from digests, or from two files'
    /// bytes): `baseline` and `current` need hold only what it reads.
    static func diff(
        baseline: Snapshot, current: Snapshot, roots: (String, String), changed: Set<EntityKey>, added: Set<EntityKey>, removed: Set<EntityKey>,
        lineage: RoleLineage, options: DriftOptions
    ) -> DriftResult {
        var state = Comparison(baseline: baseline, current: current, lineage: lineage, options: options)
        state.run(changed: changed, added: added, removed: removed)
        var items = state.items
        let assessor = RiskAssessor(policy: options.policy, baseline: baseline, current: current)
        for index in items.indices { assessor.assess(&items[index]) }
        items.sort(by: DriftEngine.order)
        return DriftResult(
            baselineRoot: roots.0, currentRoot: roots.1, items: items, newLineage: state.newLinks,
            changedEntities: changed.count + added.count + removed.count, principalsCompared: state.principalsCompared)
    }

    /// Most severe first; then kind, subject, division, role, path and fingerprint, so equal
    /// inputs always give the same order.
    public static func order(_ a: DriftItem, _ b: DriftItem) -> Bool {
        if a.severity != b.severity { return a.severity > b.severity }
        let ka = (a.kind.rawValue, a.subject.id, a.division?.id ?? "", a.role?.id ?? "", a.via?.id ?? "", a.member?.id ?? "")
        let kb = (b.kind.rawValue, b.subject.id, b.division?.id ?? "", b.role?.id ?? "", b.via?.id ?? "", b.member?.id ?? "")
        if ka != kb { return ka < kb }
        return a.fingerprint < b.fingerprint
    }
}

/// The working state of one comparison.
struct Comparison: Sendable {
    let baseline: Snapshot
    let current: Snapshot
    var lineage: RoleLineage
    let options: DriftOptions

    let oldRoles: ByID<Role>
    let newRoles: ByID<Role>
    /// Each role's permissions, computed once.
    let oldPermissions: [String: Set<String>]
    let newPermissions: [String: Set<String>]
    /// Roles in both snapshots that grant the same permissions in each.
    let samePermissions: Set<String>
    let oldUsers: ByID<User>
    let newUsers: ByID<User>
    let oldGroups: ByID<Group>
    let newGroups: ByID<Group>
    let oldClients: ByID<OAuthClient>
    let newClients: ByID<OAuthClient>
    let oldDivisions: ByID<Division>
    let newDivisions: ByID<Division>

    var items: [DriftItem] = []
    var newLinks: [String: String] = [:]
    var principalsCompared = 0

    /// Roles (current ids, and the baseline ids they replaced) whose permissions changed, with the
    /// fingerprint of the item that says so.
    var roleCause: [String: String] = [:]
    /// `subject|lineage|division` → fingerprint of the grant item.
    var grantAddedCause: [String: String] = [:]
    var grantRemovedCause: [String: String] = [:]
    /// `group|user` → fingerprint of the membership item.
    var memberAddedCause: [String: String] = [:]
    var memberRemovedCause: [String: String] = [:]
    var groupCause: [String: String] = [:]
    var principalCause: [String: String] = [:]

    init(baseline: Snapshot, current: Snapshot, lineage: RoleLineage, options: DriftOptions) {
        self.baseline = baseline
        self.current = current
        self.lineage = lineage
        self.options = options
        oldRoles = ByID(baseline.roles)
        newRoles = ByID(current.roles)
        let oldPermissions = Dictionary(baseline.roles.map { ($0.id, Set($0.permissions)) }, uniquingKeysWith: { a, _ in a })
        let newPermissions = Dictionary(current.roles.map { ($0.id, Set($0.permissions)) }, uniquingKeysWith: { a, _ in a })
        self.oldPermissions = oldPermissions
        self.newPermissions = newPermissions
        samePermissions = Set(newPermissions.compactMap { id, permissions in oldPermissions[id] == permissions ? id : nil })
        oldUsers = ByID(baseline.users)
        newUsers = ByID(current.users)
        oldGroups = ByID(baseline.groups)
        newGroups = ByID(current.groups)
        oldClients = ByID(baseline.oauthClients)
        newClients = ByID(current.oauthClients)
        oldDivisions = ByID(baseline.divisions)
        newDivisions = ByID(current.divisions)
    }

    /// `splitAt`: principals to compare before the work is split over two cores.
    mutating func run(changed: Set<EntityKey>, added: Set<EntityKey>, removed: Set<EntityKey>, splitAt: Int = Comparison.splitAt) {
        func ids(_ set: Set<EntityKey>, _ kind: EntityKind) -> [String] {
            set.filter { $0.kind == kind }.map(\.id).sorted()
        }
        compareRoles(changed: ids(changed, .role), added: ids(added, .role), removed: ids(removed, .role))
        compareDivisions(changed: ids(changed, .division), added: ids(added, .division), removed: ids(removed, .division))
        compareGrants(subjects: Set(ids(changed, .grants) + ids(added, .grants) + ids(removed, .grants)))
        compareGroups(changed: ids(changed, .group), added: ids(added, .group), removed: ids(removed, .group))
        compareClients(added: ids(added, .oauthClient), removed: ids(removed, .oauthClient))
        compareUsers(changed: ids(changed, .user), added: ids(added, .user), removed: ids(removed, .user))

        // Principals whose effective permissions may have changed: those whose own record changed,
        // and every holder of a role whose permissions changed.
        var users = Set(ids(changed, .user) + ids(added, .user))
        var clients = Set(ids(changed, .oauthClient) + ids(added, .oauthClient))
        if !roleCause.isEmpty {
            let roles = Set(roleCause.keys)
            for user in current.users where user.access.contains(where: { roles.contains($0.roleId) }) { users.insert(user.id) }
            for user in baseline.users where user.access.contains(where: { roles.contains($0.roleId) }) {
                if newUsers[user.id] != nil { users.insert(user.id) }
            }
            for client in current.oauthClients where client.access.contains(where: { roles.contains($0.roleId) }) {
                clients.insert(client.id)
            }
        }
        // Users in id order, in two halves on the two cores when there are many.
        let principals = users.sorted().compactMap { id in newUsers[id].map { (id, $0) } }
        let halves = principals.count >= splitAt ? 2 : 1
        let size = (principals.count + halves - 1) / max(halves, 1)
        let results = Mutex<[Int: [DriftItem]]>([:])
        let compared = self
        DispatchQueue.concurrentPerform(iterations: halves) { half in
            var found: [DriftItem] = []
            for (id, user) in principals[min(principals.count, half * size)..<min(principals.count, (half + 1) * size)] {
                found += compared.permissionItems(principal: EntityRef(.user, id, user.name), old: compared.oldUsers[id]?.access ?? [], new: user.access)
            }
            results.withLock { $0[half] = found }
        }
        principalsCompared += principals.count
        let byHalf = results.withLock { $0 }
        for half in 0..<halves { for item in byHalf[half] ?? [] { emit(item) } }
        for id in clients.sorted() {
            guard let client = newClients[id] else { continue }
            comparePermissions(
                principal: EntityRef(.oauthClient, id, client.name), old: oldClients[id]?.access ?? [], new: client.access)
        }
    }

    /// Principals to compare before the work is split over two cores.
    static let splitAt = 2048

    mutating func emit(_ item: DriftItem) {
        items.append(item)
    }

    // MARK: Names

    func roleRef(_ id: String) -> EntityRef {
        EntityRef(.role, id, newRoles[id]?.name ?? oldRoles[id]?.name ?? "")
    }

    func divisionRef(_ id: String) -> EntityRef {
        id == allDivisionsID
            ? EntityRef(.division, id, "all divisions") : EntityRef(.division, id, newDivisions[id]?.name ?? oldDivisions[id]?.name ?? "")
    }

    func subjectRef(_ id: String, _ kind: SubjectKind) -> EntityRef {
        let name = newUsers[id]?.name ?? oldUsers[id]?.name ?? newGroups[id]?.name ?? oldGroups[id]?.name ?? newClients[id]?.name
            ?? oldClients[id]?.name ?? ""
        return EntityRef(EntityRef.kind(of: kind), id, name)
    }

    func userRef(_ id: String) -> EntityRef {
        EntityRef(.user, id, newUsers[id]?.name ?? oldUsers[id]?.name ?? "")
    }

    func groupRef(_ id: String) -> EntityRef {
        EntityRef(.group, id, newGroups[id]?.name ?? oldGroups[id]?.name ?? "")
    }

    // MARK: Roles

    mutating func compareRoles(changed: [String], added: [String], removed: [String]) {
        let deleted = removed.compactMap { oldRoles[$0] }
        let created = added.compactMap { newRoles[$0] }
        let pairs = lineage.matchRecreated(deleted: deleted, created: created, threshold: options.recreateSimilarity)
        var paired = Set<String>()
        for (old, new) in pairs {
            paired.insert(old.id)
            paired.insert(new.id)
            lineage.link(new.id, to: old.id)
            newLinks[new.id] = lineage.lineage(of: new.id)
            let oldPermissions = Set(old.permissions)
            let newPermissions = Set(new.permissions)
            let item = DriftItem(
                kind: .roleRecreated, subject: EntityRef(.role, new.id, new.name),
                previous: EntityRef(.role, old.id, old.name),
                permissionsAdded: Array(newPermissions.subtracting(oldPermissions)),
                permissionsRemoved: Array(oldPermissions.subtracting(newPermissions)),
                before: old.name == new.name ? nil : old.name, after: old.name == new.name ? nil : new.name)
            if oldPermissions != newPermissions {
                roleCause[new.id] = item.fingerprint
                roleCause[old.id] = item.fingerprint
            }
            emit(item)
        }
        for role in deleted where !paired.contains(role.id) {
            let item = DriftItem(kind: .roleDeleted, subject: EntityRef(.role, role.id, role.name), permissionsRemoved: role.permissions)
            roleCause[role.id] = item.fingerprint
            emit(item)
        }
        for role in created where !paired.contains(role.id) {
            emit(DriftItem(kind: .roleCreated, subject: EntityRef(.role, role.id, role.name), permissionsAdded: role.permissions))
        }
        for id in changed {
            guard let old = oldRoles[id], let new = newRoles[id] else { continue }
            if old.name != new.name {
                emit(DriftItem(kind: .roleRenamed, subject: EntityRef(.role, id, new.name), before: old.name, after: new.name))
            }
            let oldPermissions = Set(old.permissions)
            let newPermissions = Set(new.permissions)
            if oldPermissions != newPermissions || old.policies != new.policies {
                let item = DriftItem(
                    kind: .roleModified, subject: EntityRef(.role, id, new.name),
                    permissionsAdded: Array(newPermissions.subtracting(oldPermissions)),
                    permissionsRemoved: Array(oldPermissions.subtracting(newPermissions)),
                    before: oldPermissions == newPermissions ? "policy conditions" : nil,
                    after: oldPermissions == newPermissions ? "changed" : nil)
                if oldPermissions != newPermissions { roleCause[id] = item.fingerprint }
                emit(item)
            }
        }
    }

    // MARK: Divisions, groups, clients, users

    mutating func compareDivisions(changed: [String], added: [String], removed: [String]) {
        for id in added { emit(DriftItem(kind: .divisionCreated, subject: divisionRef(id))) }
        for id in removed { emit(DriftItem(kind: .divisionDeleted, subject: divisionRef(id))) }
        for id in changed where oldDivisions[id]?.name != newDivisions[id]?.name {
            emit(DriftItem(kind: .divisionRenamed, subject: divisionRef(id), before: oldDivisions[id]?.name, after: newDivisions[id]?.name))
        }
    }

    mutating func compareGroups(changed: [String], added: [String], removed: [String]) {
        for id in added { emit(DriftItem(kind: .groupCreated, subject: groupRef(id))) }
        for id in removed { emit(DriftItem(kind: .groupDeleted, subject: groupRef(id))) }
        for id in changed {
            guard let old = oldGroups[id], let new = newGroups[id] else { continue }
            if old.rolesEnabled != new.rolesEnabled {
                let item = DriftItem(
                    kind: .groupRolesEnabledChanged, subject: groupRef(id), before: String(old.rolesEnabled),
                    after: String(new.rolesEnabled))
                groupCause[id] = item.fingerprint
                emit(item)
            }
            // Members are read for groups that hold roles; compare them where both sides did.
            guard old.rolesEnabled && new.rolesEnabled || (!old.memberIds.isEmpty && !new.memberIds.isEmpty) else { continue }
            let before = Set(old.memberIds)
            let after = Set(new.memberIds)
            for member in after.subtracting(before).sorted() {
                let item = DriftItem(kind: .groupMemberAdded, subject: groupRef(id), member: userRef(member))
                memberAddedCause["\(id)|\(member)"] = item.fingerprint
                emit(item)
            }
            for member in before.subtracting(after).sorted() {
                let item = DriftItem(kind: .groupMemberRemoved, subject: groupRef(id), member: userRef(member))
                memberRemovedCause["\(id)|\(member)"] = item.fingerprint
                emit(item)
            }
        }
    }

    mutating func compareClients(added: [String], removed: [String]) {
        for id in added {
            let item = DriftItem(kind: .oauthClientCreated, subject: EntityRef(.oauthClient, id, newClients[id]?.name ?? ""))
            principalCause["oauthClient:\(id)"] = item.fingerprint
            emit(item)
        }
        for id in removed {
            emit(DriftItem(kind: .oauthClientDeleted, subject: EntityRef(.oauthClient, id, oldClients[id]?.name ?? "")))
        }
    }

    mutating func compareUsers(changed: [String], added: [String], removed: [String]) {
        for id in added {
            let item = DriftItem(kind: .userAdded, subject: userRef(id), after: newUsers[id]?.state)
            principalCause["user:\(id)"] = item.fingerprint
            emit(item)
        }
        for id in removed { emit(DriftItem(kind: .userRemoved, subject: userRef(id), before: oldUsers[id]?.state)) }
        for id in changed {
            guard let old = oldUsers[id], let new = newUsers[id] else { continue }
            if old.state != new.state {
                emit(DriftItem(kind: .userStateChanged, subject: userRef(id), before: old.state, after: new.state))
            }
            if old.divisionId != new.divisionId {
                emit(
                    DriftItem(
                        kind: .userDivisionMoved, subject: userRef(id), previous: old.divisionId.map(divisionRef),
                        division: new.divisionId.map(divisionRef)))
            }
        }
    }
}

/// Lookup by id in an array sorted by id (as every snapshot array is): a binary search, with no
/// dictionary to build for a hundred thousand users when a comparison touches a few hundred.
struct ByID<T: Identifiable> where T.ID == String {
    let items: [T]

    init(_ items: [T]) {
        self.items = items
    }

    subscript(id: String) -> T? {
        var low = 0
        var high = items.count
        while low < high {
            let mid = (low + high) / 2
            let candidate = items[mid].id
            if candidate == id { return items[mid] }
            if candidate < id { low = mid + 1 } else { high = mid }
        }
        return nil
    }
}

extension ByID: Sendable where T: Sendable {}
