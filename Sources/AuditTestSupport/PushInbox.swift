import AuditCore
import Foundation
import GenesysClient
import Synchronization

/// What a notification socket handed over, for a test to wait on: the socket runs in a task,
/// every message lands here, and `wait` polls a condition with a deadline.
public final class PushInbox: Sendable {
    public let messages = Mutex<[NotificationMessage]>([])
    public let unreadable = Mutex<[String]>([])
    /// How the socket's run ended, once it has (a failure as its description).
    public let ended = Mutex<String?>(nil)

    public init() {}

    /// The audit events pushed so far, in arrival order.
    public var audits: [AuditEvent] {
        messages.withLock { $0.compactMap { if case .audit(_, let event) = $0 { event } else { nil } } }
    }

    public func count(_ message: NotificationMessage) -> Int { messages.withLock { $0.filter { $0 == message }.count } }

    public struct Timeout: Error, CustomStringConvertible {
        public var what: String
        public var description: String { "timed out waiting for \(what)" }
        public init(what: String) { self.what = what }
    }

    /// Polls `condition` every 20 ms until it holds or `timeout` passes.
    public func wait(_ what: String, timeout: Duration = .seconds(60), _ condition: () -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        while !condition() {
            guard ContinuousClock.now < deadline else { throw Timeout(what: what) }
            try await Task.sleep(for: .milliseconds(20))
        }
    }

    /// Runs `channel`'s socket (pinging every 100 ms) until `body` ends, once it has answered.
    public static func withSocket<T: Sendable>(
        _ channel: NotificationChannel, silence: Duration = .seconds(20),
        _ body: (PushInbox, Task<NotificationSocketEnd, any Error>) async throws -> T
    ) async throws -> T {
        let inbox = PushInbox()
        let task = Task {
            do {
                let end = try await NotificationSocket.run(
                    channel, silence: silence, ping: .milliseconds(100),
                    onUnreadable: { reason in inbox.unreadable.withLock { $0.append(reason) } }
                ) { message in
                    inbox.messages.withLock { $0.append(message) }
                }
                inbox.ended.withLock { $0 = "\(end)" }
                return end
            } catch {
                inbox.ended.withLock { $0 = "\(error)" }
                throw error
            }
        }
        defer { task.cancel() }
        try await inbox.wait("the socket to answer") {
            inbox.count(.pong) + inbox.count(.heartbeat) > 0 || inbox.ended.withLock { $0 } != nil
        }
        if inbox.count(.pong) + inbox.count(.heartbeat) == 0, let ended = inbox.ended.withLock({ $0 }) {
            throw Timeout(what: "the socket to answer (it ended first: \(ended))")
        }
        return try await body(inbox, task)
    }
}
