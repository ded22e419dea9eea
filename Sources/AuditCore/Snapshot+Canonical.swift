// The canonical snapshot file (schema `rbacwatch.snapshot/1`, documented in README.md):
// - UTF-8 JSON, one object; its first key is "schema", the rest follow in ascending order;
// - every other object has its keys in ascending byte order; absent optional values are omitted,
//   arrays are always present;
// - entity arrays are sorted by id (grants by subject, role, division), one element per line;
// - no volatile data: no collection time, request counts or API versions, so two collections
//   of an unchanged organisation are byte-identical.

extension Snapshot {
    /// The canonical bytes of this snapshot, newline-terminated.
    public func canonicalJSON() -> [UInt8] {
        // Room for the whole document at once: growing by doubling would copy it and, for a
        // moment, hold it one and a half times over. Generous on purpose: pages never written
        // are never resident.
        let estimate = 2048 * users.count + 256 * (grants.count + groups.count + teams.count + oauthClients.count) + 8192 * roles.count
        var w = CanonicalJSONWriter(reservingCapacity: estimate + 65_536)
        w.beginObject(newlines: true)
        w.key("schema", ordered: false)
        w.value(Snapshot.schema)

        w.field("divisions", newlines: true, each: divisions) { $0.encode(to: &$1) }

        w.field("grants", newlines: true, each: grants) { $0.encode(to: &$1) }

        w.field("groups", newlines: true, each: groups) { $0.encode(to: &$1) }

        w.field("oauthClients", newlines: true, each: oauthClients) { $0.encode(to: &$1) }

        if let organization {
            w.key("organization")
            w.beginObject()
            w.field("id", organization.id)
            w.field("name", organization.name)
            w.endObject()
        }

        w.key("partial")
        w.value(isPartial)

        w.field("problems", newlines: true, each: problems) { $0.encode(to: &$1) }

        w.field("roles", newlines: true, each: roles) { $0.encode(to: &$1) }

        w.field("teams", newlines: true, each: teams) { $0.encode(to: &$1) }

        w.field("users", newlines: true, each: users) { $0.encode(to: &$1) }

        w.endObject()
        var bytes = w.take()
        bytes.append(UInt8(ascii: "\n"))
        return bytes
    }
}

extension Division {
    public func encode(to w: inout CanonicalJSONWriter) {
        w.beginObject()
        w.field("description", description)
        w.field("home", isHome)
        w.field("id", id)
        w.field("name", name)
        w.endObject()
    }
}

extension Grant {
    public func encode(to w: inout CanonicalJSONWriter) {
        w.beginObject()
        w.field("divisionId", divisionId)
        w.field("roleId", roleId)
        w.field("subjectId", subjectId)
        w.field("subjectType", subjectKind.apiValue)
        w.endObject()
    }
}

extension Group {
    public func encode(to w: inout CanonicalJSONWriter) {
        w.beginObject()
        w.field("description", description)
        w.field("id", id)
        w.field("memberIds", memberIds)
        w.field("name", name)
        w.field("rolesEnabled", rolesEnabled)
        w.field("state", state)
        w.field("type", type)
        w.field("visibility", visibility)
        w.endObject()
    }
}

extension Access {
    public func encode(to w: inout CanonicalJSONWriter) {
        w.beginObject()
        w.field("divisionId", divisionId)
        w.field("roleId", roleId)
        w.field("via", via.encoded)
        w.endObject()
    }
}

extension OAuthClient {
    public func encode(to w: inout CanonicalJSONWriter) {
        w.beginObject()
        w.field("access", each: access) { $0.encode(to: &$1) }
        w.field("grantType", grantType)
        w.field("id", id)
        w.field("name", name)
        w.field("state", state)
        w.endObject()
    }
}

extension CollectionProblem {
    public func encode(to w: inout CanonicalJSONWriter) {
        w.beginObject()
        w.field("code", code)
        w.field("endpoint", endpoint)
        w.field("message", message)
        w.field("permissions", permissions)
        w.endObject()
    }
}

extension ConditionNode {
    public func encode(to w: inout CanonicalJSONWriter) {
        w.beginObject()
        w.field("conjunction", conjunction)
        w.key("operands")
        w.beginArray()
        for operand in operands {
            w.beginObject()
            w.field("type", operand.type)
            w.field("value", operand.value)
            w.endObject()
        }
        w.endArray()
        w.field("operator", `operator`)
        w.field("terms", each: terms) { $0.encode(to: &$1) }
        w.field("variableName", variableName)
        w.endObject()
    }
}

extension PermissionPolicy {
    public func encode(to w: inout CanonicalJSONWriter) {
        w.beginObject()
        w.field("actions", actions)
        if let condition {
            w.key("condition")
            condition.encode(to: &w)
        }
        w.field("domain", domain)
        w.field("entityName", entityName)
        w.endObject()
    }
}

extension Role {
    public func encode(to w: inout CanonicalJSONWriter) {
        w.beginObject()
        w.field("builtIn", isBuiltIn)
        w.field("defaultRoleId", defaultRoleId)
        w.field("description", description)
        w.field("id", id)
        w.field("legacyPermissions", legacyPermissions)
        w.field("name", name)
        w.field("policies", each: policies) { $0.encode(to: &$1) }
        w.endObject()
    }
}

extension Team {
    public func encode(to w: inout CanonicalJSONWriter) {
        w.beginObject()
        w.field("divisionId", divisionId)
        w.field("id", id)
        w.field("memberIds", memberIds)
        w.field("name", name)
        w.endObject()
    }
}

extension User {
    public func encode(to w: inout CanonicalJSONWriter) {
        w.beginObject()
        w.field("access", each: access) { $0.encode(to: &$1) }
        w.field("department", department)
        w.field("divisionId", divisionId)
        w.field("email", email)
        w.field("groupIds", groupIds)
        w.field("id", id)
        w.field("managerId", managerId)
        w.field("name", name)
        w.field("state", state)
        w.field("teamId", teamId)
        w.field("title", title)
        w.field("username", username)
        w.endObject()
    }
}
