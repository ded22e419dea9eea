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
        var w = CanonicalJSONWriter(reservingCapacity: 256 * (users.count + grants.count + 64))
        w.beginObject(newlines: true)
        w.key("schema", ordered: false)
        w.value(Snapshot.schema)

        w.key("divisions")
        w.beginArray(newlines: true)
        for division in divisions { division.encode(to: &w) }
        w.endArray()

        w.key("grants")
        w.beginArray(newlines: true)
        for grant in grants { grant.encode(to: &w) }
        w.endArray()

        w.key("groups")
        w.beginArray(newlines: true)
        for group in groups { group.encode(to: &w) }
        w.endArray()

        w.key("oauthClients")
        w.beginArray(newlines: true)
        for client in oauthClients { client.encode(to: &w) }
        w.endArray()

        if let organization {
            w.key("organization")
            w.beginObject()
            w.field("id", organization.id)
            w.field("name", organization.name)
            w.endObject()
        }

        w.key("partial")
        w.value(isPartial)

        w.key("problems")
        w.beginArray(newlines: true)
        for problem in problems { problem.encode(to: &w) }
        w.endArray()

        w.key("roles")
        w.beginArray(newlines: true)
        for role in roles { role.encode(to: &w) }
        w.endArray()

        w.key("teams")
        w.beginArray(newlines: true)
        for team in teams { team.encode(to: &w) }
        w.endArray()

        w.key("users")
        w.beginArray(newlines: true)
        for user in users { user.encode(to: &w) }
        w.endArray()

        w.endObject()
        var bytes = w.bytes
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
        w.key("access")
        w.beginArray()
        for item in access { item.encode(to: &w) }
        w.endArray()
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
        w.key("terms")
        w.beginArray()
        for term in terms { term.encode(to: &w) }
        w.endArray()
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
        w.key("policies")
        w.beginArray()
        for policy in policies { policy.encode(to: &w) }
        w.endArray()
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
        w.key("access")
        w.beginArray()
        for item in access { item.encode(to: &w) }
        w.endArray()
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
