import Foundation
import Synchronization

/// The Notifications API: channels, their subscriptions and (in `Notifications.swift`) sockets.
extension GenesysSimulator {
    /// The permission an audit topic needs, as the audit query does.
    static let auditTopicPermission = "audits:audit:view"

    func channelJSON(_ channel: NotificationHub.Channel, request: SimRequest) -> JSON {
        let host = request.header("Host") ?? "\(configuration.host)"
        var o = JSONObject()
        o.set("connectUri", "ws://\(host)/channels/\(channel.id)")
        o.set("id", channel.id)
        o.set("expires", ISODate.string(epochMilliseconds: channel.expiresWallMs))
        return o.json
    }

    /// `POST /api/v2/notifications/channels`: a new channel for the caller's client. The 21st
    /// channel removes the least recently used (one without a socket first).
    func createChannel(_ r: SimRequest) throws -> SimResponse {
        guard let clientId = r.clientId else { throw APIError(status: 401, code: "bad.credentials", message: "Invalid login credentials.") }
        let settings = configuration.notifications
        let now = seconds()
        let wall = nowMilliseconds()
        let channel: NotificationHub.Channel = notifications.state.withLock { state in
            let mine = state.channels.values.filter { $0.clientId == clientId }
            if mine.count >= max(1, settings.maxChannelsPerClient) {
                let victim = mine.min { a, b in
                    (a.connection == nil ? 0 : 1, a.lastUsed) < (b.connection == nil ? 0 : 1, b.lastUsed)
                }
                if let victim {
                    NotificationHub.send(.close, to: victim.connection, in: &state)
                    state.channels[victim.id] = nil
                }
            }
            var suffix = ""
            for _ in 0..<26 { suffix.append(Character(UnicodeScalar(UInt8(ascii: "a") + UInt8(state.rng.next() % 26)))) }
            let channel = NotificationHub.Channel(
                id: "streaming-0-\(suffix)", clientId: clientId, expiresAt: now + settings.channelLifetimeSeconds,
                expiresWallMs: wall + Int64(settings.channelLifetimeSeconds * 1000), lastUsed: now)
            state.channels[channel.id] = channel
            return channel
        }
        return .ok(channelJSON(channel, request: r))
    }

    /// `GET /api/v2/notifications/channels`: the caller's channels.
    func listChannels(_ r: SimRequest) -> SimResponse {
        let mine = notifications.state.withLock { state in
            state.channels.values.filter { $0.clientId == r.clientId }.sorted { $0.id < $1.id }
        }
        var o = JSONObject()
        o.set("entities", array: mine.map { channelJSON($0, request: r) }, keepEmpty: true)
        return .ok(o.json)
    }

    /// `HEAD /api/v2/notifications/channels/{id}`: 200 while it lives, 404 after.
    func headChannel(_ r: SimRequest, _ id: String) throws -> SimResponse {
        _ = try ownChannel(r, id)
        return SimResponse(status: 200, body: nil)
    }

    func ownChannel(_ r: SimRequest, _ id: String) throws -> NotificationHub.Channel {
        guard let channel = notifications.channel(id), channel.clientId == r.clientId else { throw APIError.notFound("channel") }
        return channel
    }

    func topicListing(_ topics: [(String, rejected: String?)]) -> SimResponse {
        var o = JSONObject()
        o.set(
            "entities",
            array: topics.map { topic, rejected in
                var t = JSONObject()
                t.set("id", topic)
                t.set("state", rejected == nil ? "Permitted" : "Rejected")
                if let rejected {
                    t.set("rejectionReason", rejected)
                    t.set("missingPermissions", strings: [Self.auditTopicPermission])
                }
                return t.json
            }, keepEmpty: true)
        return .ok(o.json)
    }

    /// `GET …/channels/{id}/subscriptions`.
    func getSubscriptions(_ r: SimRequest, _ id: String) throws -> SimResponse {
        let channel = try ownChannel(r, id)
        return topicListing(channel.topics.map { ($0, rejected: nil) })
    }

    /// `PUT` (replace) or `POST` (add) `…/channels/{id}/subscriptions` with `[{"id": topic}]`.
    /// An unknown topic is a 400; more than the channel's limit a 400; a topic the caller lacks
    /// the permission for a 403, or with `ignoreErrors=true` a `Rejected` entry (the rest subscribed).
    func setSubscriptions(_ r: SimRequest, _ id: String, replace: Bool) throws -> SimResponse {
        _ = try ownChannel(r, id)
        guard let items = try jsonBody(r).arrayValue else { throw APIError.badRequest("The body must be a list of topics.") }
        var requested: [String] = []
        for item in items {
            guard let topic = item["id"]?.stringValue else { throw APIError.badRequest("Each topic needs an id.") }
            guard NotificationHub.auditTopic(topic) != nil else {
                throw APIError(status: 400, code: "bad.request", message: "The topic \(topic) is not a valid topic.", params: ["topic": topic])
            }
            requested.append(topic)
        }
        let permitted = holds(Self.auditTopicPermission, client: r.clientId ?? "")
        let ignoreErrors = r.query.bool("ignoreErrors") ?? false
        if !permitted && !ignoreErrors && !requested.isEmpty {
            throw APIError(
                status: 403, code: "missing.permissions",
                message: "Unable to perform the requested action. You are missing the following permission(s): [\(Self.auditTopicPermission)]",
                params: ["permissions": Self.auditTopicPermission])
        }
        let limit = configuration.notifications.maxTopicsPerChannel
        let now = seconds()
        return try notifications.state.withLock { state in
            guard var channel = state.channels[id] else { throw APIError.notFound("channel") }
            var topics = replace ? [] : channel.topics
            var set = replace ? Set<String>() : channel.topicSet
            for topic in requested where permitted && set.insert(topic).inserted { topics.append(topic) }
            guard topics.count <= limit else {
                throw APIError(
                    status: 400, code: "notification.topic.limit.exceeded",
                    message: "A channel may subscribe to at most \(limit) topics; this request would make it \(topics.count).",
                    params: ["limit": String(limit)])
            }
            channel.topics = topics
            channel.topicSet = set
            channel.lastUsed = now
            state.channels[id] = channel
            let rejected = permitted ? [] : requested.map { ($0, rejected: Optional("missing permissions")) }
            return topicListing(topics.map { ($0, rejected: nil) } + rejected)
        }
    }

    /// `DELETE …/channels/{id}/subscriptions`: every topic removed.
    func deleteSubscriptions(_ r: SimRequest, _ id: String) throws -> SimResponse {
        _ = try ownChannel(r, id)
        notifications.state.withLock { state in
            state.channels[id]?.topics = []
            state.channels[id]?.topicSet = []
        }
        return .noContent
    }
}
