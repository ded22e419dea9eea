import ArgumentParser
import Foundation

/// The `rbacwatch` command line. The executable's `main` calls `RBACWatchCommand.main()`.
public struct RBACWatchCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "rbacwatch",
        abstract: "Who can do what in a Genesys Cloud organisation, what changed, and who changed it.",
        subcommands: [
            TUICommand.self, SnapshotCommand.self, DiffCommand.self, BaselineCommand.self, ApproveCommand.self,
            ApprovalsCommand.self, WatchCommand.self, FindingsCommand.self, RulesCommand.self, RiskCommand.self, KeysCommand.self, DemoCommand.self, SimulateCommand.self,
        ],
        defaultSubcommand: TUICommand.self)

    public init() {}
}

/// Entry point for the executable, so it needs no other import.
/// Parse errors exit 2 (ArgumentParser's default is 64), so every command shares the codes
/// in `RBACWatchExit`.
public enum RBACWatchMain {
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
            let message = RBACWatchCommand.fullMessage(for: error)
            if code == .success {
                if !message.isEmpty { Console.out(message) }
                exit(RBACWatchExit.success)
            }
            if !message.isEmpty { Console.err(message) }
            exit(code == .validationFailure ? RBACWatchExit.usage : code.rawValue)
        }
    }
}
