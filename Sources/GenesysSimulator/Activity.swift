import Foundation
import Synchronization

/// The rest of a contact centre's day, as the audit log sees it: queues retuned, webhooks and
/// integrations pointed somewhere, trunks edited, recording settings touched, OAuth client
/// secrets rotated, people logging in (and now and then failing to, several times in a row).
/// Most of it is routine; about one event in twenty is the kind a rule should catch.
///
/// These entities are not part of the RBAC model the simulator serves, so only their audit
/// events exist; OAuth clients are real, and a regenerated secret really changes.
extension GenesysSimulator {
    /// The kinds of ambient event, for tests that want one in particular.
    public enum AmbientEvent: String, Sendable, CaseIterable {
        case queueEdited, queueSkillRoutingOff, queueOverflowChanged
        case webhookAllowed, webhookOutside, integrationEdited
        case trunkEdited, recordingDisabled
        case clientSecretRegenerated, login, loginFailures
    }

    static let queues = ["Support Tier 1", "Support Tier 2", "Billing", "Sales Inbound", "Retention", "Collections"]
    static let webhooks = ["CRM sync", "Ticket bridge", "Survey export"]
    static let trunks = ["SIP London", "SIP Frankfurt", "BYOC Carrier"]

    /// Records one ambient event (or, for `.loginFailures`, a burst of five) dated now; `roll`
    /// picks the kind when none is given. Returns the kind recorded.
    @discardableResult
    public func recordAmbient(_ kind: AmbientEvent? = nil, roll: UInt64) -> AmbientEvent {
        let kind = kind ?? Self.ambientKind(roll)
        let date = timestamp()
        var rng = SeededRandom(seed: roll ^ 0xA5A5_5A5A_0F0F_F0F0)
        let protected = [credentials.auditorClientId, credentials.adminClientId]
        org.withLock { org in
            let people = org.userOrder.prefix(40).compactMap { org.users[$0] }
            guard !people.isEmpty else { return }
            let actor = people[Int(rng.next() % UInt64(min(people.count, 6)))]  // a handful of administrators
            let who = AuditActor(userId: actor.id, clientId: nil)
            func entity(_ names: [String], _ prefix: String) -> (id: String, name: String) {
                let index = Int(rng.next() % UInt64(names.count))
                var ids = SeededRandom(seed: UInt64(index) &+ UInt64(prefix.utf8.count) &* 7919 ^ configuration.seed)
                return (ids.uuid(), names[index])
            }
            switch kind {
            case .queueEdited, .queueSkillRoutingOff, .queueOverflowChanged:
                let queue = entity(Self.queues, "queue")
                let change: SimAuditEvent.Change =
                    switch kind {
                    case .queueSkillRoutingOff: .init(property: "skillEvaluationMethod", oldValues: ["BEST"], newValues: ["NONE"])
                    case .queueOverflowChanged: .init(property: "overflowQueueId", oldValues: [""], newValues: [entity(Self.queues, "queue").id])
                    default: .init(property: "acwTimeoutMs", oldValues: ["30000"], newValues: ["\(30 + rng.next() % 4 * 15)000"])
                    }
                org.audit(who, date: date, service: "ContactCenter", entityType: "Queue", action: "Update", entityId: queue.id, entityName: queue.name, changes: [change])
            case .webhookAllowed, .webhookOutside:
                let hook = entity(Self.webhooks, "webhook")
                let url = kind == .webhookOutside ? "https://collector.exfil.invalid/in" : "https://hooks.example.com/\(hook.name.lowercased().replacingOccurrences(of: " ", with: "-"))"
                org.audit(
                    who, date: date, service: "Webhooks", entityType: "Webhook", action: "Update", entityId: hook.id, entityName: hook.name,
                    changes: [.init(property: "url", oldValues: ["https://hooks.example.com/old"], newValues: [url])])
            case .integrationEdited:
                let hook = entity(["Data Actions", "Salesforce", "Zendesk"], "integration")
                org.audit(
                    who, date: date, service: "Integrations", entityType: "Integration", action: "Update", entityId: hook.id, entityName: hook.name,
                    changes: [.init(property: "notes", oldValues: [""], newValues: ["rotated credentials"])])
            case .trunkEdited:
                let trunk = entity(Self.trunks, "trunk")
                org.audit(
                    who, date: date, service: "Telephony", entityType: "Trunk", action: "Update", entityId: trunk.id, entityName: trunk.name,
                    changes: [.init(property: "maxCalls", oldValues: ["200"], newValues: ["250"])])
            case .recordingDisabled:
                org.audit(
                    who, date: date, service: "Recording", entityType: "RecordingSettings", action: "Update", entityId: org.id,
                    entityName: "Recording settings", changes: [.init(property: "recordingEnabled", oldValues: ["true"], newValues: ["false"])])
            case .clientSecretRegenerated:
                let candidates = org.clientOrder.filter { !protected.contains($0) }
                guard !candidates.isEmpty else { return }
                let id = candidates[Int(rng.next() % UInt64(candidates.count))]
                org.clients[id]?.secret = rng.uuid()
                org.clients[id]?.dateModified = date
                org.audit(
                    who, date: date, service: "PeoplePermissions", entityType: "OAuthClient", action: "SecretRegenerated", entityId: id,
                    entityName: org.clients[id]?.name ?? "", changes: [])
            case .login:
                org.audit(who, date: date, service: "PeoplePermissions", entityType: "AuthUser", action: "Authenticate", entityId: actor.id, entityName: actor.name, changes: [])
            case .loginFailures:
                // Someone guessing at one account from one address.
                let target = people[Int(rng.next() % UInt64(people.count))]
                for _ in 0..<5 {
                    org.audit(
                        AuditActor(userId: target.id, clientId: nil), date: date, service: "PeoplePermissions", entityType: "AuthUser",
                        action: "AuthenticationFailed", entityId: target.id, entityName: target.name, changes: [], status: "FAILURE",
                        remoteIp: ["198.51.100.23"])
                }
            }
        }
        publishAuditPushes()
        return kind
    }

    /// Routine most of the time; one in twenty a change a rule is there to catch.
    static func ambientKind(_ roll: UInt64) -> AmbientEvent {
        switch roll % 100 {
        case 0..<30: .login
        case 30..<50: .queueEdited
        case 50..<62: .webhookAllowed
        case 62..<74: .integrationEdited
        case 74..<83: .trunkEdited
        case 83..<90: .clientSecretRegenerated
        case 90..<95: .queueOverflowChanged
        case 95: .queueSkillRoutingOff
        case 96: .webhookOutside
        case 97: .recordingDisabled
        default: .loginFailures
        }
    }
}
