import Foundation

/// Why a snapshot file could not be read. The description is one line that says what to do.
public struct SnapshotFileError: Error, CustomStringConvertible, Equatable {
    public enum Kind: Sendable, Equatable {
        case notJSON
        case notASnapshot
        case unsupportedSchema(String)
        case malformed
    }

    public var kind: Kind
    public var detail: String

    public init(kind: Kind, detail: String) {
        self.kind = kind
        self.detail = detail
    }

    public var description: String {
        switch kind {
        case .notJSON: "not a JSON document (\(detail))"
        case .notASnapshot: "not an rbacwatch snapshot: it has no \"schema\" member"
        case .unsupportedSchema(let schema):
            "snapshot schema \(schema) is not supported by this rbacwatch (it reads \(Snapshot.schema))"
        case .malformed: "malformed snapshot: \(detail)"
        }
    }
}

extension Snapshot {
    /// Reads a snapshot file written by `canonicalJSON()` (or any JSON with the same members, in
    /// any order). Hand-written over `JSONScanner`: several times faster than a general decoder.
    public init(canonicalJSON data: Data) throws(SnapshotFileError) {
        try self.init(canonicalBytes: [UInt8](data))
    }

    public init(canonicalBytes bytes: [UInt8]) throws(SnapshotFileError) {
        var reader = SnapshotReader(JSONScanner(bytes))
        self = try reader.read()
    }
}

/// Reads the snapshot format into the model, tracking where it is for error messages.
struct SnapshotReader {
    var scanner: JSONScanner
    var section = ""
    var element = -1

    init(_ scanner: JSONScanner) {
        self.scanner = scanner
    }

    var location: String {
        section.isEmpty ? "top level" : element >= 0 ? ".\(section)[\(element)]" : ".\(section)"
    }

    func missing(_ key: String) -> JSONScanner.ScanError {
        JSONScanner.ScanError(offset: scanner.index, reason: "missing \"\(key)\"")
    }

    mutating func read() throws(SnapshotFileError) -> Snapshot {
        // The schema must be known before anything else is trusted: find it first.
        var probe = scanner
        var schema: String?
        do throws(JSONScanner.ScanError) {
            probe.skipSpace()
            guard !probe.atEnd, probe.bytes[probe.index] == UInt8(ascii: "{") else {
                throw JSONScanner.ScanError(offset: probe.index, reason: "not a JSON object")
            }
            // Canonical files name their schema first; anything else is searched for it.
            var first = probe
            try first.expect(UInt8(ascii: "{"))
            if !first.take(UInt8(ascii: "}")), try first.string() == "schema" {
                try first.expect(UInt8(ascii: ":"))
                schema = try first.string()
            } else {
                try probe.object { (scanner: inout JSONScanner, key: String) throws(JSONScanner.ScanError) in
                    if key == "schema" { schema = try scanner.string() } else { try scanner.skipValue() }
                }
            }
        } catch {
            throw SnapshotFileError(kind: .notJSON, detail: "\(error.reason) at byte \(error.offset)")
        }
        guard let schema else { throw SnapshotFileError(kind: .notASnapshot, detail: "") }
        guard schema == Snapshot.schema else { throw SnapshotFileError(kind: .unsupportedSchema(schema), detail: "") }

        var scanner = self.scanner
        var snapshot = Snapshot()
        var grants: [Grant] = []
        var problems: [CollectionProblem] = []
        do throws(JSONScanner.ScanError) {
            try scanner.object { (scanner: inout JSONScanner, key: String) throws(JSONScanner.ScanError) in
                self.section = key
                self.element = -1
                switch key {
                case "divisions": snapshot.divisions = try self.list(&scanner, Self.division)
                case "grants": grants = try self.list(&scanner, Self.grant)
                case "groups": snapshot.groups = try self.list(&scanner, Self.group)
                case "oauthClients": snapshot.oauthClients = try self.list(&scanner, Self.client)
                case "organization": snapshot.organization = try Self.organization(&scanner)
                case "problems": problems = try self.list(&scanner, Self.problem)
                case "roles": snapshot.roles = try self.list(&scanner, Self.role)
                case "teams": snapshot.teams = try self.list(&scanner, Self.team)
                case "users": snapshot.users = try self.list(&scanner, Self.user)
                default: try scanner.skipValue()  // "schema", "partial" (derived), and members of later versions
                }
            }
            guard scanner.atEnd else { throw JSONScanner.ScanError(offset: scanner.index, reason: "trailing characters") }
        } catch {
            throw SnapshotFileError(kind: .malformed, detail: "\(error.reason) at \(location) (byte \(error.offset))")
        }
        return Snapshot(
            organization: snapshot.organization, divisions: snapshot.divisions, roles: snapshot.roles, users: snapshot.users,
            groups: snapshot.groups, teams: snapshot.teams, oauthClients: snapshot.oauthClients, grants: grants, problems: problems)
    }

