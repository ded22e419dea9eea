import AuditCore
import Logging
import Synchronization

public struct CollectorOptions: Sendable {
    /// Page size for `/api/v2/users` (500 is the documented maximum).
    public var userPageSize = 500
    /// Page size for every other list (100 is safe on every endpoint).
    public var pageSize = 100
    /// Times a list is walked again when rows moved under the walk.
    public var maxRewalks = 3
    /// Users to cross-check against `authorization/subjects/{id}` after collecting.
    public var verifySample = 0
    public var verifySeed: UInt64 = 0
    /// The whole collection's budget: past it, the collection fails with one line naming the
    /// phase it was in. An hour covers 100,000 users at 300 requests a minute four times over.
    public var deadline: Duration = .seconds(3600)

    public init() {}
}

/// Where a collection is, for progress lines.
public struct CollectionProgress: Sendable, Equatable {
    public var phase: String
    public var pages: Int
    public var requests: Int
    public var rateLeft: Int?
    public var rateAllowed: Int?
    /// Set while requests wait for the rate-limit window or a `Retry-After`.
    public var waiting: Duration? = nil
}

/// What a collection cost and what it noticed.
public struct CollectionReport: Sendable {
    public var elapsed: Duration = .zero
    public var statistics = ClientStatistics()
    public var logins = 0
    public var pages = 0
    /// Lists walked again because rows moved, with the reason.
    public var rewalks: [String] = []
    /// Entities fetched by id because something referenced them and the lists did not have them.
    public var referenceFetches = 0
    /// Changes found by the closing confirmation walk of roles and groups.
    public var confirmationChanges = 0
    public var verified = 0
    public var verifyMismatches = 0
}

/// Reads a whole organisation into a `Snapshot`.
///
/// The plan costs O(pages + roles + role-holding groups) requests, not O(users): users, roles,
/// groups, divisions, teams and OAuth clients are listed page by page; `roles/{id}/subjectgrants`
/// says who holds each role in which divisions (users, groups and OAuth clients alike); the
/// members of every group that holds roles are listed to resolve inheritance. Then it closes
/// references the lists missed and confirms the small lists did not change meanwhile.
public final class Collector: Sendable {
    let client: GenesysAPIClient
    let options: CollectorOptions
    let logger: Logger

    let problems = Mutex<[CollectionProblem]>([])
    let rewalks = Mutex<[String]>([])
    let pages = Atomic<Int>(0)
    let phase = Mutex("login")

    public init(
        client: GenesysAPIClient, options: CollectorOptions = CollectorOptions(),
        logger: Logger = Logger(label: "rbacwatch.collector", factory: { _ in SwiftLogNoOpLogHandler() })
    ) {
        self.client = client
        self.options = options
        self.logger = logger
    }

    /// Everything gathered so far, keyed by id.
    struct Gathered {
        var organization: Organization?
        var divisions: [String: Division] = [:]
        var roles: [String: RoleWire] = [:]
        var users: [String: UserWire] = [:]
        var groups: [String: GroupWire] = [:]
        var groupMembers: [String: [String]] = [:]
        var teams: [String: TeamWire] = [:]
        var clients: [String: OAuthClientWire] = [:]
        var grantsByRole: [String: [Grant]] = [:]
    }

    public func collect() async throws -> (Snapshot, CollectionReport) {
        let deadline = options.deadline
        let clock = client.clock
        return try await withThrowingTaskGroup(of: (Snapshot, CollectionReport)?.self) { group in
            group.addTask { try await self.collectWithinDeadline() }
            group.addTask {
                try await clock.sleep(for: deadline)
                return nil
            }
            defer { group.cancelAll() }
            guard let first = try await group.next(), let result = first else {
                let phase = self.phase.withLock { $0 }
                throw GenesysClientError(
                    .timeout,
                    "the collection did not finish within \(DurationWords.seconds(deadline)) (--timeout): still at \(phase) after "
                        + "\(self.client.statistics.requests) requests; raise --timeout for a very large organisation or a low rate limit")
            }
            return result
        }
    }

    func collectWithinDeadline() async throws -> (Snapshot, CollectionReport) {
        let start = client.clock.now()
        enter("login")
        try await client.authenticate()

        var data = Gathered()
        try await listEverything(into: &data)
        try await readGrantsAndMembers(into: &data, roles: Array(data.roles.keys), groups: groupsNeedingMembers(data))
        var report = CollectionReport()
        report.referenceFetches = try await closeReferences(in: &data)
        report.confirmationChanges = try await confirmSmallLists(in: &data)

        var snapshot = buildSnapshot(&data)
        if options.verifySample > 0 {
            enter("verify")
            let (checked, mismatches) = try await verify(snapshot, sample: options.verifySample)
            report.verified = checked
            report.verifyMismatches = mismatches.count
            if !mismatches.isEmpty {
                snapshot.addProblems(mismatches)
            }
        }

        report.elapsed = client.clock.now() - start
        report.statistics = client.statistics
        report.logins = await client.logins()
        report.pages = pages.load(ordering: .relaxed)
        report.rewalks = rewalks.withLock { $0 }
        enter("done")
        return (snapshot, report)
    }

