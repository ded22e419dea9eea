import AuditCore
import AuditEngine
import AuditStore
import CursesDriver
import Dispatch
import Foundation
import ServiceLifecycle
import Synchronization
import TerminalUI

/// Events from every source, drained in batches: the loop reduces all that is pending, then
/// renders once.
final class EventQueue: Sendable {
    private let pending = Mutex<[AppEvent]>([])
    private let signal: AsyncStream<Void>.Continuation
    let wakes: AsyncStream<Void>

    init() {
        (wakes, signal) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
    }

    func push(_ event: AppEvent) {
        pending.withLock { $0.append(event) }
        signal.yield()
    }

    func drain() -> [AppEvent] {
        pending.withLock { events in
            defer { events.removeAll(keepingCapacity: true) }
            return events
        }
    }

    func finish() { signal.finish() }
}

/// The dashboard: a terminal, the engine's feed in the background, and one loop that merges
/// keys, data and ticks into the reducer and draws the result. The UI never waits on the
/// network or the store.
struct DashboardApp {
    var monitor: DriftMonitor
    /// The engine's display-ready values (drift rows, the audit feed), and the work behind them.
    var feed: DashboardFeed
    var readOnly: Bool
    var themeName: String?
    var approver: String
    var environment: [String: String]

    /// Refuses to start without a terminal.
    static func requireTerminal() throws {
        guard isatty(STDIN_FILENO) == 1, isatty(STDOUT_FILENO) == 1 else {
            throw OperationError("the dashboard needs a terminal (stdin and stdout are not one); use rbacwatch diff for a report")
        }
    }

    func run() async throws {
        try Self.requireTerminal()
        let (theme, themeProblem) = Themes.load(themeName, environment: environment)
        let terminal = try CursesTerminal()
        let capabilities: CursesTerminal.Capabilities
        do {
            capabilities = try terminal.start()
        } catch let error as TerminalError {
            throw OperationError(error.description)
        }
        defer { terminal.stop() }
        let depth = ColorDepth.detect(environment: environment, terminalColors: capabilities.colors)
        let startingTheme = (environment["NO_COLOR"].map { !$0.isEmpty } ?? false) ? Theme.mono : theme
        var state = AppState(
            theme: startingTheme.adapted(to: depth), readOnly: readOnly, now: Date(), width: capabilities.width,
            height: capabilities.height, glyphs: capabilities.utf8 ? .unicode : .ascii)
        if let themeProblem { _ = reduce(&state, .notice("using the default theme: \(themeProblem)", isError: true)) }

        let queue = EventQueue()
        let signals = SignalWatch(queue: queue)
        defer { signals.cancel() }
        // The background work as one service group: the engine's feed (monitor, ingestor) and
        // the reader that hands its values to the loop; shut down gracefully when the loop ends.
        let feed = self.feed
        let background = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: [
                    .init(service: EngineService.loop("the dashboard feed") { await feed.run() }),
                    .init(
                        service: EngineService.drain("the dashboard feed's reader") {
                            for await update in feed.updates {
                                switch update {
                                case .drift(let data): queue.push(.data(data))
                                case .audit(let audit): queue.push(.audit(audit))
                                }
                            }
                        }, successTerminationBehavior: .ignore),
                ],
                gracefulShutdownSignals: [], logger: CLILogging.silent))
        let backgroundRun = Task {
            do {
                try await background.run()
            } catch {
                queue.push(.notice("the background work stopped: \(error)", isError: true))
            }
        }
        defer {
            Task { await background.triggerGracefulShutdown() }
            backgroundRun.cancel()
        }
        let tasks = [
            Task {
                for await event in terminal.stream {
                    switch event {
                    case .key(let key): queue.push(.key(key))
                    case .resize(let width, let height): queue.push(.resize(width: width, height: height))
                    }
                }
            },
            Task {
                while !Task.isCancelled {
                    try? await Task.sleep(for: .seconds(1))
                    queue.push(.tick(Date()))
                }
            },
        ]
        defer { for task in tasks { task.cancel() } }

        terminal.present(render(state), depth: depth)
        loop: for await _ in queue.wakes {
            for event in coalesced(queue.drain()) {
                for effect in reduce(&state, event) {
                    switch effect {
                    case .quit: break loop
                    case .redraw: terminal.redraw()
                    case .refresh: Task { [monitor] in await monitor.refresh() }
                    case .fullRefresh: Task { [monitor] in await monitor.refreshFull() }
                    case .setTheme(let name):
                        let (loaded, problem) = Themes.load(name, environment: environment)
                        if let problem {
                            queue.push(.notice("\(problem); theme unchanged", isError: true))
                        } else {
                            queue.push(.theme(loaded))
                        }
                    case .approve(let fingerprint, let ticket, let note, let lifetime):
                        let approver = self.approver
                        Task {
                            do {
                                let approval = try await feed.approve(
                                    fingerprint: fingerprint, ticket: ticket, note: note, lifetime: lifetime, approver: approver)
                                queue.push(
                                    .notice(
                                        "approved \(fingerprint.prefix(12))\(ticket.map { " (\($0))" } ?? "") until \(DriftReport.timestamp(approval.expiresAt).prefix(16))",
                                        isError: false))
                            } catch {
                                queue.push(.notice("approval not saved: \(error)", isError: true))
                            }
                        }
                    }
                }
            }
            if state.quitting { break }
            terminal.present(render(state), depth: depth)
        }
    }
}

