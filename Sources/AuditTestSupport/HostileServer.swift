import Foundation
import GenesysClient
import GenesysSimulator
import NIOCore
import NIOHTTP1
import NIOPosix
import Synchronization

/// A misbehaving Platform API, for hostile-input tests: an HTTP/1.1 server on a loopback port
/// that answers each request by asking the simulator (over real HTTP) and then, for requests a
/// rule matches, corrupts the reply — its status, headers or body — or the way it is sent: a
/// byte at a time (slow-loris), or never. Everything else passes through unchanged, so a test
/// corrupts one reply of an otherwise faithful organisation.
///
/// It also counts requests by path and keeps the access tokens the login replies carried, so a
/// test can bound how hard a client hammered it and prove no token leaked into any output.
public final class HostileServer: Sendable {
    /// A request as the rule sees it.
    public struct Request: Sendable {
        public var method: String
        /// Path and query, as sent.
        public var uri: String
        public var body: [UInt8]
        /// The bearer token the request carried, if any.
        public var token: String?
        public var path: String { String(uri.split(separator: "?", maxSplits: 1).first ?? Substring(uri)) }
        public var query: String { uri.split(separator: "?", maxSplits: 1).dropFirst().first.map(String.init) ?? "" }
    }

    /// A reply on its way back.
    public struct Reply: Sendable {
        public var status: Int
        public var headers: [(String, String)]
        public var body: [UInt8]

        public init(status: Int, headers: [(String, String)] = [("Content-Type", "application/json")], body: [UInt8]) {
            self.status = status
            self.headers = headers
            self.body = body
        }

        public init(status: Int, json: String) {
            self.init(status: status, body: Array(json.utf8))
        }

        /// Sets a header, replacing any of the same name.
        public mutating func set(_ name: String, _ value: String) {
            headers.removeAll { $0.0.lowercased() == name.lowercased() }
            headers.append((name, value))
        }
    }

    public enum Delivery: Sendable {
        case normal
        /// Every byte of the reply (head and body) alone, this far apart.
        case trickle(Duration)
        /// The head at once, then the body a byte at a time, this far apart.
        case trickleBody(Duration)
        /// Never a byte: the connection is held open until the client gives up.
        case stall
    }

    /// What to do to the replies of matching requests, for the first `times` of them.
    public struct Rule: Sendable {
        public var matches: @Sendable (Request) -> Bool
        public var times: Int
        public var rewrite: @Sendable (Request, inout Reply) -> Void
        public var delivery: Delivery

        public init(
            times: Int = .max, delivery: Delivery = .normal, matches: @escaping @Sendable (Request) -> Bool,
            rewrite: @escaping @Sendable (Request, inout Reply) -> Void = { _, _ in }
        ) {
            self.matches = matches
            self.times = times
            self.rewrite = rewrite
            self.delivery = delivery
        }

        /// Requests whose path starts with `prefix` (and whose method is `method`, if given).
        public static func path(
            _ prefix: String, method: String? = nil, times: Int = .max, delivery: Delivery = .normal,
            rewrite: @escaping @Sendable (Request, inout Reply) -> Void = { _, _ in }
        ) -> Rule {
            Rule(times: times, delivery: delivery, matches: { $0.path.hasPrefix(prefix) && (method == nil || $0.method == method) }, rewrite: rewrite)
        }

        /// Every page of the list at `prefix` says it is the only page and that the next one
        /// is itself (`pageCount` 1, `nextUri` the request's own URI): a list that loops.
        public static func pagesPointingAtThemselves(_ prefix: String) -> Rule {
            path(prefix, method: "GET") { request, reply in
                HostileServer.rewriteJSON(&reply) { page in
                    page["pageCount"] = 1
                    page["nextUri"] = request.uri
                }
            }
        }
    }

    private struct State {
        var rules: [Rule]
        var used: [Int]
        var counts: [String: Int] = [:]
        var tokens: [String] = []
    }

