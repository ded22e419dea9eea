import Foundation
import Synchronization

/// A watch over the test process's timers, started by the helpers most tests use.
///
/// On a fresh-clone CI run every test still running stopped at once, at 0 % CPU, never to
/// resume; the dispatch timer behind `Task.sleep` (ContinuousClock) was then armed an hour
/// ahead although tests were polling with 100 ms sleeps. Whatever the cause, two things help:
/// a thread of its own (not the concurrency pool, not dispatch) starts a short `Task.sleep`
/// every quarter second, so dispatch re-arms its timer from the earliest deadline it holds at
/// least that often; and when one of those sleeps is thirty seconds overdue it says so on stderr,
/// loudly (with the threads' states, again as it lasts, and when it ends), so a stall is named
/// rather than guessed at. (Thirty seconds: while the whole suite starts, two pool threads are
/// busy for ten seconds at a time, which is load, not a stall.)
public enum TimerWatch {
    private static let probes = Mutex<(started: Int, oldest: [Int: ContinuousClock.Instant], reportedAt: Duration?)>((0, [:], nil))

    /// Starts the watch once per process; later calls do nothing.
    public static func start() { _ = started }

    private static let started: Bool = {
        let thread = Thread {
            while true {
                usleep(250_000)
                let now = ContinuousClock.now
                let (id, overdue) = probes.withLock { state -> (Int?, Duration?) in
                    let oldest = state.oldest.values.min()
                    // At most a thousand outstanding: a stalled process does not grow this.
                    guard state.oldest.count < 1000 else { return (nil, oldest.map { now - $0 }) }
                    state.started += 1
                    state.oldest[state.started] = now
                    return (state.started, oldest.map { now - $0 })
                }
                if let id { Task.detached {
                    try? await Task.sleep(for: .milliseconds(5))
                    probes.withLock { state in state.oldest[id] = nil }
                } }
                report(overdue)
            }
        }
        thread.name = "rbacwatch-timer-watch"
        thread.start()
        return true
    }()

    /// Speaks at 30 s overdue, then each time the wait doubles (60, 120, … s), and once more when
    /// the probes wake again: a stall that outlasts a slow start is named with how long it lasted
    /// and what the process's threads were doing. Each report also pokes dispatch's global queue
    /// (a lost wake-up of its worker threads would be ended by it).
    static func report(_ overdue: Duration?) {
        let line: String? = probes.withLock { state in
            guard let overdue, overdue > .seconds(30) else {
                defer { state.reportedAt = nil }
                return state.reportedAt.map { "TimerWatch: the test process's timers woke again after a stall of at least \($0)" }
            }
            if let last = state.reportedAt, overdue < last * 2 { return nil }
            state.reportedAt = overdue
            return "TimerWatch: a 5 ms Task.sleep started \(overdue) ago has not woken (\(state.oldest.count) waiting): the test process's timers or its concurrency pool are stalled; threads: \(threadStates()); timers armed: \(timerDescriptors())"
        }
        guard let line else { return }
        FileHandle.standardError.write(Data((line + "\n").utf8))
        DispatchQueue.global().async {}
    }

    /// How each of the process's timerfds is armed, from /proc (`boottime 2963.9 s`: the next
    /// expiry of a CLOCK_BOOTTIME timer — the clock behind dispatch's timers for
    /// `ContinuousClock`; `monotonic off`: disarmed). A stall seen by hand had every thread idle
    /// and dispatch's boottime timer armed 49 minutes ahead while 5 ms sleeps were waiting:
    /// this puts that reading in every report.
    static func timerDescriptors() -> String {
        guard let descriptors = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd") else { return "unknown" }
        var timers: [String] = []
        for fd in descriptors.prefix(10_000) {
            guard (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(fd)")) == "anon_inode:[timerfd]",
                let info = try? String(contentsOfFile: "/proc/self/fdinfo/\(fd)", encoding: .utf8)
            else { continue }
            var clock = "clock ?"
            var value = "?"
            for line in info.split(separator: "\n") {
                let parts = line.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                guard parts.count == 2 else { continue }
                if parts[0] == "clockid" { clock = ["0": "realtime", "1": "monotonic", "7": "boottime"][parts[1]] ?? "clock \(parts[1])" }
                if parts[0] == "it_value" {
                    // "(seconds, nanoseconds)"
                    let numbers = parts[1].split { !"0123456789".contains($0) }.compactMap { Double($0) }
                    if numbers.count == 2 { value = numbers == [0, 0] ? "off" : String(format: "%.3f s", numbers[0] + numbers[1] / 1e9) }
                }
            }
            timers.append("fd \(fd) \(clock) \(value)")
        }
        return timers.isEmpty ? "none" : timers.sorted().joined(separator: ", ")
    }

    /// The process's threads by scheduler state (`R` running, `S` sleeping…), from /proc.
    static func threadStates() -> String {
        guard let tasks = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task") else { return "unknown" }
        var states: [String: Int] = [:]
        for task in tasks.prefix(10_000) {
            guard let stat = try? String(contentsOfFile: "/proc/self/task/\(task)/stat", encoding: .utf8),
                let close = stat.lastIndex(of: ")")
            else { continue }
            let state = stat[stat.index(after: close)...].split(separator: " ").first.map(String.init) ?? "?"
            states[state, default: 0] += 1
        }
        return states.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
    }
}
