import AuditCore
import AuditEngine
import Foundation

/// Drill-down pages, built from the data when Enter is pressed.
enum Details {
    static func build(_ subject: DetailView.Subject, _ data: DashboardData) -> DetailView? {
        switch subject {
        case .user(let id): user(id, data)
        case .role(let id): role(id, data)
        case .group(let id): group(id, data)
        case .team(let id): team(id, data)
        case .item(let fingerprint): item(fingerprint, data)
        case .finding(let id): finding(id, data)
        }
    }

    /// One audit finding: the rule that fired and why, and the raw event as the API sent it.
    static func finding(_ id: String, _ data: DashboardData) -> DetailView? {
        guard let detail = data.audit.details[id] else { return nil }
        let finding = detail.finding
        let state: ReviewState = finding.approval.map { .approved($0, inherited: false) } ?? .unapproved
        var lines: [Line] = [[Span(finding.summary)], []]
        lines += [
            field("severity", finding.severity.name, severityRole(finding.severity)),
            field("status", status(state), state.isApproved ? .approved : .text),
            field("fingerprint", finding.fingerprint),
            field("when", DriftReport.timestamp(finding.date)),
            field("actor", finding.actor + (finding.actorId.map { "  (\($0))" } ?? "")),
            field("client", finding.clientId),
            field("from", finding.remoteIp.joined(separator: ", ")),
            field("target", "\(finding.serviceName)/\(finding.entityType) \(finding.entityName.isEmpty ? finding.entityId : "\(finding.entityName)  (\(finding.entityId))")"),
            field("action", finding.action),
        ].compactMap { $0 }
        if !finding.evidence.isEmpty {
            lines.append([])
            lines.append([Span("Evidence", .title)])
            for line in finding.evidence { lines.append([Span("  " + line)]) }
        }
        if let approval = finding.approval { lines += approvalLines(approval) }
        lines.append([])
        lines.append([Span("Rule \(finding.ruleId)", .title)])
        if let rule = detail.rule {
            lines += [
                field("title", rule.title), field("controls", rule.controls.joined(separator: ", ")), field("source", rule.source),
                field("matches", ruleMatch(rule)),
                field("throttle", rule.throttleSeconds.map { "one finding per entity per \(Int($0)) s" }),
            ].compactMap { $0 }
            for paragraph in wrap(rule.description, width: 100) { lines.append([Span("  " + paragraph, .muted)]) }
        } else {
            lines.append([Span("  (the rule is no longer loaded)", .muted)])
        }
        lines.append([])
        lines.append([Span("Raw event" + (finding.eventIds.count > 1 ? " (the last of \(finding.eventIds.count))" : ""), .title)])
        if let event = detail.event {
            for line in prettyJSON(event.canonicalJSON()) { lines.append([Span("  " + line)]) }
        } else {
            lines.append([Span("  (not in the store)", .muted)])
        }
        return DetailView(subject: .finding(id), title: "Finding \(finding.ruleId) \(finding.fingerprint.prefix(12))", lines: lines)
    }

    static func ruleMatch(_ rule: AuditRule) -> String {
        func list(_ values: Patterns) -> String { values.isEmpty ? "*" : values.joined(separator: "|") }
        return "\(list(rule.match.services))/\(list(rule.match.entityTypes)) \(list(rule.match.actions))"
            + (rule.conditions.isEmpty ? "" : ", \(rule.conditions.count) condition\(rule.conditions.count == 1 ? "" : "s")")
    }

    /// Words to lines of at most `width` characters.
    static func wrap(_ text: String, width: Int) -> [String] {
        var lines: [String] = []
        var current = ""
        for word in text.split(separator: " ") {
            if !current.isEmpty && current.count + 1 + word.count > width {
                lines.append(current)
                current = ""
            }
            current += (current.isEmpty ? "" : " ") + word
        }
        if !current.isEmpty { lines.append(current) }
        return lines
    }

