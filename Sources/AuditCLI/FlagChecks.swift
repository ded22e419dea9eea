import ArgumentParser
import AuditCore
import Foundation
import Logging

/// A duration flag: `30s`, `5m`, `1h`, `3d` (or bare seconds), between a second and a year and a
/// day; each flag checks its own narrower range in `validate()` with `check`.
struct Interval: ExpressibleByArgument {
    /// As typed (any finite duration); `check` holds it to the flag's range.
    var seconds: Double
    var duration: Duration { Bounded.duration(seconds: seconds, clampedTo: 0...(366 * 86_400)) }

    init?(argument: String) {
        guard let seconds = DurationText.seconds(argument, range: 0...Double.greatestFiniteMagnitude) else { return nil }
        self.seconds = seconds
    }

    /// As it would be typed: `10s`, `5m`, `1h`.
    var defaultValueDescription: String { DurationText.format(seconds) }

    /// Throws the flag's range, in one line, when the value lies outside it.
    func check(_ flag: String, _ range: ClosedRange<Double>) throws {
        guard range.contains(seconds) else { throw ValidationError("\(flag) must be \(DurationText.describe(range)).") }
    }
}

/// Range checks for flags, with one message shape: `--users must be between 1 and 1000000.`
enum FlagCheck {
    static func range<T: Comparable>(_ value: T, _ range: ClosedRange<T>, _ flag: String) throws {
        guard range.contains(value) else { throw ValidationError("\(flag) must be between \(range.lowerBound) and \(range.upperBound).") }
    }

    /// A finite number in range (NaN and infinities are refused).
    static func range(_ value: Double, _ range: ClosedRange<Double>, _ flag: String) throws {
        guard value.isFinite, range.contains(value) else {
            throw ValidationError("\(flag) must be between \(Self.text(range.lowerBound)) and \(Self.text(range.upperBound)).")
        }
    }

    static func logLevel(_ level: String, _ flag: String = "--log-level") throws {
        guard Logger.Level(rawValue: level) != nil else {
            throw ValidationError("\(flag) is trace, debug, info, notice, warning, error or critical.")
        }
    }

    static func oneOf(_ value: String, _ choices: [String], _ flag: String) throws {
        guard choices.contains(value) else { throw ValidationError("\(flag) is \(choices.dropLast().joined(separator: ", ")) or \(choices.last ?? "").") }
    }

    private static func text(_ value: Double) -> String {
        value == value.rounded() && value.magnitude < 1e15 ? String(Int64(value)) : String(value)
    }

    /// Changes a minute of simulated administrators: none, or between 0.01 and 6000.
    static func activity(_ value: Double, _ flag: String = "--activity") throws {
        guard value == 0 || (value.isFinite && (0.01...6000).contains(value)) else {
            throw ValidationError("\(flag) must be 0 (none) or between 0.01 and 6000 changes a minute.")
        }
    }

    /// Snapshots kept besides the baselines'.
    static let keepSnapshots = 0...10_000
    /// Users cross-checked against authorization/subjects.
    static let verify = 0...10_000
    /// Users in a generated organisation: 1,000,000 is about 2 GB of simulator.
    static let users = 1...1_000_000
}

/// Where a command will write a file: checked before any work starts, so a typo costs nothing.
enum OutputFile {
    static func check(_ path: String, flag: String = "--out") throws {
        guard path != "-", !path.isEmpty else { return }
        var info = stat()
        if stat(path, &info) == 0 {
            switch info.st_mode & S_IFMT {
            case S_IFDIR: throw ValidationError("\(flag) \(path) is a directory; name a file.")
            case S_IFSOCK: throw ValidationError("\(flag) \(path) is a socket; name a file.")
            default: return
            }
        }
        let directory = (path as NSString).deletingLastPathComponent
        let parent = directory.isEmpty ? "." : directory
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: parent, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw ValidationError("\(flag) \(path): the directory \(parent) does not exist.")
        }
    }
}
