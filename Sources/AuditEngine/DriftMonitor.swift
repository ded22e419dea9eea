import AuditCore
import AuditStore
import Foundation

/// What one monitoring cycle found, pushed to whoever watches (the dashboard, a daemon).
public struct MonitorUpdate: Sendable {
    public enum Status: Sendable, Equatable {
        case starting
        case collecting
        case ready
        case failed(String)
    }

    public var status: Status
    public var snapshot: Snapshot?
    public var review: DriftReview?
    public var baselineVersion: Int?
    public var lineage: RoleLineage
    /// When each current drift item was first seen in this run.
    public var firstSeen: [String: Date]
    /// Items that appeared after the first collection, and when (for "new" highlights).
    public var appeared: [String: Date]
    public var collectedAt: Date?
    public var nextRefresh: Date?
    /// Collections that failed in this run, oldest first (the last 50 distinct ones).
    public var failures: [CollectionFailure] = []
    /// Who made each item happen, from the audit events in the store (nil: no audit feed).
    public var attribution: [String: ItemAttribution]?
}

struct MonitorError: Error, CustomStringConvertible {
    var description: String
}

/// A failed collection; the same failure repeating is one entry with a count (no alert storm).
public struct CollectionFailure: Sendable, Equatable {
    /// When it first happened, and most recently.
    public var first: Date
    public var at: Date
    public var message: String
    public var count: Int

    public init(first: Date, at: Date, message: String, count: Int = 1) {
        self.first = first
        self.at = at
        self.message = message
        self.count = count
    }
}

extension [CollectionFailure] {
    mutating func record(_ message: String, at date: Date) {
        if let last = self.last, last.message == message {
            self[count - 1].at = date
            self[count - 1].count += 1
        } else {
            append(CollectionFailure(first: date, at: date, message: message))
            if count > 50 { removeFirst(count - 50) }
        }
    }
}