    mutating func list<T>(
        _ scanner: inout JSONScanner, _ read: (inout JSONScanner) throws(JSONScanner.ScanError) -> T
    ) throws(JSONScanner.ScanError) -> [T] {
        var items: [T] = []
        element = 0
        try scanner.array { (scanner: inout JSONScanner) throws(JSONScanner.ScanError) in
            items.append(try read(&scanner))
            self.element += 1
        }
        element = -1
        return items
    }

    static func required<T>(_ value: T?, _ key: String, _ scanner: JSONScanner) throws(JSONScanner.ScanError) -> T {
        guard let value else { throw JSONScanner.ScanError(offset: scanner.index, reason: "missing \"\(key)\"") }
        return value
    }

    static func organization(_ s: inout JSONScanner) throws(JSONScanner.ScanError) -> Organization {
        var id: String?
        var name: String?
        try s.object { (s: inout JSONScanner, key: String) throws(JSONScanner.ScanError) in
            switch key {
            case "id": id = try s.string()
            case "name": name = try s.string()
            default: try s.skipValue()
            }
        }
        return Organization(id: try required(id, "id", s), name: name ?? "")
    }

    static func division(_ s: inout JSONScanner) throws(JSONScanner.ScanError) -> Division {
        var id: String?
        var name: String?
        var description: String?
        var home = false
        try s.object { (s: inout JSONScanner, key: String) throws(JSONScanner.ScanError) in
            switch key {
            case "id": id = try s.string()
            case "name": name = try s.string()
            case "description": description = try s.string()
            case "home": home = try s.bool()
            default: try s.skipValue()
            }
        }
        return Division(id: try required(id, "id", s), name: try required(name, "name", s), description: description, isHome: home)
    }

    static func grant(_ s: inout JSONScanner) throws(JSONScanner.ScanError) -> Grant {
        var subject: String?
        var type: String?
        var role: String?
        var division: String?
        try s.object { (s: inout JSONScanner, key: String) throws(JSONScanner.ScanError) in
            switch key {
            case "subjectId": subject = try s.string()
            case "subjectType": type = try s.string()
            case "roleId": role = try s.string()
            case "divisionId": division = try s.string()
            default: try s.skipValue()
            }
        }
        return Grant(
            subjectId: try required(subject, "subjectId", s), subjectKind: SubjectKind(apiValue: try required(type, "subjectType", s)),
            roleId: try required(role, "roleId", s), divisionId: try required(division, "divisionId", s))
    }

    static func access(_ s: inout JSONScanner) throws(JSONScanner.ScanError) -> [Access] {
        var result: [Access] = []
        try s.array { (s: inout JSONScanner) throws(JSONScanner.ScanError) in
            var role: String?
            var division: String?
            var via: String?
            try s.object { (s: inout JSONScanner, key: String) throws(JSONScanner.ScanError) in
                switch key {
                case "roleId": role = try s.string()
                case "divisionId": division = try s.string()
                case "via": via = try s.string()
                default: try s.skipValue()
                }
            }
            let path = try required(via, "via", s)
            result.append(
                Access(
                    roleId: try required(role, "roleId", s), divisionId: try required(division, "divisionId", s),
                    via: path == "direct" ? .direct : .group(id: path)))
        }
        return result
    }