    // MARK: Phases

    /// Every top-level list, concurrently.
    func listEverything(into data: inout Gathered) async throws {
        enter("lists")
        let size = options.pageSize
        async let organization = guarded("GET /api/v2/organizations/me", nil) { () async throws -> Organization? in
            let org: OrganizationWire = try await self.client.get("/api/v2/organizations/me")
            return Organization(id: org.id, name: org.name ?? "")
        }
        async let divisions = guarded("GET /api/v2/authorization/divisions", []) {
            try await self.stableWalk("divisions") {
                try await self.client.walkPages("/api/v2/authorization/divisions", pageSize: size, id: { (d: DivisionWire) in d.id }, onPage: self.pageDone)
            }
        }
        async let roles = guarded("GET /api/v2/authorization/roles", []) {
            try await self.walkRoles()
        }
        async let users = guarded("GET /api/v2/users", []) {
            try await self.stableWalk("users") {
                try await self.client.walkPages(
                    "/api/v2/users", query: [("state", "any"), ("expand", "groups,team")],
                    pageSize: self.options.userPageSize, id: { (u: UserWire) in u.id }, onPage: self.pageDone)
            }
        }
        async let groups = guarded("GET /api/v2/groups", []) { try await self.walkGroups() }
        async let teams = guarded("GET /api/v2/teams", []) {
            try await self.stableWalk("teams") {
                try await self.client.walkCursor("/api/v2/teams", pageSize: size, id: { (t: TeamWire) in t.id }, onPage: self.pageDone)
            }
        }
        async let clients = guarded("GET /api/v2/oauth/clients", []) {
            try await self.stableWalk("OAuth clients") {
                try await self.client.walkPages("/api/v2/oauth/clients", pageSize: size, id: { (c: OAuthClientWire) in c.id }, onPage: self.pageDone)
            }
        }

        data.organization = try await organization
        for division in try await divisions { data.divisions[division.id] = Collector.division(division) }
        for role in try await roles { data.roles[role.id] = role }
        for user in try await users { data.users[user.id] = user }
        for group in try await groups { data.groups[group.id] = group }
        for team in try await teams { data.teams[team.id] = team }
        for client in try await clients { data.clients[client.id] = client }
    }

    func walkRoles(ids: [String] = []) async throws -> [RoleWire] {
        var query = [("userCount", "false")]
        if !ids.isEmpty { query.append(("id", ids.joined(separator: ","))) }
        return try await stableWalk("roles") {
            try await self.client.walkPages(
                "/api/v2/authorization/roles", query: query, pageSize: self.options.pageSize, id: { (r: RoleWire) in r.id },
                onPage: self.pageDone)
        }
    }

    func walkGroups(ids: [String] = []) async throws -> [GroupWire] {
        let query = ids.isEmpty ? [] : [("id", ids.joined(separator: ","))]
        return try await stableWalk("groups") {
            try await self.client.walkPages(
                "/api/v2/groups", query: query, pageSize: self.options.pageSize, id: { (g: GroupWire) in g.id },
                onPage: self.pageDone)
        }
    }

    /// Groups whose members matter: role-enabled ones and any group holding a grant.
    func groupsNeedingMembers(_ data: Gathered) -> [String] {
        var ids = Set(data.groups.values.filter { $0.rolesEnabled == true }.map(\.id))
        for grants in data.grantsByRole.values {
            for grant in grants where grant.subjectKind == .group { ids.insert(grant.subjectId) }
        }
        return ids.filter { data.groupMembers[$0] == nil && data.groups[$0] != nil }.sorted()
    }

    enum Fetched: Sendable {
        case grants(roleId: String, [Grant]?)
        case members(groupId: String, [String]?)
    }

