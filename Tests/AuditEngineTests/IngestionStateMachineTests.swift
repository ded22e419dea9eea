import AuditCore
import AuditEngine
import AuditStore
import Foundation
import Testing

/// The ingestion policy on its own: no source, no store, no clock but the dates the tests pass.
/// `World` answers the machine's actions from plain values, the way `AuditIngestor` answers them
/// from the API and the store.
@Suite("Ingestion state machine")
struct IngestionStateMachineTests {
    static let t0 = Date(timeIntervalSince1970: 1_795_000_000)

    static func event(_ id: String, at seconds: Double, service: String = "PeoplePermissions", role: String = "Queue Viewer") -> AuditEvent {
        AuditEvent(
            id: id, date: t0.addingTimeInterval(seconds), serviceName: service, entityType: "Role", action: "MemberAdd", entityId: "r-1",
            entityName: role, userId: "u-1", changes: [AuditEvent.Change(property: "divisionId", newValues: ["*"])])
    }

    /// What the machine's actions are answered from; it keeps what the machine writes.
    struct World {
        var known = ["PeoplePermissions"]
        var events: [AuditEvent] = []
        var checkpoint: IngestionCheckpoint?
        var recorded: [String: AuditEvent] = [:]
        var findings: [AuditFinding] = []
        var gaps: [IngestionGap] = []
        var quarantined: [QuarantinedRecord] = []
        /// Answers a fetch of this service with a truncation, when set.
        var truncate: (service: String, before: Date, reason: String)?
        /// The next fetch fails with this.
        var failNextFetch: IngestionStateMachine.Failure?
        /// Moves on every store write (the poll budget counts real time).
        var writeTakes: TimeInterval = 0
        var actions: [String] = []
        var fetches: [(from: Date, to: Date, service: String, realtime: Bool)] = []
        /// The ids each window asked the store about.
        var lookedUp: [[String]] = []
        var spans: [(from: Date, to: Date)] = []
        /// Writes overlap the next window as `AuditIngestor` runs them: a batch lands when the next
        /// step that needs the store (or the next write) comes.
        var pipelined = false
        /// The write with this number (from 0, over the world's life) fails.
        var failWrite: Int?
        var writes = 0

        /// Keeps what a batch writes; returns how many of its events were new.
        mutating func apply(_ batch: AuditBatch) -> Int {
            var added = 0
            for event in batch.events where recorded[event.id] == nil {
                recorded[event.id] = event
                added += 1
            }
            findings += batch.findings
            if let gap = batch.gap { gaps.append(gap) }
            quarantined += batch.quarantined
            checkpoint = batch.checkpoint
            return added
        }

        /// Runs one poll at `now`; returns its outcome.
        mutating func poll(_ machine: inout IngestionStateMachine, at now: Date) -> PollOutcome {
            var time = now
            var action = machine.startPoll(now: now)
            var inFlight: AuditBatch?
            for _ in 0..<10_000 {
                if let batch = inFlight {
                    switch action {
                    case .listServices, .fetch, .lookUp: break
                    default:
                        inFlight = nil
                        writes += 1
                        if failWrite == writes - 1 {
                            action = machine.failed(.failed("the disk holding the state file is full"))
                            continue
                        }
                        machine.written(count: apply(batch), took: .zero)
                    }
                }
                switch action {
                case .listServices:
                    actions.append("services")
                    action = machine.servicesListed(known).next
                case .readCheckpoint:
                    actions.append("checkpoint")
                    action = machine.checkpointRead(checkpoint)
                case .replay(let from, let to):
                    actions.append("replay")
                    action = machine.replayed(recorded.values.filter { $0.date >= from && $0.date < to })
                case .readApprovals:
                    actions.append("approvals")
                    action = machine.approvalsRead([], at: time)
                case .fetch(let from, let to, let service, let realtime):
                    actions.append("fetch")
                    fetches.append((from, to, service, realtime))
                    if let failure = failNextFetch {
                        failNextFetch = nil
                        action = machine.failed(failure)
                        continue
                    }
                    var read = AuditFetch(events: events.filter { $0.serviceName == service && $0.date >= from && $0.date < to })
                    if let truncate, truncate.service == service {
                        read.events = read.events.filter { $0.date < truncate.before }
                        read.truncation = AuditFetch.Truncation(before: truncate.before, reason: truncate.reason)
                    }
                    action = machine.fetched(read)
                case .lookUp(let ids, let from, let to):
                    lookedUp.append(ids)
                    spans.append((from, to))
                    action = machine.lookedUp(recorded.filter { ids.contains($0.key) && $0.value.date >= from && $0.value.date < to })
                case .record(let batch):
                    actions.append("record")
                    time = time.addingTimeInterval(writeTakes)
                    if pipelined {
                        inFlight = batch
                        action = machine.writing(at: time)
                    } else {
                        action = machine.recorded(count: apply(batch), took: .zero, at: time)
                    }
                case .countQuarantine:
                    action = machine.quarantineCounted(quarantined.count)
                case .finished(let outcome):
                    return outcome
                }
            }
            Issue.record("the poll did not finish within 10,000 actions")
            return PollOutcome()
        }
    }