    static func user(_ s: inout JSONScanner) throws(JSONScanner.ScanError) -> User {
        var id: String?
        var name: String?
        var state: String?
        var user = User(id: "", name: "", state: "")
        try s.object { (s: inout JSONScanner, key: String) throws(JSONScanner.ScanError) in
            switch key {
            case "id": id = try s.string()
            case "name": name = try s.string()
            case "state": state = try s.string()
            case "username": user.username = try s.string()
            case "email": user.email = try s.string()
            case "divisionId": user.divisionId = try s.string()
            case "title": user.title = try s.string()
            case "department": user.department = try s.string()
            case "managerId": user.managerId = try s.string()
            case "teamId": user.teamId = try s.string()
            case "groupIds": user.groupIds = try s.strings()
            case "access": user.access = try access(&s)
            default: try s.skipValue()
            }
        }
        return User(
            id: try required(id, "id", s), name: try required(name, "name", s), username: user.username, email: user.email,
            state: try required(state, "state", s), divisionId: user.divisionId, title: user.title, department: user.department,
            managerId: user.managerId, groupIds: user.groupIds, teamId: user.teamId, access: user.access)
    }

    static func group(_ s: inout JSONScanner) throws(JSONScanner.ScanError) -> Group {
        var id: String?
        var name: String?
        var group = Group(id: "", name: "", rolesEnabled: false)
        try s.object { (s: inout JSONScanner, key: String) throws(JSONScanner.ScanError) in
            switch key {
            case "id": id = try s.string()
            case "name": name = try s.string()
            case "description": group.description = try s.string()
            case "type": group.type = try s.string()
            case "state": group.state = try s.string()
            case "visibility": group.visibility = try s.string()
            case "rolesEnabled": group.rolesEnabled = try s.bool()
            case "memberIds": group.memberIds = try s.strings()
            default: try s.skipValue()
            }
        }
        return Group(
            id: try required(id, "id", s), name: try required(name, "name", s), description: group.description, type: group.type,
            state: group.state, visibility: group.visibility, rolesEnabled: group.rolesEnabled, memberIds: group.memberIds)
    }

    static func team(_ s: inout JSONScanner) throws(JSONScanner.ScanError) -> Team {
        var id: String?
        var name: String?
        var division: String?
        var members: [String] = []
        try s.object { (s: inout JSONScanner, key: String) throws(JSONScanner.ScanError) in
            switch key {
            case "id": id = try s.string()
            case "name": name = try s.string()
            case "divisionId": division = try s.string()
            case "memberIds": members = try s.strings()
            default: try s.skipValue()
            }
        }
        return Team(id: try required(id, "id", s), name: try required(name, "name", s), divisionId: division, memberIds: members)
    }

    static func client(_ s: inout JSONScanner) throws(JSONScanner.ScanError) -> OAuthClient {
        var id: String?
        var name: String?
        var grantType: String?
        var state: String?
        var access: [Access] = []
        try s.object { (s: inout JSONScanner, key: String) throws(JSONScanner.ScanError) in
            switch key {
            case "id": id = try s.string()
            case "name": name = try s.string()
            case "grantType": grantType = try s.string()
            case "state": state = try s.string()
            case "access": access = try Self.access(&s)
            default: try s.skipValue()
            }
        }
        return OAuthClient(id: try required(id, "id", s), name: try required(name, "name", s), grantType: grantType, state: state, access: access)
    }

    static func problem(_ s: inout JSONScanner) throws(JSONScanner.ScanError) -> CollectionProblem {
        var code: String?
        var endpoint: String?
        var message: String?
        var permissions: [String] = []
        try s.object { (s: inout JSONScanner, key: String) throws(JSONScanner.ScanError) in
            switch key {
            case "code": code = try s.string()
            case "endpoint": endpoint = try s.string()
            case "message": message = try s.string()
            case "permissions": permissions = try s.strings()
            default: try s.skipValue()
            }
        }
        return CollectionProblem(
            code: try required(code, "code", s), endpoint: try required(endpoint, "endpoint", s), permissions: permissions,
            message: message ?? "")
    }

