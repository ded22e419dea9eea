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
    /// Reads a snapshot file written by `canonicalJSON()` (or any JSON with the same members).
    public init(canonicalJSON data: Data) throws(SnapshotFileError) {
        let header: SchemaProbe
        do {
            header = try JSONDecoder().decode(SchemaProbe.self, from: data)
        } catch {
            throw SnapshotFileError(kind: .notJSON, detail: DecodingErrorText.describe(error))
        }
        guard let schema = header.schema else {
            throw SnapshotFileError(kind: .notASnapshot, detail: "")
        }
        guard schema == Snapshot.schema else {
            throw SnapshotFileError(kind: .unsupportedSchema(schema), detail: "")
        }
        let file: SnapshotFile
        do {
            file = try JSONDecoder().decode(SnapshotFile.self, from: data)
        } catch {
            throw SnapshotFileError(kind: .malformed, detail: DecodingErrorText.describe(error))
        }
        self.init(
            organization: file.organization.map { Organization(id: $0.id, name: $0.name) },
            divisions: file.divisions.map {
                Division(id: $0.id, name: $0.name, description: $0.description, isHome: $0.home)
            },
            roles: file.roles.map { role in
                Role(
                    id: role.id, name: role.name, description: role.description, defaultRoleId: role.defaultRoleId,
                    isBuiltIn: role.builtIn, policies: role.policies.map(\.model),
                    legacyPermissions: role.legacyPermissions)
            },
            users: file.users.map { user in
                User(
                    id: user.id, name: user.name, username: user.username, email: user.email, state: user.state,
                    divisionId: user.divisionId, title: user.title, department: user.department,
                    managerId: user.managerId, groupIds: user.groupIds, teamId: user.teamId,
                    access: user.access.map(\.model))
            },
            groups: file.groups.map { group in
                Group(
                    id: group.id, name: group.name, description: group.description, type: group.type,
                    state: group.state, visibility: group.visibility, rolesEnabled: group.rolesEnabled,
                    memberIds: group.memberIds)
            },
            teams: file.teams.map { Team(id: $0.id, name: $0.name, divisionId: $0.divisionId, memberIds: $0.memberIds) },
            oauthClients: file.oauthClients.map { client in
                OAuthClient(
                    id: client.id, name: client.name, grantType: client.grantType, state: client.state,
                    access: client.access.map(\.model))
            },
            grants: file.grants.map {
                Grant(
                    subjectId: $0.subjectId, subjectKind: SubjectKind(apiValue: $0.subjectType), roleId: $0.roleId,
                    divisionId: $0.divisionId)
            },
            problems: file.problems.map {
                CollectionProblem(code: $0.code, endpoint: $0.endpoint, permissions: $0.permissions, message: $0.message)
            })
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

// MARK: File shapes (decoding only; the writer is hand-made for stable bytes and speed)

private struct SchemaProbe: Decodable {
    var schema: String?
}

private struct SnapshotFile: Decodable {
    struct Org: Decodable { var id: String; var name: String }
    struct DivisionFile: Decodable { var id: String; var name: String; var description: String?; var home: Bool }
    struct OperandFile: Decodable { var type: String; var value: String }
    final class ConditionFile: Decodable {
        var conjunction: String?
        var operands: [OperandFile]
        var `operator`: String?
        var terms: [ConditionFile]
        var variableName: String?

        var model: ConditionNode {
            ConditionNode(
                variableName: variableName, operator: `operator`,
                operands: operands.map { .init(type: $0.type, value: $0.value) }, conjunction: conjunction,
                terms: terms.map(\.model))
        }
    }
    struct PolicyFile: Decodable {
        var actions: [String]
        var condition: ConditionFile?
        var domain: String
        var entityName: String
        var model: PermissionPolicy {
            PermissionPolicy(domain: domain, entityName: entityName, actions: actions, condition: condition?.model)
        }
    }
    struct RoleFile: Decodable {
        var builtIn: Bool
        var defaultRoleId: String?
        var description: String?
        var id: String
        var legacyPermissions: [String]
        var name: String
        var policies: [PolicyFile]
    }
    struct AccessFile: Decodable {
        var divisionId: String
        var roleId: String
        var via: String
        var model: Access {
            Access(roleId: roleId, divisionId: divisionId, via: via == "direct" ? .direct : .group(id: via))
        }
    }
    struct UserFile: Decodable {
        var access: [AccessFile]
        var department: String?
        var divisionId: String?
        var email: String?
        var groupIds: [String]
        var id: String
        var managerId: String?
        var name: String
        var state: String
        var teamId: String?
        var title: String?
        var username: String?
    }
    struct GroupFile: Decodable {
        var description: String?
        var id: String
        var memberIds: [String]
        var name: String
        var rolesEnabled: Bool
        var state: String?
        var type: String?
        var visibility: String?
    }
    struct TeamFile: Decodable { var divisionId: String?; var id: String; var memberIds: [String]; var name: String }
    struct ClientFile: Decodable {
        var access: [AccessFile]
        var grantType: String?
        var id: String
        var name: String
        var state: String?
    }
    struct GrantFile: Decodable { var divisionId: String; var roleId: String; var subjectId: String; var subjectType: String }
    struct ProblemFile: Decodable { var code: String; var endpoint: String; var message: String; var permissions: [String] }

    var divisions: [DivisionFile]
    var grants: [GrantFile]
    var groups: [GroupFile]
    var oauthClients: [ClientFile]
    var organization: Org?
    var problems: [ProblemFile]
    var roles: [RoleFile]
    var teams: [TeamFile]
    var users: [UserFile]
}
