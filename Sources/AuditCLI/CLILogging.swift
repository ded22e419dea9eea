import Logging

/// Loggers for the commands: stderr, at the chosen level. Libraries never create their own.
enum CLILogging {
    static func logger(label: String, level: String) -> Logger {
        var logger = Logger(label: label) { label in StreamLogHandler.standardError(label: label) }
        logger.logLevel = Logger.Level(rawValue: level) ?? .warning
        return logger
    }
}

extension CLILogging {
    /// For the dashboard, whose screen must not be written over.
    static let silent = Logger(label: "rbacwatch", factory: { _ in SwiftLogNoOpLogHandler() })
}
