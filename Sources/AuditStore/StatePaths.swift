import Foundation

/// Where rbacwatch keeps its state by default: the platform's data directory —
/// `$XDG_DATA_HOME/rbacwatch` (else `~/.local/share/rbacwatch`) on Linux,
/// `~/Library/Application Support/rbacwatch` on macOS.
public enum StatePaths {
    public static func dataDirectory(environment: [String: String]) -> String {
        #if os(macOS)
            let home = environment["HOME"] ?? NSHomeDirectory()
            return home + "/Library/Application Support/rbacwatch"
        #else
            if let xdg = environment["XDG_DATA_HOME"], xdg.hasPrefix("/") { return xdg + "/rbacwatch" }
            let home = environment["HOME"] ?? NSHomeDirectory()
            return home + "/.local/share/rbacwatch"
        #endif
    }

    /// The state file: `--state`, else `RBACWATCH_STATE`, else `<data directory>/state.sqlite`.
    public static func stateFile(explicit: String?, environment: [String: String]) -> String {
        if let explicit, !explicit.isEmpty { return explicit }
        if let fromEnvironment = environment["RBACWATCH_STATE"], !fromEnvironment.isEmpty { return fromEnvironment }
        return dataDirectory(environment: environment) + "/state.sqlite"
    }
}
