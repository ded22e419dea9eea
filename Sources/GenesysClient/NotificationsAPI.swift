import AuditCore
import Foundation
import HummingbirdWSClient
import Logging
import Synchronization

struct ChannelWire: Decodable {
    var id: String
    var connectUri: String?
    var expires: String?
}

struct TopicListingWire: Decodable {
    struct Topic: Decodable {
        var id: String
        var state: String?
        var rejectionReason: String?
        var missingPermissions: [String]?
    }
    var entities: [Topic]?
}

extension GenesysAPIClient {
    /// The most topics one channel holds (the API's limit).
    public static let topicsPerChannel = 1000

    /// `POST /api/v2/notifications/channels`. The API keeps 20 channels per client and removes
    /// the least recently used when a 21st is made.
    public func createNotificationChannel() async throws -> NotificationChannel {
        let wire: ChannelWire = try await request("POST", "/api/v2/notifications/channels", body: Array("{}".utf8), decode: ChannelWire.self)
        guard let uri = wire.connectUri, !uri.isEmpty else {
            throw GenesysClientError(.malformedReply, "the notification channel \(TerminalSafe.sanitize(wire.id)) came without a connectUri")
        }
        try checkSocketURI(uri)
        return NotificationChannel(id: wire.id, connectUri: uri, expires: wire.expires.flatMap(ISOTimestamp.date))
    }

    /// Replaces (`PUT`) or extends (`POST`) a channel's topics. Topics the client lacks a
    /// permission for come back `Rejected` (with `ignoreErrors`) instead of failing the call.
    public func subscribe(channel id: String, topics: [String], replace: Bool) async throws -> [TopicSubscription] {
        guard topics.count <= Self.topicsPerChannel else {
            throw GenesysClientError(.configuration, "\(topics.count) topics for one channel (at most \(Self.topicsPerChannel))")
        }
        var body = "["
        for (index, topic) in topics.enumerated() {
            if index > 0 { body += "," }
            body += #"{"id":"# + Self.jsonString(topic) + "}"
        }
        body += "]"
        let wire: TopicListingWire = try await request(
            replace ? "PUT" : "POST", "/api/v2/notifications/channels/\(Self.pathSegment(id))/subscriptions?ignoreErrors=true",
            body: Array(body.utf8), decode: TopicListingWire.self)
        return (wire.entities ?? []).map {
            TopicSubscription(
                topic: $0.id, permitted: ($0.state ?? "Permitted") == "Permitted", rejectionReason: $0.rejectionReason,
                missingPermissions: $0.missingPermissions ?? [])
        }
    }

    /// The topics a channel holds now.
    public func subscriptions(channel id: String) async throws -> [TopicSubscription] {
        let wire: TopicListingWire = try await get("/api/v2/notifications/channels/\(Self.pathSegment(id))/subscriptions")
        return (wire.entities ?? []).map {
            TopicSubscription(
                topic: $0.id, permitted: ($0.state ?? "Permitted") == "Permitted", rejectionReason: $0.rejectionReason,
                missingPermissions: $0.missingPermissions ?? [])
        }
    }

    /// Whether the channel still exists (`HEAD`: 404 once it expired or was replaced).
    public func notificationChannelExists(_ id: String) async throws -> Bool {
        do {
            _ = try await send("HEAD", "/api/v2/notifications/channels/\(Self.pathSegment(id))")
            return true
        } catch let error as GenesysAPIError where error.status == 404 {
            return false
        }
    }

    /// A socket address from the API is used only where the API itself is: `wss://` for an
    /// `https` API (a host in the same domain), `ws://` only to the host of an `http` (loopback)
    /// API. A channel id is a credential of sorts; nothing else is given it.
    func checkSocketURI(_ uri: String) throws {
        guard let socket = URL(string: uri), let socketHost = socket.host?.lowercased(),
            let api = URL(string: connection.apiBaseURL), let apiHost = api.host?.lowercased()
        else { throw GenesysClientError(.malformedReply, "the channel's connectUri is not a URL") }
        switch (api.scheme, socket.scheme) {
        case ("https", "wss"):
            let domain = apiHost.split(separator: ".").dropFirst().joined(separator: ".")
            guard !domain.isEmpty, socketHost == domain || socketHost.hasSuffix("." + domain) else {
                throw GenesysClientError(.malformedReply, "the channel's socket host \(TerminalSafe.sanitize(socketHost)) is not in the API's domain")
            }
        case ("http", "ws"):
            guard socketHost == apiHost else {
                throw GenesysClientError(.malformedReply, "the channel's socket host \(TerminalSafe.sanitize(socketHost)) is not the API's host")
            }
        default:
            throw GenesysClientError(.malformedReply, "the channel's socket scheme does not match the API's (\(api.scheme ?? "none"))")
        }
    }