    /// Who holds each role, and who is in each group that passes roles on; concurrently.
    func readGrantsAndMembers(into data: inout Gathered, roles: [String], groups: [String]) async throws {
        guard !roles.isEmpty || !groups.isEmpty else { return }
        enter("grants")
        let size = options.pageSize
        try await withThrowingTaskGroup(of: Fetched.self) { tasks in
            for roleId in roles {
                tasks.addTask {
                    let path = "/api/v2/authorization/roles/\(GenesysAPIClient.segment(roleId))/subjectgrants"
                    // A 403 is recorded and leaves the role without holders; a 404 means it is gone.
                    let subjects: [SubjectGrantsWire]? = try await self.absentOn404 {
                        try await self.guarded("GET \(path)", []) {
                            try await self.stableWalk("holders of role \(roleId)") {
                                try await self.client.walkPages(path, pageSize: size, id: { (s: SubjectGrantsWire) in s.id }, onPage: self.pageDone)
                            }
                        }
                    }
                    return .grants(roleId: roleId, subjects.map { Collector.grants(ofRole: roleId, $0) })
                }
            }
            for groupId in groups {
                tasks.addTask {
                    let path = "/api/v2/groups/\(GenesysAPIClient.segment(groupId))/members"
                    let members: [MemberWire]? = try await self.absentOn404 {
                        try await self.guarded("GET \(path)", []) {
                            try await self.stableWalk("members of group \(groupId)") {
                                try await self.client.walkPages(path, pageSize: size, id: { (m: MemberWire) in m.id }, onPage: self.pageDone)
                            }
                        }
                    }
                    return .members(groupId: groupId, members?.map(\.id))
                }
            }
            for try await result in tasks {
                switch result {
                case .grants(let roleId, let grants):
                    if let grants {
                        data.grantsByRole[roleId] = grants
                    } else {
                        // The role disappeared between the listing and this call.
                        data.roles[roleId] = nil
                        data.grantsByRole[roleId] = nil
                    }
                case .members(let groupId, let members):
                    if let members {
                        data.groupMembers[groupId] = members
                    } else {
                        data.groups[groupId] = nil
                        data.groupMembers[groupId] = nil
                    }
                }
            }
        }
    }

    // MARK: Helpers

    /// Walks a list until one walk is consistent, up to `maxRewalks` more times. If it never is,
    /// keeps the last walk and records the list as inconsistent (the snapshot becomes partial).
    func stableWalk<Entity: Sendable>(_ name: String, _ walk: () async throws -> ListWalk<Entity>) async throws -> [Entity] {
        var attempt = 0
        while true {
            let result = try await walk()
            if let truncation = result.truncation {
                // Walking again cannot help a list that stopped at a ceiling or a server that
                // repeats itself: keep what was read, and say the snapshot is partial.
                record(CollectionProblem(code: "truncated.list", endpoint: name, message: "\(name): \(truncation)"))
                logger.debug("list walk stopped early", metadata: ["list": "\(name)", "reason": "\(truncation)"])
                return result.items
            }
            guard let reason = result.inconsistency else { return result.items }
            attempt += 1
            rewalks.withLock { $0.append("\(name): \(reason)") }
            logger.debug("list changed during the walk; walking it again", metadata: ["list": "\(name)", "reason": "\(reason)"])
            if attempt > options.maxRewalks {
                record(
                    CollectionProblem(
                        code: "inconsistent.list", endpoint: name,
                        message: "\(name) kept changing during \(attempt) walks (\(reason))"))
                return result.items
            }
        }
    }

    /// Runs `body`; nil when the API answers 404 (the entity is gone since it was listed).
    func absentOn404<T: Sendable>(_ body: () async throws -> T) async throws -> T? {
        do {
            return try await body()
        } catch let error as GenesysAPIError where error.status == 404 {
            return nil
        }
    }

    /// Runs `body`; a 403 records the missing permission and yields `fallback` (the snapshot
    /// becomes partial).
    func guarded<T: Sendable>(_ endpoint: String, _ fallback: T, _ body: () async throws -> T) async throws -> T {
        do {
            return try await body()
        } catch let error as GenesysAPIError where error.status == 403 {
            let permissions = error.missingPermissions
            record(
                CollectionProblem(
                    code: error.code ?? "forbidden", endpoint: GenesysAPIError.stripQuery(endpoint), permissions: permissions,
                    message: permissions.isEmpty
                        ? (error.message ?? "access denied")
                        : "missing permission \(permissions.joined(separator: ", "))"))
            logger.debug("access denied; the snapshot will be partial", metadata: ["endpoint": "\(endpoint)"])
            return fallback
        }
    }

    func record(_ problem: CollectionProblem) {
        problems.withLock { $0.append(problem) }
    }

    @Sendable func pageDone() {
        _ = pages.add(1, ordering: .relaxed)
    }

    func enter(_ name: String) {
        phase.withLock { $0 = name }
    }

    /// Where the collection is now, including any wait for the rate limit.
    public func progressNow() async -> CollectionProgress {
        let budget = client.lastRateBudget
        return CollectionProgress(
            phase: phase.withLock { $0 }, pages: pages.load(ordering: .relaxed), requests: client.statistics.requests,
            rateLeft: budget?.left, rateAllowed: budget?.allowed, waiting: await client.pacer.holding)
    }
}