    @Test("the first poll lists the services once, starts an hour back and reads it in windows up to now; events younger than the lag wait")
    func firstPoll() {
        var machine = IngestionStateMachine(rules: .defaults())
        var world = World()
        world.events = [Self.event("old", at: -1800), Self.event("young", at: -30)]
        let outcome = world.poll(&machine, at: Self.t0)
        #expect(world.actions.first == "services")
        #expect(machine.health.services == ["PeoplePermissions"])
        #expect(world.fetches.first?.from == Self.t0.addingTimeInterval(-3600 - 65), "the initial lookback, less the overlap")
        #expect(world.fetches.last?.to == Self.t0)
        #expect(world.fetches.allSatisfy { $0.realtime })
        #expect(outcome.fetched == 2)
        #expect(outcome.judgedIds == ["old"], "the young event is held for the lag")
        #expect(machine.buffered == 1)
        #expect(world.checkpoint?.highWater == Self.t0.addingTimeInterval(-60), "the mark stops at the settled edge")
        #expect(outcome.findings.map(\.ruleId).contains("RBW-003"))
        #expect(outcome.nextDelay == 60)

        world.actions = []
        let second = world.poll(&machine, at: Self.t0.addingTimeInterval(60))
        #expect(!world.actions.contains("services"), "the service list is read once per process")
        #expect(second.judgedIds == ["young"])
        #expect(second.new == 0, "the overlap fetched it again; the buffer already held it")
        #expect(machine.health.duplicatesSkipped == 1)
    }

    @Test("the store is asked only about ids nobody has seen: not the overlap's, not the buffer's, not the replay's; a rewritten one is still caught")
    func lookUpsOnlyNewIds() throws {
        var machine = IngestionStateMachine(rules: .defaults())
        var world = World()
        world.checkpoint = IngestionCheckpoint(highWater: Self.t0.addingTimeInterval(-120), updatedAt: Self.t0)
        world.events = [Self.event("a", at: -150), Self.event("b", at: -100), Self.event("c", at: -20)]
        _ = world.poll(&machine, at: Self.t0)
        #expect(Set(world.lookedUp.flatMap { $0 }) == ["a", "b", "c"], "a fresh machine knows nothing: the store answers")
        #expect(Set(world.recorded.keys) == ["a", "b"])

        // The next poll's overlap fetches a, b (judged and stored) and c (buffered) again.
        world.lookedUp = []
        world.events.append(Self.event("d", at: 30))
        var rewritten = Self.event("b", at: -100)
        rewritten.action = "MemberRemove"
        world.events[1] = rewritten
        let second = world.poll(&machine, at: Self.t0.addingTimeInterval(60))
        #expect(world.lookedUp.flatMap { $0 } == ["d"], "only the new id is looked up: \(world.lookedUp)")
        let reach = machine.lookUpReach
        let span = try #require(world.spans.last(where: { $0.to > $0.from }))
        #expect(span.from == Self.t0.addingTimeInterval(30 - reach) && span.to == Self.t0.addingTimeInterval(30 + reach),
            "the store is asked about d's date, give or take the reach: \(span)")
        #expect(second.judgedIds == ["c"])
        #expect(second.quarantined.map(\.eventId) == ["b"], "the same id with other content is caught from memory")

