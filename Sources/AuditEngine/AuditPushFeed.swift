import AuditCore
import Foundation
import Logging

public struct PushSettings: Sendable {
    /// Topics a channel holds (the API's limit).
    public var topicsPerChannel = 1000
    /// Channels opened at most (the API keeps 20 a client; other integrations need some).
    public var maxChannels = 10
    /// A channel is replaced this long before it expires.
    public var renewBefore: TimeInterval = 600
    /// Waits between attempts after a failure: doubling from the first to the last.
    public var firstBackoff: TimeInterval = 1
    public var maxBackoff: TimeInterval = 60
    /// Pushes judged together when they arrive within this of each other.
    public var batchWindow: Duration = .milliseconds(20)

    public init() {}
}

/// Whether audit events arrive pushed, for the header, `/readyz` and metrics.
public struct PushHealth: Sendable, Equatable {
    public enum State: Sendable, Equatable {
        /// Not started yet, or no topics to watch.
        case idle
        case live
        /// Push is down; polling carries on. Why, and since when.
        case pollingOnly(reason: String, since: Date)
        /// The client may not subscribe (or push is off): polling only, for good.
        case off(reason: String)
    }

    public var state: State = .idle
    public var pushes = 0
    public var reconnects = 0
    public var subscriptions = 0
    public var channels = 0

    public init() {}

    /// `audit push` / `audit polling only: socket closed 2m ago`.
    public func summary(now: Date) -> String {
        pollingReason(now: now).map { "audit polling only: \($0)" } ?? "audit push"
    }

    public var isLive: Bool { state == .live }

    /// Why audit events are polled only (nil while push is live).
    public func pollingReason(now: Date) -> String? {
        switch state {
        case .live: nil
        case .idle: "push starting"
        case .pollingOnly(let reason, let since): "\(reason) \(IngestionHealth.duration(now.timeIntervalSince(since))) ago"
        case .off(let reason): reason
        }
    }
}

