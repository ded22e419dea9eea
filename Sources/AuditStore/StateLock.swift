import AuditCore
import Foundation

/// An advisory lock on a small file beside the state file, held through an open descriptor
/// (`flock`): the kernel releases it when the process ends, however it ends, so a killed
/// process never leaves a stale lock. The holder writes its pid and role into the file, so the
/// one who is refused can be told who holds it.
///
/// Two are used: `<state>.lock` while the schema is migrated (two processes opening a new file
/// at once would otherwise both create its tables), and `<state>.watch.lock` by the one process
/// that ingests the audit feed into the file (`watch`, or the dashboard's feed).
public final class StateLock: Sendable {
    private let fd: Int32
    public let path: String

    private init(fd: Int32, path: String) {
        self.fd = fd
        self.path = path
    }

    deinit {
        flock(fd, LOCK_UN)
        close(fd)
    }

    /// Who holds a lock, as its file says.
    public struct Holder: Sendable, Equatable, CustomStringConvertible {
        public var pid: Int32
        public var role: String
        public init(pid: Int32, role: String) {
            self.pid = pid
            self.role = role
        }
        public var description: String { pid > 0 ? "\(role) (pid \(pid))" : role }
    }

    public enum Outcome: Sendable {
        case acquired(StateLock)
        case held(by: Holder?)
    }

    /// The migration lock's file for `statePath`.
    public static func migrationPath(_ statePath: String) -> String { statePath + ".lock" }
    /// The ingestion lock's file for `statePath`.
    public static func watchPath(_ statePath: String) -> String { statePath + ".watch.lock" }

    /// Takes the lock at once, or says who holds it. `role` is what others are told
    /// (`rbacwatch watch`, `the rbacwatch dashboard`).
    public static func attempt(_ path: String, role: String) throws(StoreError) -> Outcome {
        let fd = try openLockFile(path)
        if flock(fd, LOCK_EX | LOCK_NB) == 0 {
            let lock = StateLock(fd: fd, path: path)
            lock.record(role: role)
            return .acquired(lock)
        }
        let errorNumber = errno
        close(fd)
        guard errorNumber == EWOULDBLOCK || errorNumber == EAGAIN else {
            throw StoreError(.unavailable, "cannot lock \(path): \(String(cString: strerror(errorNumber)))")
        }
        return .held(by: holder(of: path))
    }

    /// Waits for the lock, polling, at most `timeout`; nil when it could not be had in time.
    public static func acquire(_ path: String, role: String, timeout: Duration) throws(StoreError) -> StateLock? {
        let deadline = ContinuousClock.now + timeout
        while true {
            if case .acquired(let lock) = try attempt(path, role: role) { return lock }
            if ContinuousClock.now >= deadline { return nil }
            usleep(20_000)
        }
    }

    private static func openLockFile(_ path: String) throws(StoreError) -> Int32 {
        // O_NOFOLLOW: a link planted in the lock file's place is refused, not followed.
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else {
            throw StoreError(.unavailable, "cannot open the lock file \(path): \(String(cString: strerror(errno)))")
        }
        return fd
    }

    private func record(role: String) {
        let text = Array("\(getpid())\n\(role)\n".utf8)
        _ = ftruncate(fd, 0)
        _ = text.withUnsafeBytes { pwrite(fd, $0.baseAddress!, $0.count, 0) }
    }

    /// Reads the holder from a lock file (nil when it says nothing usable).
    static func holder(of path: String) -> Holder? {
        guard let bytes = try? FileBytes.read(path, limit: 4096) else { return nil }
        let lines = String(decoding: bytes, as: UTF8.self).split(separator: "\n")
        guard let first = lines.first, let pid = Int32(first.trimmingCharacters(in: .whitespaces)), pid > 0 else { return nil }
        return Holder(pid: pid, role: lines.dropFirst().first.map { String($0.prefix(60)) } ?? "rbacwatch")
    }
}
