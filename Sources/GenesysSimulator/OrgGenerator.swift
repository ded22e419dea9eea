/// Generates a realistic contact-centre organisation from a seed: the same seed and size always
/// give the same ids, names, roles, grants and memberships.
struct OrgGenerator {
    struct Credentials: Sendable {
        var auditorClientId: String
        var auditorSecret: String
        var adminClientId: String
        var adminSecret: String
    }

    static let defaultAuditorPermissions = [
        "audits:audit:view", "authorization:division:view", "authorization:grant:view", "authorization:role:view",
        "directory:user:view", "groups:team:view", "oauth:client:view",
    ]

    var seed: UInt64
    var userCount: Int
    var auditorPermissions: [String]
    var extraUserNames: [String] = []

    /// 2025-01-01T00:00:00Z: generated dates fall in the year after it.
    static let baseEpochMs: Int64 = 1_735_689_600_000

    private static let divisionNames = [
        "Support", "Sales", "Billing", "Retention", "Collections", "Outbound", "Back Office", "Quality",
        "Workforce", "IT Operations", "EMEA Service", "APAC Service", "Americas Service", "Premium Care",
        "Claims", "Onboarding", "Fraud", "Technical Support", "Partner Desk", "Escalations", "Social Care",
        "Field Service", "Payments", "Loyalty", "Corporate Accounts", "Public Sector", "Healthcare Line",
        "Insurance Desk", "Travel Desk", "Internal Helpdesk",
    ]
    private static let firstNames = [
        "Ana", "Ben", "Chloé", "Dmitri", "Eve", "Farah", "Gabriel", "Hana", "Ivan", "Jia", "Kofi", "Lena",
        "Mateo", "Nadia", "Oscar", "Priya", "Quinn", "Rosa", "Sven", "Tariq", "Uma", "Victor", "Wen", "Ximena",
        "Yusuf", "Zoë", "Aiko", "Bruno", "Carmen", "Deepak", "Elif", "Femi", "Greta", "Hugo", "Ines", "Jonas",
        "Kaito", "Leila", "Marco", "Noor", "Olga", "Pablo", "Rania", "Sofia", "Tomás", "Ulla", "Vera", "Wiktor",
        "Yara", "Zain", "李", "Søren", "José", "Amélie", "Björn", "Łukasz", "Mónica", "Nikos", "Owen", "Pia",
    ]
    private static let lastNames = [
        "Adeyemi", "Bauer", "Castillo", "Dubois", "Eriksen", "Fischer", "García", "Hansen", "Ibrahim", "Jensen",
        "Kowalski", "Larsen", "Müller", "Nakamura", "O'Brien", "Petrov", "Quintero", "Rossi", "Schmidt",
        "Tanaka", "Usman", "Varga", "Wagner", "Xu", "Yilmaz", "Zhang", "Andersson", "Brown", "Chen", "Diaz",
        "Evans", "Ferreira", "Gupta", "Horvat", "Ito", "Jovanović", "Kim", "Lopez", "Moreau", "Nowak", "Okafor",
        "Patel", "Reyes", "Silva", "Thompson", "Ueda", "Volkov", "Weber", "Young", "Zieliński", "王",
    ]
    private static let teamWords = [
        "Blue", "Orion", "Falcon", "Harbour", "Summit", "Aurora", "Cedar", "Delta", "Ember", "Fjord", "Granite",
        "Horizon", "Iris", "Juniper", "Kestrel", "Lumen", "Meridian", "Nova", "Onyx", "Pioneer",
    ]
    private static let groupThemes = [
        "Leads", "Supervisors", "Night Shift", "Weekend Crew", "Escalation Desk", "Admins", "Auditors",
        "Trainers", "Champions", "Onboarding", "Contractors", "Floor Walkers", "Quality Panel", "Schedulers",
    ]
    /// Persona weights for users, in `PermissionCatalogue.personas` order.
    private static let personaWeights = [700, 80, 40, 30, 30, 10, 10, 10, 20, 20, 5, 10, 15, 5, 5]

