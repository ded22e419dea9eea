import AuditCore
import Foundation
import Logging
import Synchronization

/// Loggers for the commands: stderr, at the chosen level. Libraries never create their own.
enum CLILogging {
    static func logger(label: String, level: String) -> Logger {
        var logger = Logger(label: label) { label in SafeLogHandler(label: label, sink: .standardError) }
        logger.logLevel = Logger.Level(rawValue: level) ?? .warning
        return logger
    }
}

extension CLILogging {
    /// For the dashboard, whose screen must not be written over.
    static let silent = Logger(label: "rbacwatch", factory: { _ in SwiftLogNoOpLogHandler() })
}

/// Where log lines go: stderr or a file, one whole line per write.
final class LogSink: Sendable {
    let fd: Int32
    private let owned: Bool
    private let lock = Mutex(())

    init(fd: Int32, owned: Bool) {
        self.fd = fd
        self.owned = owned
    }

    static let standardError = LogSink(fd: STDERR_FILENO, owned: false)

    func write(_ line: String) {
        lock.withLock { _ in Console.write(Array(line.utf8), to: fd) }
    }

    deinit {
        if owned { close(fd) }
    }
}

/// One line per message: time, level, label, message, metadata. The message and every metadata
/// key and value go through `TerminalSafe` — they carry names, error text and ids from the API,
/// and a log is read on a terminal (`tail -f`).
struct SafeLogHandler: LogHandler {
    let label: String
    let sink: LogSink
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .info

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let all = metadata.merging(event.metadata ?? [:]) { $1 }
        let extra =
            all.isEmpty
            ? "" : " " + all.sorted { $0.key < $1.key }.map { "\(TerminalSafe.sanitize($0.key))=\(TerminalSafe.sanitize("\($0.value)"))" }.joined(separator: " ")
        sink.write("\(ISOTimestamp.string(Date())) \(event.level) \(label): \(TerminalSafe.sanitize(event.message.description))\(extra)\n")
    }
}