/// Keeps notification channels subscribed to the audit topics of the entities that matter for
/// access, listens on their sockets, and hands every pushed audit event to the ingestor (which
/// judges it at once; the polls stay the source of truth). Reconnects with backoff, replaces
/// channels before they expire, resubscribes when the entities change, and gives up for good —
/// once, saying so — when the client may not subscribe.
public actor AuditPushFeed {
    private let source: any AuditPushSource
    private let ingestor: AuditIngestor
    private let clock: any WallClock
    private let settings: PushSettings
    private let logger: Logger
    private var wanted: [String] = []
    /// Bumped when `wanted` changes: the channels in use are resubscribed.
    private var generation = 0
    private var live: [(channel: NotificationChannel, topics: [String])] = []
    public private(set) var health = PushHealth()
    private let continuation: AsyncStream<PushHealth>.Continuation
    /// Each change of health, and each batch of pushes judged (the events it named).
    public nonisolated let updates: AsyncStream<PushHealth>
    private let onPushed: @Sendable ([AuditEvent]) async -> Void

    public init(
        source: any AuditPushSource, ingestor: AuditIngestor, clock: any WallClock = SystemWallClock(), settings: PushSettings = PushSettings(),
        logger: Logger = Logger(label: "rbacwatch.push", factory: { _ in SwiftLogNoOpLogHandler() }),
        onPushed: @escaping @Sendable ([AuditEvent]) async -> Void = { _ in }
    ) {
        self.source = source
        self.ingestor = ingestor
        self.clock = clock
        self.settings = settings
        self.logger = logger
        self.onPushed = onPushed
        (updates, continuation) = AsyncStream.makeStream(of: PushHealth.self, bufferingPolicy: .bufferingNewest(8))
    }

    /// The audit topics of every role, every group that holds a role and every OAuth client of
    /// `snapshot`: the entities whose changes move access.
    public static func topics(for snapshot: Snapshot) -> [String] {
        var topics = Set<String>()
        for role in snapshot.roles { topics.insert(NotificationMessage.auditTopic(entityType: "Role", entityId: role.id)) }
        for grant in snapshot.grants where grant.subjectKind == .group {
            topics.insert(NotificationMessage.auditTopic(entityType: "DirectoryGroup", entityId: grant.subjectId))
        }
        for client in snapshot.oauthClients { topics.insert(NotificationMessage.auditTopic(entityType: "OAuthClient", entityId: client.id)) }
        return topics.sorted()
    }

    /// Whether a pushed event can change who has access: a drift check should read what it names.
    @Sendable public static func movesAccess(_ event: AuditEvent) -> Bool {
        ["Role", "DirectoryGroup", "OAuthClient", "User", "Team"].contains(event.entityType)
    }

    /// Watch these topics from now on (a collection's entities, say).
    public func want(_ topics: [String]) {
        let sorted = Array(Set(topics)).sorted()
        guard sorted != wanted else { return }
        wanted = sorted
        generation += 1
    }

    /// Adds topics for entities a push or a poll just named (a role created, say).
    public func add(_ topics: [String]) {
        let merged = Array(Set(wanted).union(topics)).sorted()
        guard merged != wanted else { return }
        wanted = merged
        generation += 1
    }

    /// Entities these events create are watched from now on: a role or an OAuth client made
    /// after start (found by a poll or a push), a group given a role.
    public func noticed(_ events: [AuditEvent]) {
        var topics: [String] = []
        for event in events {
            switch (event.entityType, event.action) {
            case ("Role", "Create"), ("OAuthClient", "Create"):
                topics.append(NotificationMessage.auditTopic(entityType: event.entityType, entityId: event.entityId))
            case ("Role", "MemberAdd"):
                // A grant to a group: its memberships now move access.
                if let subject = event.change("subjectType")?.newValues.first, ["PC_GROUP", "group"].contains(subject),
                    let id = event.change("subjectId")?.newValues.first
                {
                    topics.append(NotificationMessage.auditTopic(entityType: "DirectoryGroup", entityId: id))
                }
            default:
                break
            }
        }
        if !topics.isEmpty { add(topics) }
    }

    private func set(_ state: PushHealth.State) {
        guard health.state != state else { return }
        health.state = state
        continuation.yield(health)
    }

    /// Runs until cancelled.
    public func run() async {
        var backoff = settings.firstBackoff
        var downSince: Date?
        while !Task.isCancelled {
            if wanted.isEmpty {
                set(.idle)
                guard (try? await clock.sleep(for: .seconds(1))) != nil else { break }
                continue
            }
            let outcome = await session()
            switch outcome {
            case .refused(let reason):
                logger.warning("audit push is off, polling only: \(reason)")
                set(.off(reason: reason))
                continuation.finish()
                return
            case .renew:
                // Not live until the new channel's sockets are open: a change meanwhile is the poll's.
                backoff = settings.firstBackoff
                downSince = nil
                set(.pollingOnly(reason: "renewing the channel", since: clock.now()))
                continue
            case .ended(let reason, let healthy):
                if healthy { backoff = settings.firstBackoff }
                let now = clock.now()
                downSince = downSince ?? now
                set(.pollingOnly(reason: reason, since: downSince ?? now))
                health.reconnects += 1
                continuation.yield(health)
                logger.notice("audit push down, polling carries on; reconnecting", metadata: ["reason": "\(reason)"])
                guard (try? await clock.sleep(for: Bounded.duration(seconds: backoff, clampedTo: 0...settings.maxBackoff))) != nil else { break }
                backoff = min(settings.maxBackoff, backoff * 2)
            }
        }
        continuation.finish()
    }

    enum SessionEnd {
        case refused(String)
        case renew
        case ended(String, healthy: Bool)
    }

    /// Opens the channels the topics need, subscribes, listens until a socket ends, a channel
    /// is due for renewal or the topics need other channels.
    private func session() async -> SessionEnd {
        let chunks = self.chunks()
        if wanted.count > settings.topicsPerChannel * settings.maxChannels {
            logger.warning("more audit topics than \(settings.maxChannels) channels hold; the rest are polled only", metadata: ["topics": "\(wanted.count)"])
        }
        var opened: [(channel: NotificationChannel, topics: [String])] = []
        for chunk in chunks {
            do {
                let channel = try await source.openChannel()
                let answer = try await source.subscribe(channel, topics: chunk)
                let rejected = answer.filter { !$0.permitted }
                if !rejected.isEmpty, rejected.count == answer.count {
                    let missing = Set(rejected.flatMap(\.missingPermissions)).sorted()
                    return .refused("the client may not subscribe to audit topics" + (missing.isEmpty ? "" : " (it lacks \(missing.joined(separator: ", ")))"))
                }
                opened.append((channel, chunk))
            } catch let AuditPushError.refused(reason) {
                return .refused(reason)
            } catch {
                return .ended("channel: \(error)", healthy: false)
            }
        }
        live = opened
        health.channels = opened.count
        health.subscriptions = opened.reduce(0) { $0 + $1.topics.count }
        subscribedGeneration = generation
        let renewAt = Self.renewal(expires: opened.compactMap(\.channel.expires).min(), now: clock.now(), renewBefore: settings.renewBefore)
        let inbox = PushBatcher(window: settings.batchWindow) { [weak self] events in await self?.judge(events) }
        // Live once every socket is open: a change before that is the poll's to find.
        opening = opened.count
        let end: SessionEnd = await withTaskGroup(of: SessionEnd.self) { group in
            for (channel, _) in opened {
                group.addTask { [source] in
                    do {
                        let how = try await source.listen(channel, onOpen: { [weak self] in await self?.socketOpened() }) { message in
                            if case .audit(_, let event) = message { await inbox.add(event) }
                        }
                        switch how {
                        case .closed(warned: true): return .renew
                        case .closed(warned: false): return .ended("socket closed", healthy: true)
                        case .silent: return .ended("socket silent", healthy: true)
                        }
                    } catch {
                        return .ended("socket: \(error)", healthy: false)
                    }
                }
            }
            group.addTask { [weak self] in
                // Renewal and resubscription, checked once a second.
                while !Task.isCancelled {
                    guard let self, (try? await self.clock.sleep(for: .seconds(1))) != nil else { return .ended("stopped", healthy: true) }
                    if self.clock.now() >= renewAt { return .renew }
                    if await self.generation != self.subscribedGeneration {
                        if let end = await self.resubscribe() { return end }
                    }
                }
                return .ended("stopped", healthy: true)
            }
            let first = await group.next() ?? .ended("stopped", healthy: true)
            group.cancelAll()
            return first
        }
        await inbox.flush()
        live = []
        return end
    }

    /// The wanted topics, a channel's worth each, as many channels as allowed.
    private func chunks() -> [[String]] {
        stride(from: 0, to: min(wanted.count, settings.topicsPerChannel * settings.maxChannels), by: settings.topicsPerChannel).map {
            Array(wanted[$0..<min(wanted.count, $0 + settings.topicsPerChannel)])
        }
    }

    /// When to replace a channel: `renewBefore` ahead of the expiry the API gave — unless that
    /// expiry is implausible against this machine's clock (already past, or beyond two days: a
    /// clock off from the server's), when the channel is kept a day and its `socket_closing`
    /// warning, which always comes, renews it.
    public static func renewal(expires: Date?, now: Date, renewBefore: TimeInterval) -> Date {
        let fallback = now.addingTimeInterval(86_400 - renewBefore)
        guard let expires else { return fallback }
        let left = expires.timeIntervalSince(now)
        guard left > renewBefore + 60, left <= 2 * 86_400 else { return fallback }
        return expires.addingTimeInterval(-renewBefore)
    }

    /// The topics changed: the same channels take the new lists, or a new session opens when
    /// the count of channels must change.
    private func resubscribe() async -> SessionEnd? {
        let chunks = self.chunks()
        let started = generation
        guard chunks.count == live.count else { return .renew }
        for (index, chunk) in chunks.enumerated() where live[index].topics != chunk {
            do {
                _ = try await source.subscribe(live[index].channel, topics: chunk)
                live[index].topics = chunk
            } catch {
                return .ended("resubscribing: \(error)", healthy: false)
            }
        }
        health.subscriptions = live.reduce(0) { $0 + $1.topics.count }
        continuation.yield(health)
        // Topics that changed while resubscribing are taken at the next check.
        subscribedGeneration = started
        return nil
    }

    /// Sockets of the session not open yet.
    private var opening = 0

    private func socketOpened() {
        opening -= 1
        if opening == 0 { set(.live) }
    }

    /// The `generation` the channels in use are subscribed for.
    private var subscribedGeneration = 0

    private func judge(_ events: [AuditEvent]) async {
        health.pushes += events.count
        _ = await ingestor.ingestPushed(events)
        noticed(events)
        continuation.yield(health)
        await onPushed(events)
    }
}

/// Collects pushes that arrive close together and judges them as one batch.
actor PushBatcher {
    private let window: Duration
    private let deliver: @Sendable ([AuditEvent]) async -> Void
    private var pending: [AuditEvent] = []
    private var scheduled = false

    init(window: Duration, deliver: @escaping @Sendable ([AuditEvent]) async -> Void) {
        self.window = window
        self.deliver = deliver
    }

    func add(_ event: AuditEvent) async {
        pending.append(event)
        guard !scheduled else { return }
        scheduled = true
        Task {
            try? await Task.sleep(for: window)
            await self.flush()
        }
    }

    func flush() async {
        scheduled = false
        let batch = pending
        pending = []
        if !batch.isEmpty { await deliver(batch) }
    }
}