    /// JSON indented for reading: a container short enough stays on one line.
    static func prettyJSON(_ bytes: [UInt8], width: Int = 72) -> [String] {
        guard let value = try? JSONSerialization.jsonObject(with: Data(bytes), options: [.fragmentsAllowed]) else {
            return [String(decoding: bytes, as: UTF8.self)]
        }
        func compact(_ value: Any) -> String {
            guard let data = try? JSONSerialization.data(withJSONObject: value, options: [.sortedKeys, .fragmentsAllowed, .withoutEscapingSlashes]) else {
                return "\(value)"
            }
            return String(decoding: data, as: UTF8.self)
        }
        func render(_ value: Any, prefix: String, indent: String, suffix: String, into lines: inout [String]) {
            let flat = compact(value)
            if indent.count + prefix.count + flat.count + suffix.count <= width || !(value is [Any] || value is [String: Any]) {
                lines.append(indent + prefix + flat + suffix)
                return
            }
            if let object = value as? [String: Any] {
                lines.append(indent + prefix + "{")
                let keys = object.keys.sorted()
                for (n, key) in keys.enumerated() {
                    render(object[key]!, prefix: compact(key) + ": ", indent: indent + "  ", suffix: n + 1 < keys.count ? "," : "", into: &lines)
                }
                lines.append(indent + "}" + suffix)
            } else if let array = value as? [Any] {
                lines.append(indent + prefix + "[")
                for (n, element) in array.enumerated() {
                    render(element, prefix: "", indent: indent + "  ", suffix: n + 1 < array.count ? "," : "", into: &lines)
                }
                lines.append(indent + "]" + suffix)
            }
        }
        var lines: [String] = []
        render(value, prefix: "", indent: "", suffix: "", into: &lines)
        return lines
    }

    static func divisionName(_ id: String, _ snapshot: Snapshot) -> String {
        id == allDivisionsID ? "* (all divisions)" : snapshot.divisions.first { $0.id == id }?.name ?? id
    }

    /// `label         value`, or nothing when there is no value.
    static func field(_ label: String, _ value: String?, _ role: ThemeRole = .text) -> Line? {
        guard let value, !value.isEmpty else { return nil }
        return [Span(label.padding(toLength: 14, withPad: " ", startingAt: 0), .muted), Span(value, role)]
    }

    /// An approval's section on a drift item's or a finding's page.
    static func approvalLines(_ approval: Approval) -> [Line] {
        [[], [Span("Approval", .title)]]
            + [
                field("approver", approval.approver), field("ticket", approval.ticket), field("note", approval.note),
                field("expires", DriftReport.timestamp(approval.expiresAt)),
            ].compactMap { $0 }
    }

    static func severityRole(_ severity: Severity?) -> ThemeRole {
        severity.map(Theme.role(for:)) ?? .muted
    }

