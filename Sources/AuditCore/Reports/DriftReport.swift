import Foundation

/// Everything a drift report shows: the baseline it compares against, the review, and when.
public struct DriftReport: Sendable {
    public struct BaselineInfo: Sendable, Equatable {
        public var version: Int?
        public var rootHash: String
        public var acceptedAt: Date?
        public var acceptedBy: String?

        public init(version: Int?, rootHash: String, acceptedAt: Date?, acceptedBy: String?) {
            self.version = version
            self.rootHash = rootHash
            self.acceptedAt = acceptedAt
            self.acceptedBy = acceptedBy
        }
    }

    public var baseline: BaselineInfo
    public var review: DriftReview
    /// Severity at or above which unapproved items fail the gate, if one is set.
    public var failOn: Severity?
    /// Who made each item happen, by fingerprint (nil: attribution was not possible — no audit
    /// events were at hand; `attributionNote` says why).
    public var attribution: [String: ItemAttribution]?
    public var coverage: AttributionCoverage?
    public var attributionNote: String?

    public init(
        baseline: BaselineInfo, review: DriftReview, failOn: Severity?, attribution: [String: ItemAttribution]? = nil,
        coverage: AttributionCoverage? = nil, attributionNote: String? = nil
    ) {
        self.baseline = baseline
        self.review = review
        self.failOn = failOn
        self.attribution = attribution
        self.coverage = coverage
        self.attributionNote = attributionNote
    }

    /// Items no audit event explains (empty when attribution was not possible).
    public var unexplained: [ReviewedItem] {
        guard let attribution else { return [] }
        return review.items.filter { attribution[$0.item.fingerprint]?.status == .unexplained }
    }

    /// Unapproved items at or above the gate.
    public var failing: [ReviewedItem] {
        failOn.map { review.unapproved(atLeast: $0) } ?? []
    }

    public enum Format: String, Sendable, CaseIterable {
        case table, json, csv, ocsf
    }

    public func render(_ format: Format, expand: Bool = false) -> [UInt8] {
        switch format {
        case .table: Array(tableText(expand: expand).utf8)
        case .json: TerminalSafe.sanitizeJSON(json())
        case .csv: Array(csv().utf8)
        case .ocsf: TerminalSafe.sanitizeJSON(ocsf())
        }
    }

    /// ISO-8601 in UTC with milliseconds.
    public static func timestamp(_ date: Date) -> String {
        date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true))
    }

    static func status(_ state: ReviewState) -> String {
        switch state {
        case .unapproved: "unapproved"
        case .approved(_, let inherited): inherited ? "approved-by-cause" : "approved"
        case .lapsed: "lapsed"
        }
    }
}