    private let upstream: String
    private let state: Mutex<State>
    private let transport = AsyncHTTPClientTransport(connectTimeout: .seconds(2))
    private let channel: Mutex<(any Channel)?> = Mutex(nil)
    /// Where replies are made and sent; `nil`: the concurrency pool.
    let executor: (any TaskExecutor)?

    public init(upstream: String, rules: [Rule], executor: (any TaskExecutor)? = nil) {
        self.executor = executor
        self.upstream = upstream.hasSuffix("/") ? String(upstream.dropLast()) : upstream
        self.state = Mutex(State(rules: rules, used: Array(repeating: 0, count: rules.count)))
    }

    /// Requests served, by `METHOD path`.
    public var counts: [String: Int] { state.withLock { $0.counts } }
    public var totalRequests: Int { state.withLock { $0.counts.values.reduce(0, +) } }
    /// Requests whose path starts with `prefix`.
    public func requests(_ prefix: String) -> Int {
        state.withLock { $0.counts.filter { $0.key.split(separator: " ").last.map { $0.hasPrefix(prefix) } ?? false }.values.reduce(0, +) }
    }
    /// Every access token a login reply carried through this server.
    public var tokens: [String] { state.withLock { $0.tokens } }

    /// Listens on a free loopback port; returns the base URL (`http://127.0.0.1:PORT`).
    public func start() async throws -> String {
        let bootstrap = ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .serverChannelOption(.backlog, value: 256)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(HTTPRequestDecoder()))
                    try channel.pipeline.syncOperations.addHandler(Connection(server: self))
                }
            }
        let server = try await bootstrap.bind(host: "127.0.0.1", port: 0).get()
        channel.withLock { $0 = server }
        return "http://127.0.0.1:\(server.localAddress?.port ?? 0)"
    }

    public func stop() async {
        let server = channel.withLock { $0 }
        try? await server?.close()
        await transport.shutdown()
    }

    /// Runs `body` with the server listening, then stops it.
    public func withRunning<T: Sendable>(_ body: (String) async throws -> T) async throws -> T {
        let url = try await start()
        do {
            let result = try await body(url)
            await stop()
            return result
        } catch {
            await stop()
            throw error
        }
    }

    // MARK: Serving

    /// Forwards `request` and applies the first matching rule that has uses left.
    func answer(_ request: Request, headers: [(String, String)]) async -> (Reply, Delivery) {
        let rule: Rule? = state.withLock { state in
            state.counts["\(request.method) \(request.path)", default: 0] += 1
            for index in state.rules.indices where state.used[index] < state.rules[index].times && state.rules[index].matches(request) {
                state.used[index] += 1
                return state.rules[index]
            }
            return nil
        }
        var reply: Reply
        let forwarded = headers.filter { ["authorization", "content-type", "accept"].contains($0.0.lowercased()) }
        do {
            let response = try await transport.send(
                HTTPRequestData(method: request.method, url: upstream + request.uri, headers: forwarded, body: request.body.isEmpty ? nil : request.body))
            reply = Reply(
                status: response.status,
                headers: response.headers.filter { !["content-length", "transfer-encoding", "connection"].contains($0.0.lowercased()) },
                body: response.body)
        } catch {
            reply = Reply(status: 502, json: #"{"message":"the hostile server could not reach the simulator","code":"bad.gateway","status":502}"#)
        }
        if request.path == "/oauth/token", let token = Self.accessToken(reply.body) {
            state.withLock { $0.tokens.append(token) }
        }
        if let rule {
            rule.rewrite(request, &reply)
            if request.path == "/oauth/token", let token = Self.accessToken(reply.body) {
                state.withLock { $0.tokens.append(token) }
            }
            return (reply, rule.delivery)
        }
        return (reply, .normal)
    }

    static func accessToken(_ body: [UInt8]) -> String? {
        (try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any])?["access_token"] as? String
    }

    static func bytes(_ reply: Reply) -> (head: [UInt8], body: [UInt8]) {
        var head = "HTTP/1.1 \(reply.status) \(HTTPResponseStatus(statusCode: reply.status).reasonPhrase)\r\n"
        for (name, value) in reply.headers { head += "\(name): \(value)\r\n" }
        head += "Content-Length: \(reply.body.count)\r\nConnection: close\r\n\r\n"
        return (Array(head.utf8), reply.body)
    }

    /// One connection: collects a request, answers it on a task, closes.
    final class Connection: ChannelInboundHandler, @unchecked Sendable {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = ByteBuffer

        let server: HostileServer
        private var head: HTTPRequestHead?
        private var body: [UInt8] = []

        init(server: HostileServer) {
            self.server = server
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head):
                self.head = head
                body = []
            case .body(var buffer):
                body += buffer.readBytes(length: buffer.readableBytes) ?? []
            case .end:
                guard let head else { return }
                self.head = nil
                let token = head.headers["Authorization"].first.flatMap { $0.hasPrefix("Bearer ") ? String($0.dropFirst(7)) : nil }
                let request = Request(method: head.method.rawValue, uri: head.uri, body: body, token: token)
                let headers = head.headers.map { ($0.name, $0.value) }
                let channel = context.channel
                let server = self.server
                Task(executorPreference: server.executor) {
                    let (reply, delivery) = await server.answer(request, headers: headers)
                    await Self.send(reply, delivery, on: channel)
                }
            }
        }

        static func send(_ reply: Reply, _ delivery: Delivery, on channel: any Channel) async {
            let (head, body) = HostileServer.bytes(reply)
            func write(_ bytes: [UInt8]) async -> Bool {
                do {
                    try await channel.writeAndFlush(ByteBuffer(bytes: bytes))
                    return true
                } catch {
                    return false
                }
            }
            switch delivery {
            case .normal:
                _ = await write(head + body)
            case .stall:
                // Hold the connection until the client closes it (or a minute passes).
                for _ in 0..<600 where channel.isActive { try? await Task.sleep(for: .milliseconds(100)) }
            case .trickle(let gap):
                for byte in head + body {
                    guard channel.isActive, await write([byte]) else { break }
                    try? await Task.sleep(for: gap)
                }
            case .trickleBody(let gap):
                guard await write(head) else { break }
                for byte in body {
                    guard channel.isActive, await write([byte]) else { break }
                    try? await Task.sleep(for: gap)
                }
            }
            try? await channel.close()
        }
    }
}

