import Foundation

// Machine formats. JSON (schema `rbacwatch.drift/1`, documented in README.md) and OCSF are
// written with the canonical writer: stable key order, one item per line.

extension DriftReport {
    /// The JSON schema identifier. Bump on incompatible change.
    public static let jsonSchema = "rbacwatch.drift/1"

    public func json() -> [UInt8] {
        var w = CanonicalJSONWriter(reservingCapacity: 512 * (review.items.count + 8))
        w.beginObject(newlines: true)
        w.key("schema", ordered: false)
        w.value(Self.jsonSchema)
        if let coverage {
            w.key("attribution")
            w.beginObject()
            w.field("events", coverage.events)
            w.field("from", Self.timestamp(coverage.from))
            w.field("note", attributionNote)
            w.field("source", coverage.source)
            w.field("to", Self.timestamp(coverage.to))
            w.field("unexplained", unexplained.count)
            w.endObject()
        } else if let attributionNote {
            w.key("attribution")
            w.beginObject()
            w.field("unavailable", attributionNote)
            w.endObject()
        }
        w.key("baseline")
        w.beginObject()
        w.field("acceptedAt", baseline.acceptedAt.map(Self.timestamp))
        w.field("acceptedBy", baseline.acceptedBy)
        w.field("rootHash", baseline.rootHash)
        if let version = baseline.version { w.field("version", version) }
        w.endObject()
        w.key("current")
        w.beginObject()
        w.field("rootHash", review.result.currentRoot)
        w.endObject()
        if let failOn {
            w.key("gate")
            w.beginObject()
            w.field("failOn", failOn.name)
            w.field("failing", failing.count)
            w.field("passed", failing.isEmpty)
            w.endObject()
        }
        w.field("items", newlines: true, each: review.items) { reviewed, w in Self.encode(reviewed, attribution: attribution?[reviewed.item.fingerprint], to: &w) }
        w.field("lapsedApprovals", each: review.lapsed) { approval, w in Self.encode(approval, inherited: nil, to: &w) }
        w.field("reviewedAt", Self.timestamp(review.reviewedAt))
        w.key("summary")
        w.beginObject()
        let counts = review.countsBySeverity
        w.key("bySeverity")
        w.beginObject()
        for severity in Severity.allCases.sorted(by: { $0.name < $1.name }) {
            w.key(severity.name)
            w.beginObject()
            w.field("total", counts[severity]?.total ?? 0)
            w.field("unapproved", counts[severity]?.unapproved ?? 0)
            w.endObject()
        }
        w.endObject()
        w.field("items", review.items.count)
        w.field("unapproved", review.items.filter { !$0.state.isApproved }.count)
        w.endObject()
        w.endObject()
        var bytes = w.bytes
        bytes.append(UInt8(ascii: "\n"))
        return bytes
    }

    static func encode(_ ref: EntityRef?, _ key: String, to w: inout CanonicalJSONWriter) {
        guard let ref else { return }
        w.key(key)
        w.beginObject()
        w.field("id", ref.id)
        w.field("kind", ref.kind.rawValue)
        w.field("name", ref.name.isEmpty ? nil : ref.name)
        w.endObject()
    }

    static func encode(_ approval: Approval, inherited: Bool?, to w: inout CanonicalJSONWriter) {
        w.beginObject()
        w.field("approver", approval.approver)
        w.field("createdAt", timestamp(approval.createdAt))
        w.field("expiresAt", timestamp(approval.expiresAt))
        w.field("fingerprint", approval.fingerprint)
        if let inherited { w.field("inherited", inherited) }
        w.field("note", approval.note)
        w.field("ticket", approval.ticket)
        w.endObject()
    }

    /// The schema of one drift item on its own line (`watch`'s output).
    public static let itemSchema = "rbacwatch.drift-item/1"
    /// The schema of a change a full walk found and no audit event explains (`watch`'s output).
    public static let unauditedSchema = "rbacwatch.unaudited-change/1"

    /// A change no audit event explains as a JSON line: the drift item's members, `schema`
    /// `rbacwatch.unaudited-change/1`, `detectedAt` (when the full walk found it) and `source`.
    public static func unauditedLine(_ change: UnauditedChange) -> [UInt8] {
        var w = CanonicalJSONWriter(reservingCapacity: 1024)
        encode(
            ReviewedItem(item: change.item, state: .unapproved), attribution: ItemAttribution(status: .unexplained, events: []),
            schema: unauditedSchema, to: &w,
            extra: ItemExtras(
                actor: nil, baselineVersion: nil, detectedAt: change.walkedAt, id: "unaudited:" + change.item.fingerprint, organization: nil,
                source: "full walk"))
        return w.bytes
    }

    /// One item as a JSON line, the same members as in the report plus `schema`.
    public static func itemLine(_ reviewed: ReviewedItem, attribution: ItemAttribution?) -> [UInt8] {
        var w = CanonicalJSONWriter(reservingCapacity: 1024)
        encode(reviewed, attribution: attribution, schema: itemSchema, to: &w)
        return w.bytes
    }

