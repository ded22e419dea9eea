import Foundation

/// The report for people: a header, counts, lapsed approvals, then one row per change, most
/// severe first. Effects are folded under their cause ("42 members gain …") unless `expand`.
/// Every name from the API is sanitised for the terminal.
extension DriftReport {
    public func tableText(expand: Bool = false) -> String {
        var lines: [String] = []
        let result = review.result
        var header = "Drift against baseline"
        if let version = baseline.version { header += " v\(version)" }
        if let at = baseline.acceptedAt { header += ", accepted \(Self.shortTime(at))" }
        if let by = baseline.acceptedBy { header += " by \(by)" }
        header += " (\(baseline.rootHash.prefix(12))) → current (\(result.currentRoot.prefix(12)))"
        lines.append(header)

        if review.items.isEmpty {
            lines.append("No drift: the current state matches the baseline.")
            return lines.map(TerminalSafe.sanitize).joined(separator: "\n") + "\n"
        }
        let counts = review.countsBySeverity
        let bySeverity = Severity.allCases.reversed().compactMap { severity -> String? in
            guard let count = counts[severity] else { return nil }
            return "\(count.total) \(severity.name)"
        }
        let unapproved = review.items.filter { !$0.state.isApproved }.count
        lines.append(
            "\(review.items.count) change\(review.items.count == 1 ? "" : "s"): \(bySeverity.joined(separator: ", ")) — "
                + "\(unapproved) unapproved, \(review.items.count - unapproved) approved")
        if let failOn {
            let failing = self.failing.count
            lines.append(
                failing == 0
                    ? "Gate --fail-on \(failOn.name): pass"
                    : "Gate --fail-on \(failOn.name): FAIL — \(failing) unapproved change\(failing == 1 ? "" : "s") at \(failOn.name) or above")
        }
        if let coverage {
            let unexplained = self.unexplained.count
            lines.append(
                "Attribution: \(coverage.events) audit event\(coverage.events == 1 ? "" : "s") about the changed entities, \(Self.shortTime(coverage.from)) – \(Self.shortTime(coverage.to)) (\(coverage.source)); "
                    + (unexplained == 0 ? "every change is explained" : "\(unexplained) change\(unexplained == 1 ? "" : "s") UNEXPLAINED (no audit event)"))
        }
        if let attributionNote { lines.append("Attribution: \(coverage == nil ? "not available — " : "")\(attributionNote)") }
        for approval in review.lapsed {
            lines.append(
                "Approval lapsed: \(approval.fingerprint.prefix(12)) approved by \(approval.approver)"
                    + (approval.ticket.map { " (\($0))" } ?? "") + " expired \(Self.shortTime(approval.expiresAt)); the change counts as unapproved again")
        }
        lines.append("")

        // Fold effects under causes present in the report.
        let present = Set(review.items.map(\.item.fingerprint))
        var effects: [String: [ReviewedItem]] = [:]
        var rows: [ReviewedItem] = []
        for reviewed in review.items {
            if !expand, let cause = reviewed.item.causeFingerprint, present.contains(cause), cause != reviewed.item.fingerprint {
                effects[cause, default: []].append(reviewed)
            } else {
                rows.append(reviewed)
            }
        }
        lines.append(Self.row("SEVERITY", "FINGERPRINT", "STATUS", "CHANGE"))
        for reviewed in rows {
            let item = reviewed.item
            lines.append(Self.row(item.severity.name + (item.escalation ? "!" : ""), String(item.fingerprint.prefix(12)), Self.statusText(reviewed.state), item.summary))
            if let approval = reviewed.state.approval {
                var detail = "approved by \(approval.approver)"
                if let ticket = approval.ticket { detail += ", ticket \(ticket)" }
                detail += reviewed.state.isApproved ? ", until \(Self.shortTime(approval.expiresAt))" : ", expired \(Self.shortTime(approval.expiresAt))"
                if case .approved(_, true) = reviewed.state { detail += " (approval of the cause)" }
                if let note = approval.note { detail += " — \(note)" }
                lines.append(Self.continuation(detail))
            }
            if !item.reasons.isEmpty { lines.append(Self.continuation(item.reasons.joined(separator: "; "))) }
            if let attributed = attribution?[item.fingerprint] {
                lines.append(Self.continuation(attributed.status == .unexplained ? "UNEXPLAINED: no audit event shows this change" : attributed.summary))
            }
            if let folded = effects[item.fingerprint] {
                // Each principal once (one who gains in two divisions is one principal), in order.
                var order: [String] = []
                var places: [String: (name: String, count: Int)] = [:]
                for effect in folded {
                    let subject = effect.item.subject
                    if places[subject.id] == nil { order.append(subject.id) }
                    places[subject.id, default: (subject.name.isEmpty ? subject.id : subject.name, 0)].count += 1
                }
                let principals = order.count
                let names = order.prefix(5).map { id -> String in
                    let entry = places[id]!
                    return entry.count > 1 ? "\(entry.name) (in \(entry.count) divisions)" : entry.name
                }
                let losing = folded.first?.item.kind == .permissionsLost
                let verb = principals == 1 ? (losing ? "loses" : "gains") : (losing ? "lose" : "gain")
                var text = "\(principals) principal\(principals == 1 ? "" : "s") \(verb) permissions through this change"
                text += ": " + names.joined(separator: ", ") + (principals > 5 ? ", …" : "")
                let highest = folded.map(\.item.severity).max() ?? .low
                text += " (highest \(highest.name); rbacwatch diff --expand lists each)"
                lines.append(Self.continuation(text))
            }
        }
        return lines.map(TerminalSafe.sanitize).joined(separator: "\n") + "\n"
    }

    static func statusText(_ state: ReviewState) -> String {
        switch state {
        case .unapproved: "new"
        case .approved(let approval, _): approval.ticket.map { "ok \($0)" } ?? "approved"
        case .lapsed: "LAPSED"
        }
    }

    static func row(_ severity: String, _ fingerprint: String, _ status: String, _ change: String) -> String {
        func pad(_ text: String, _ width: Int) -> String {
            text.count >= width ? text + " " : text + String(repeating: " ", count: width - text.count)
        }
        return pad(severity, 10) + pad(fingerprint, 14) + pad(String(status.prefix(16)), 18) + change
    }

    static func continuation(_ text: String) -> String {
        String(repeating: " ", count: 42) + "↳ " + text
    }

    /// `2026-11-21 10:00 UTC`.
    static func shortTime(_ date: Date) -> String {
        let text = timestamp(date)
        return String(text.prefix(16)).replacingOccurrences(of: "T", with: " ") + " UTC"
    }
}
