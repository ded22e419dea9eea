import Foundation

/// A task executor with one thread of its own, for tests whose timing must not depend on how
/// busy the rest of the test process is.
///
/// `swift test` runs every test of the package in one process, in parallel, on the concurrency
/// pool: two threads on a 2-core machine. Measured there, a 100 ms sleep woke up to 8.8 s late
/// while the suite ran (p90 0.8 s), so a request deadline of a few seconds fired on perfectly
/// healthy replies. Work run under `TestSupport.onDedicatedThread` — the test's client, the
/// simulator and the hostile server in front of it, their child tasks and default actors —
/// runs here instead, and sees the machine, not the test runner.
public final class DedicatedExecutor: TaskExecutor, @unchecked Sendable {
    private let condition = NSCondition()
    private var jobs: [UnownedJob] = []
    private var stopped = false
    private var exited = false

    public init(name: String = "rbacwatch-test-executor") {
        // The thread holds the executor until it ends.
        let thread = Thread { self.run() }
        thread.name = name
        thread.stackSize = 8 << 20
        thread.start()
    }

    public func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        condition.lock()
        if exited {
            // A straggler (a connection's task after its test ended) runs on the pool.
            condition.unlock()
            globalConcurrentExecutor.enqueue(job)
            return
        }
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }

    /// Ends the thread once it has been idle for a second after this call.
    public func shutdown() {
        condition.lock()
        stopped = true
        condition.signal()
        condition.unlock()
    }

    private func run() {
        while true {
            condition.lock()
            while jobs.isEmpty {
                if stopped {
                    if !condition.wait(until: Date().addingTimeInterval(1)) && jobs.isEmpty {
                        exited = true
                        condition.unlock()
                        return
                    }
                } else {
                    condition.wait()
                }
            }
            let batch = jobs
            jobs.removeAll(keepingCapacity: true)
            condition.unlock()
            for job in batch { job.runSynchronously(on: asUnownedTaskExecutor()) }
        }
    }
}

extension TestSupport {
    /// Runs `body` (and its child tasks) on a thread of its own: see `DedicatedExecutor`.
    public static func onDedicatedThread<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        try await onDedicatedThread { _ in try await body() }
    }

    /// The same, handing `body` the executor (for tasks it starts outside its structure).
    public static func onDedicatedThread<T: Sendable>(_ body: (DedicatedExecutor) async throws -> T) async throws -> T {
        let executor = DedicatedExecutor()
        defer { executor.shutdown() }
        return try await withTaskExecutorPreference(executor) { try await body(executor) }
    }
}
