import Foundation

/// A delivery payload as an OCSF 1.7 event, for destinations that take OCSF: a finding as a
/// Detection Finding (class 2004), a drift item as a Compliance Finding (class 2003, the same
/// shape `diff --format ocsf` writes). Built from the payload's own JSON, so it says exactly
/// what the validated payload says; rbacwatch's members that OCSF has no place for go under
/// `unmapped`.
public enum OCSFPayload {
    public static func event(_ payload: DeliveryPayload, productVersion: String = "2") -> [UInt8]? {
        guard let json = JSONValue.parse(payload.body) else { return nil }
        func text(_ value: JSONValue?) -> String? { value?.string.flatMap { $0.isEmpty ? nil : $0 } }
        func texts(_ value: JSONValue?) -> [String] {
            if case .array(let items)? = value { return items.compactMap(\.string) }
            return []
        }
        let approved = ["approved", "approved-by-cause"].contains(text(json["status"]) ?? "")
        let severity = DriftReport.ocsfSeverity(payload.severity)
        let finding = payload.kind == .finding
        let uid = "rbacwatch-\(finding ? "finding" : "drift")-\(payload.id)"
        var w = CanonicalJSONWriter(reservingCapacity: payload.body.count + 1024)
        w.beginObject()
        w.field("activity_id", 1)
        w.field("activity_name", "Create")
        let actor = json["actor"]
        if let actor {
            w.key("actor")
            w.beginObject()
            w.field("app_uid", text(actor["clientId"]))
            w.key("user")
            w.beginObject()
            w.field("name", text(actor["name"]))
            w.field("uid", text(actor["id"]))
            w.endObject()
            w.endObject()
        }
        w.field("category_name", "Findings")
        w.field("category_uid", 2)
        w.field("class_name", finding ? "Detection Finding" : "Compliance Finding")
        w.field("class_uid", finding ? 2004 : 2003)
        if !finding { DriftReport.ocsfCompliance(kind: payload.rule, approved: approved, reasons: texts(json["reasons"]), to: &w) }
        w.key("finding_info")
        w.beginObject()
        if finding {
            w.key("analytic")
            w.beginObject()
            w.field("name", text(json["title"]))
            w.field("type", "Rule")
            w.field("type_id", 1)
            w.field("uid", payload.rule)
            w.endObject()
        }
        w.field("desc", finding ? texts(json["evidence"]).joined(separator: "; ") : (text(json["summary"]) ?? payload.title))
        w.field("title", payload.title)
        w.field("types", finding ? ["rbacwatch-audit", payload.rule] : ["rbac-drift", payload.rule])
        w.field("uid", uid)
        w.endObject()
        w.field("message", payload.title)
        w.key("metadata")
        w.beginObject()
        w.field("log_name", finding ? "rbacwatch findings" : "rbacwatch drift")
        w.key("product")
        w.beginObject()
        w.field("name", "rbacwatch")
        w.field("vendor_name", "rbacwatch")
        w.field("version", productVersion)
        w.endObject()
        w.field("uid", uid)
        w.field("version", "1.7.0")
        w.endObject()
        w.key("resources")
        w.beginArray()
        let targets: [JSONValue?] = finding ? [json["target"]] : [json["subject"], json["role"], json["division"]]
        for target in targets.compactMap({ $0 }) {
            w.beginObject()
            w.field("name", text(target["name"]))
            w.field("type", "Genesys Cloud \(text(target["type"]) ?? text(target["kind"]) ?? "entity")")
            w.field("uid", text(target["id"]))
            w.endObject()
        }
        w.endArray()
        w.field("severity", severity.name)
        w.field("severity_id", severity.id)
        if let ip = texts(actor?["remoteIp"]).first {
            w.key("src_endpoint")
            w.beginObject()
            w.field("ip", ip)
            w.endObject()
        }
        w.field("status", approved ? "Suppressed" : "New")
        w.field("status_id", approved ? 3 : 1)
        w.field("time", Int(Bounded.epochMilliseconds(payload.time)))
        w.field("type_name", finding ? "Detection Finding: Create" : "Compliance Finding: Create")
        w.field("type_uid", finding ? 200_401 : 200_301)
        w.key("unmapped")
        w.beginObject()
        w.field("controls", texts(json["controls"]))
        w.field("fingerprint", text(json["fingerprint"]))
        w.field("id", payload.id)
        w.field("organization_id", text(json["organization"]?["id"]))
        w.field("organization_name", text(json["organization"]?["name"]))
        w.field("schema", text(json["schema"]))
        w.field("ticket", text(json["approval"]?["ticket"]))
        w.endObject()
        w.endObject()
        return w.bytes
    }
}
