import AuditCore
import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS
import Synchronization

/// RFC 5424 syslog over TCP (RFC 6587 octet counting) or TLS (RFC 5425), one connection kept
/// open and made again when it fails. TCP syslog has no acknowledgement: a batch counts as
/// delivered once the connection took every byte of it (written and flushed); a receiver that
/// drops the connection makes the next batch fail and go again.
public final class SyslogSender: DeliverySender {
    let host: String
    let port: Int
    let tls: NIOSSLContext?
    let serverHostname: String?
    let header: Syslog.Header
    let format: Syslog.Message
    let timeout: Duration
    private let channel = Mutex<(any Channel)?>(nil)

    public struct SetupError: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    public init(destination: Destination, hostname: String) throws(SetupError) {
        guard let address = destination.syslogAddress else { throw SetupError(description: "destination \(destination.name): url must be tcp://host:port or tls://host:port") }
        host = address.host
        port = address.port
        header = Syslog.Header(facility: destination.facility, hostname: hostname, appName: destination.appName, procId: String(getpid()))
        format = destination.message
        timeout = destination.timeout
        if address.tls {
            var configuration = TLSConfiguration.makeClientConfiguration()
            if let caFile = destination.caFile { configuration.trustRoots = .file(caFile) }
            if destination.insecureSkipVerify { configuration.certificateVerification = .none }
            do {
                tls = try NIOSSLContext(configuration: configuration)
            } catch {
                throw SetupError(description: "destination \(destination.name): TLS: \(error)")
            }
            // A name to verify against (and send as SNI); an IP address is verified as one.
            serverHostname = address.host.contains(where: { $0.isLetter }) ? address.host : nil
        } else {
            tls = nil
            serverHostname = nil
        }
    }

    var what: String { "syslog \(tls == nil ? "tcp" : "tls")://\(host):\(port)" }

    public func send(_ payloads: [DeliveryPayload]) async -> DeliveryResult {
        var bytes: [UInt8] = []
        for payload in payloads { bytes += Syslog.framed(Syslog.message(payload, header, as: format)) }
        do {
            let channel = try await connected()
            let promise = channel.eventLoop.makePromise(of: Void.self)
            channel.writeAndFlush(ByteBuffer(bytes: bytes), promise: promise)
            let written = promise.futureResult
            try await withDeadline(timeout) { try await written.get() }
            return .delivered
        } catch {
            drop()
            return Self.classify(error, what: what)
        }
    }

    /// Connection failures are transient; a certificate the receiver's name or our CA does not
    /// vouch for, and a name that does not resolve, are configuration.
    static func classify(_ error: any Error, what: String) -> DeliveryResult {
        let text = "\(error)"
        if error is NIOSSLError || text.contains("certificate") || text.contains("handshake") {
            return .configuration("\(what): TLS: \(text)")
        }
        if let resolution = error as? NIOConnectionError, resolution.dnsAAAAError != nil && resolution.dnsAError != nil,
            resolution.connectionErrors.isEmpty
        {
            return .configuration("\(what): the name does not resolve")
        }
        return .transient("\(what): \(text)", retryAfter: nil)
    }

    private func connected() async throws -> any Channel {
        if let open = channel.withLock({ $0 }), open.isActive { return open }
        drop()
        let tls = self.tls
        let serverHostname = self.serverHostname
        let handshake = Mutex<EventLoopPromise<Void>?>(nil)
        let bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connectTimeout(.seconds(10))
            .channelOption(.socketOption(.so_keepalive), value: 1)
            .channelInitializer { channel in
                guard let tls else { return channel.eventLoop.makeSucceededVoidFuture() }
                let promise = channel.eventLoop.makePromise(of: Void.self)
                handshake.withLock { $0 = promise }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: tls, serverHostname: serverHostname))
                    try channel.pipeline.syncOperations.addHandler(HandshakeWaiter(promise: promise))
                }
            }
        let connecting = bootstrap.connect(host: host, port: port)
        let made = try await withDeadline(.seconds(15)) { try await connecting.get() }
        if let promise = handshake.withLock({ $0 }) {
            // The handshake, before anything is written: a certificate problem is told as one.
            let done = promise.futureResult
            do {
                try await withDeadline(.seconds(15)) { try await done.get() }
            } catch {
                made.close(promise: nil)
                throw error
            }
        }
        channel.withLock { $0 = made }
        return made
    }

    private func drop() {
        if let old = channel.withLock({ current -> (any Channel)? in
            defer { current = nil }
            return current
        }) {
            old.close(promise: nil)
        }
    }

    public func shutdown() async {
        if let old = channel.withLock({ current -> (any Channel)? in
            defer { current = nil }
            return current
        }) {
            try? await old.close().get()
        }
    }
}

/// Completes its promise when the TLS handshake does, or fails it with what ended the
/// connection first.
final class HandshakeWaiter: ChannelInboundHandler, Sendable {
    typealias InboundIn = Any
    let promise: EventLoopPromise<Void>

    init(promise: EventLoopPromise<Void>) {
        self.promise = promise
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case .handshakeCompleted? = event as? TLSUserEvent { promise.succeed() }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        promise.fail(error)
        context.fireErrorCaught(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        promise.fail(ChannelError.ioOnClosedChannel)
        context.fireChannelInactive()
    }
}

struct DeadlineExceeded: Error, CustomStringConvertible {
    var seconds: Int64
    var description: String { "no answer within \(seconds) s" }
}

/// Runs `body`, failing with `DeadlineExceeded` when it takes longer than `limit`.
func withDeadline<T: Sendable>(_ limit: Duration, _ body: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withThrowingTaskGroup(of: T.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try await Task.sleep(for: limit)
            throw DeadlineExceeded(seconds: limit.components.seconds)
        }
        defer { group.cancelAll() }
        guard let first = try await group.next() else { throw DeadlineExceeded(seconds: limit.components.seconds) }
        return first
    }
}
