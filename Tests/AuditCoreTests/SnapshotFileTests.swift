import AuditCore
import Foundation
import Testing

@Suite("Canonical snapshot file")
struct SnapshotFileTests {
    static func sample(shuffled: Bool = false) -> Snapshot {
        var users = [
            User(
                id: "u2", name: "Zoë \"Z\" Wang", username: "z@example.com", state: "active", divisionId: "d1",
                groupIds: ["g1"], teamId: "t1",
                access: [Access(roleId: "r1", divisionId: "*", via: .group(id: "g1")), Access(roleId: "r1", divisionId: "d1", via: .direct)]),
            User(id: "u1", name: "Ana\u{1B}[31m", state: "inactive", title: "Agent"),
        ]
        var grants = [
            Grant(subjectId: "u2", subjectKind: .user, roleId: "r1", divisionId: "d1"),
            Grant(subjectId: "g1", subjectKind: .group, roleId: "r1", divisionId: "*"),
            Grant(subjectId: "c1", subjectKind: .oauthClient, roleId: "r1", divisionId: "d1"),
        ]
        if shuffled {
            users.reverse()
            grants.reverse()
        }
        let condition = ConditionNode(
            variableName: "queue.id", operator: "IN", operands: [.init(type: "QUEUE", value: "q1")])
        return Snapshot(
            organization: Organization(id: "o1", name: "Acme"),
            divisions: [Division(id: "d1", name: "Support"), Division(id: "d0", name: "Home", isHome: true)],
            roles: [
                Role(
                    id: "r1", name: "Lead", description: "line\nbreak", defaultRoleId: nil,
                    policies: [
                        PermissionPolicy(domain: "routing", entityName: "queue", actions: ["view"], condition: condition),
                        PermissionPolicy(domain: "routing", entityName: "queue", actions: ["view"]),
                    ], legacyPermissions: ["admin"])
            ],
            users: users,
            groups: [Group(id: "g1", name: "Leads", rolesEnabled: true, memberIds: ["u2"])],
            teams: [Team(id: "t1", name: "Blue", divisionId: "d1", memberIds: ["u2"])],
            oauthClients: [OAuthClient(id: "c1", name: "CRM", grantType: "CLIENT-CREDENTIALS", access: [Access(roleId: "r1", divisionId: "d1", via: .direct)])],
            grants: grants,
            problems: [CollectionProblem(code: "missing.permissions", endpoint: "GET /api/v2/teams", permissions: ["groups:team:view"], message: "m")])
    }

    @Test("equal content gives identical bytes whatever the input order")
    func canonical() {
        #expect(Self.sample().canonicalJSON() == Self.sample(shuffled: true).canonicalJSON())
    }

    @Test("the file starts with its schema, ends with a newline, puts one entity per line")
    func layout() throws {
        let text = String(decoding: Self.sample().canonicalJSON(), as: UTF8.self)
        #expect(text.hasPrefix("{\n\"schema\":\"rbacwatch.snapshot/1\",\n"))
        #expect(text.hasSuffix("}\n"))
        let lines = text.split(separator: "\n")
        #expect(lines.contains { $0 == #"{"access":[],"groupIds":[],"id":"u1","name":"Ana\u001b[31m","state":"inactive","title":"Agent"},"# })
        #expect(lines.contains("\"partial\":true,"))
        // Escaping: quotes, newlines and control characters never appear raw.
        #expect(text.contains(#"Zoë \"Z\" Wang"#))
        #expect(text.contains(#"line\nbreak"#))
        #expect(!text.contains("\u{1B}"))
    }

    @Test("a snapshot reads back to the same value")
    func roundTrip() throws {
        let original = Self.sample()
        let decoded = try Snapshot(canonicalJSON: Data(original.canonicalJSON()))
        #expect(decoded == original)
        #expect(decoded.canonicalJSON() == original.canonicalJSON())
    }

    @Test("foreign, broken and future files are refused with a clear reason")
    func refusals() {
        #expect(throws: SnapshotFileError.self) { try Snapshot(canonicalJSON: Data("not json".utf8)) }
        do {
            _ = try Snapshot(canonicalJSON: Data(#"{"users":[]}"#.utf8))
            Issue.record("a file without a schema was read")
        } catch {
            #expect(error.kind == .notASnapshot)
        }
        do {
            _ = try Snapshot(canonicalJSON: Data(#"{"schema":"rbacwatch.snapshot/9"}"#.utf8))
            Issue.record("a future schema was read")
        } catch {
            #expect(error.kind == .unsupportedSchema("rbacwatch.snapshot/9"))
            #expect(error.description.contains("rbacwatch.snapshot/1"))
        }
        do {
            _ = try Snapshot(canonicalJSON: Data(#"{"schema":"rbacwatch.snapshot/1","users":[{"id":1}]}"#.utf8))
            Issue.record("a malformed snapshot was read")
        } catch {
            #expect(error.kind == .malformed)
        }
    }

    @Test("the summary counts what the snapshot holds")
    func summary() {
        let summary = SnapshotSummary(Self.sample())
        #expect(summary.users == 2)
        #expect(summary.usersByState == ["active": 1, "inactive": 1])
        #expect(summary.grantsBySubject == ["PC_USER": 1, "PC_GROUP": 1, "PC_OAUTH_CLIENT": 1])
        #expect(summary.usersWithInheritedAccess == 1)
        #expect(summary.usersWithAllDivisions == 1)
        #expect(summary.effectivePermissions == 4)
        #expect(summary.problems == 1)
        #expect(summary.roleEnabledGroups == 1)
    }

    @Test("hashes are lowercase hex SHA-256")
    func digest() {
        #expect(ContentHash.sha256Hex(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }
}