    /// A user's effective permissions by division with where each comes from, and their drift.
    static func user(_ id: String, _ data: DashboardData) -> DetailView? {
        guard let snapshot = data.snapshot, let user = snapshot.users.first(where: { $0.id == id }) else { return nil }
        let roles = Dictionary(snapshot.roles.map { ($0.id, $0) }, uniquingKeysWith: { a, _ in a })
        let groups = Dictionary(snapshot.groups.map { ($0.id, $0.name) }, uniquingKeysWith: { a, _ in a })
        var lines: [Line] = []
        lines.append([
            Span("state ", .muted), Span(user.state), Span("   division ", .muted),
            Span(user.divisionId.map { divisionName($0, snapshot) } ?? "—"), Span("   id ", .muted), Span(user.id, .muted),
        ])
        if let email = user.email { lines.append([Span("email ", .muted), Span(email)]) }

        // Each role held weighs what its permissions weigh, one level more in every division;
        // the user's risk is the heaviest, and the page says which roles make it so.
        let held = data.risk.held[user.id] ?? []
        func via(_ access: Access) -> String {
            switch access.via {
            case .direct: "direct"
            case .group(let group): "via group \(groups[group] ?? group)"
            }
        }
        lines.append([])
        if let top = held.map(\.severity).max() {
            lines.append([Span("Risk ", .title), Span(top.name, severityRole(top)), Span("  the heaviest of the roles held:", .muted)])
            var seen = Set<String>()
            for entry in held where entry.severity == top && seen.insert(entry.access.roleId + "\u{1}" + entry.access.divisionId).inserted {
                guard seen.count <= 3 else { break }
                let own = entry.assessment?.severity ?? .low
                var line: Line = [
                    Span("  "), Span(roles[entry.access.roleId]?.name ?? entry.access.roleId), Span(" in ", .muted),
                    Span(divisionName(entry.access.divisionId, snapshot)), Span(" (\(via(entry.access))): ", .muted),
                    Span(own.name, severityRole(own)),
                ]
                if entry.raisedBecause != nil { line += [Span(", raised to ", .muted), Span(top.name, severityRole(top)), Span(": held in every division", .muted)] }
                lines.append(line)
                for reason in (entry.assessment?.reasons ?? []).prefix(2) { lines.append([Span("      " + reason, .muted)]) }
            }
        } else {
            lines.append([Span("Risk ", .title), Span("none: no roles held", .muted)])
        }
        lines.append([])
        lines.append([Span("Roles held", .title)])
        for entry in held {
            var line: Line = [
                Span("  "), Span(entry.severity.name.padding(toLength: 9, withPad: " ", startingAt: 0), severityRole(entry.severity)),
                Span(roles[entry.access.roleId]?.name ?? entry.access.roleId), Span("  in ", .muted), Span(divisionName(entry.access.divisionId, snapshot)),
                Span("  \(via(entry.access))", .muted),
            ]
            if entry.raisedBecause != nil, let own = entry.assessment?.severity {
                line.append(Span("  (\(own.name) in one division)", .muted))
            }
            lines.append(line)
        }
        lines.append([])
        lines.append([Span("Effective permissions by division", .title)])
        let effective = EffectivePermissions(access: user.access, roles: roles)
        var division = ""
        for entry in effective.entries {
            if entry.divisionId != division {
                division = entry.divisionId
                lines.append([Span("  " + divisionName(division, snapshot), .header)])
            }
            let sources = entry.sources.map { source -> String in
                let role = roles[source.roleId]?.name ?? source.roleId
                switch source.via {
                case .direct: return "direct (\(role))"
                case .group(let group): return "via \(groups[group] ?? group) (\(role))"
                }
            }
            let risk = data.risk.permission(entry.permission)
            lines.append([
                Span("    "), Span(entry.permission.padding(toLength: max(entry.permission.count, 38), withPad: " ", startingAt: 0), risk >= .medium ? severityRole(risk) : .text),
                Span("  " + sources.joined(separator: "; "), .muted),
            ])
        }
        lines.append([])
        lines.append([Span("Drift", .title)])
        let items = (data.review?.items ?? []).filter { $0.item.subject.id == id || $0.item.member?.id == id }
        if items.isEmpty { lines.append([Span("  no drift since the baseline", .muted)]) }
        for reviewed in items { lines.append(feedLine(reviewed, data)) }
        return DetailView(subject: .user(id), title: "User \(user.name)", lines: lines)
    }

    static func feedLine(_ reviewed: ReviewedItem, _ data: DashboardData) -> Line {
        let item = reviewed.item
        let seen = data.feed.first { $0.fingerprint == item.fingerprint }?.firstSeen
        var line: Line = [
            Span("  "), Span(item.severity.name.padding(toLength: 9, withPad: " ", startingAt: 0), severityRole(item.severity)),
            Span(String(item.fingerprint.prefix(12)) + "  ", .muted),
        ]
        line.append(Span(status(reviewed.state).padding(toLength: 12, withPad: " ", startingAt: 0), reviewed.state.isApproved ? .approved : .text))
        line.append(Span(item.summary))
        if let seen { line.append(Span("  first seen \(clock(seen))", .muted)) }
        return line
    }

    static func status(_ state: ReviewState) -> String {
        switch state {
        case .unapproved: "unapproved"
        case .approved(let approval, _): approval.ticket.map { "approved (\($0))" } ?? "approved"
        case .lapsed: "LAPSED"
        }
    }

    static func clock(_ date: Date) -> String {
        let text = DriftReport.timestamp(date)
        return String(text.dropFirst(11).prefix(8))
    }

