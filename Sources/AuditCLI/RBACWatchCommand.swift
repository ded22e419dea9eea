import ArgumentParser
import Foundation

/// The `rbacwatch` command line. The executable's `main` calls `RBACWatchCommand.main()`.
public struct RBACWatchCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "rbacwatch",
        abstract: "Who can do what in a Genesys Cloud organisation, what changed, and who changed it.",
        subcommands: [
            TUICommand.self, SnapshotCommand.self, DiffCommand.self, BaselineCommand.self, ApproveCommand.self,
            ApprovalsCommand.self, WatchCommand.self, OrgsCommand.self, DeliveriesCommand.self, DLQCommand.self, FindingsCommand.self, RulesCommand.self, RiskCommand.self, KeysCommand.self, DemoCommand.self, SimulateCommand.self,
        ],
        defaultSubcommand: TUICommand.self)

    public init() {}
}

/// Entry point for the executable, so it needs no other import.
/// Parse errors exit 2 (ArgumentParser's default is 64), so every command shares the codes
/// in `RBACWatchExit`.
public enum RBACWatchMain {
    /// The subcommand named on the command line, for pointing at its help.
    static var subcommand: String {
        let names = Set(RBACWatchCommand.configuration.subcommands.map { $0.configuration.commandName ?? "" })
        return CommandLine.arguments.dropFirst().first { names.contains($0) } ?? "tui"
    }

    public static func run() async -> Never {
        do {
            var command = try RBACWatchCommand.parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand {
                try await asyncCommand.run()
            } else {
                try command.run()
            }
            exit(RBACWatchExit.success)
        } catch {
            let code = RBACWatchCommand.exitCode(for: error)
            if code == .success {
                // --help, --version: the whole text.
                let message = RBACWatchCommand.fullMessage(for: error)
                if !message.isEmpty { Console.out(message) }
                exit(RBACWatchExit.success)
            }
            if code == .validationFailure {
                // A usage error is one line: what is wrong, and where the help is.
                let message = RBACWatchCommand.message(for: error).split(separator: "\n").first.map(String.init) ?? "invalid arguments"
                Console.err("rbacwatch: \(message.hasPrefix("Error: ") ? String(message.dropFirst(7)) : message) (rbacwatch \(Self.subcommand) --help)")
                exit(RBACWatchExit.usage)
            }
            let message = RBACWatchCommand.fullMessage(for: error)
            if !message.isEmpty { Console.err(message) }
            exit(code.rawValue)
        }
    }
}