        // A new process (a restart) knows what its replay read from the store, and asks about the rest.
        var restarted = IngestionStateMachine(rules: .defaults())
        world.lookedUp = []
        world.actions = []
        let third = world.poll(&restarted, at: Self.t0.addingTimeInterval(120))
        #expect(world.actions.contains("replay"))
        #expect(Set(world.lookedUp.flatMap { $0 }) == ["d"], "c came back with the replay; d was only in the old buffer: \(world.lookedUp)")
        #expect(third.judgedIds == ["d"])
        #expect(!third.judgedIds.contains("c"), "stored events are not judged twice")
    }

    @Test("a window's batch is written while the next is read and judged: the same outcome as one step at a time; a write that fails loses nothing, its events judged again by the next poll")
    func pipelinedWrites() {
        // Three hours since the mark: windows of an hour from the mark less the overlap, an event
        // (and a finding) near the end of each — where the machine remembers what it judged.
        let events = [Self.event("w1", at: -2 * 3600 - 95), Self.event("w2", at: -3600 - 95), Self.event("w3", at: -95)]
        func world(pipelined: Bool) -> World {
            var world = World()
            world.checkpoint = IngestionCheckpoint(highWater: Self.t0.addingTimeInterval(-3 * 3600), updatedAt: Self.t0)
            world.events = events
            world.pipelined = pipelined
            return world
        }
        var stepwise = world(pipelined: false)
        var stepMachine = IngestionStateMachine(rules: .defaults())
        let expected = stepwise.poll(&stepMachine, at: Self.t0)
        #expect(expected.judgedIds == ["w1", "w2", "w3"] && expected.findings.count == 3 && stepwise.writes == 0)

        var overlapped = world(pipelined: true)
        var machine = IngestionStateMachine(rules: .defaults())
        let outcome = overlapped.poll(&machine, at: Self.t0)
        let windows = stepwise.actions.filter { $0 == "record" }.count
        #expect(windows >= 3 && overlapped.writes == windows, "every window written, in the background: \(overlapped.writes) of \(windows)")
        #expect(outcome.judgedIds == expected.judgedIds && outcome.findings.map(\.id) == expected.findings.map(\.id))
        #expect(outcome.storeWrites.count == windows && outcome.failed == nil)
        #expect(overlapped.checkpoint == stepwise.checkpoint && Set(overlapped.recorded.keys) == Set(stepwise.recorded.keys))
        #expect(machine.health.eventsJudged == 3 && machine.health.findings == 3)

        // The second window's write fails while the third is being judged.
        var failing = world(pipelined: true)
        failing.failWrite = 1
        var broken = IngestionStateMachine(rules: .defaults())
        let failed = failing.poll(&broken, at: Self.t0)
        #expect(failed.failed != nil)
        #expect(failed.judgedIds == ["w1"], "only what landed is counted: \(failed.judgedIds)")
        #expect(Set(failing.recorded.keys) == ["w1"])
        #expect((failing.checkpoint?.highWater ?? .distantFuture) < events[1].date, "the stored mark stops before the lost window")
        failing.lookedUp = []
        let next = failing.poll(&broken, at: Self.t0.addingTimeInterval(60))
        #expect(next.failed == nil)
        #expect(Set(failing.lookedUp.flatMap { $0 }).isSuperset(of: ["w2"]), "forgotten, so asked about again: \(failing.lookedUp)")
        #expect(Set(next.judgedIds) == ["w2", "w3"], "judged again, nothing lost: \(next.judgedIds)")
        #expect(Set(failing.recorded.keys) == ["w1", "w2", "w3"])
        #expect(Set(failing.findings.map(\.eventIds.last)) == ["w1", "w2", "w3"], "a finding for each, stored")
    }

    @Test("the services asked for are those the rules name that the API knows; every one when a rule matches any service")
    func services() {
        let named = RuleSet(rules: RuleSet.defaults().rules.filter { !$0.match.services.isEmpty })
        var machine = IngestionStateMachine(rules: named)
        _ = machine.startPoll(now: Self.t0)
        let (unknown, _) = machine.servicesListed(["PeoplePermissions", "Outbound", "Telephony"])
        #expect(machine.health.services == ["PeoplePermissions", "Telephony"])
        #expect(unknown.contains("Webhooks"), "named by a rule, not listed by the API: reported")
        var any = IngestionStateMachine(rules: .defaults())
        _ = any.startPoll(now: Self.t0)
        _ = any.servicesListed(["PeoplePermissions", "Outbound"])
        #expect(any.health.services == ["PeoplePermissions", "Outbound"], "a default rule matches any service")
    }

    @Test("a long pause is a gap: recorded once, in the first window's batch, and read in at most 48 windows")
    func gap() {
        var machine = IngestionStateMachine(rules: .defaults())
        var world = World()
        world.checkpoint = IngestionCheckpoint(highWater: Self.t0.addingTimeInterval(-7 * 86_400), updatedAt: Self.t0.addingTimeInterval(-7 * 86_400))
        world.events = (0..<20).map { Self.event("e\($0)", at: -Double($0) * 30_000 - 100) }
        let outcome = world.poll(&machine, at: Self.t0)
        #expect(world.gaps.count == 1)
        #expect(world.gaps.first?.start == Self.t0.addingTimeInterval(-7 * 86_400))
        #expect(world.gaps.first?.end == Self.t0.addingTimeInterval(-60))
        #expect(outcome.gap == world.gaps.first)
        #expect(world.fetches.count <= 48)
        #expect(world.actions.contains("replay"), "a stored checkpoint and a fresh process: the rules' memory is rebuilt first")
        #expect(outcome.judged == 20, "a week's backfill in one poll: \(outcome.judged)")
        #expect(world.fetches.allSatisfy { $0.realtime }, "a week is within the realtime query's reach")
    }

    @Test("beyond the realtime reach the windows use the async query")
    func asyncBeyondReach() {
        var machine = IngestionStateMachine(rules: .defaults())
        var world = World()
        world.checkpoint = IngestionCheckpoint(highWater: Self.t0.addingTimeInterval(-20 * 86_400), updatedAt: Self.t0)
        _ = world.poll(&machine, at: Self.t0)
        #expect(world.fetches.first?.realtime == false)
        #expect(world.fetches.last?.realtime == true)
    }

    @Test("an event back with different content is quarantined as rewritten; the same content is a duplicate")
    func rewritten() {
        var machine = IngestionStateMachine(rules: .defaults())
        var world = World()
        let original = Self.event("e1", at: -100)
        world.events = [original]
        _ = world.poll(&machine, at: Self.t0)
        var changed = original
        changed.action = "MemberRemove"
        world.events = [original, changed, Self.event("e2", at: -90)]
        world.events.removeFirst()
        let second = world.poll(&machine, at: Self.t0.addingTimeInterval(60))
        #expect(second.judgedIds == ["e2"])
        #expect(second.quarantined.map(\.kind) == [.rewritten])
        #expect(second.quarantined.first?.reason.contains("action MemberAdd → MemberRemove") == true)
        #expect(machine.health.quarantined == 1)
    }

    @Test("429s back off exponentially to the ceiling, a Retry-After over 5 minutes waits 5 minutes, and 5 minutes throttled opens the circuit")
    func backoffAndCircuit() {
        var machine = IngestionStateMachine(rules: .defaults())
        var world = World()
        _ = world.poll(&machine, at: Self.t0)
        var time = Self.t0
        var delays: [TimeInterval] = []
        for _ in 0..<4 {
            time = time.addingTimeInterval(60)
            world.failNextFetch = .rateLimited(retryAfter: 2)
            let outcome = world.poll(&machine, at: time)
            #expect(outcome.rateLimited)
            delays.append(outcome.nextDelay)
        }
        #expect(delays == [60, 120, 240, 480])
        #expect(machine.health.mode == .normal, "throttled for 180 s: not yet")
        time = time.addingTimeInterval(130)
        world.failNextFetch = .rateLimited(retryAfter: 999_999)
        let capped = world.poll(&machine, at: time)
        #expect(capped.nextDelay == 600, "the backoff ceiling (10 min) is over the Retry-After ceiling (5 min)")
        #expect(machine.health.retryAfterCapped == 999_999)
        #expect(machine.health.lastError?.contains("waiting 5m (the ceiling)") == true)
        #expect(machine.health.mode == .criticalOnly, "throttled for 310 s")
        #expect(machine.health.summary.contains("CRITICAL-ONLY"))
    }

    @Test("narrowed polling reads the critical services only and keeps its own mark; five quiet minutes widen it again at once")
    func circuitRecovers() {
        var settings = IngestionSettings()
        settings.circuitAfter = 0
        var machine = IngestionStateMachine(rules: .defaults(), settings: settings)
        var world = World()
        world.known = ["PeoplePermissions", "Telephony", "Routing"]
        _ = world.poll(&machine, at: Self.t0)
        let full = world.checkpoint?.highWater
        world.failNextFetch = .rateLimited(retryAfter: nil)
        _ = world.poll(&machine, at: Self.t0.addingTimeInterval(60))
        #expect(machine.health.mode == .criticalOnly)
        world.fetches = []
        let narrowed = world.poll(&machine, at: Self.t0.addingTimeInterval(120))
        #expect(Set(world.fetches.map(\.service)) == ["PeoplePermissions"])
        #expect(world.checkpoint?.highWater == full, "full coverage ended where the circuit opened")
        #expect(world.checkpoint?.criticalHighWater == Self.t0.addingTimeInterval(60))
        #expect(narrowed.nextDelay == 60, "not yet five minutes since the last 429")
        let widened = world.poll(&machine, at: Self.t0.addingTimeInterval(60 + 300))
        #expect(machine.health.mode == .normal)
        #expect(widened.nextDelay == 0, "at once, to backfill what narrowed polling skipped")
        world.fetches = []
        _ = world.poll(&machine, at: Self.t0.addingTimeInterval(60 + 300))
        #expect(Set(world.fetches.map(\.service)) == ["PeoplePermissions", "Telephony", "Routing"])
        #expect(world.fetches.first?.from == full?.addingTimeInterval(-65), "the backfill starts from where full coverage ended")
    }

    @Test("a poll stops at its time budget with its progress recorded and carries on at once; a window budget waits the interval")
    func budget() {
        var settings = IngestionSettings()
        settings.pollBudget = 100
        var machine = IngestionStateMachine(rules: .defaults(), settings: settings)
        var world = World()
        world.checkpoint = IngestionCheckpoint(highWater: Self.t0.addingTimeInterval(-5 * 3600), updatedAt: Self.t0)
        world.writeTakes = 60
        let outcome = world.poll(&machine, at: Self.t0)
        #expect(outcome.budgetSpent)
        #expect(outcome.nextDelay == 0)
        #expect(world.actions.filter { $0 == "record" }.count == 2, "two windows of 60 s each, then over the 100 s budget")
        #expect(world.checkpoint?.highWater == Self.t0.addingTimeInterval(-5 * 3600 - 65 + 2 * 3600))

        settings = IngestionSettings()
        settings.maxWindowsPerPoll = 2
        machine = IngestionStateMachine(rules: .defaults(), settings: settings)
        world = World()
        world.checkpoint = IngestionCheckpoint(highWater: Self.t0.addingTimeInterval(-5 * 3600), updatedAt: Self.t0)
        let windows = world.poll(&machine, at: Self.t0)
        #expect(windows.budgetSpent)
        #expect(windows.nextDelay == 60)
    }

    @Test("a source that stops without moving forward is asked again at the next poll, a millisecond on, not window after window")
    func stalledSource() {
        var machine = IngestionStateMachine(rules: .defaults())
        var world = World()
        let start = Self.t0.addingTimeInterval(-3600 - 65)
        world.truncate = ("PeoplePermissions", start, "the pages repeat")
        let outcome = world.poll(&machine, at: Self.t0)
        #expect(world.fetches.count == 1)
        #expect(world.checkpoint?.highWater == Self.t0.addingTimeInterval(-3600), "the stored mark never moves backwards")
        #expect(machine.health.truncated == "PeoplePermissions: the pages repeat")
        #expect(outcome.nextDelay == 60)
        world.truncate = nil
        world.fetches = []
        _ = world.poll(&machine, at: Self.t0.addingTimeInterval(60))
        #expect(machine.health.truncated == nil)
    }

    @Test("a failure mid-poll keeps what earlier windows recorded, says why, and the next success clears it")
    func failureThenRecovery() {
        var machine = IngestionStateMachine(rules: .defaults())
        var world = World()
        world.failNextFetch = .failed("the audit API answered 503")
        let failed = world.poll(&machine, at: Self.t0)
        #expect(failed.failed == "the audit API answered 503")
        #expect(machine.health.lastError == "the audit API answered 503")
        #expect(machine.health.lastSuccess == nil)
        #expect(world.checkpoint == nil, "nothing recorded")
        _ = world.poll(&machine, at: Self.t0.addingTimeInterval(60))
        #expect(machine.health.lastError == nil)
        #expect(machine.health.lastSuccess == Self.t0.addingTimeInterval(60))
        #expect(machine.health.summary == "audit lag 60s")
    }

    @Test("a future-dated event is counted, judged once held for the lag, and never moves the lag")
    func futureDated() {
        var machine = IngestionStateMachine(rules: .defaults())
        var world = World()
        world.events = [Self.event("future", at: 10 * 86_400)]
        // The window only reaches now; the source returns what it has, whatever its date.
        world.truncate = nil
        var read = AuditFetch(events: world.events)
        _ = machine.startPoll(now: Self.t0)
        _ = machine.servicesListed(["PeoplePermissions"])
        _ = machine.checkpointRead(nil)
        var action = machine.approvalsRead([], at: Self.t0)
        while case .fetch = action {
            action = machine.fetched(read)
            read = AuditFetch()
        }
        guard case .lookUp = action else {
            Issue.record("expected a look-up, got \(action)")
            return
        }
        guard case .record(let batch) = machine.lookedUp([:]) else {
            Issue.record("expected a record")
            return
        }
        #expect(batch.events.isEmpty, "held for the lag first")
        #expect(machine.health.futureDated == 1)
        world.checkpoint = batch.checkpoint
        world.recorded = [:]
        world.events = []
        let later = world.poll(&machine, at: Self.t0.addingTimeInterval(61))
        #expect(later.judgedIds == ["future"])
        #expect(machine.health.lastEvent == Self.t0.addingTimeInterval(61), "never past now")
    }
}
