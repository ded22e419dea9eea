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
/// loudly, so a stall is named rather than guessed at. (Thirty seconds: while the whole suite
/// starts, two pool threads are busy for ten seconds at a time, which is load, not a stall.)
public enum TimerWatch {
    private static let probes = Mutex<(started: Int, oldest: [Int: ContinuousClock.Instant], reported: Bool)>((0, [:], false))

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
                if let overdue, overdue > .seconds(30) {
                    let first = probes.withLock { state -> Bool in
                        defer { state.reported = true }
                        return !state.reported
                    }
                    if first {
                        FileHandle.standardError.write(
                            Data("TimerWatch: a 5 ms Task.sleep started \(overdue) ago has not woken: the test process's timers or its concurrency pool are stalled\n".utf8))
                    }
                }
            }
        }
        thread.name = "rbacwatch-timer-watch"
        thread.start()
        return true
    }()
}