    /// What a delivered drift item carries beyond the report's members.
    struct ItemExtras {
        var actor: AuditEvent?
        var baselineVersion: Int?
        var detectedAt: Date
        var id: String
        var organization: Organization?
        var source: String
    }

    static func encode(
        _ reviewed: ReviewedItem, attribution: ItemAttribution?, schema: String? = nil, to w: inout CanonicalJSONWriter, extra: ItemExtras? = nil
    ) {
        let item = reviewed.item
        w.beginObject()
        if let actor = extra?.actor {
            DeliveryPayload.encodeActor(id: actor.userId, name: actor.actor, clientId: actor.clientId, remoteIp: actor.remoteIp, to: &w)
        }
        w.field("after", item.after)
        if let approval = reviewed.state.approval {
            w.key("approval")
            var inherited = false
            if case .approved(_, let flag) = reviewed.state { inherited = flag }
            encode(approval, inherited: inherited, to: &w)
        }
        if let attribution {
            w.key("attribution")
            w.beginObject()
            w.field("events", each: attribution.events) { event, w in encode(event, to: &w) }
            w.field("status", attribution.status.rawValue)
            w.endObject()
        }
        if let version = extra?.baselineVersion { w.field("baselineVersion", version) }
        w.field("before", item.before)
        w.field("cause", item.causeFingerprint)
        if let extra { w.field("detectedAt", ISOTimestamp.string(extra.detectedAt)) }
        encode(item.division, "division", to: &w)
        w.field("escalation", item.escalation)
        w.field("fingerprint", item.fingerprint)
        if let extra { w.field("id", extra.id) }
        w.field("kind", item.kind.rawValue)
        encode(item.member, "member", to: &w)
        DeliveryPayload.encode(extra?.organization, to: &w)
        w.field("permissionsAdded", item.permissionsAdded)
        w.field("permissionsRemoved", item.permissionsRemoved)
        encode(item.previous, "previous", to: &w)
        w.field("reasons", item.reasons)
        encode(item.role, "role", to: &w)
        w.field("schema", schema)
        w.field("severity", item.severity.name)
        if let extra { w.field("source", extra.source) }
        w.field("status", status(reviewed.state))
        encode(item.subject, "subject", to: &w)
        w.field("summary", item.summary)
        encode(item.via, "via", to: &w)
        w.endObject()
    }

    /// An explaining event, as much of it as says who, when and from where.
    static func encode(_ event: AuditEvent, to w: inout CanonicalJSONWriter) {
        w.beginObject()
        w.field("action", event.action)
        w.field("actor", event.actor)
        w.field("clientId", event.clientId)
        w.field("date", ISOTimestamp.string(event.date))
        w.field("entityType", event.entityType)
        w.field("id", event.id)
        w.field("remoteIp", event.remoteIp)
        w.field("serviceName", event.serviceName)
        w.field("userId", event.userId)
        w.endObject()
    }

    // MARK: CSV

    /// RFC 4180 CSV for audit trails. Cells that a spreadsheet would run as a formula (starting
    /// with `=`, `+`, `-`, `@`, tab or carriage return) are prefixed with `'`; control characters
    /// are shown as escapes (`\x1B`).
    public func csv() -> String {
        var out = [
            "fingerprint", "severity", "escalation", "kind", "status", "ticket", "approved_by", "expires_at", "subject_type",
            "subject_id", "subject_name", "role_id", "role_name", "division_id", "division_name", "via", "member",
            "permissions_added", "permissions_removed", "before", "after", "cause", "summary", "attribution", "changed_by",
        ].joined(separator: ",") + "\r\n"
        for reviewed in review.items {
            let item = reviewed.item
            let approval = reviewed.state.approval
            let cells: [String] = [
                item.fingerprint, item.severity.name, item.escalation ? "yes" : "no", item.kind.rawValue, Self.status(reviewed.state),
                approval?.ticket ?? "", approval?.approver ?? "", approval.map { Self.timestamp($0.expiresAt) } ?? "",
                item.subject.kind.rawValue, item.subject.id, item.subject.name, item.role?.id ?? "", item.role?.name ?? "",
                item.division?.id ?? "", item.division?.name ?? "",
                item.via.map { $0.kind == .group ? "group:\($0.id)" : "direct" } ?? "", item.member?.id ?? "",
                item.permissionsAdded.joined(separator: " "), item.permissionsRemoved.joined(separator: " "), item.before ?? "",
                item.after ?? "", item.causeFingerprint ?? "", item.summary,
                attribution?[item.fingerprint]?.status.rawValue ?? "",
                attribution?[item.fingerprint]?.latest.map(Attribution.describe) ?? "",
            ]
            out += cells.map(Self.csvCell).joined(separator: ",") + "\r\n"
        }
        return out
    }

