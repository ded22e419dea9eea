import ArgumentParser

/// The `rbacwatch` command line. The executable's `main` calls `RBACWatchCommand.main()`.
public struct RBACWatchCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "rbacwatch",
        abstract: "Who can do what in a Genesys Cloud organisation, what changed, and who changed it.",
        subcommands: [SnapshotCommand.self, DemoCommand.self, SimulateCommand.self])

    public init() {}
}

/// Entry point for the executable, so it needs no other import.
public enum RBACWatchMain {
    public static func run() async {
        await RBACWatchCommand.main()
    }
}
