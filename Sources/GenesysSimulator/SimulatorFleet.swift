import Foundation
import Hummingbird
import Logging
import ServiceLifecycle
import Synchronization

/// Many organisations behind one server, as Genesys Cloud serves every organisation of a region
/// from the same hosts: each has its own seed, ids, names, OAuth clients, audit log and
/// per-token rate limits; a login is routed by its client id, an API call by its bearer token.
public final class SimulatorFleet: Sendable {
    public let simulators: [GenesysSimulator]
    private let tokenOwners = Mutex<[String: Int]>([:])
    private let clientOwners: [String: Int]
    private let served: Mutex<[Int]>

    /// `count` organisations; the i-th has seed `base.seed + i` (so its own ids, names and secrets).
    public init(count: Int, configuration base: SimulatorConfiguration) {
        var made: [GenesysSimulator] = []
        for index in 0..<max(1, min(count, 1000)) {
            var configuration = base
            configuration.seed = base.seed &+ UInt64(index)
            made.append(GenesysSimulator(configuration: configuration))
        }
        simulators = made
        var owners: [String: Int] = [:]
        for (index, simulator) in made.enumerated() {
            for id in simulator.org.withLock({ Array($0.clients.keys) }) { owners[id] = index }
        }
        clientOwners = owners
        served = Mutex(Array(repeating: 0, count: made.count))
    }

    /// Requests each organisation has been sent (logins included), by index.
    public var requestCounts: [Int] { served.withLock { $0 } }

    /// Generates the organisations on threads of their own, two at a time (seconds of CPU each
    /// for large ones), so a server in the same process keeps answering meanwhile.
    public static func generating(count: Int, configuration: SimulatorConfiguration) async -> SimulatorFleet {
        await withCheckedContinuation { continuation in
            let thread = Thread { continuation.resume(returning: SimulatorFleet(count: count, configuration: configuration)) }
            thread.stackSize = 8 << 20
            thread.start()
        }
    }

    /// The organisation a request is for: by the client id of a login, the bearer token of an
    /// API call; an unknown one goes to the first organisation, which refuses it as Genesys does.
    func route(_ request: SimRequest) -> GenesysSimulator {
        let index = routeIndex(request)
        served.withLock { $0[index] += 1 }
        return simulators[index]
    }

    func routeIndex(_ request: SimRequest) -> Int {
        if request.path == "/oauth/token" {
            if let id = Self.clientId(request), let index = clientOwners[id] { return index }
            return 0
        }
        guard let authorization = request.header("Authorization"), authorization.lowercased().hasPrefix("bearer ") else { return 0 }
        let token = String(authorization.dropFirst(7)).trimmingCharacters(in: .whitespaces)
        if let index = tokenOwners.withLock({ $0[token] }) { return index }
        for (index, simulator) in simulators.enumerated() where simulator.knows(token: token) {
            tokenOwners.withLock { owners in
                if owners.count > 100_000 { owners.removeAll() }
                owners[token] = index
            }
            return index
        }
        return 0
    }

    static func clientId(_ request: SimRequest) -> String? {
        if let header = request.header("Authorization"), header.lowercased().hasPrefix("basic ") {
            let encoded = header.dropFirst(6).trimmingCharacters(in: .whitespaces)
            if let data = Data(base64Encoded: encoded), let text = String(data: data, encoding: .utf8), let colon = text.firstIndex(of: ":") {
                return QueryParameters.decode(String(text[..<colon]))
            }
        }
        return QueryParameters(String(decoding: request.body, as: UTF8.self)).first("client_id")
    }

    /// The fleet as one Hummingbird application; `onReady` gets every organisation's endpoint.
    public func application(
        host: String = "127.0.0.1", port: Int = 0,
        logger: Logger = Logger(label: "rbacwatch.simulator", factory: { _ in SwiftLogNoOpLogHandler() }),
        onReady: @escaping @Sendable ([SimulatorEndpoint]) async -> Void = { _ in }
    ) -> some Service {
        Application(
            responder: SimulatorResponder(simulator: simulators[0], route: { [self] request in route(request) }),
            server: GenesysSimulator.serverBuilder { [simulators] id in simulators.first { $0.notifications.channel(id) != nil } },
            configuration: .init(address: .hostname(host, port: port), serverName: nil),
            onServerRunning: { [self] channel in
                let bound = channel.localAddress?.port ?? port
                await onReady(simulators.map { $0.endpoint(port: bound) })
            },
            logger: logger)
    }

    /// Runs the fleet on a free port for the duration of `body`.
    public func withRunning<T: Sendable>(_ body: @Sendable ([SimulatorEndpoint]) async throws -> T) async throws -> T {
        try await runServer({ ready in application(onReady: ready) }, body)
    }

    /// The organisations file for this fleet: one entry per organisation named `prefix-NN`, its
    /// API URL, client id, and its secret read from `secretDirectory/NAME.secret` (written 0600).
    public static func organizationsFile(_ endpoints: [SimulatorEndpoint], names: [String], secretDirectory: String) throws -> [UInt8] {
        try FileManager.default.createDirectory(atPath: secretDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        var entries: [String] = []
        for (endpoint, name) in zip(endpoints, names) {
            let path = (secretDirectory as NSString).appendingPathComponent("\(name).secret")
            let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
            guard fd >= 0 else { throw CocoaError(.fileWriteNoPermission) }
            let bytes = Array((endpoint.clientSecret + "\n").utf8)
            _ = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            close(fd)
            var o = JSONObject()
            o.set("name", name)
            o.set("apiUrl", endpoint.apiBaseURL)
            o.set("loginUrl", endpoint.loginBaseURL)
            o.set("clientId", endpoint.clientId)
            o.set("clientSecretFile", path)
            entries.append(String(decoding: o.json.serialized(), as: UTF8.self))
        }
        return Array("{\"organizations\": [\n  \(entries.joined(separator: ",\n  "))\n]}\n".utf8)
    }

    public static func names(count: Int, prefix: String = "sim") -> [String] {
        let width = String(count).count
        return (1...max(1, count)).map { index in
            let digits = String(index)
            return "\(prefix)-\(String(repeating: "0", count: max(0, width - digits.count)))\(digits)"
        }
    }
}

extension GenesysSimulator {
    /// Whether this organisation issued the token (valid or expired).
    func knows(token: String) -> Bool {
        let now = seconds()
        return tokens.withLock { store in
            if case .unknown = store.lookup(token, now: now) { return false }
            return true
        }
    }
}

extension GenesysSimulator {
    /// The simulated organisation's id.
    public var organizationId: String { org.withLock { $0.id } }
}

extension GenesysSimulator {
    /// The ids of every audit event the organisation has recorded, oldest first.
    public var auditEventIds: [String] { org.withLock { $0.auditLog.map(\.id) } }
}
