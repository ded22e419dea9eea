import Synchronization

/// Failures the simulator injects on purpose, for tests, benchmarks and demos. Counters are
/// "the next N matching API requests"; rates are probabilities per matching request, drawn from
/// a seeded generator so a run can be repeated.
public struct FaultPlan: Sendable, Equatable {
    /// Added to every reply (login included).
    public var latency: Duration = .zero
    /// A uniformly random extra delay up to this much.
    public var latencyJitter: Duration = .zero
    /// The next N matching requests answer `serverErrorStatus`.
    public var serverErrorBurst = 0
    public var serverErrorStatus = 503
    public var serverErrorRate = 0.0
    /// The next N matching requests have their connection closed without a reply.
    public var dropConnections = 0
    public var dropRate = 0.0
    /// The next N matching requests answer 429 with `Retry-After: stormRetryAfterSeconds`,
    /// whatever the token's budget.
    public var rateLimitStorm = 0
    public var stormRetryAfterSeconds = 1
    /// The next N successful matching replies carry a truncated, unparseable body.
    public var malformedReplies = 0
    /// After this many more matching requests, every issued token expires at once (0: never).
    public var expireTokensAfterRequests = 0
    /// Overrides `SimulatorConfiguration.auditRateLimitPerMinute` while set (0: no limit), so a
    /// test or a demo can throttle the audit API and later relieve it.
    public var auditRateLimitPerMinute: Int?
    /// The next N audit pushes are not sent (the poll has to find their events).
    public var droppedPushes = 0
    /// The next N audit pushes are sent twice.
    public var duplicatedPushes = 0
    /// The next N pushed events stay hidden from audit queries for `pushLeadSeconds` after
    /// their push: a push that arrives before the query can see the event.
    public var pushesAhead = 0
    public var pushLeadSeconds = 30.0
    /// Faults apply to requests whose path starts with this (login included if it matches).
    public var pathPrefix = "/api/v2/"

    public init() {}
}

/// A data change applied while a client walks a list: when page `pageNumber` of a list whose
/// path starts with `pathPrefix` has been served, `mutation` runs once, before the next request.
public struct MutationTrigger: Sendable {
    public var pathPrefix: String
    public var pageNumber: Int
    public var mutation: SimulatedChange

    public init(pathPrefix: String, pageNumber: Int, mutation: SimulatedChange) {
        self.pathPrefix = pathPrefix
        self.pageNumber = pageNumber
        self.mutation = mutation
    }
}

/// Changes the simulator can make to its own organisation, as an administrator would through
/// the write endpoints (each one is audited and bumps versions).
public enum SimulatedChange: Sendable, Equatable {
    /// Adds users whose names sort first, each with the Employee role at home.
    case insertUsers(count: Int)
    /// Renames the first user in name order so it sorts last (rows shift under a pager).
    case renameFirstUser
    /// Deletes the first role in name order that is not built-in and creates a copy with a new
    /// id and a name sorting first, moving its grants: a role recreated, list total unchanged.
    case recreateFirstRole
    /// Grants a custom role to a role-enabled group in a division.
    case grantRoleToGroup
    /// Adds a user to the first role-enabled group.
    case addGroupMember
    /// `count` changes of every kind an administrator makes — grants to users, groups and OAuth
    /// clients and their removal, memberships, role edits, recreations and deletions, division
    /// moves, users added and deleted, OAuth clients created, edited and deleted, renames —
    /// chosen by `seed` through the audited write paths.
    case randomMix(seed: UInt64, count: Int)
    /// `count` changes as administrators make them day to day: memberships, grants to users and
    /// user edits mostly, role edits and OAuth client edits now and then, no recreations.
    case dailyMix(seed: UInt64, count: Int)
    /// Grants a custom role to an active user in a work division (the simulator's switch for an
    /// unaudited change: apply it with `audited: false`).
    case grantRoleToUser
}

final class FaultController: Sendable {
    private struct State {
        var plan = FaultPlan()
        var triggers: [MutationTrigger] = []
        var rng = SeededRandom(seed: 0x5EED)
    }

    enum Decision: Equatable {
        case proceed
        case drop
        case serverError(Int)
        case rateLimited(retryAfter: Int)
        /// Expire every token, then serve the request (which will meet a 401).
        case expireTokens
    }

    private let state = Mutex(State())

    var plan: FaultPlan {
        get { state.withLock { $0.plan } }
        set { state.withLock { $0.plan = newValue } }
    }

    func addTrigger(_ trigger: MutationTrigger) {
        state.withLock { $0.triggers.append(trigger) }
    }

    func latency() -> Duration {
        state.withLock { state in
            guard state.plan.latencyJitter > .zero else { return state.plan.latency }
            let jitter = state.plan.latencyJitter / 1000 * Int.random(in: 0...1000, using: &state.rng)
            return state.plan.latency + jitter
        }
    }

    /// What to do with a request before it is served. Consumes counters.
    func decide(path: String) -> Decision {
        state.withLock { state in
            guard path.hasPrefix(state.plan.pathPrefix) else { return .proceed }
            if state.plan.expireTokensAfterRequests > 0 {
                state.plan.expireTokensAfterRequests -= 1
                if state.plan.expireTokensAfterRequests == 0 { return .expireTokens }
            }
            if state.plan.dropConnections > 0 {
                state.plan.dropConnections -= 1
                return .drop
            }
            if state.plan.dropRate > 0, state.rng.chance(state.plan.dropRate) { return .drop }
            if state.plan.serverErrorBurst > 0 {
                state.plan.serverErrorBurst -= 1
                return .serverError(state.plan.serverErrorStatus)
            }
            if state.plan.serverErrorRate > 0, state.rng.chance(state.plan.serverErrorRate) {
                return .serverError(state.plan.serverErrorStatus)
            }
            if state.plan.rateLimitStorm > 0 {
                state.plan.rateLimitStorm -= 1
                return .rateLimited(retryAfter: state.plan.stormRetryAfterSeconds)
            }
            return .proceed
        }
    }

    /// Whether this successful reply should be corrupted. Consumes the counter.
    func corruptReply(path: String) -> Bool {
        state.withLock { state in
            guard path.hasPrefix(state.plan.pathPrefix), state.plan.malformedReplies > 0 else { return false }
            state.plan.malformedReplies -= 1
            return true
        }
    }

    /// What happens to the next audit push. Consumes counters.
    func takePushFaults() -> (drop: Bool, duplicate: Bool, lead: Double) {
        state.withLock { state in
            var result = (drop: false, duplicate: false, lead: 0.0)
            if state.plan.droppedPushes > 0 {
                state.plan.droppedPushes -= 1
                result.drop = true
            } else if state.plan.duplicatedPushes > 0 {
                state.plan.duplicatedPushes -= 1
                result.duplicate = true
            }
            if state.plan.pushesAhead > 0 {
                state.plan.pushesAhead -= 1
                result.lead = max(0, state.plan.pushLeadSeconds)
            }
            return result
        }
    }

    /// Triggers due after serving `pageNumber` of `path`; each fires once.
    func dueMutations(path: String, pageNumber: Int) -> [SimulatedChange] {
        state.withLock { state in
            var due: [SimulatedChange] = []
            state.triggers.removeAll { trigger in
                guard path.hasPrefix(trigger.pathPrefix), pageNumber == trigger.pageNumber else { return false }
                due.append(trigger.mutation)
                return true
            }
            return due
        }
    }
}