    /// A role's permissions, holders per division, and lineage.
    static func role(_ id: String, _ data: DashboardData) -> DetailView? {
        guard let snapshot = data.snapshot, let role = snapshot.roles.first(where: { $0.id == id }) else { return nil }
        let names = Dictionary(
            snapshot.users.map { ($0.id, $0.name) } + snapshot.groups.map { ($0.id, $0.name) } + snapshot.oauthClients.map { ($0.id, $0.name) },
            uniquingKeysWith: { a, _ in a })
        let assessment = data.risk.role(role.id)
        var lines: [Line] = [
            [
                Span("risk ", .muted), Span(assessment.severity.name, severityRole(assessment.severity)),
                Span(assessment.escalation ? "  escalation" : "", .critical), Span("   built-in ", .muted), Span(role.isBuiltIn ? "yes" : "no"),
                Span("   id ", .muted), Span(role.id, .muted),
            ]
        ]
        for reason in assessment.reasons { lines.append([Span("  " + reason, .muted)]) }
        let family = data.roles.first { $0.id == id }?.lineage ?? []
        if !family.isEmpty {
            lines.append([Span("lineage ", .muted), Span("the same role under other ids: " + family.joined(separator: ", "))])
        }
        lines.append([])
        lines.append([Span("Permissions (\(role.permissions.count))", .title)])
        let groupRisk = data.risk.rolePolicies[role.id] ?? []
        for (index, policy) in role.policies.enumerated() {
            let risk = index < groupRisk.count ? groupRisk[index] : .low
            var line: Line = [Span("  "), Span("\(policy.domain):\(policy.entityName):\(policy.actions.joined(separator: ","))", risk >= .medium ? severityRole(risk) : .text)]
            if policy.condition != nil { line.append(Span("  (conditional)", .muted)) }
            lines.append(line)
        }
        for legacy in role.legacyPermissions { lines.append([Span("  " + legacy, .critical)]) }
        lines.append([])
        lines.append([Span("Holders by division", .title)])
        let grants = snapshot.grants.filter { $0.roleId == id }
        let byDivision = Dictionary(grouping: grants, by: \.divisionId)
        for division in byDivision.keys.sorted() {
            lines.append([Span("  " + divisionName(division, snapshot), .header)])
            for grant in byDivision[division]!.sorted(by: { (names[$0.subjectId] ?? "") < (names[$1.subjectId] ?? "") }) {
                var line: Line = [Span("    "), Span(grant.subjectKind.apiValue.replacingOccurrences(of: "PC_", with: "").lowercased().padding(toLength: 13, withPad: " ", startingAt: 0), .muted), Span(names[grant.subjectId] ?? grant.subjectId)]
                if grant.subjectKind == .group, let group = snapshot.groups.first(where: { $0.id == grant.subjectId }) {
                    line.append(Span("  (\(group.memberIds.count) members inherit it)", .muted))
                }
                lines.append(line)
            }
        }
        if grants.isEmpty { lines.append([Span("  nobody holds this role", .muted)]) }
        return DetailView(subject: .role(id), title: "Role \(role.name)", lines: lines)
    }

    static func group(_ id: String, _ data: DashboardData) -> DetailView? {
        guard let snapshot = data.snapshot, let group = snapshot.groups.first(where: { $0.id == id }) else { return nil }
        let users = Dictionary(snapshot.users.map { ($0.id, $0.name) }, uniquingKeysWith: { a, _ in a })
        let roles = Dictionary(snapshot.roles.map { ($0.id, $0.name) }, uniquingKeysWith: { a, _ in a })
        var lines: [Line] = [
            [Span("roles enabled ", .muted), Span(group.rolesEnabled ? "yes" : "no"), Span("   type ", .muted), Span(group.type ?? "—"), Span("   id ", .muted), Span(group.id, .muted)],
            [],
            [Span("Roles granted to the group (its members inherit them)", .title)],
        ]
        let grants = snapshot.grants.filter { $0.subjectId == id }
        for grant in grants {
            lines.append([Span("  "), Span(roles[grant.roleId] ?? grant.roleId), Span("  in ", .muted), Span(divisionName(grant.divisionId, snapshot))])
        }
        if grants.isEmpty { lines.append([Span("  none", .muted)]) }
        lines.append([])
        lines.append([Span("Members (\(group.memberIds.count))", .title)])
        for member in group.memberIds.map({ users[$0] ?? $0 }).sorted() { lines.append([Span("  " + member)]) }
        return DetailView(subject: .group(id), title: "Group \(group.name)", lines: lines)
    }

    static func team(_ id: String, _ data: DashboardData) -> DetailView? {
        guard let snapshot = data.snapshot, let team = snapshot.teams.first(where: { $0.id == id }) else { return nil }
        let users = Dictionary(snapshot.users.map { ($0.id, $0.name) }, uniquingKeysWith: { a, _ in a })
        var lines: [Line] = [
            [Span("division ", .muted), Span(team.divisionId.map { divisionName($0, snapshot) } ?? "—"), Span("   id ", .muted), Span(team.id, .muted)],
            [Span("Teams carry no roles in Genesys Cloud: access comes from grants and role-enabled groups.", .muted)],
            [],
            [Span("Members (\(team.memberIds.count))", .title)],
        ]
        for member in team.memberIds.map({ users[$0] ?? $0 }).sorted() { lines.append([Span("  " + member)]) }
        return DetailView(subject: .team(id), title: "Team \(team.name)", lines: lines)
    }