    func generate() -> (org: Org, credentials: Credentials) {
        var rng = SeededRandom(seed: seed)
        let orgId = rng.uuid()
        var org = Org(id: orgId, name: "Simulated Contact Centre \(seed)")
        func date(_ rng: inout SeededRandom) -> String {
            ISODate.string(epochMilliseconds: Self.baseEpochMs + Int64.random(in: 0..<31_536_000_000, using: &rng))
        }

        // Divisions.
        let home = SimDivision(id: rng.uuid(), name: "Home", description: "Home division", isHome: true)
        org.divisions[home.id] = home
        org.homeDivisionId = home.id
        let extraDivisions = min(Self.divisionNames.count, 3 + userCount / 4000)
        var divisionIds = [home.id]
        for name in Self.divisionNames.prefix(extraDivisions) {
            let division = SimDivision(id: rng.uuid(), name: name, description: "\(name) operations", isHome: false)
            org.divisions[division.id] = division
            divisionIds.append(division.id)
        }
        let workDivisions = Array(divisionIds.dropFirst())

        // Built-in roles.
        var builtInIds: [String: String] = [:]
        for builtIn in PermissionCatalogue.builtIns {
            let role = SimRole(
                id: rng.uuid(), name: builtIn.name, description: "Built-in \(builtIn.name) role",
                defaultRoleId: builtIn.defaultRoleId, isDefault: true, isBase: false,
                policies: PermissionCatalogue.policies(for: builtIn.permissions), legacyPermissions: builtIn.legacy)
            org.roles[role.id] = role
            builtInIds[builtIn.defaultRoleId] = role.id
        }

        // Custom roles per persona, named after divisions.
        let personas = PermissionCatalogue.personas
        let customCount = max(personas.count, userCount / 50 - PermissionCatalogue.builtIns.count)
        var rolesByPersona = [[String]](repeating: [], count: personas.count)
        var usedNames = Set(org.roles.values.map(\.name))
        for index in 0..<customCount {
            let personaIndex: Int
            if index < personas.count {
                personaIndex = index
            } else {
                let r = rng.next() % 100
                personaIndex = r < 30 ? 0 : r < 45 ? 1 : 2 + Int(rng.next() % UInt64(personas.count - 2))
            }
            let persona = personas[personaIndex]
            let divisionName = org.divisions[rng.pick(workDivisions)]!.name
            var name = "\(divisionName) \(persona.title)"
            var tier = 2
            while usedNames.contains(name) {
                name = "\(divisionName) \(persona.title) Tier \(tier)"
                tier += 1
            }
            usedNames.insert(name)
            var permissions = Set(persona.permissions)
            for _ in 0..<Int.random(in: 0...2, using: &rng) where permissions.count > 3 {
                permissions.remove(permissions.sorted()[Int.random(in: 0..<permissions.count, using: &rng)])
            }
            for _ in 0..<Int.random(in: 0...2, using: &rng) {
                permissions.insert(rng.pick(persona.extras))
            }
            if rng.chance(0.03) { permissions.insert(rng.pick(PermissionCatalogue.dangerous)) }
            var policies = PermissionCatalogue.policies(for: Array(permissions))
            if rng.chance(0.02), let i = policies.indices.randomElement(using: &rng) {
                policies[i].actions = ["*"]
            }
            if rng.chance(0.08), let i = policies.firstIndex(where: { $0.domain == "routing" && $0.entityName == "queue" }) {
                policies[i].condition = .leaf(
                    variable: "queue.id", op: "IN",
                    operands: [(type: "QUEUE", value: rng.uuid()), (type: "QUEUE", value: rng.uuid())])
            }
            let role = SimRole(
                id: rng.uuid(), name: name, description: "\(persona.title) access for \(divisionName)",
                defaultRoleId: nil, isDefault: false, isBase: false, policies: policies, legacyPermissions: [])
            org.roles[role.id] = role
            rolesByPersona[personaIndex].append(role.id)
        }

        // Users.
        let totalWeight = Self.personaWeights.reduce(0, +)
        var personaOfUser: [Int] = []
        var userIds: [String] = []
        userIds.reserveCapacity(userCount)
        let employeeRole = builtInIds["employee"]!
        for index in 0..<userCount {
            let first = rng.pick(Self.firstNames)
            let last = rng.pick(Self.lastNames)
            var pick = Int(rng.next() % UInt64(totalWeight))
            var personaIndex = 0
            while pick >= Self.personaWeights[personaIndex] {
                pick -= Self.personaWeights[personaIndex]
                personaIndex += 1
            }
            let divisionId = rng.chance(0.15) ? home.id : rng.pick(workDivisions)
            let stateRoll = rng.next() % 100
            let localPart = "\(Self.ascii(first)).\(Self.ascii(last)).\(index + 1)"
            let user = SimUser(
                id: rng.uuid(), name: "\(first) \(last)", email: "\(localPart)@example.com",
                username: "\(localPart)@example.com", title: personas[personaIndex].title,
                department: personas[personaIndex].department,
                state: stateRoll < 90 ? "active" : stateRoll < 97 ? "inactive" : "deleted",
                divisionId: divisionId, managerId: nil, teamId: nil, version: 1 + Int(rng.next() % 9),
                jabberId: "\(rng.uuid().prefix(12))@simulated.orgspan.com",
                dateLastLogin: rng.chance(0.8) ? date(&rng) : nil)
            org.users[user.id] = user
            userIds.append(user.id)
            personaOfUser.append(personaIndex)
        }
        // Managers: agents report to a supervisor.
        let supervisors = userIds.indices.filter { personaOfUser[$0] == 1 }
        if !supervisors.isEmpty {
            for index in userIds.indices where personaOfUser[index] == 0 {
                org.users[userIds[index]]!.managerId = userIds[rng.pick(supervisors)]
            }
        }

        // Direct grants: Employee at home, a persona role in the user's division and sometimes more.
        // Roles named after the user's division are preferred.
        var rolesByPersonaAndDivision: [String: [String]] = [:]
        for (personaIndex, roleIds) in rolesByPersona.enumerated() {
            for roleId in roleIds {
                for division in org.divisions.values where org.roles[roleId]!.name.hasPrefix(division.name + " ") {
                    rolesByPersonaAndDivision["\(personaIndex)|\(division.id)", default: []].append(roleId)
                }
            }
        }
        for (index, userId) in userIds.enumerated() {
            let user = org.users[userId]!
            _ = org.addGrant(SimGrant(subjectId: userId, subjectType: "PC_USER", roleId: employeeRole, divisionId: home.id), at: date(&rng))
            let candidates = rolesByPersona[personaOfUser[index]]
            let preferred = rolesByPersonaAndDivision["\(personaOfUser[index])|\(user.divisionId)"] ?? []
            let roleId = rng.pick(preferred.isEmpty ? candidates : preferred)
            _ = org.addGrant(SimGrant(subjectId: userId, subjectType: "PC_USER", roleId: roleId, divisionId: user.divisionId), at: date(&rng))
            if rng.chance(0.3) {
                _ = org.addGrant(SimGrant(subjectId: userId, subjectType: "PC_USER", roleId: roleId, divisionId: rng.pick(workDivisions)), at: date(&rng))
            }
            if rng.chance(0.03) {
                _ = org.addGrant(SimGrant(subjectId: userId, subjectType: "PC_USER", roleId: roleId, divisionId: "*"), at: date(&rng))
            }
            if rng.chance(0.1) {
                let other = rolesByPersona[Int(rng.next() % UInt64(personas.count))]
                _ = org.addGrant(SimGrant(subjectId: userId, subjectType: "PC_USER", roleId: rng.pick(other), divisionId: user.divisionId), at: date(&rng))
            }
            if personaOfUser[index] == 1, rng.chance(0.3) {
                _ = org.addGrant(SimGrant(subjectId: userId, subjectType: "PC_USER", roleId: builtInIds["supervisor"]!, divisionId: user.divisionId), at: date(&rng))
            }
        }
        let adminCount = max(2, userCount / 1000)
        for index in rng.sample(adminCount, from: userIds.count) {
            _ = org.addGrant(SimGrant(subjectId: userIds[index], subjectType: "PC_USER", roleId: builtInIds["admin"]!, divisionId: "*"), at: date(&rng))
        }

        // Groups: some role-enabled, with division-scoped grants; some include their owners.
        let groupCount = max(8, userCount / 100)
        for index in 0..<groupCount {
            let divisionName = org.divisions[rng.pick(workDivisions)]!.name
            let theme = Self.groupThemes[index % Self.groupThemes.count]
            let rolesEnabled = index < 3 || rng.chance(0.35)
            let memberCount = min(userIds.count, Int.random(in: 5...max(5, min(200, userCount / 10)), using: &rng))
            let members = rng.sample(memberCount, from: userIds.count).map { userIds[$0] }
            let includeOwners = rng.chance(0.2)
            let owners = rng.sample(Int.random(in: 1...2, using: &rng), from: userIds.count).map { userIds[$0] }
            let group = SimGroup(
                id: rng.uuid(), name: index < Self.groupThemes.count ? "\(divisionName) \(theme)" : "\(divisionName) \(theme) \(index / Self.groupThemes.count + 1)",
                description: "\(theme) in \(divisionName)", type: rng.chance(0.8) ? "official" : "social",
                state: "active", visibility: rng.pick(["public", "members", "owners"]), rolesEnabled: rolesEnabled,
                includeOwners: includeOwners, ownerIds: owners, memberIds: members, version: 1 + Int(rng.next() % 5),
                dateModified: date(&rng))
            org.groups[group.id] = group
            for member in members { org.userGroups[member, default: []].insert(group.id) }
            if includeOwners {
                for owner in owners { org.ownerGroups[owner, default: []].insert(group.id) }
            }
            if rolesEnabled {
                for _ in 0..<Int.random(in: 1...3, using: &rng) {
                    let persona = rolesByPersona[Int(rng.next() % UInt64(personas.count))]
                    let divisionId = rng.chance(0.1) ? "*" : rng.pick(workDivisions)
                    _ = org.addGrant(SimGrant(subjectId: group.id, subjectType: "PC_GROUP", roleId: rng.pick(persona), divisionId: divisionId), at: date(&rng))
                }
            }
        }

        // Teams: most users belong to exactly one.
        let teamCount = max(5, userCount / 40)
        var teamIds: [String] = []
        for index in 0..<teamCount {
            let divisionId = rng.pick(workDivisions)
            let name = "Team \(Self.teamWords[index % Self.teamWords.count]) \(index / Self.teamWords.count + 1)"
            let team = SimTeam(
                id: rng.uuid(), name: name, description: "\(org.divisions[divisionId]!.name) team",
                divisionId: divisionId, dateCreated: date(&rng), dateModified: date(&rng))
            org.teams[team.id] = team
            teamIds.append(team.id)
        }
        for userId in userIds where rng.chance(0.7) {
            let teamId = rng.pick(teamIds)
            org.users[userId]!.teamId = teamId
            org.teamMembers[teamId, default: []].append(userId)
        }

        // OAuth clients, ours first.
        let auditorRole = SimRole(
            id: rng.uuid(), name: "rbacwatch Auditor", description: "Read-only access for rbacwatch",
            defaultRoleId: nil, isDefault: false, isBase: false,
            policies: PermissionCatalogue.policies(for: auditorPermissions), legacyPermissions: [])
        org.roles[auditorRole.id] = auditorRole
        let credentials = Credentials(
            auditorClientId: rng.uuid(), auditorSecret: Self.secret(&rng), adminClientId: rng.uuid(),
            adminSecret: Self.secret(&rng))
        let clientSpecs: [(String, String, String, [(String, String)])] = [
            (credentials.auditorClientId, "rbacwatch auditor", "CLIENT-CREDENTIALS", [(auditorRole.id, "*")]),
            (credentials.adminClientId, "Simulator Admin", "CLIENT-CREDENTIALS", [(builtInIds["admin"]!, "*")]),
            (rng.uuid(), "CRM Integration", "CLIENT-CREDENTIALS", [(rng.pick(rolesByPersona[6]), "*")]),
            (rng.uuid(), "WFM Sync", "CLIENT-CREDENTIALS", [(rng.pick(rolesByPersona[3]), rng.pick(workDivisions))]),
            (rng.uuid(), "Data Warehouse Export", "CLIENT-CREDENTIALS", [(rng.pick(rolesByPersona[4]), "*")]),
            (rng.uuid(), "Legacy Reporting", "CLIENT-CREDENTIALS", [(rng.pick(rolesByPersona[4]), home.id)]),
            (rng.uuid(), "Agent Desktop", "CODE", []),
            (rng.uuid(), "Mobile App", "TOKEN", []),
        ]
        var specs = clientSpecs
        for index in 0..<(userCount / 10_000) {
            specs.append((rng.uuid(), "Partner Connector \(index + 1)", "CLIENT-CREDENTIALS", [(rng.pick(rolesByPersona[6]), rng.pick(workDivisions))]))
        }
        let creator = userIds.first
        for (id, name, grantType, roleDivisions) in specs {
            let client = SimClient(
                id: id, name: name, description: "\(name) client", secret: id == credentials.auditorClientId
                    ? credentials.auditorSecret : id == credentials.adminClientId ? credentials.adminSecret : Self.secret(&rng),
                grantType: grantType, scope: grantType == "CLIENT-CREDENTIALS" ? [] : ["users:readonly"],
                accessTokenValiditySeconds: 86_400, state: name == "Legacy Reporting" ? "inactive" : "active",
                dateCreated: date(&rng), dateModified: date(&rng), createdById: creator)
            org.clients[id] = client
            for (roleId, divisionId) in roleDivisions {
                _ = org.addGrant(SimGrant(subjectId: id, subjectType: "PC_OAUTH_CLIENT", roleId: roleId, divisionId: divisionId), at: date(&rng))
            }
        }

        // Named extra users last, from their own generator: the rest stays as the seed made it.
        var extra = SeededRandom(seed: seed ^ 0xE47A)
        for (index, name) in extraUserNames.enumerated() {
            let id = extra.uuid()
            org.users[id] = SimUser(
                id: id, name: name, email: "extra.\(index + 1)@example.com", username: "extra.\(index + 1)@example.com",
                title: "Agent", department: "Customer Care", state: "active", divisionId: workDivisions.first ?? home.id,
                managerId: nil, teamId: nil, version: 1, jabberId: "\(id.prefix(12))@simulated.orgspan.com", dateLastLogin: nil)
            _ = org.addGrant(SimGrant(subjectId: id, subjectType: "PC_USER", roleId: employeeRole, divisionId: home.id), at: date(&extra))
            if let role = rolesByPersona[0].first {
                _ = org.addGrant(SimGrant(subjectId: id, subjectType: "PC_USER", roleId: role, divisionId: workDivisions.first ?? home.id), at: date(&extra))
            }
        }

        org.rebuildOrders()
        for team in org.teamMembers.keys { org.teamMembers[team]!.sort() }
        return (org, credentials)
    }

    private static func secret(_ rng: inout SeededRandom) -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
        return String((0..<43).map { _ in alphabet[Int(rng.next() % 64)] })
    }

    /// Folds a name to ASCII letters for e-mail addresses.
    static func ascii(_ name: String) -> String {
        let map: [Character: String] = [
            "é": "e", "è": "e", "ë": "e", "ó": "o", "ö": "o", "ø": "o", "ü": "u", "á": "a", "ã": "a", "í": "i",
            "ł": "l", "ń": "n", "ć": "c", "ş": "s", "ğ": "g", "ı": "i", "ñ": "n", "Ł": "L", "ç": "c", "'": "",
        ]
        var out = ""
        for ch in name {
            if let r = map[ch] { out += r } else if ch.isASCII && (ch.isLetter || ch.isNumber) { out.append(ch) }
        }
        return out.isEmpty ? "user" : out.lowercased()
    }
}
