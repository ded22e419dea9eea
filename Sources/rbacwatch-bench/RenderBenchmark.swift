import ArgumentParser
import AuditCore
import AuditEngine
import Foundation
import GenesysClient
import GenesysSimulator
import Synchronization
import TerminalUI

/// `rbacwatch-bench render`: the dashboard's frame cost on a large organisation, and how long a
/// key takes to show on screen while drift streams into the feed.
///
/// The organisation is collected from the in-process simulator and drifted as in `diff`; the
/// dashboard data is built the way the background monitor builds it. Then:
/// - **render**: `render(state)` for each pane and a drill-down, at the given size;
/// - **latency**: the dashboard's loop (drain every pending event, reduce, render one frame)
///   runs while one task delivers feed items at `--feed-rate` a second (each a new immutable
///   data value, as the monitor pushes) and another presses keys at random 5–25 ms intervals;
///   a key's latency is from its push to the end of the frame that includes it. Writing the
///   frame to the terminal is not included (ncurses needs one; identical frames are skipped).
struct RenderBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "render", abstract: "Measure dashboard frame rendering and key-to-frame latency under a streaming feed.")

    @Option(help: "Users in the generated organisation.")
    var users = 100_000

    @Option(help: "Seed of the generated organisation.")
    var seed: UInt64 = 1

    @Option(help: "Terminal width in columns.")
    var width = 120

    @Option(help: "Terminal height in rows.")
    var height = 40

    @Option(help: "Renders timed per view (the median is reported).")
    var frames = 300

    @Option(help: "Keys pressed during the latency run.")
    var keys = 1_000

    @Option(help: "Feed items delivered per second during the latency run.")
    var feedRate = 50.0

    @Option(help: "Also write the results as JSON to this file.")
    var json: String?

    struct Timing: Codable {
        var name: String
        var samples: Int
        var medianMs: Double
        var p95Ms: Double
        var maxMs: Double
    }

    struct Output: Codable {
        var benchmark = "render"
        var users: Int
        var width: Int
        var height: Int
        var build: String
        var driftItems: Int
        var buildDataMs: Double
        var renders: [Timing]
        var feedRate: Double
        var feedItemsDelivered: Int
        var framesDrawn: Int
        var keyToFrame: Timing
        /// Per key, slowest median first.
        var keyToFrameByKey: [Timing]
        var dataUpdate: Timing
        var filterKeys: [Timing]
    }

    func validate() throws {
        guard users >= 1, frames >= 1, keys >= 1 else { throw ValidationError("--users, --frames and --keys must be at least 1.") }
        guard width >= 20, height >= 8 else { throw ValidationError("the dashboard needs at least 20×8.") }
        guard feedRate > 0, feedRate <= 1000 else { throw ValidationError("--feed-rate is between 0 and 1000 a second.") }
    }

    func run() async throws {
        Bench.log("collecting \(users) users from the simulator…")
        let baseline = try await Bench.collectedOrganisation(users: users, seed: seed)
        let current = DriftGenerator(seed: seed).apply(0.01, to: baseline)
        let now = Date()
        let result = DriftEngine.diff(baseline: baseline, current: current)
        let review = DriftReview(result: result, approvals: [], now: now)
        Bench.log("\(result.items.count) drift items; building the dashboard data…")

        // As the monitor does it, off the UI loop: all items seen before, none new.
        let seen = Dictionary(result.items.map { ($0.fingerprint, now.addingTimeInterval(-3600)) }, uniquingKeysWith: { a, _ in a })
        var buildTimes: [Double] = []
        var data = DashboardData.empty
        for _ in 0..<3 {
            let start = ContinuousClock.now
            // The risk rollup is the monitor's, once per check; timed here with the rows as before.
            data = DashboardBuilder.build(
                snapshot: current, review: review, baselineVersion: 1, lineage: RoleLineage(links: result.newLineage), firstSeen: seen,
                risk: RiskRollup(snapshot: current, policy: .standard, review: review),
                status: .ready, collectedAt: now, nextRefresh: now.addingTimeInterval(300))
            buildTimes.append(Self.ms(ContinuousClock.now - start))
        }

        var renders: [Timing] = []
        for view in ["users", "roles", "inheritance", "feed", "users filtered /an", "user drill-down", "help"] {
            var state = AppState(theme: .standard, now: now, width: width, height: height)
            _ = reduce(&state, .data(data))
            switch view {
            case "roles": _ = reduce(&state, .key(.character("2")))
            case "inheritance": _ = reduce(&state, .key(.character("3")))
            case "feed": _ = reduce(&state, .key(.character("4")))
            case "users filtered /an": for key in "/an" { _ = reduce(&state, .key(.character(key))) }
            case "user drill-down":
                // The user with the most effective permissions: the longest page.
                _ = reduce(&state, .key(.character("G")))
                _ = reduce(&state, .key(.enter))
            case "help": _ = reduce(&state, .key(.character("?")))
            default: break
            }
            var samples: [Double] = []
            var frame = render(state)
            for _ in 0..<frames {
                let start = ContinuousClock.now
                frame = render(state)
                samples.append(Self.ms(ContinuousClock.now - start))
            }
            precondition(frame.width == width)
            renders.append(Self.timing(view, samples))
            Bench.log("render \(view): median \(renders.last!.medianMs) ms")
        }

        // The reducer alone for the keys that touch every row: a filter's first letter (all
        // users searched), its second (the first one's matches searched), Esc (all rows back).
        var filterTimes: [String: [Double]] = [:]
        var base = AppState(theme: .standard, now: now, width: width, height: height)
        _ = reduce(&base, .data(data))
        _ = reduce(&base, .key(.character("/")))
        for _ in 0..<max(1, frames / 10) {
            var state = base
            for (name, key) in [("filter: first letter", Key.character("a")), ("filter: second letter", .character("n")), ("filter: Esc", .escape)] {
                let start = ContinuousClock.now
                _ = reduce(&state, .key(key))
                filterTimes[name, default: []].append(Self.ms(ContinuousClock.now - start))
            }
        }
        let filters = ["filter: first letter", "filter: second letter", "filter: Esc"].map { Self.timing("reduce " + $0, filterTimes[$0] ?? []) }
        for t in filters { Bench.log("\(t.name): median \(t.medianMs) ms") }

        Bench.log("latency: \(keys) keys while the feed receives \(feedRate) items/s…")
        let latency = await Self.latencyRun(data: data, keys: keys, feedRate: feedRate, width: width, height: height, now: now)
        let output = Output(
            users: current.users.count, width: width, height: height, build: Bench.buildConfiguration, driftItems: result.items.count,
            buildDataMs: Bench.median(buildTimes) ?? 0, renders: renders, feedRate: feedRate, feedItemsDelivered: latency.delivered,
            framesDrawn: latency.frames, keyToFrame: Self.timing("key to frame", latency.keyLatencies),
            keyToFrameByKey: latency.byKey.map { Self.timing($0.key, $0.value) }.sorted { $0.medianMs > $1.medianMs },
            dataUpdate: Self.timing("reduce a data update", latency.dataReduce), filterKeys: filters)
        Self.printTable(output)
        try Bench.writeJSON(output, to: json)
    }

    /// An event and when it was pushed.
    struct Stamped: Sendable {
        var event: AppEvent
        var at: ContinuousClock.Instant
    }

    /// The dashboard's event queue: events pile up while a frame is drawn and are all reduced
    /// before the next one.
    final class Queue: Sendable {
        private let pending = Mutex<[Stamped]>([])
        private let signal: AsyncStream<Void>.Continuation
        let wakes: AsyncStream<Void>
        init() { (wakes, signal) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1)) }
        func push(_ event: AppEvent) {
            pending.withLock { $0.append(Stamped(event: event, at: .now)) }
            signal.yield()
        }
        func drain() -> [Stamped] { pending.withLock { events in defer { events.removeAll(keepingCapacity: true) }; return events } }
        func finish() { signal.finish() }
    }

    struct LatencyResult {
        var keyLatencies: [Double] = []
        var byKey: [String: [Double]] = [:]
        var dataReduce: [Double] = []
        var frames = 0
        var delivered = 0
    }

    static func latencyRun(data: DashboardData, keys: Int, feedRate: Double, width: Int, height: Int, now: Date) async -> LatencyResult {
        // The feed grows one item at a time from the oldest drift items, as a live feed would.
        let all = data.feed
        let queue = Queue()
        var state = AppState(theme: .standard, now: now, width: width, height: height)
        var startData = data
        startData.feed = []
        _ = reduce(&state, .data(startData))
        let delivered = Atomic<Int>(0)

        let producer = Task {
            var shown: [FeedRow] = []
            let period = Duration.seconds(1 / feedRate)
            var next = ContinuousClock.now
            var index = all.count - 1
            var round = 0
            while !Task.isCancelled, !all.isEmpty {
                next += period
                try? await Task.sleep(until: next, clock: .continuous)
                var row = all[index]
                row.appeared = Date()
                row.firstSeen = Date()
                if round > 0 { row.fingerprint += "#\(round)" }  // a feed never holds one item twice
                shown.insert(row, at: 0)
                if index == 0 { round += 1 }
                index = index == 0 ? all.count - 1 : index - 1
                var update = data
                update.feed = shown
                queue.push(.data(update))
                delivered.add(1, ordering: .relaxed)
            }
        }
        let script: [Key] = [
            .character("j"), .character("j"), .character("j"), .pageDown, .character("k"), .character("4"), .character("j"), .enter,
            .character("j"), .escape, .character("1"), .character("G"), .pageUp, .character("g"), .tab, .character("j"), .backTab,
            .character("/"), .character("a"), .character("n"), .enter, .character("n"), .escape, .character("2"), .character("j"),
            .character("3"), .character("j"), .character("1"),
        ]
        let presser = Task {
            var rng = SystemRandomNumberGenerator()
            for i in 0..<keys {
                try? await Task.sleep(for: .milliseconds(Int.random(in: 5...25, using: &rng)))
                queue.push(.key(script[i % script.count]))
            }
            try? await Task.sleep(for: .milliseconds(100))
            queue.finish()
        }

        var result = LatencyResult()
        var previous = render(state)
        for await _ in queue.wakes {
            // As the dashboard does: superseded data updates are dropped.
            let batch = coalesced(queue.drain()) { $0.event }
            for stamped in batch {
                if case .data = stamped.event {
                    let start = ContinuousClock.now
                    _ = reduce(&state, stamped.event)
                    result.dataReduce.append(ms(ContinuousClock.now - start))
                } else {
                    _ = reduce(&state, stamped.event)
                }
            }
            let frame = render(state)
            let done = ContinuousClock.now
            if frame != previous { result.frames += 1 }
            previous = frame
            for stamped in batch {
                if case .key(let key) = stamped.event {
                    let latency = ms(done - stamped.at)
                    result.keyLatencies.append(latency)
                    result.byKey["\(key)", default: []].append(latency)
                }
            }
        }
        producer.cancel()
        _ = await presser.value
        result.delivered = delivered.load(ordering: .relaxed)
        return result
    }

    static func ms(_ duration: Duration) -> Double {
        (Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15).rounded(toPlaces: 3)
    }

    static func timing(_ name: String, _ samples: [Double]) -> Timing {
        let sorted = samples.sorted()
        let p95 = sorted.isEmpty ? 0 : sorted[min(sorted.count - 1, Int((Double(sorted.count) * 0.95).rounded(.up)) - 1)]
        return Timing(name: name, samples: samples.count, medianMs: Bench.median(samples) ?? 0, p95Ms: p95, maxMs: sorted.last ?? 0)
    }

    static func printTable(_ o: Output) {
        print("")
        print("render: \(o.users) users, \(o.driftItems) drift items, \(o.width)×\(o.height), \(o.build) build")
        print(String(format: "dashboard data built from the snapshot and drift (off the UI loop): %.1f ms (median of 3)", o.buildDataMs))
        print("what                               samples    median      p95       max")
        print("---------------------------------  -------  --------  --------  --------")
        for t in o.renders.map({ Timing(name: "render " + $0.name, samples: $0.samples, medianMs: $0.medianMs, p95Ms: $0.p95Ms, maxMs: $0.maxMs) })
            + o.filterKeys + [o.dataUpdate, o.keyToFrame]
        {
            print(
                t.name.padding(toLength: 33, withPad: " ", startingAt: 0) + "  "
                    + String(format: "%7d  %5.2f ms  %5.2f ms  %5.2f ms", t.samples, t.medianMs, t.p95Ms, t.maxMs))
        }
        for t in o.keyToFrameByKey.prefix(4) {
            print(
                ("  key " + t.name).padding(toLength: 33, withPad: " ", startingAt: 0) + "  "
                    + String(format: "%7d  %5.2f ms  %5.2f ms  %5.2f ms", t.samples, t.medianMs, t.p95Ms, t.maxMs))
        }
        print("latency run: \(o.feedItemsDelivered) feed items delivered at \(o.feedRate)/s, \(o.framesDrawn) distinct frames drawn")
    }
}
