import AuditCore
import Foundation
import Logging
import NIOSSL
import PostgresNIO

/// Where a PostgreSQL store lives: `postgres://USER@HOST[:PORT]/DATABASE[?sslmode=…&sslrootcert=FILE]`.
/// The password comes from `PGPASSWORD` or a file (never from the command line, where `ps`
/// shows it); one given in the URL is refused.
public struct PostgresLocation: Sendable, Equatable, CustomStringConvertible {
    public enum TLSMode: String, Sendable, Equatable, CaseIterable {
        /// Plain TCP (a loopback or a private network).
        case disable
        /// TLS if the server offers it, unverified (libpq's default).
        case prefer
        /// TLS or nothing, the certificate not verified.
        case require
        /// TLS with the server's certificate checked against `sslrootcert` (or the system's
        /// roots) and its name against the host.
        case verifyFull = "verify-full"
    }

    public var host: String
    public var port: Int
    public var user: String
    public var database: String
    public var tls: TLSMode
    public var rootCertificate: String?

    /// The URL without secrets, for logs and messages.
    public var description: String { "postgres://\(user)@\(host):\(port)/\(database)" }

    public static func isPostgresURL(_ text: String) -> Bool {
        text.hasPrefix("postgres://") || text.hasPrefix("postgresql://")
    }

