import Foundation
import HummingbirdWebSocket
import NIOWebSocket
import Synchronization

/// What the Notifications API fixes on the real service; tests shorten the times.
public struct NotificationSettings: Sendable, Equatable {
    /// A channel lives this long from its creation (24 h on the real service).
    public var channelLifetimeSeconds = 86_400.0
    /// A `channel.metadata` "WebSocket Heartbeat" message this often on a connected socket.
    public var heartbeatSeconds = 30.0
    /// `v2.system.socket_closing` goes out this long before the channel expires.
    public var closingWarningSeconds = 60.0
    /// Topics one channel may hold.
    public var maxTopicsPerChannel = 1000
    /// Channels one client may hold; creating one more removes the least recently used
    /// (unconnected ones first), as the real service does.
    public var maxChannelsPerClient = 20
    /// How often a connected socket's clock is looked at (heartbeats, the warning, expiry).
    public var tickSeconds = 0.25

    public init() {}
}

/// The Notifications API's state: channels, their topics and their sockets. Pushes go to the
/// socket of every channel subscribed to an audited entity's topic when the write is made; a
/// channel without a connected socket misses them (as on the real service).
final class NotificationHub: Sendable {
    enum Outgoing: Sendable {
        case text(String)
        /// Close the socket (after the messages before it).
        case close
    }

    struct Channel: Sendable {
        var id: String
        var clientId: String
        var expiresAt: Double
        var expiresWallMs: Int64
        var topics: [String] = []
        var topicSet: Set<String> = []
        var connection: UInt64?
        var warned = false
        var lastUsed: Double
    }

    struct State: Sendable {
        var channels: [String: Channel] = [:]
        var sockets: [UInt64: AsyncStream<Outgoing>.Continuation] = [:]
        var nextSocket: UInt64 = 1
        var rng = SeededRandom(seed: 0xC4A2_2E15)
        /// Pushes sent, by topic kind: what a test or a benchmark reads back.
        var pushesSent = 0
        var pushesDropped = 0
    }

    let state = Mutex(State())

    static let auditTopicPrefix = "v2.audits.entitytype."

    /// `v2.audits.entitytype.{type}.entityid.{id}` → (type, id), or nil when the topic is not that.
    static func auditTopic(_ topic: String) -> (entityType: String, entityId: String)? {
        guard topic.hasPrefix(auditTopicPrefix) else { return nil }
        let rest = topic.dropFirst(auditTopicPrefix.count)
        guard let marker = rest.range(of: ".entityid.") else { return nil }
        let type = rest[..<marker.lowerBound]
        let id = rest[marker.upperBound...]
        func plain(_ s: Substring) -> Bool {
            !s.isEmpty && s.count <= 128 && s.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 | 0x20 >= 0x61 && $0 | 0x20 <= 0x7A) || $0 == 0x2D || $0 == 0x5F }
        }
        guard plain(type), plain(id) else { return nil }
        return (String(type), String(id))
    }

    static func topic(entityType: String, entityId: String) -> String {
        "\(auditTopicPrefix)\(entityType).entityid.\(entityId)"
    }

    /// `/channels/{id}` → id.
    static func channelId(fromPath path: String) -> String? {
        let bare = path.split(separator: "?", maxSplits: 1).first.map(String.init) ?? path
        guard bare.hasPrefix("/channels/") else { return nil }
        let id = bare.dropFirst("/channels/".count)
        guard !id.isEmpty, !id.contains("/") else { return nil }
        return String(id)
    }

    func channel(_ id: String) -> Channel? { state.withLock { $0.channels[id] } }

    /// Sends to one socket; false when it is gone.
    @discardableResult
    static func send(_ item: Outgoing, to socket: UInt64?, in state: inout State) -> Bool {
        guard let socket, let continuation = state.sockets[socket] else { return false }
        if case .enqueued = continuation.yield(item) { return true }
        return false
    }
}

