import AuditCore
import AuditStore
import Foundation

/// Why a drift check did not compare: typed, so callers match cases, not prose.
public enum DriftCheckRefusal: Error, Sendable, Equatable, CustomStringConvertible {
    /// The current snapshot is partial: comparing it would report everything it could not read
    /// as removed.
    case partialCollection(problems: [CollectionProblem])
    /// No baseline has been accepted yet.
    case noBaseline

    public var description: String {
        switch self {
        case .partialCollection(let problems):
            let first = problems.first.map { ": \($0.code) \($0.endpoint)" } ?? ""
            return "partial collection (\(problems.count) problem\(problems.count == 1 ? "" : "s")\(first)); not compared"
        case .noBaseline:
            return "no baseline yet: accept one with rbacwatch baseline accept"
        }
    }
}

/// One drift check — keep the collected snapshot, compare it with the baseline, review the
/// approvals, record what was found, attribute it — the one pipeline `diff`, `watch`, `tui`
/// and `demo` share. Its decisions are plain functions (`refusal`, `DriftArrivals`); the store
/// and the audit source are its only I/O.
public enum DriftCheck {
    /// What to compare against.
    public enum Against: Sendable {
        /// The accepted baseline in the store (the check is refused without one).
        case accepted
        /// A snapshot from elsewhere (a file), with no version, as its canonical document: the
        /// comparison decodes only what differs, so the baseline is never held decoded.
        case document([UInt8])
    }

    /// What a check found.
    public struct Outcome: Sendable {
        public var result: DriftResult
        public var review: DriftReview
        /// The accepted baseline compared against (nil for `.snapshot`).
        public var baseline: Baseline?
        /// When the baseline's snapshot was collected, if the store knows.
        public var baselineCollectedAt: Date?
        /// The role lineage after this check.
        public var lineage: RoleLineage
        /// Attribution, when it was asked for.
        public var attribution: DriftAttributor.Outcome?
    }

    /// How the check runs.
    public struct Settings: Sendable {
        public var options = DriftOptions()
        /// Compare a partial snapshot anyway (`diff --allow-partial`).
        public var allowPartial = false
        /// Store the current snapshot (false for one read from a file) and keep this many
        /// besides the baselines'.
        public var keepSnapshot = true
        public var keepSnapshots = 10
        /// Link items to audit events (the store's, and the source's when given).
        public var attribute = true
        /// Where unapproved drift items are delivered (nil: nowhere). Each is queued once, with
        /// the check that records it, as soon as its attribution is known.
        public var delivery: DeliveryRouter?

        public init() {}
    }

    /// Pure: why `snapshot` may not be compared, if it may not.
    public static func refusal(for snapshot: Snapshot, allowPartial: Bool) -> DriftCheckRefusal? {
        snapshot.isPartial && !allowPartial ? .partialCollection(problems: snapshot.problems) : nil
    }

    /// The current state as a check compares it: the snapshot's canonical document (the stored
    /// form) and the little else the check needs, so the decoded snapshot need not be held.
    public struct Current: Sendable {
        public var document: [UInt8]
        public var organization: Organization?
        public var collectedAt: Date
    }

    /// Runs the check on `current`, collected at `collectedAt`.
    ///
    /// - Throws: `DriftCheckRefusal` when it cannot compare, or the store's error.
    public static func run(
        current: Snapshot, collectedAt: Date, against baseline: Against = .accepted, settings: Settings = Settings(),
        store: any AuditStore, source: (any AuditSource)? = nil, now: Date = Date()
    ) async throws -> Outcome {
        let kept = try await keep(current, collectedAt: collectedAt, settings: settings, store: store)
        return try await compare(kept, against: baseline, settings: settings, store: store, source: source, now: now)
    }

    /// A check's first half: refuses a partial snapshot, stores it (`settings.keepSnapshot`) and
    /// returns its document. A caller that can let go of the decoded snapshot before `compare`
    /// (`rbacwatch diff`) holds one copy of the organisation less while the baseline is read.
    public static func keep(_ current: Snapshot, collectedAt: Date, settings: Settings, store: any AuditStore) async throws -> Current {
        if let refusal = refusal(for: current, allowPartial: settings.allowPartial) { throw refusal }
        let document = current.canonicalJSON()
        if settings.keepSnapshot {
            try await store.storeSnapshot(current, document: document, collectedAt: collectedAt)
            try await store.pruneSnapshots(keepLatest: settings.keepSnapshots)
        }
        return Current(document: document, organization: current.organization, collectedAt: collectedAt)
    }