/// Collects the organisation and compares it with the accepted baseline on an interval, in the
/// background. Cycles never overlap: a refresh asked for during a cycle runs right after it.
/// Every result — or failure — is pushed as an immutable `MonitorUpdate`, newest only.
public actor DriftMonitor {
    public typealias Collect = @Sendable () async throws -> Snapshot

    private let store: any AuditStore
    private let collect: Collect
    private let interval: Duration
    private let options: DriftOptions
    private let keepSnapshots: Int
    private let continuation: AsyncStream<MonitorUpdate>.Continuation
    public nonisolated let updates: AsyncStream<MonitorUpdate>

    private var latest: MonitorUpdate
    private var firstSeen: [String: Date] = [:]
    private var appeared: [String: Date] = [:]
    private var wakeUp: CheckedContinuation<Void, Never>?
    private var refreshRequested = false
    private var cycles = 0
    private var baselineCollectedAt: Date?

    public init(store: any AuditStore, interval: Duration, options: DriftOptions = DriftOptions(), keepSnapshots: Int = 10, collect: @escaping Collect) {
        self.store = store
        self.collect = collect
        self.interval = interval
        self.options = options
        self.keepSnapshots = keepSnapshots
        (updates, continuation) = AsyncStream.makeStream(of: MonitorUpdate.self, bufferingPolicy: .bufferingNewest(1))
        latest = MonitorUpdate(
            status: .starting, snapshot: nil, review: nil, baselineVersion: nil, lineage: RoleLineage(), firstSeen: [:],
            appeared: [:], collectedAt: nil, nextRefresh: nil)
    }

    /// Runs cycles until the task is cancelled.
    public func run() async {
        continuation.yield(latest)
        while !Task.isCancelled {
            await cycle()
            await waitForNextCycle()
        }
        continuation.finish()
    }

    /// Starts a cycle now (or right after the running one).
    public func refresh() {
        refreshRequested = true
        wakeUp?.resume()
        wakeUp = nil
    }

    /// Approves an item in the store, then re-applies approvals to the last comparison without
    /// collecting again.
    public func approve(fingerprint: String, ticket: String?, note: String?, lifetime: TimeInterval, approver: String) async throws -> Approval {
        let now = Date()
        let approval = Approval(
            fingerprint: fingerprint, ticket: ticket, note: note, approver: approver, createdAt: now, expiresAt: now.addingTimeInterval(lifetime))
        try await store.addApproval(approval)
        if let result = latest.review?.result {
            latest.review = DriftReview(result: result, approvals: try await store.approvals(), now: Date())
            continuation.yield(latest)
        }
        return approval
    }

    /// Links the last comparison's items to the audit events in the store again (the audit feed
    /// moved on), without collecting.
    public func reattribute() async {
        guard let result = latest.review?.result, let collectedAt = latest.collectedAt else { return }
        let outcome = await DriftAttributor.attribute(result.items, store: store, baselineAt: baselineCollectedAt, currentAt: collectedAt)
        guard outcome.attribution != latest.attribution else { return }
        latest.attribution = outcome.attribution
        continuation.yield(latest)
    }

    private func waitForNextCycle() async {
        if refreshRequested {
            refreshRequested = false
            return
        }
        let deadline = ContinuousClock.now + interval
        let timer = Task { [weak self] in
            try? await Task.sleep(until: deadline)
            await self?.refresh()
        }
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                if refreshRequested {
                    continuation.resume()
                } else {
                    wakeUp = continuation
                }
            }
        } onCancel: {
            Task { await self.refresh() }
        }
        refreshRequested = false
        timer.cancel()
    }

    private func cycle() async {
        cycles += 1
        latest.status = .collecting
        continuation.yield(latest)
        do {
            let snapshot = try await collect()
            let now = Date()
            if snapshot.isPartial {
                // Comparing a partial snapshot would report everything it could not read as removed.
                let first = snapshot.problems.first.map { ": \($0.code) \($0.endpoint)" } ?? ""
                throw MonitorError(
                    description: "partial collection (\(snapshot.problems.count) problem\(snapshot.problems.count == 1 ? "" : "s")\(first)); not compared")
            }
            try await store.storeSnapshot(snapshot, collectedAt: now)
            try await store.pruneSnapshots(keepLatest: keepSnapshots)
            guard let (baseline, baselineSnapshot) = try await store.baselineSnapshot() else {
                let message = "no baseline yet: accept one with rbacwatch baseline accept"
                latest.status = .failed(message)
                latest.failures.record(message, at: now)
                latest.snapshot = snapshot
                latest.collectedAt = now
                latest.nextRefresh = now.addingTimeInterval(Self.seconds(interval))
                continuation.yield(latest)
                return
            }
            let lineage = try await store.roleLineage()
            let result = DriftEngine.diff(baseline: baselineSnapshot, current: snapshot, lineage: lineage, options: options)
            try await store.recordLineage(result.newLineage, at: now)
            try await store.recordFindings(result.items, baselineVersion: baseline.version, at: now)
            let review = DriftReview(result: result, approvals: try await store.approvals(), now: now)
            // Items present at the first collection are not "new"; later ones are, from now.
            let initial = cycles == 1
            var seen: [String: Date] = [:]
            var arrived: [String: Date] = [:]
            for item in result.items {
                seen[item.fingerprint] = firstSeen[item.fingerprint] ?? now
                if let when = appeared[item.fingerprint] ?? (initial || firstSeen[item.fingerprint] != nil ? nil : now) {
                    arrived[item.fingerprint] = when
                }
            }
            firstSeen = seen
            appeared = arrived
            let failures = latest.failures
            baselineCollectedAt = await DriftAttributor.collectedAt(rootHash: baseline.rootHash, store: store)
            let attribution = await DriftAttributor.attribute(result.items, store: store, baselineAt: baselineCollectedAt, currentAt: now)
            latest = MonitorUpdate(
                status: .ready, snapshot: snapshot, review: review, baselineVersion: baseline.version,
                lineage: try await store.roleLineage(), firstSeen: seen, appeared: arrived, collectedAt: now,
                nextRefresh: now.addingTimeInterval(Self.seconds(interval)), failures: failures, attribution: attribution.attribution)
        } catch {
            let message = Self.describe(error)
            latest.status = .failed(message)
            latest.failures.record(message, at: Date())
            latest.nextRefresh = Date().addingTimeInterval(Self.seconds(interval))
        }
        continuation.yield(latest)
    }

    static func seconds(_ duration: Duration) -> TimeInterval {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    static func describe(_ error: any Error) -> String {
        String(describing: error)
    }
}
