import Foundation

/// One message of a Notifications API WebSocket: `{"topicName", "version", "eventBody", "metadata"}`.
/// An audit topic's body is an AuditTopicAuditLogMessage (`eventTime`, `userId`, `username`,
/// `clientId{id}`), read by the same reader as the audit query's AuditLogMessage.
public enum NotificationMessage: Sendable, Equatable {
    /// `channel.metadata` "WebSocket Heartbeat".
    case heartbeat
    /// `channel.metadata` "pong", the answer to `{"message":"ping"}`.
    case pong
    /// `v2.system.socket_closing`: the socket closes soon; open a new channel.
    case socketClosing
    /// A push on `v2.audits.entitytype.{type}.entityid.{id}`.
    case audit(topic: String, event: AuditEvent)
    /// Any other topic, or `channel.metadata` saying something else.
    case other(topic: String)

    static let auditPrefix = "v2.audits.entitytype."

    /// The audit topic of an entity.
    public static func auditTopic(entityType: String, entityId: String) -> String {
        "\(auditPrefix)\(entityType).entityid.\(entityId)"
    }

    /// Reads one message. A message that is not JSON, has no `topicName`, or carries an audit
    /// topic whose body is not an audit event fails with the reason.
    public static func parse(_ bytes: [UInt8]) throws(AuditEventError) -> NotificationMessage {
        guard bytes.count <= 1 << 20 else { throw AuditEventError(description: "a notification of \(bytes.count) bytes (at most 1 MiB)") }
        var scanner = JSONScanner(bytes)
        var topic: String?
        var body: Range<Int>?
        do throws(JSONScanner.ScanError) {
            try scanner.object { s, key throws(JSONScanner.ScanError) in
                switch key {
                case "topicName": topic = try s.optionalString()
                case "eventBody":
                    s.skipSpace()
                    let start = s.index
                    try s.skipValue()
                    body = start..<s.index
                default: try s.skipValue()
                }
            }
            scanner.skipSpace()
            guard scanner.atEnd else { throw scanner.fail("trailing data") }
        } catch {
            throw AuditEventError(description: "not a notification: \(error.reason) at byte \(error.offset)")
        }
        guard let topic, !topic.isEmpty else { throw AuditEventError(description: "a notification without a topicName") }
        let bodyBytes = body.map { Array(bytes[$0]) } ?? []
        switch topic {
        case "channel.metadata":
            switch metadataText(bodyBytes) {
            case "WebSocket Heartbeat": return .heartbeat
            case "pong": return .pong
            default: return .other(topic: topic)
            }
        case "v2.system.socket_closing":
            return .socketClosing
        default:
            guard topic.hasPrefix(auditPrefix) else { return .other(topic: topic) }
            guard !bodyBytes.isEmpty else { throw AuditEventError(description: "an audit notification on \(topic) without an eventBody") }
            return .audit(topic: topic, event: try AuditEvent.parse(bodyBytes))
        }
    }

    /// `{"message": "…"}` → the message.
    static func metadataText(_ bytes: [UInt8]) -> String? {
        var scanner = JSONScanner(bytes)
        var text: String?
        do {
            try scanner.object { s, key throws(JSONScanner.ScanError) in
                if key == "message" { text = try s.optionalString() } else { try s.skipValue() }
            }
        } catch {
            return nil
        }
        return text
    }
}

/// A Notifications API channel: where its WebSocket is and when it expires.
public struct NotificationChannel: Sendable, Equatable {
    public var id: String
    public var connectUri: String
    public var expires: Date?

    public init(id: String, connectUri: String, expires: Date?) {
        self.id = id
        self.connectUri = connectUri
        self.expires = expires
    }
}

/// One topic of a channel's subscription list as the API answered it.
public struct TopicSubscription: Sendable, Equatable {
    public var topic: String
    /// `Permitted`; a `Rejected` topic says why and which permissions it lacks.
    public var permitted: Bool
    public var rejectionReason: String?
    public var missingPermissions: [String]

    public init(topic: String, permitted: Bool, rejectionReason: String? = nil, missingPermissions: [String] = []) {
        self.topic = topic
        self.permitted = permitted
        self.rejectionReason = rejectionReason
        self.missingPermissions = missingPermissions
    }
}

/// How a notification socket ended.
public enum NotificationSocketEnd: Sendable, Equatable {
    /// The server closed it (after `v2.system.socket_closing`, or without warning).
    case closed(warned: Bool)
    /// Nothing came for the silence ceiling (heartbeats stopped): given up on.
    case silent
}

/// Where pushed audit events come from: the Notifications API (`GenesysPushSource`), or anything
/// that answers the same calls.
public protocol AuditPushSource: Sendable {
    /// A new channel (the API keeps 20 a client and drops the least recently used past that).
    func openChannel() async throws -> NotificationChannel
    /// Replaces the channel's topics (at most 1,000); rejected topics say what they lack.
    func subscribe(_ channel: NotificationChannel, topics: [String]) async throws -> [TopicSubscription]
    /// Listens on the channel's socket until it ends: `onOpen` once it is connected (pushes
    /// flow from then on), then each message.
    func listen(
        _ channel: NotificationChannel, onOpen: @escaping @Sendable () async -> Void, onMessage: @escaping @Sendable (NotificationMessage) async -> Void
    ) async throws -> NotificationSocketEnd
}

/// A push source that cannot be used at all: the client lacks the permission, say. Ingestion
/// then polls only, and says so once.
public enum AuditPushError: Error, Sendable, CustomStringConvertible {
    case refused(String)

    public var description: String {
        switch self {
        case .refused(let reason): reason
        }
    }
}
