import Foundation

/// One finding or one unapproved drift item as it leaves the machine: a versioned JSON object
/// (`rbacwatch.finding/2`, `rbacwatch.drift-item/2`, documented by the schemas in `schemas/`)
/// with a stable id for receiver-side dedupe, and what routing needs (kind, severity, rule or
/// drift kind) beside it.
public struct DeliveryPayload: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable {
        case finding
        case driftItem = "drift-item"

        public var schema: String {
            switch self {
            case .finding: DeliveryPayload.findingSchema
            case .driftItem: DeliveryPayload.driftItemSchema
            }
        }
    }

    public static let findingSchema = "rbacwatch.finding/2"
    public static let driftItemSchema = "rbacwatch.drift-item/2"

    public var kind: Kind
    /// Stable across retries, replays and restarts: a finding's fingerprint and event id, a drift
    /// item's fingerprint.
    public var id: String
    public var severity: Severity
    /// The event date (findings) or when the drift was detected.
    public var time: Date
    /// The rule id (findings) or the drift kind (drift items): what destination filters match.
    public var rule: String
    /// One line for a syslog or chat message.
    public var title: String
    /// The payload, canonical JSON.
    public var body: [UInt8]

    public init(kind: Kind, id: String, severity: Severity, time: Date, rule: String, title: String, body: [UInt8]) {
        self.kind = kind
        self.id = id
        self.severity = severity
        self.time = time
        self.rule = rule
        self.title = title
        self.body = body
    }
}

extension DeliveryPayload {
    /// A finding, with the event that fired it (for before/after values) when known. Without an
    /// organisation the `organization` member is left out (the schema then rejects it for
    /// delivery; `watch`'s own lines may lack it).
    public static func finding(_ f: AuditFinding, event: AuditEvent?, organization: Organization?) -> DeliveryPayload {
        var w = CanonicalJSONWriter(reservingCapacity: 1024)
        writeFinding(f, event: event, organization: organization, version: 2, to: &w)
        let target = f.entityName.isEmpty ? f.entityId : f.entityName
        return DeliveryPayload(
            kind: .finding, id: f.id, severity: f.severity, time: f.date, rule: f.ruleId,
            title: "\(f.ruleId) \(f.title): \(f.action) \(f.entityType) \(target) by \(f.actor)", body: w.bytes)
    }

    /// A finding as `watch` and `findings list --format json` print it: `rbacwatch.finding/1`
    /// (the payload's members without the delivery ones).
    public static func findingLine(_ f: AuditFinding) -> [UInt8] {
        var w = CanonicalJSONWriter(reservingCapacity: 1024)
        writeFinding(f, event: nil, organization: nil, version: 1, to: &w)
        return w.bytes
    }

    /// One writer for both versions of a finding (keys in order).
    static func writeFinding(_ f: AuditFinding, event: AuditEvent?, organization: Organization?, version: Int, to w: inout CanonicalJSONWriter) {
        let delivered = version >= 2
        w.beginObject()
        w.field("action", f.action)
        encodeActor(id: f.actorId, name: f.actor, clientId: f.clientId, remoteIp: f.remoteIp, to: &w)
        if let approval = f.approval {
            w.key("approval")
            if delivered {
                DriftReport.encode(approval, inherited: nil, to: &w)
            } else {
                w.beginObject()
                w.field("approver", approval.approver)
                w.field("expiresAt", ISOTimestamp.string(approval.expiresAt))
                w.field("ticket", approval.ticket)
                w.endObject()
            }
        }
        if delivered, let event, !event.changes.isEmpty {
            w.key("changes")
            w.beginArray()
            for change in event.changes {
                w.beginObject()
                w.field("after", change.newValues)
                w.field("before", change.oldValues)
                w.field("property", change.property)
                w.endObject()
            }
            w.endArray()
        }
        w.field("controls", f.controls)
        w.field("eventDate", ISOTimestamp.string(f.date))
        w.field("eventIds", f.eventIds)
        w.field("evidence", f.evidence)
        w.field("fingerprint", f.fingerprint)
        if delivered {
            w.field("id", f.id)
            w.field("kind", Kind.finding.rawValue)
            encode(organization, to: &w)
        }
        w.field("ruleId", f.ruleId)
        w.field("schema", delivered ? findingSchema : "rbacwatch.finding/1")
        w.field("serviceName", f.serviceName)
        w.field("severity", f.severity.name)
        if delivered { w.field("source", "genesys-cloud-audit") }
        w.field("status", f.status.rawValue)
        w.key("target")
        w.beginObject()
        w.field("id", f.entityId)
        w.field("name", f.entityName)
        w.field("type", f.entityType)
        w.endObject()
        w.field("title", f.title)
        w.endObject()
    }

    /// A reviewed drift item, with who made it happen when the audit feed says so.
    public static func driftItem(
        _ reviewed: ReviewedItem, attribution: ItemAttribution?, organization: Organization?, detectedAt: Date, baselineVersion: Int?
    ) -> DeliveryPayload {
        let item = reviewed.item
        var w = CanonicalJSONWriter(reservingCapacity: 1024)
        DriftReport.encode(
            reviewed, attribution: attribution, schema: driftItemSchema, to: &w,
            extra: DriftReport.ItemExtras(
                actor: attribution?.latest, baselineVersion: baselineVersion, detectedAt: detectedAt, id: item.fingerprint,
                organization: organization, source: "rbacwatch-drift"))
        return DeliveryPayload(
            kind: .driftItem, id: item.fingerprint, severity: item.severity, time: detectedAt, rule: item.kind.rawValue, title: item.summary,
            body: w.bytes)
    }

    static func encode(_ organization: Organization?, to w: inout CanonicalJSONWriter) {
        guard let organization else { return }
        w.key("organization")
        w.beginObject()
        w.field("id", organization.id)
        w.field("name", organization.name)
        w.endObject()
    }

    static func encodeActor(id: String?, name: String, clientId: String?, remoteIp: [String], to w: inout CanonicalJSONWriter) {
        w.key("actor")
        w.beginObject()
        w.field("clientId", clientId)
        w.field("id", id)
        w.field("name", name)
        w.field("remoteIp", remoteIp)
        w.endObject()
    }
}