    /// A check's second half: compares the documents (`DriftEngine.diff(baselineBytes:currentBytes:)`:
    /// only what differs is decoded), records the lineage and findings, reviews and attributes.
    public static func compare(
        _ current: Current, against baseline: Against = .accepted, settings: Settings = Settings(), store: any AuditStore,
        source: (any AuditSource)? = nil, now: Date = Date()
    ) async throws -> Outcome {
        let record: Baseline?
        let baselineDocument: [UInt8]
        let baselineAt: Date?
        switch baseline {
        case .accepted:
            guard let (accepted, document) = try await store.baselineDocument() else { throw DriftCheckRefusal.noBaseline }
            record = accepted
            baselineDocument = document
            baselineAt = await DriftAttributor.collectedAt(rootHash: accepted.rootHash, store: store)
        case .document(let document):
            record = nil
            baselineDocument = document
            baselineAt = nil
        }
        let lineage = try await store.roleLineage()
        let result: DriftResult
        do {
            result = try DriftEngine.diff(baselineBytes: baselineDocument, currentBytes: current.document, lineage: lineage, options: settings.options).result
        } catch {
            // The current document was encoded here; a document that cannot be read is the stored baseline's.
            throw StoreError(.corrupt, "the baseline's snapshot \(record.map { "(version \($0.version)) " } ?? "")cannot be read: \(error)")
        }
        try await store.recordLineage(result.newLineage, at: now)
        let review = DriftReview(result: result, approvals: try await store.approvals(), now: now)
        let attribution = settings.attribute
            ? await DriftAttributor.attribute(result.items, store: store, baselineAt: baselineAt, currentAt: current.collectedAt, source: source)
            : nil
        let deliveries =
            settings.delivery.map {
                Self.deliveryItems(
                    review: review, attribution: attribution?.attribution, router: $0, organization: current.organization, at: now, baselineVersion: record?.version)
            } ?? []
        try await store.recordFindings(result.items, baselineVersion: record?.version, at: now, deliveries: deliveries)
        return Outcome(
            result: result, review: review, baseline: record, baselineCollectedAt: baselineAt, lineage: try await store.roleLineage(),
            attribution: attribution)
    }
}

extension DriftCheck {
    /// The comparison of a stored snapshot with the accepted baseline, recording nothing: what
    /// the dashboard shows at start while its first collection runs. Nil without a baseline.
    public static func preview(
        current: Snapshot, collectedAt: Date, settings: Settings = Settings(), store: any AuditStore, now: Date = Date()
    ) async throws -> Outcome? {
        guard let (accepted, baselineSnapshot) = try await store.baselineSnapshot() else { return nil }
        let baselineAt = await DriftAttributor.collectedAt(rootHash: accepted.rootHash, store: store)
        let lineage = try await store.roleLineage()
        let result = DriftEngine.diff(baseline: baselineSnapshot, current: current, lineage: lineage, options: settings.options)
        let review = DriftReview(result: result, approvals: try await store.approvals(), now: now)
        let attribution = settings.attribute
            ? await DriftAttributor.attribute(result.items, store: store, baselineAt: baselineAt, currentAt: collectedAt, now: now) : nil
        return Outcome(
            result: result, review: review, baseline: accepted, baselineCollectedAt: baselineAt, lineage: lineage, attribution: attribution)
    }

    /// Pure: the payloads of the unapproved items whose attribution is settled (an item still
    /// waiting for its audit event is queued by a later check, explained).
    public static func deliveryItems(
        review: DriftReview, attribution: [String: ItemAttribution]?, router: DeliveryRouter, organization: Organization?, at now: Date,
        baselineVersion: Int?
    ) -> [OutboxItem] {
        review.items.filter { !$0.state.isApproved }.flatMap { reviewed -> [OutboxItem] in
            let attributed = attribution?[reviewed.item.fingerprint]
            if attributed?.status == .pending { return [] }
            return router.items(
                for: DeliveryPayload.driftItem(reviewed, attribution: attributed, organization: organization, detectedAt: now, baselineVersion: baselineVersion))
        }
    }
}

/// When each drift item was first seen in a run, and which arrived after the first check (the
/// dashboard's "new" highlight): a pure value each check updates.
public struct DriftArrivals: Sendable, Equatable {
    public private(set) var firstSeen: [String: Date] = [:]
    public private(set) var appeared: [String: Date] = [:]
    private var checks = 0

    public init() {}

    /// Takes the items of a check made at `now`. Items present at the first check are not new;
    /// later ones are, from the check that first saw them. Items that went are forgotten.
    public mutating func update(fingerprints: [String], at now: Date) {
        checks += 1
        let initial = checks == 1
        var seen: [String: Date] = [:]
        var arrived: [String: Date] = [:]
        for fingerprint in fingerprints {
            seen[fingerprint] = firstSeen[fingerprint] ?? now
            if let when = appeared[fingerprint] ?? (initial || firstSeen[fingerprint] != nil ? nil : now) {
                arrived[fingerprint] = when
            }
        }
        firstSeen = seen
        appeared = arrived
    }
}
