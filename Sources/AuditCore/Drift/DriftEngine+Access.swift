/// Grants and effective permissions, with provenance and cause.
extension Comparison {
    /// Direct grants of the subjects whose grants changed. Roles are compared by lineage, so the
    /// grants of a recreated role carried over to its new id are not reported as removed + added.
    mutating func compareGrants(subjects: Set<String>) {
        guard !subjects.isEmpty else { return }
        var oldBySubject: [String: [Grant]] = [:]
        var newBySubject: [String: [Grant]] = [:]
        for grant in baseline.grants where subjects.contains(grant.subjectId) { oldBySubject[grant.subjectId, default: []].append(grant) }
        for grant in current.grants where subjects.contains(grant.subjectId) { newBySubject[grant.subjectId, default: []].append(grant) }
        for subject in subjects.sorted() {
            func keyed(_ grants: [Grant]) -> [String: Grant] {
                Dictionary(grants.map { ("\(lineage.lineage(of: $0.roleId))|\($0.divisionId)", $0) }, uniquingKeysWith: { a, _ in a })
            }
            let old = keyed(oldBySubject[subject] ?? [])
            let new = keyed(newBySubject[subject] ?? [])
            for key in new.keys.sorted() where old[key] == nil {
                let grant = new[key]!
                let item = DriftItem(
                    kind: .grantAdded, subject: subjectRef(grant.subjectId, grant.subjectKind), role: roleRef(grant.roleId),
                    division: divisionRef(grant.divisionId))
                grantAddedCause["\(subject)|\(key)"] = item.fingerprint
                emit(item)
            }
            for key in old.keys.sorted() where new[key] == nil {
                let grant = old[key]!
                let item = DriftItem(
                    kind: .grantRemoved, subject: subjectRef(grant.subjectId, grant.subjectKind), role: roleRef(grant.roleId),
                    division: divisionRef(grant.divisionId))
                grantRemovedCause["\(subject)|\(key)"] = item.fingerprint
                emit(item)
            }
        }
    }

    /// Effective permissions of one principal, before and after, per division. A permission held
    /// in `*` holds in every division, so gains and losses in `*` are reported once, under `*`,
    /// and not again for each division. Each item names the role and path (direct or a group)
    /// that brings the permissions, and links to the change that caused it.
    mutating func comparePermissions(principal: EntityRef, old: [Access], new: [Access]) {
        principalsCompared += 1
        for item in permissionItems(principal: principal, old: old, new: new) { emit(item) }
    }

    /// The items `comparePermissions` emits for one principal (reads only: principals are
    /// compared on both cores).
    func permissionItems(principal: EntityRef, old: [Access], new: [Access]) -> [DriftItem] {
        var items: [DriftItem] = []
        // The same roles in the same divisions, none granting other permissions than before:
        // the permission maps are equal without building them.
        struct Held: Hashable {
            var roleId: String
            var divisionId: String
        }
        if old.allSatisfy({ samePermissions.contains($0.roleId) }),
            Set(old.map { Held(roleId: $0.roleId, divisionId: $0.divisionId) }) == Set(new.map { Held(roleId: $0.roleId, divisionId: $0.divisionId) })
        {
            return items
        }
        let oldMap = Self.permissionMap(old, oldPermissions)
        let newMap = Self.permissionMap(new, newPermissions)
        guard oldMap != newMap else { return items }
        let oldAll = oldMap[allDivisionsID] ?? []
        let newAll = newMap[allDivisionsID] ?? []

        for division in newMap.keys.sorted() {
            let gained =
                division == allDivisionsID
                ? newAll.subtracting(oldAll)
                : newMap[division]!.subtracting(newAll).subtracting(oldMap[division] ?? []).subtracting(oldAll)
            guard !gained.isEmpty else { continue }
            for source in Self.sources(new, in: division) {
                let permissions = gained.intersection(newPermissions[source.roleId] ?? [])
                guard !permissions.isEmpty else { continue }
                var item = DriftItem(
                    kind: .permissionsGained, subject: principal, role: roleRef(source.roleId), division: divisionRef(division),
                    via: viaRef(source.via, principal), permissionsAdded: Array(permissions))
                item.causeFingerprint = cause(of: source, for: principal, in: division, gained: true)
                items.append(item)
            }
        }
        for division in oldMap.keys.sorted() {
            let lost =
                division == allDivisionsID
                ? oldAll.subtracting(newAll)
                : oldMap[division]!.subtracting(oldAll).subtracting(newMap[division] ?? []).subtracting(newAll)
            guard !lost.isEmpty else { continue }
            for source in Self.sources(old, in: division) {
                let permissions = lost.intersection(oldPermissions[source.roleId] ?? [])
                guard !permissions.isEmpty else { continue }
                var item = DriftItem(
                    kind: .permissionsLost, subject: principal, role: roleRef(source.roleId), division: divisionRef(division),
                    via: viaRef(source.via, principal), permissionsRemoved: Array(permissions))
                item.causeFingerprint = cause(of: source, for: principal, in: division, gained: false)
                items.append(item)
            }
        }
        return items
    }

    static func permissionMap(_ access: [Access], _ permissions: [String: Set<String>]) -> [String: Set<String>] {
        var map: [String: Set<String>] = [:]
        for item in access {
            map[item.divisionId, default: []].formUnion(permissions[item.roleId] ?? [])
        }
        return map.filter { !$0.value.isEmpty }
    }

    /// Distinct (path, role) sources in a division, in a stable order.
    static func sources(_ access: [Access], in division: String) -> [Access] {
        Array(Set(access.filter { $0.divisionId == division })).sorted()
    }

    func viaRef(_ via: Provenance, _ principal: EntityRef) -> EntityRef {
        switch via {
        case .direct: EntityRef(principal.kind, principal.id, "direct")
        case .group(let id): groupRef(id)
        }
    }

    /// The item that explains a gain or a loss: the grant, the membership, the group flag, the
    /// role edit, or the principal's arrival — the first that applies.
    func cause(of source: Access, for principal: EntityRef, in division: String, gained: Bool) -> String? {
        let grantKey = "\(lineage.lineage(of: source.roleId))|\(division)"
        let grants = gained ? grantAddedCause : grantRemovedCause
        switch source.via {
        case .direct:
            if let cause = grants["\(principal.id)|\(grantKey)"] { return cause }
        case .group(let group):
            if let cause = grants["\(group)|\(grantKey)"] { return cause }
            if let cause = (gained ? memberAddedCause : memberRemovedCause)["\(group)|\(principal.id)"] { return cause }
            if let cause = groupCause[group] { return cause }
        }
        if let cause = roleCause[source.roleId] { return cause }
        return gained ? principalCause["\(principal.kind.rawValue):\(principal.id)"] : nil
    }
}
