import AuditCore
import Foundation
import GenesysClient
import GenesysSimulator

/// What administrators do to a contact centre in a working day, sped up: grants, removals,
/// group memberships, role edits, a role deleted and recreated, users moved — and now and then
/// something critical. Every RBAC change goes through the simulator's write endpoints, as the
/// real API's would; a third of the steps are the rest of the day as the audit log sees it
/// (queues, webhooks, trunks, recording, OAuth secrets, logins — `recordAmbient`).
struct DemoActivity {
    let simulator: GenesysSimulator
    let admin: GenesysAPIClient
    /// Seconds between changes.
    let pause: Duration
    var rng: SplitMix64

    /// Makes changes until cancelled; a failed change is skipped.
    mutating func run() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: pause)
            if Task.isCancelled { return }
            try? await step()
        }
    }

    mutating func pick<T>(_ items: [T]) -> T? {
        items.isEmpty ? nil : items[Int(rng.next() % UInt64(items.count))]
    }

    mutating func step() async throws {
        if rng.next() % 3 == 0 {
            simulator.recordAmbient(roll: rng.next())
            return
        }
        let truth = simulator.groundTruth()
        let users = truth.users.values.filter { $0.state == "active" }.sorted { $0.id < $1.id }
        let custom = truth.roles.values.filter { !$0.isDefault && $0.name != "rbacwatch Auditor" }.sorted { $0.id < $1.id }
        let divisions = truth.divisions.keys.sorted()
        let groups = truth.groups.values.filter(\.rolesEnabled).sorted { $0.id < $1.id }
        let roll = rng.next() % 100
        switch roll {
        case 0..<35:
            guard let user = pick(users), let role = pick(custom), let division = pick(divisions) else { return }
            try await send("POST", "/api/v2/authorization/subjects/\(user.id)/divisions/\(division)/roles/\(role.id)?subjectType=PC_USER")
        case 35..<50:
            let direct = truth.grants.filter { $0.subjectType == "PC_USER" }.sorted { ($0.subjectId, $0.roleId) < ($1.subjectId, $1.roleId) }
            guard let grant = pick(direct) else { return }
            try await send("DELETE", "/api/v2/authorization/subjects/\(grant.subjectId)/divisions/\(grant.divisionId)/roles/\(grant.roleId)")
        case 50..<70:
            guard let group = pick(groups), let user = pick(users.filter { !group.memberIds.contains($0.id) }) else { return }
            let version = try await admin.get("/api/v2/groups/\(group.id)", as: GroupVersion.self).version
            try await send("POST", "/api/v2/groups/\(group.id)/members", json: #"{"memberIds":["\#(user.id)"],"version":\#(version)}"#)
        case 70..<80:
            guard let role = pick(custom), let extra = pick(["analytics:conversationDetail:view", "quality:evaluation:edit", "routing:queue:edit", "recording:recording:view"])
            else { return }
            try await editRole(role, adding: extra)
        case 80..<85:
            guard let role = pick(custom) else { return }
            try await recreate(role, truth: truth)
        case 85..<90:
            guard let user = pick(users), let division = pick(divisions.filter { $0 != user.divisionId }) else { return }
            try await send("POST", "/api/v2/authorization/divisions/\(division)/objects/USER", json: #"["\#(user.id)"]"#)
        default:
            // Something critical.
            let admin = truth.roles.values.first { $0.name == "Master Admin" }
            switch rng.next() % 3 {
            case 0:
                guard let user = pick(users), let admin else { return }
                try await send("POST", "/api/v2/authorization/subjects/\(user.id)/divisions/*/roles/\(admin.id)?subjectType=PC_USER")
            case 1:
                guard let group = pick(groups), let role = pick(custom) else { return }
                try await send("POST", "/api/v2/authorization/subjects/\(group.id)/divisions/*/roles/\(role.id)?subjectType=PC_GROUP")
            default:
                guard let role = pick(custom) else { return }
                try await editRole(role, adding: "authorization:grant:add")
            }
        }
    }

    struct GroupVersion: Decodable, Sendable { var version: Int }

    func send(_ method: String, _ path: String, json: String? = nil) async throws {
        _ = try await admin.send(method, path, body: json.map { Array($0.utf8) })
    }

    func editRole(_ role: GroundTruth.Role, adding permission: String) async throws {
        guard !role.permissions.contains(permission) else { return }
        let permissions = (role.permissions + [permission]).map { "\"\($0)\"" }.joined(separator: ",")
        try await send("PUT", "/api/v2/authorization/roles/\(role.id)", json: #"{"name":"\#(Self.escape(role.name))","permissions":[\#(permissions)]}"#)
    }

    /// Deletes a role and creates it again under the same name, then grants it back.
    func recreate(_ role: GroundTruth.Role, truth: GroundTruth) async throws {
        let grants = truth.grants.filter { $0.roleId == role.id }
        try await send("DELETE", "/api/v2/authorization/roles/\(role.id)")
        let permissions = role.permissions.map { "\"\($0)\"" }.joined(separator: ",")
        struct Created: Decodable, Sendable { var id: String }
        let created = try await admin.request(
            "POST", "/api/v2/authorization/roles", body: Array(#"{"name":"\#(Self.escape(role.name))","permissions":[\#(permissions)]}"#.utf8),
            decode: Created.self)
        for grant in grants {
            try await send(
                "POST", "/api/v2/authorization/subjects/\(grant.subjectId)/divisions/\(grant.divisionId)/roles/\(created.id)?subjectType=\(grant.subjectType)")
        }
    }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
    }
}