extension HostileServer {
    /// A JSON body rewritten as a dictionary (pass-through when it is not a JSON object).
    public static func rewriteJSON(_ reply: inout Reply, _ change: (inout [String: Any]) -> Void) {
        guard var object = (try? JSONSerialization.jsonObject(with: Data(reply.body))) as? [String: Any] else { return }
        change(&object)
        if let data = try? JSONSerialization.data(withJSONObject: object) { reply.body = Array(data) }
    }
}

extension GenesysSimulator {
    /// Runs the simulator with a hostile server in front of it; `body` gets an endpoint whose API
    /// and login URLs are the hostile server's (the simulator's credentials work through it).
    /// All of it — simulator, hostile server and `body` — runs on a thread of its own, so the
    /// deadlines under test meet the misbehaviour, not a busy test process.
    public func withHostile<T: Sendable>(
        _ rules: [HostileServer.Rule], _ body: @Sendable (SimulatorEndpoint, HostileServer) async throws -> T
    ) async throws -> T {
        try await TestSupport.onDedicatedThread { executor in
            try await withRunning { endpoint in
                let server = HostileServer(upstream: endpoint.apiBaseURL, rules: rules, executor: executor)
                return try await server.withRunning { url in
                    var hostile = endpoint
                    hostile.apiBaseURL = url
                    hostile.loginBaseURL = url
                    return try await body(hostile, server)
                }
            }
        }
    }
}

/// A value tests flip while a server's rules read it.
public final class Flag: Sendable {
    private let value = Mutex(false)
    public init() {}
    public var isSet: Bool { value.withLock { $0 } }
    public func set(_ on: Bool = true) { value.withLock { $0 = on } }
}