    /// One drift item: what changed, before and after, why it matters, and its approval.
    static func item(_ fingerprint: String, _ data: DashboardData) -> DetailView? {
        if let row = data.feed.first(where: { $0.fingerprint == fingerprint }), row.failure {
            return DetailView(
                subject: .item(fingerprint), title: "Collection failure",
                lines: [
                    [Span(row.summary, .error)], [],
                    [Span("last at       ", .muted), Span(DriftReport.timestamp(row.firstSeen))],
                    [Span("The dashboard keeps showing the last good collection and tries again at the next refresh (r: now).", .muted)],
                ])
        }
        guard let reviewed = data.review?.items.first(where: { $0.item.fingerprint == fingerprint }) else { return nil }
        let item = reviewed.item
        func ref(_ ref: EntityRef?) -> String? {
            guard let ref else { return nil }
            return ref.name.isEmpty ? ref.id : "\(ref.name)  (\(ref.id))"
        }
        var lines: [Line] = [[Span(item.summary)], []]
        let fields: [Line?] = [
            field("severity", item.severity.name + (item.escalation ? " (escalation)" : ""), severityRole(item.severity)),
            field("kind", item.kind.rawValue),
            field("status", status(reviewed.state), reviewed.state.isApproved ? .approved : .text),
            field("fingerprint", item.fingerprint),
            field("subject", ref(item.subject)),
            field("role", ref(item.role)),
            field("previous", ref(item.previous)),
            field("division", ref(item.division)),
            field("path", item.via.map { $0.kind == .group ? "via group \($0.name) (\($0.id))" : "direct" }),
            field("member", ref(item.member)),
            field("before", item.before),
            field("after", item.after),
        ]
        lines += fields.compactMap { $0 }
        if let approval = reviewed.state.approval {
            lines += approvalLines(approval)
            if case .approved(_, true) = reviewed.state { lines.append([Span("  approved through the change that caused it", .muted)]) }
        }
        if !item.permissionsAdded.isEmpty {
            lines.append([])
            lines.append([Span("Permissions added", .title)])
            for permission in item.permissionsAdded {
                let risk = data.risk.permission(permission)
                lines.append([Span("  + " + permission, risk >= .medium ? severityRole(risk) : .text)])
            }
        }
        if !item.permissionsRemoved.isEmpty {
            lines.append([])
            lines.append([Span("Permissions removed", .title)])
            for permission in item.permissionsRemoved { lines.append([Span("  - " + permission, .muted)]) }
        }
        if !item.reasons.isEmpty {
            lines.append([])
            lines.append([Span("Why this severity", .title)])
            for reason in item.reasons { lines.append([Span("  " + reason)]) }
        }
        if let attributed = data.attribution[fingerprint] {
            lines.append([])
            lines.append([Span("Changed by (audit log)", .title)])
            switch attributed.status {
            case .unexplained:
                lines.append([Span("  UNEXPLAINED: no audit event shows this change — made outside the API, or where the feed does not look", .error)])
            case .pending:
                lines.append([Span("  " + attributed.summary, .muted)])
            case .explained:
                for event in attributed.events.reversed() {
                    lines.append([Span("  " + Attribution.describe(event))])
                    if event.entityId != item.subject.id {
                        lines.append([Span("    on \(event.entityType) \(event.entityName.isEmpty ? event.entityId : event.entityName)", .muted)])
                    }
                }
            }
        }
        if let cause = item.causeFingerprint, let causeItem = data.review?.items.first(where: { $0.item.fingerprint == cause }) {
            lines.append([])
            lines.append([Span("Caused by", .title)])
            lines.append(feedLine(causeItem, data))
        }
        let effects = (data.review?.items ?? []).filter { $0.item.causeFingerprint == fingerprint }
        if !effects.isEmpty {
            lines.append([])
            lines.append([Span("Effects (\(effects.count))", .title)])
            for effect in effects.prefix(200) { lines.append(feedLine(effect, data)) }
        }
        return DetailView(subject: .item(fingerprint), title: "Drift \(item.fingerprint.prefix(12))", lines: lines)
    }
}