    static func jsonString(_ s: String) -> String {
        var out = "\""
        for scalar in s.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case _ where scalar.value < 0x20: out += String(format: "\\u%04x", scalar.value)
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    static func pathSegment(_ s: String) -> String {
        s.addingPercentEncoding(withAllowedCharacters: .alphanumerics.union(CharacterSet(charactersIn: "-_."))) ?? s
    }
}

/// One WebSocket of a channel: connects, pings, hands each message over, and ends when the
/// server closes it or goes silent. Reconnection is the caller's (a new channel after expiry).
public enum NotificationSocket {
    /// Runs the socket until it ends. `silence`: the longest wait for any message (the API
    /// sends a heartbeat every 30 s). `ping`: how often `{"message":"ping"}` is sent.
    public static func run(
        _ channel: NotificationChannel, silence: Duration = .seconds(95), ping: Duration = .seconds(30),
        logger: Logger = Logger(label: "rbacwatch.notifications", factory: { _ in SwiftLogNoOpLogHandler() }),
        onUnreadable: @escaping @Sendable (String) async -> Void = { _ in },
        onOpen: @escaping @Sendable () async -> Void = {},
        onMessage: @escaping @Sendable (NotificationMessage) async -> Void
    ) async throws -> NotificationSocketEnd {
        final class Heard: Sendable {
            let last = Mutex(ContinuousClock.now)
            let warned = Mutex(false)
        }
        let heard = Heard()
        return try await withThrowingTaskGroup(of: NotificationSocketEnd?.self) { group in
            group.addTask {
                var configuration = WebSocketClientConfiguration()
                configuration.maxFrameSize = 1 << 20
                try await WebSocketClient.connect(url: channel.connectUri, configuration: configuration, logger: logger) { inbound, outbound, _ in
                    heard.last.withLock { $0 = .now }
                    await onOpen()
                    try await withThrowingTaskGroup(of: Void.self) { inner in
                        inner.addTask {
                            while true {
                                try await Task.sleep(for: ping)
                                try await outbound.writeTextMessage(#"{"message":"ping"}"#)
                            }
                        }
                        inner.addTask {
                            for try await message in inbound.messages(maxSize: 1 << 20) {
                                heard.last.withLock { $0 = .now }
                                guard case .text(let text) = message else { continue }
                                do {
                                    let parsed = try NotificationMessage.parse(Array(text.utf8))
                                    if parsed == .socketClosing { heard.warned.withLock { $0 = true } }
                                    await onMessage(parsed)
                                } catch {
                                    await onUnreadable("\(error)")
                                }
                            }
                        }
                        // Reading ends when the server closes; pinging then stops too.
                        _ = try await inner.next()
                        inner.cancelAll()
                    }
                }
                return .closed(warned: heard.warned.withLock { $0 })
            }
            group.addTask {
                // The silence ceiling: checked a few times per period.
                while true {
                    try await Task.sleep(for: silence / 4)
                    if ContinuousClock.now - heard.last.withLock({ $0 }) > silence { return .silent }
                }
            }
            defer { group.cancelAll() }
            while let end = try await group.next() {
                if let end { return end }
            }
            return .silent
        }
    }
}

/// The Notifications API as ingestion's push source.
public struct GenesysPushSource: AuditPushSource {
    public let client: GenesysAPIClient
    public var silence: Duration
    public var ping: Duration

    public init(client: GenesysAPIClient, silence: Duration = .seconds(95), ping: Duration = .seconds(30)) {
        self.client = client
        self.silence = silence
        self.ping = ping
    }

    public func openChannel() async throws -> NotificationChannel {
        do {
            return try await client.createNotificationChannel()
        } catch let error as GenesysAPIError where error.status == 403 {
            throw AuditPushError.refused("the client may not open notification channels (403\(Self.lacking(error)))")
        }
    }

    public func subscribe(_ channel: NotificationChannel, topics: [String]) async throws -> [TopicSubscription] {
        do {
            return try await client.subscribe(channel: channel.id, topics: topics, replace: true)
        } catch let error as GenesysAPIError where error.status == 403 {
            throw AuditPushError.refused("the client may not subscribe to audit topics (403\(Self.lacking(error)))")
        }
    }

    static func lacking(_ error: GenesysAPIError) -> String {
        error.missingPermissions.isEmpty ? "" : ": it lacks " + error.missingPermissions.map(TerminalSafe.sanitize).joined(separator: ", ")
    }

    public func listen(
        _ channel: NotificationChannel, onOpen: @escaping @Sendable () async -> Void, onMessage: @escaping @Sendable (NotificationMessage) async -> Void
    ) async throws -> NotificationSocketEnd {
        try await NotificationSocket.run(channel, silence: silence, ping: ping, onOpen: onOpen, onMessage: onMessage)
    }
}