/// SIGINT, SIGTERM and SIGHUP, caught rather than fatal: the dashboard ends the way `q` does
/// (so the terminal is restored), `watch` finishes its cycle.
final class SignalWatch {
    private let sources: [any DispatchSourceSignal]

    convenience init(queue: EventQueue) {
        self.init { _ in queue.push(.key(.control("c"))) }
    }

    init(_ handler: @escaping @Sendable (Int32) -> Void) {
        sources = [SIGINT, SIGTERM, SIGHUP].map { number in
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { handler(number) }
            source.resume()
            return source
        }
    }

    func cancel() {
        for source in sources { source.cancel() }
    }
}

/// Finding themes: the built-in ones by name, or a JSON file (a path, or NAME.json in
/// `$RBACWATCH_THEMES`, `$XDG_CONFIG_HOME/rbacwatch/themes`, `./themes`).
enum Themes {
    static func directories(_ environment: [String: String]) -> [String] {
        var dirs: [String] = []
        if let explicit = environment["RBACWATCH_THEMES"] { dirs.append(explicit) }
        if let xdg = environment["XDG_CONFIG_HOME"] {
            dirs.append(xdg + "/rbacwatch/themes")
        } else if let home = environment["HOME"] {
            dirs.append(home + "/.config/rbacwatch/themes")
        }
        dirs.append(FileManager.default.currentDirectoryPath + "/themes")
        return dirs
    }

    /// The theme, or the default with a one-line reason (no "using the default" in it: at start-up
    /// the default is used, on `:theme` the current theme stays) when it cannot be had.
    static func load(_ name: String?, environment: [String: String]) -> (Theme, String?) {
        guard let name, !name.isEmpty else { return (.standard, nil) }
        let candidates = name.contains("/") || name.hasSuffix(".json") ? [name] : directories(environment).map { "\($0)/\(name).json" }
        for path in candidates {
            guard FileManager.default.fileExists(atPath: path) else { continue }
            let bytes: [UInt8]
            do {
                bytes = try FileBytes.read(path, limit: FileBytes.configurationLimit)
            } catch {
                return (.standard, error.description)
            }
            do {
                return (try Theme(json: bytes), nil)
            } catch {
                return (.standard, "\((path as NSString).lastPathComponent): \(error.description)")
            }
        }
        if let builtIn = Theme.builtIn[name] { return (builtIn, nil) }
        return (.standard, "no theme \(name) (built in: \(Theme.builtIn.keys.sorted().joined(separator: ", ")))")
    }
}

extension DashboardApp {
    /// The dashboard over an engine, as `tui` and `demo` run it.
    init(engine: EngineSetup, options: DashboardOptions, environment: [String: String], deliveries: [DeliveryService] = []) {
        self.init(
            monitor: engine.monitor, feed: engine.dashboardFeed(deliveries: deliveries), readOnly: options.readOnly, themeName: options.theme,
            approver: Actor.name(options.approver, environment: environment), environment: environment)
    }
}