extension GenesysSimulator {
    /// Pushes the audit events recorded since the last call to the sockets subscribed to their
    /// entities. Called after every request, applied change and ambient event.
    func publishAuditPushes() {
        let fresh: [SimAuditEvent] = org.withLock { org in
            guard org.pushedCount < org.auditLog.count else {
                org.pushedCount = org.auditLog.count
                return []
            }
            let new = Array(org.auditLog[org.pushedCount...])
            org.pushedCount = org.auditLog.count
            return new
        }
        guard !fresh.isEmpty else { return }
        let orgId = org.withLock { $0.id }
        for event in fresh {
            let topic = NotificationHub.topic(entityType: event.entityType, entityId: event.entityId)
            let plan = faultController.takePushFaults()
            if plan.lead > 0 {
                // Pushed ahead of the audit query: hidden from queries a while longer.
                let visible = nowMilliseconds() + Int64(plan.lead * 1000)
                org.withLock { org in
                    if let index = org.auditLog.lastIndex(where: { $0.id == event.id }) {
                        org.auditLog[index].visibleAt = max(org.auditLog[index].visibleAt, visible)
                    }
                }
            }
            let text = String(decoding: Self.pushMessage(event, topic: topic, orgId: orgId, correlationId: nextCorrelationId()).serialized(), as: UTF8.self)
            notifications.state.withLock { state in
                let subscribed = state.channels.values.filter { $0.topicSet.contains(topic) && $0.connection != nil }
                guard !subscribed.isEmpty else { return }
                if plan.drop {
                    state.pushesDropped += subscribed.count
                    return
                }
                for channel in subscribed {
                    for _ in 0..<(plan.duplicate ? 2 : 1) where NotificationHub.send(.text(text), to: channel.connection, in: &state) {
                        state.pushesSent += 1
                    }
                }
            }
        }
    }

    /// The push as the WebSocket carries it: `{topicName, version, eventBody, metadata}`, the
    /// body in the AuditTopicAuditLogMessage shape (`eventTime`, `userId`, `username`, `clientId{id}`).
    static func pushMessage(_ event: SimAuditEvent, topic: String, orgId: String, correlationId: String) -> JSON {
        var body = JSONObject()
        body.set("id", event.id)
        body.set("userId", event.userId)
        body.set("userHomeOrgId", orgId)
        if let userId = event.userId {
            body.set("username", JSON.object([("id", .string(userId)), ("name", .string(event.userName ?? ""))]))
            body.set("userDisplay", event.userName)
        }
        if let clientId = event.clientId { body.set("clientId", JSON.object([("id", .string(clientId))])) }
        body.set("remoteIp", strings: event.remoteIp, keepEmpty: true)
        body.set("serviceName", event.serviceName)
        body.set("level", event.level)
        body.set("eventTime", event.eventDate)
        body.set("message", auditMessageInfo(event))
        body.set("action", event.action)
        body.set("entityType", event.entityType)
        body.set("entity", JSON.object([("id", .string(event.entityId)), ("name", .string(event.entityName))]))
        body.set("propertyChanges", array: propertyChanges(event), keepEmpty: true)
        body.set("context", JSON.object([]))
        var o = JSONObject()
        o.set("topicName", topic)
        o.set("version", "2")
        o.set("eventBody", body.json)
        o.set("metadata", JSON.object([("CorrelationId", .string(correlationId))]))
        return o.json
    }

    static func metadataMessage(_ message: String) -> String {
        #"{"topicName":"channel.metadata","eventBody":{"message":"\#(message)"}}"#
    }

    static let socketClosingMessage =
        #"{"topicName":"v2.system.socket_closing","eventBody":{"message":"The socket is closing: the channel expires. Create a new channel."}}"#

    // MARK: Sockets

    /// Serves one WebSocket on channel `id` until it closes: heartbeats, ping → pong, the closing
    /// warning and expiry. A second connection to the same channel closes the first.
    /// A socket accepted for channel `id`, registered before the upgrade is answered: what is
    /// pushed from then on waits in its stream until it is served (as the real service
    /// delivers to a connection from the moment it is open).
    struct AcceptedSocket: Sendable {
        var id: UInt64
        var stream: AsyncStream<NotificationHub.Outgoing>
        var continuation: AsyncStream<NotificationHub.Outgoing>.Continuation
    }