    /// Parses the URL; the error is one line saying what is wrong.
    public init(url text: String, defaultUser: String = "postgres") throws(StoreError) {
        guard Self.isPostgresURL(text), text.utf8.count <= 2048 else {
            throw StoreError(.unavailable, "the store URL must look like postgres://USER@HOST:PORT/DATABASE")
        }
        guard let components = URLComponents(string: text), let host = components.host, !host.isEmpty else {
            throw StoreError(.unavailable, "the store URL cannot be read: postgres://USER@HOST:PORT/DATABASE")
        }
        if components.password != nil {
            throw StoreError(
                .unavailable, "the store URL holds a password, which the process list would show; put it in PGPASSWORD or a file (--store-password-file)")
        }
        self.host = host
        guard (1...65_535).contains(components.port ?? 5432) else { throw StoreError(.unavailable, "the store URL's port is out of range (1-65535)") }
        port = components.port ?? 5432
        user = components.user.flatMap { $0.isEmpty ? nil : $0 } ?? defaultUser
        let path = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
        database = path.isEmpty ? user : path
        guard database.utf8.count <= 63, user.utf8.count <= 63 else {
            throw StoreError(.unavailable, "the store URL's user or database name is longer than PostgreSQL allows (63 bytes)")
        }
        tls = .prefer
        for item in components.queryItems ?? [] {
            switch item.name {
            case "sslmode":
                guard let mode = TLSMode(rawValue: item.value ?? "") else {
                    throw StoreError(.unavailable, "sslmode is one of \(TLSMode.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                tls = mode
            case "sslrootcert":
                rootCertificate = item.value
            default:
                throw StoreError(.unavailable, "the store URL has an unknown parameter \(TerminalSafe.sanitize(item.name)) (known: sslmode, sslrootcert)")
            }
        }
        if rootCertificate != nil && tls != .verifyFull {
            throw StoreError(.unavailable, "sslrootcert is used with sslmode=verify-full")
        }
    }
}

/// Who holds a lease, and the fencing token it was granted with. A store given a fence checks,
/// inside every write transaction, that the lease is still its own, unexpired and at that token
/// — so a worker that lost its lease (paused, cut off) cannot write after another took over.
public struct Fence: Sendable, Equatable, CustomStringConvertible {
    public var name: String
    public var owner: String
    public var token: Int64

    public init(name: String, owner: String, token: Int64) {
        self.name = name
        self.owner = owner
        self.token = token
    }

    public var description: String { "\(name) (token \(token))" }
}

/// A PostgreSQL server holding the state of many organisations: one connection pool, versioned
/// migrations (run under an advisory lock, so several processes may start at once), leases and
/// the worker registry. `store(organization:fence:)` gives one organisation's store; every row
/// it reads or writes is that organisation's.
public final class PostgresDatabase: Sendable {
    public let location: PostgresLocation
    let client: PostgresClient
    /// The pool for leases, heartbeats and the worker registry.
    let control: PostgresClient
    let logger: Logger
    let connectTimeout: Duration
    let probeTLS: PostgresConnection.Configuration.TLS
    /// How long a statement may wait for a connection from the pool and run (a server gone away
    /// is an error after this, never a hang).
    static let statementDeadline: Duration = .seconds(60)
    private let runner: Task<Void, Never>
    /// Statements sent since the pool opened (for the fleet bench).
    let counter = StatementCounter()

    /// Connects (bounded by `connectTimeout`) and migrates.
    /// - Parameter idleTransactionTimeout: the server ends a session that sits in an open
    ///   transaction this long (a process paused or cut off mid-write), so the row locks it holds
    ///   — a lease's, above all — never outlive it; a fleet sets it under its lease TTL.
    public static func open(
        _ location: PostgresLocation, password: String?, maximumConnections: Int = 8, connectTimeout: Duration = .seconds(10),
        idleTransactionTimeout: Duration = .seconds(15),
        logger: Logger = Logger(label: "rbacwatch.postgres", factory: { _ in SwiftLogNoOpLogHandler() })
    ) async throws -> PostgresDatabase {
        let database = try PostgresDatabase(
            location, password: password, maximumConnections: maximumConnections, connectTimeout: connectTimeout,
            idleTransactionTimeout: idleTransactionTimeout, logger: logger)
        do {
            // One direct connection first: the pool retries a refused or failed login quietly,
            // this says at once why it cannot connect.
            try await database.probe(password: password)
            try await database.migrate()
        } catch {
            await database.close()
            throw database.map(error)
        }
        return database
    }

    /// Connects without migrating (for administration: creating databases in tests and benches).
    public static func openUnmigrated(_ location: PostgresLocation, password: String?) async throws -> PostgresDatabase {
        try PostgresDatabase(
            location, password: password, maximumConnections: 2, connectTimeout: .seconds(10), idleTransactionTimeout: .seconds(15),
            logger: Logger(label: "rbacwatch.postgres", factory: { _ in SwiftLogNoOpLogHandler() }))
    }

    /// Runs one statement that takes no parameters (administration: `CREATE DATABASE …`). Never
    /// give it text from outside.
    public func execute(unsafeSQL sql: String) async throws {
        try await withConnection { connection in try await self.run(PostgresQuery(unsafeSQL: sql), on: connection) }
    }

    /// Connects and disconnects once, bounded by the connect timeout.
    func probe(password: String?) async throws {
        var configuration = PostgresConnection.Configuration(
            host: location.host, port: location.port, username: location.user, password: password, database: location.database, tls: probeTLS)
        configuration.options.additionalStartupParameters = [("application_name", "rbacwatch")]
        configuration.options.connectTimeout = .milliseconds(Int64(Self.milliseconds(connectTimeout)))
        let connection = try await PostgresConnection.connect(
            on: PostgresClient.defaultEventLoopGroup.next(), configuration: configuration, id: 0, logger: logger
        ).get()
        try? await connection.close()
    }

    private init(
        _ location: PostgresLocation, password: String?, maximumConnections: Int, connectTimeout: Duration, idleTransactionTimeout: Duration, logger: Logger
    ) throws {
        self.location = location
        self.logger = logger
        self.connectTimeout = connectTimeout
        let tls: PostgresClient.Configuration.TLS
        let probeTLS: PostgresConnection.Configuration.TLS
        switch location.tls {
        case .disable:
            tls = .disable
            probeTLS = .disable
        case .prefer, .require:
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.certificateVerification = .none
            tls = location.tls == .prefer ? .prefer(configuration) : .require(configuration)
            let context = try NIOSSLContext(configuration: configuration)
            probeTLS = location.tls == .prefer ? .prefer(context) : .require(context)
        case .verifyFull:
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.certificateVerification = .fullVerification
            if let file = location.rootCertificate {
                do {
                    configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(file))
                } catch {
                    throw StoreError(.unavailable, "cannot read sslrootcert \(file): \(error)")
                }
            }
            tls = .require(configuration)
            probeTLS = .require(try NIOSSLContext(configuration: configuration))
        }
        self.probeTLS = probeTLS
        var configuration = PostgresClient.Configuration(
            host: location.host, port: location.port, username: location.user, password: password, database: location.database, tls: tls)
        configuration.options.maximumConnections = max(1, min(64, maximumConnections))
        configuration.options.connectTimeout = connectTimeout
        let idle = max(1000, Self.milliseconds(idleTransactionTimeout))
        configuration.options.additionalStartupParameters = [
            ("application_name", "rbacwatch"), ("idle_in_transaction_session_timeout", "\(idle)"),
            // A statement never runs unbounded (the client's deadline is 60 s).
            ("statement_timeout", "60000"),
        ]
        let client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        self.client = client
        // Leases and heartbeats on connections of their own: a renewal never waits behind the
        // organisations' writes for a connection (or a lease would lapse under load).
        configuration.options.maximumConnections = 2
        let control = PostgresClient(configuration: configuration, backgroundLogger: logger)
        self.control = control
        runner = Task {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await client.run() }
                group.addTask { await control.run() }
            }
        }
    }

    /// Closes the pools.
    public func close() async {
        runner.cancel()
        _ = await runner.value
    }

    /// One organisation's store. With a fence, every write first checks the lease is still held.
    public func store(organization: String, fence: Fence? = nil) -> PostgresAuditStore {
        PostgresAuditStore(database: self, organization: organization, fence: fence)
    }

    /// Statements sent by this process since the pool opened.
    public var statements: Int { counter.value }

    // MARK: Running statements

    /// Runs `body` on one connection.
    func withConnection<T: Sendable>(control: Bool = false, _ body: @Sendable (PostgresConnection) async throws -> T) async throws -> T {
        let client = control ? self.control : self.client
        let location = self.location
        do {
            return try await withoutActuallyEscaping(body) { body in
                try await withThrowingTaskGroup(of: T?.self) { group in
                    group.addTask { try await client.withConnection { connection in try await body(connection) } }
                    group.addTask {
                        try await Task.sleep(for: Self.statementDeadline)
                        return nil
                    }
                    defer { group.cancelAll() }
                    guard let first = try await group.next(), let value = first else {
                        throw StoreError(.unavailable, "PostgreSQL at \(location) did not answer within \(Self.statementDeadline)")
                    }
                    return value
                }
            }
        } catch {
            throw map(error)
        }
    }

    /// Runs `body` in a transaction (rolled back if it throws); with a fence, the lease is checked
    /// inside the transaction, after the writes and before the commit, and held shared until the
    /// commit so a takeover waits for it.
    func transaction<T: Sendable>(
        fence: Fence? = nil, control: Bool = false, _ body: @Sendable (PostgresConnection) async throws -> T
    ) async throws -> T {
        let logger = self.logger
        let counter = self.counter
        return try await withConnection(control: control) { connection in
            try await connection.query("BEGIN", logger: logger)
            counter.add(1)
            do {
                let result = try await body(connection)
                // Last, just before the commit: the lease row is then locked only for that
                // instant, and a takeover either comes first (this write is refused) or waits
                // for the commit. A worker paused in between holds the lock only until the server
                // ends its idle transaction (idle_in_transaction_session_timeout, set at open).
                if let fence { try await Self.checkFence(fence, on: connection, logger: logger, counter: counter) }
                try await connection.query("COMMIT", logger: logger)
                counter.add(1)
                return result
            } catch {
                _ = try? await connection.query("ROLLBACK", logger: logger)
                throw error
            }
        }
    }

    static func checkFence(_ fence: Fence, on connection: PostgresConnection, logger: Logger, counter: StatementCounter) async throws {
        let rows = try await connection.query(
            """
            SELECT token FROM lease WHERE name = \(fence.name) AND owner = \(fence.owner) AND token = \(fence.token)
              AND expires_at > \(unescaped: Self.nowMilliseconds) FOR SHARE
            """, logger: logger)
        counter.add(1)
        var held = false
        for try await _ in rows { held = true }
        if !held {
            throw StoreError(.fenced, "the lease on \(fence.name) is no longer held by \(fence.owner) at token \(fence.token): write refused")
        }
    }

    /// The database server's clock in epoch milliseconds (leases use it, so workers' clocks may differ).
    static let nowMilliseconds = "(extract(epoch from clock_timestamp()) * 1000)::bigint"

    /// Runs a statement and returns its rows.
    func rows(_ query: PostgresQuery, on connection: PostgresConnection) async throws -> [PostgresRandomAccessRow] {
        counter.add(1)
        var out: [PostgresRandomAccessRow] = []
        for try await row in try await connection.query(query, logger: logger) { out.append(row.makeRandomAccess()) }
        return out
    }

    /// Runs a statement; returns how many rows it returned (statements end in `RETURNING 1` to count what they changed).
    @discardableResult
    func run(_ query: PostgresQuery, on connection: PostgresConnection) async throws -> Int {
        counter.add(1)
        var count = 0
        for try await _ in try await connection.query(query, logger: logger) { count += 1 }
        return count
    }

    func rows(_ query: PostgresQuery) async throws -> [PostgresRandomAccessRow] {
        try await withConnection { connection in try await self.rows(query, on: connection) }
    }

    /// A read on the control pool (leases, workers).
    func controlRows(_ query: PostgresQuery) async throws -> [PostgresRandomAccessRow] {
        try await withConnection(control: true) { connection in try await self.rows(query, on: connection) }
    }

    // MARK: Errors

    /// One line for a failure: what PostgreSQL said, or why it could not be reached.
    func map(_ error: any Error) -> StoreError {
        if let error = error as? StoreError { return error }
        let server = location.description
        if let error = error as? PSQLError {
            if let message = error.serverInfo?[.message] {
                let state = error.serverInfo?[.sqlState] ?? ""
                switch state {
                case "28P01", "28000":
                    return StoreError(.unavailable, "PostgreSQL at \(server) refused the login: \(message) (set PGPASSWORD or --store-password-file)")
                case "3D000":
                    return StoreError(.unavailable, "PostgreSQL at \(server): \(message) (create it: createdb \(location.database))")
                default:
                    return StoreError(.unavailable, "PostgreSQL at \(server): \(message) [\(state)]")
                }
            }
            switch error.code {
            case .connectionError:
                let why = error.underlying.map { "\($0)" } ?? "connection failed"
                return StoreError(.unavailable, "cannot reach PostgreSQL at \(server): \(why)")
            case .sslUnsupported:
                return StoreError(.unavailable, "PostgreSQL at \(server) does not offer TLS, which sslmode=\(location.tls.rawValue) requires")
            case .authMechanismRequiresPassword:
                return StoreError(.unavailable, "PostgreSQL at \(server) wants a password: set PGPASSWORD or --store-password-file")
            case .serverClosedConnection, .clientClosedConnection, .poolClosed:
                return StoreError(.unavailable, "the connection to PostgreSQL at \(server) closed (\(error.code))")
            default:
                return StoreError(.unavailable, "PostgreSQL at \(server): \(error.code)\(error.underlying.map { ": \($0)" } ?? "")")
            }
        }
        if error is CancellationError { return StoreError(.unavailable, "a PostgreSQL statement was cancelled") }
        return StoreError(.unavailable, "PostgreSQL at \(server): \(error)")
    }
}

/// A count shared by every connection of a pool.
final class StatementCounter: Sendable {
    private let count = Mutex(0)
    func add(_ n: Int) { count.withLock { $0 += n } }
    var value: Int { count.withLock { $0 } }
}

import Synchronization

extension PostgresRandomAccessRow {
    /// A column by name, decoded; a type mismatch is a corrupt store.
    func get<T: PostgresDecodable>(_ name: String, as type: T.Type = T.self) throws -> T {
        do {
            return try self[name].decode(T.self)
        } catch {
            throw StoreError(.corrupt, "column \(name) cannot be read as \(T.self): \(error)")
        }
    }

    func date(_ name: String) throws -> Date { Date(timeIntervalSince1970: Double(try get(name, as: Int64.self)) / 1000) }
    func optionalDate(_ name: String) throws -> Date? { try get(name, as: Int64?.self).map { Date(timeIntervalSince1970: Double($0) / 1000) } }
}

extension Date {
    /// Epoch milliseconds, the unit every PostgreSQL time column holds.
    var pgMilliseconds: Int64 { Bounded.epochMilliseconds(self) }
}