    public static func csvCell(_ value: String) -> String {
        // Control characters and bidi overrides have no place in a cell and would reach the
        // terminal of whoever runs `cat` on the file: shown as escapes, like everywhere else.
        var text = TerminalSafe.sanitize(value)
        if let first = text.unicodeScalars.first, ["=", "+", "-", "@", "\t", "\r"].contains(Character(first)) {
            text = "'" + text
        }
        if text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\n" || $0 == "\r" }) {
            text = "\"" + text.replacingOccurrences(of: "\"", with: "\"\"") + "\""
        }
        return text
    }

    // MARK: OCSF

    /// OCSF 1.7 Compliance Finding events (class 2003), one JSON object per line. `finding_info.uid`
    /// is `rbacwatch-drift-<fingerprint>`: the same change always gets the same uid.
    public func ocsf(productVersion: String = "1") -> [UInt8] {
        var out: [UInt8] = []
        let time = Int((review.reviewedAt.timeIntervalSince1970 * 1000).rounded())
        for reviewed in review.items {
            let item = reviewed.item
            let approved = reviewed.state.isApproved
            var w = CanonicalJSONWriter(reservingCapacity: 1024)
            w.beginObject()
            w.field("activity_id", 1)
            w.field("activity_name", "Create")
            w.field("category_name", "Findings")
            w.field("category_uid", 2)
            w.field("class_name", "Compliance Finding")
            w.field("class_uid", 2003)
            Self.ocsfCompliance(kind: item.kind.rawValue, approved: approved, reasons: item.reasons, to: &w)
            w.key("finding_info")
            w.beginObject()
            w.field("desc", item.reasons.isEmpty ? item.summary : item.summary + ". " + item.reasons.joined(separator: "; "))
            w.field("title", item.summary)
            w.field("types", ["rbac-drift", item.kind.rawValue])
            w.field("uid", "rbacwatch-drift-\(item.fingerprint)")
            w.endObject()
            w.field("message", item.summary)
            w.key("metadata")
            w.beginObject()
            w.field("log_name", "rbacwatch drift")
            w.key("product")
            w.beginObject()
            w.field("name", "rbacwatch")
            w.field("vendor_name", "rbacwatch")
            w.field("version", productVersion)
            w.endObject()
            w.field("uid", "rbacwatch-drift-\(item.fingerprint)")
            w.field("version", "1.7.0")
            w.endObject()
            w.key("resources")
            w.beginArray()
            for ref in [item.subject, item.role, item.division].compactMap({ $0 }) {
                w.beginObject()
                w.field("name", ref.name.isEmpty ? nil : ref.name)
                w.field("type", "Genesys Cloud \(ref.kind.rawValue)")
                w.field("uid", ref.id)
                w.endObject()
            }
            w.endArray()
            w.field("severity", Self.ocsfSeverity(item.severity).name)
            w.field("severity_id", Self.ocsfSeverity(item.severity).id)
            w.field("status", approved ? "Suppressed" : "New")
            w.field("status_id", approved ? 3 : 1)
            w.field("time", time)
            w.field("type_name", "Compliance Finding: Create")
            w.field("type_uid", 200_301)
            w.key("unmapped")
            w.beginObject()
            let attributed = attribution?[item.fingerprint]
            w.field("attribution", attributed?.status.rawValue)
            w.field("cause", item.causeFingerprint)
            w.field("changed_by", attributed?.latest.map(Attribution.describe))
            w.field("escalation", item.escalation)
            w.field("fingerprint", item.fingerprint)
            w.field("permissions_added", item.permissionsAdded)
            w.field("permissions_removed", item.permissionsRemoved)
            w.field("review_status", Self.status(reviewed.state))
            w.field("ticket", reviewed.state.approval?.ticket)
            w.endObject()
            w.endObject()
            out += w.bytes
            out.append(UInt8(ascii: "\n"))
        }
        return out
    }

    /// OCSF's `compliance` object for a drift item (the report's and delivery's, one writer).
    static func ocsfCompliance(kind: String, approved: Bool, reasons: [String], to w: inout CanonicalJSONWriter) {
        w.key("compliance")
        w.beginObject()
        w.field("control", "rbacwatch:\(kind)")
        w.field("requirements", ["Access changes follow an approved baseline or a recorded approval"])
        w.field("standards", ["rbacwatch RBAC baseline"])
        w.field("status", approved ? "Pass" : "Fail")
        w.field("status_detail", reasons.joined(separator: "; "))
        w.field("status_id", approved ? 1 : 3)
        w.endObject()
    }

    static func ocsfSeverity(_ severity: Severity) -> (id: Int, name: String) {
        switch severity {
        case .low: (2, "Low")
        case .medium: (3, "Medium")
        case .high: (4, "High")
        case .critical: (5, "Critical")
        }
    }
}