    static func condition(_ s: inout JSONScanner, depth: Int = 0) throws(JSONScanner.ScanError) -> ConditionNode {
        guard depth < 32 else { throw JSONScanner.ScanError(offset: s.index, reason: "condition nested too deep") }
        var node = ConditionNode()
        try s.object { (s: inout JSONScanner, key: String) throws(JSONScanner.ScanError) in
            switch key {
            case "variableName": node.variableName = try s.string()
            case "operator": node.operator = try s.string()
            case "conjunction": node.conjunction = try s.string()
            case "operands":
                try s.array { (s: inout JSONScanner) throws(JSONScanner.ScanError) in
                    var type = ""
                    var value = ""
                    try s.object { (s: inout JSONScanner, key: String) throws(JSONScanner.ScanError) in
                        switch key {
                        case "type": type = try s.string()
                        case "value": value = try s.string()
                        default: try s.skipValue()
                        }
                    }
                    node.operands.append(.init(type: type, value: value))
                }
            case "terms":
                try s.array { (s: inout JSONScanner) throws(JSONScanner.ScanError) in node.terms.append(try condition(&s, depth: depth + 1)) }
            default: try s.skipValue()
            }
        }
        return node
    }

    static func role(_ s: inout JSONScanner) throws(JSONScanner.ScanError) -> Role {
        var id: String?
        var name: String?
        var description: String?
        var defaultRoleId: String?
        var builtIn = false
        var legacy: [String] = []
        var policies: [PermissionPolicy] = []
        try s.object { (s: inout JSONScanner, key: String) throws(JSONScanner.ScanError) in
            switch key {
            case "id": id = try s.string()
            case "name": name = try s.string()
            case "description": description = try s.string()
            case "defaultRoleId": defaultRoleId = try s.string()
            case "builtIn": builtIn = try s.bool()
            case "legacyPermissions": legacy = try s.strings()
            case "policies":
                try s.array { (s: inout JSONScanner) throws(JSONScanner.ScanError) in
                    var domain: String?
                    var entity: String?
                    var actions: [String] = []
                    var condition: ConditionNode?
                    try s.object { (s: inout JSONScanner, key: String) throws(JSONScanner.ScanError) in
                        switch key {
                        case "domain": domain = try s.string()
                        case "entityName": entity = try s.string()
                        case "actions": actions = try s.strings()
                        case "condition": condition = try Self.condition(&s)
                        default: try s.skipValue()
                        }
                    }
                    policies.append(
                        PermissionPolicy(
                            domain: try required(domain, "domain", s), entityName: try required(entity, "entityName", s), actions: actions,
                            condition: condition))
                }
            default: try s.skipValue()
            }
        }
        return Role(
            id: try required(id, "id", s), name: try required(name, "name", s), description: description, defaultRoleId: defaultRoleId,
            isBuiltIn: builtIn, policies: policies, legacyPermissions: legacy)
    }
}

/// One line saying where a JSON document did not match what was expected.
public enum DecodingErrorText {
    public static func describe(_ error: any Error) -> String {
        switch error {
        case DecodingError.keyNotFound(let key, let context):
            "missing \"\(key.stringValue)\" at \(path(context.codingPath))"
        case DecodingError.typeMismatch(_, let context), DecodingError.valueNotFound(_, let context):
            "unexpected value at \(path(context.codingPath))"
        case DecodingError.dataCorrupted(let context):
            context.codingPath.isEmpty ? "not valid JSON" : "invalid value at \(path(context.codingPath))"
        default:
            "\(error)"
        }
    }

    static func path(_ keys: [any CodingKey]) -> String {
        keys.isEmpty ? "top level" : keys.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined()
    }
}