    func acceptNotificationSocket(channelId id: String) -> AcceptedSocket? {
        let (stream, continuation) = AsyncStream.makeStream(of: NotificationHub.Outgoing.self, bufferingPolicy: .bufferingOldest(10_000))
        let now = seconds()
        let socket: UInt64? = notifications.state.withLock { state in
            guard var channel = state.channels[id] else { return nil }
            let socket = state.nextSocket
            state.nextSocket += 1
            if let old = channel.connection {
                NotificationHub.send(.close, to: old, in: &state)
                state.sockets[old]?.finish()
                state.sockets[old] = nil
            }
            channel.connection = socket
            channel.lastUsed = now
            state.channels[id] = channel
            state.sockets[socket] = continuation
            return socket
        }
        guard let socket else {
            continuation.finish()
            return nil
        }
        return AcceptedSocket(id: socket, stream: stream, continuation: continuation)
    }

    func serveNotificationSocket(
        channelId id: String, accepted: AcceptedSocket, inbound: WebSocketInboundStream, outbound: WebSocketOutboundWriter
    ) async {
        let send: @Sendable (String) async throws -> Void = { try await outbound.writeTextMessage($0) }
        let close: @Sendable () async throws -> Void = { try await outbound.close(.normalClosure, reason: nil) }
        let settings = configuration.notifications
        let socket = accepted.id
        let stream = accepted.stream
        let continuation = accepted.continuation
        defer {
            notifications.state.withLock { state in
                state.sockets[socket] = nil
                if state.channels[id]?.connection == socket { state.channels[id]?.connection = nil }
            }
            continuation.finish()
        }
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                for await item in stream {
                    switch item {
                    case .text(let text):
                        do { try await send(text) } catch { return }
                    case .close:
                        try? await close()
                        return
                    }
                }
            }
            group.addTask { [self] in
                var messages = inbound.messages(maxSize: 1 << 16).makeAsyncIterator()
                while let message = try? await messages.next() {
                    // `{"message":"ping"}` → pong; anything else is ignored, as the service does.
                    guard case .text(let text) = message else { continue }
                    if let json = try? JSON.parse(Array(text.utf8)), json["message"]?.stringValue == "ping" {
                        continuation.yield(.text(Self.metadataMessage("pong")))
                    }
                    notifications.state.withLock { $0.channels[id]?.lastUsed = seconds() }
                }
            }
            group.addTask { [self] in
                var lastHeartbeat = seconds()
                let tick = Duration.milliseconds(Int(max(0.01, settings.tickSeconds) * 1000))
                while !Task.isCancelled {
                    try? await Task.sleep(for: tick)
                    let now = seconds()
                    let expired: Bool = notifications.state.withLock { state in
                        guard var channel = state.channels[id], channel.connection == socket else { return true }
                        if now >= channel.expiresAt {
                            state.channels[id] = nil
                            return true
                        }
                        if !channel.warned, now >= channel.expiresAt - settings.closingWarningSeconds {
                            channel.warned = true
                            state.channels[id] = channel
                            NotificationHub.send(.text(Self.socketClosingMessage), to: socket, in: &state)
                        }
                        return false
                    }
                    if expired {
                        continuation.yield(.close)
                        return
                    }
                    if now - lastHeartbeat >= settings.heartbeatSeconds {
                        lastHeartbeat = now
                        continuation.yield(.text(Self.metadataMessage("WebSocket Heartbeat")))
                    }
                }
            }
            // The first to end (the socket closed by either side, or the channel gone) ends all.
            await group.next()
            continuation.finish()
            group.cancelAll()
        }
    }

    // MARK: Faults and switches

    /// Closes every connected notification socket now (the channels stay): a dropped connection.
    public func closeNotificationSockets() {
        notifications.state.withLock { state in
            for socket in state.sockets.keys { NotificationHub.send(.close, to: socket, in: &state) }
        }
    }

    /// Expires every channel now: sockets get `v2.system.socket_closing`, then close, and the
    /// channels are gone (their subscriptions with them).
    public func expireNotificationChannels() {
        notifications.state.withLock { state in
            for channel in state.channels.values {
                NotificationHub.send(.text(Self.socketClosingMessage), to: channel.connection, in: &state)
                NotificationHub.send(.close, to: channel.connection, in: &state)
            }
            state.channels.removeAll()
        }
    }

    /// Audit pushes sent and dropped (by the fault plan) so far.
    public var notificationPushCounts: (sent: Int, dropped: Int) {
        notifications.state.withLock { ($0.pushesSent, $0.pushesDropped) }
    }

    /// Topics each live channel holds, by channel id.
    public var notificationSubscriptions: [String: [String]] {
        notifications.state.withLock { $0.channels.mapValues(\.topics) }
    }
}
