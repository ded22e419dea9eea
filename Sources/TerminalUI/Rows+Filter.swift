import AuditCore
import AuditEngine
import Foundation

/// What the filter and `:` queries look at in a row.
protocol FilterableRow {
    var id: String { get }
    var search: String { get }
    var filterRisk: Severity? { get }
    var filterState: String? { get }
    var hasDrift: Bool { get }
    var hasUnapproved: Bool { get }
}

extension UserRow: FilterableRow {
    var filterRisk: Severity? { risk }
    var filterState: String? { state }
    var hasDrift: Bool { drift > 0 }
    var hasUnapproved: Bool { drift > 0 }
}

extension RoleRow: FilterableRow {
    var filterRisk: Severity? { risk }
    var filterState: String? { nil }
    var hasDrift: Bool { drift > 0 }
    var hasUnapproved: Bool { drift > 0 }
}

extension InheritanceRow: FilterableRow {
    var filterRisk: Severity? { nil }
    var filterState: String? { nil }
    var hasDrift: Bool { false }
    var hasUnapproved: Bool { false }
}

extension FeedRow: FilterableRow {
    var filterRisk: Severity? { severity }
    var filterState: String? { nil }
    var hasDrift: Bool { true }
    var hasUnapproved: Bool { !state.isApproved }
}

