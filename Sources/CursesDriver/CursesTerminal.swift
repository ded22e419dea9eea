import CNCurses
import Foundation
import Synchronization
import TerminalUI

/// What the terminal reports.
public enum TerminalEvent: Sendable {
    case key(Key)
    case resize(width: Int, height: Int)
}

public struct TerminalError: Error, CustomStringConvertible {
    public var description: String
}

/// The only user of ncurses. ncurses is not thread-safe, so one dedicated thread owns it: it
/// reads keys, notices resizes, and draws the latest frame it was given — the UI never waits on
/// it and it never waits on the UI. Frames equal to the last one are not drawn; ncurses sends only
/// the cells that changed.
public final class CursesTerminal: Sendable {
    public struct Capabilities: Sendable {
        public var width: Int
        public var height: Int
        public var colors: Int
        public var utf8: Bool
    }

    private struct Shared {
        var pending: Frame?
        var depth: ColorDepth = .xterm256
        var redraw = false
        var stopping = false
    }

    private let shared = Mutex(Shared())
    private let wake: (read: Int32, write: Int32)
    private let events: AsyncStream<TerminalEvent>.Continuation
    public let stream: AsyncStream<TerminalEvent>
    private let finished = Mutex<Bool>(false)
    private let started = DispatchSemaphore(value: 0)
    private let stopped = DispatchSemaphore(value: 0)
    private let capabilities = Mutex<Result<Capabilities, TerminalError>?>(nil)

    public init() throws {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw TerminalError(description: "cannot create a pipe: \(String(cString: strerror(errno)))") }
        _ = fcntl(fds[0], F_SETFL, fcntl(fds[0], F_GETFL) | O_NONBLOCK)
        _ = fcntl(fds[1], F_SETFL, fcntl(fds[1], F_GETFL) | O_NONBLOCK)
        wake = (fds[0], fds[1])
        (stream, events) = AsyncStream.makeStream(of: TerminalEvent.self, bufferingPolicy: .unbounded)
    }

    /// Takes over the terminal on its own thread; returns once it is ready.
    public func start() throws -> Capabilities {
        let thread = Thread { [self] in self.run() }
        thread.name = "rbacwatch.terminal"
        thread.start()
        started.wait()
        switch capabilities.withLock({ $0 }) {
        case .success(let caps): return caps
        case .failure(let error): throw error
        case nil: throw TerminalError(description: "the terminal did not start")
        }
    }

    /// Draws `frame` soon (the newest frame wins if several arrive before a draw).
    public func present(_ frame: Frame, depth: ColorDepth) {
        shared.withLock {
            $0.pending = frame
            $0.depth = depth
        }
        poke()
    }

    /// Repaints everything on the next draw (Ctrl-L).
    public func redraw() {
        shared.withLock { $0.redraw = true }
        poke()
    }

    /// Restores the terminal and waits for the terminal thread to end. Safe to call twice.
    public func stop() {
        let first = finished.withLock { done -> Bool in
            defer { done = true }
            return !done
        }
        guard first else { return }
        shared.withLock { $0.stopping = true }
        poke()
        stopped.wait()
        close(wake.read)
        close(wake.write)
    }

    private func poke() {
        var byte: UInt8 = 1
        _ = write(wake.write, &byte, 1)
    }

    // MARK: The terminal thread

    private func run() {
        setlocale(LC_ALL, "")
        guard let screen = rbw_newterm() else {
            capabilities.withLock { $0 = .failure(TerminalError(description: "this terminal (TERM=\(ProcessInfo.processInfo.environment["TERM"] ?? "unset")) cannot be used")) }
            started.signal()
            stopped.signal()
            return
        }
        _ = set_term(screen)
        cbreak()
        noecho()
        nonl()
        intrflush(rbw_stdscr(), false)
        keypad(rbw_stdscr(), true)
        nodelay(rbw_stdscr(), true)
        set_escdelay(25)
        curs_set(0)
        if has_colors() {
            start_color()
            use_default_colors()
        }
        let codeset = String(cString: rbw_codeset())
        var rows: Int32 = 0
        var cols: Int32 = 0
        rbw_getmaxyx(&rows, &cols)
        capabilities.withLock {
            $0 = .success(Capabilities(width: Int(cols), height: Int(rows), colors: Int(rbw_colors()), utf8: codeset.uppercased().contains("UTF")))
        }
        started.signal()

        var painter = Painter()
        var last: Frame?
        var fds = [pollfd(fd: STDIN_FILENO, events: Int16(POLLIN), revents: 0), pollfd(fd: wake.read, events: Int16(POLLIN), revents: 0)]
        while true {
            _ = poll(&fds, 2, 100)
            readKeys()
            // The kernel's idea of the size wins: a SIGWINCH may have gone to another thread.
            var kernelRows: Int32 = 0
            var kernelCols: Int32 = 0
            if rbw_window_size(STDOUT_FILENO, &kernelRows, &kernelCols) == 0, kernelRows > 0, kernelCols > 0,
                kernelRows != rbw_lines() || kernelCols != rbw_cols()
            {
                resizeterm(kernelRows, kernelCols)
                last = nil
                events.yield(.resize(width: Int(kernelCols), height: Int(kernelRows)))
            }
            if fds[1].revents & Int16(POLLIN) != 0 {
                var buffer = [UInt8](repeating: 0, count: 64)
                while read(wake.read, &buffer, 64) > 0 {}
            }
            let work = shared.withLock { state -> (Frame?, ColorDepth, Bool, Bool) in
                defer {
                    state.pending = nil
                    state.redraw = false
                }
                return (state.pending, state.depth, state.redraw, state.stopping)
            }
            if work.3 { break }
            if work.2 {
                clearok(rbw_curscr(), true)
                last = nil
            }
            if let frame = work.0, frame != last, frame.width == Int(rbw_cols()), frame.height == Int(rbw_lines()) {
                painter.draw(frame, depth: work.1)
                last = frame
            } else if work.2, let frame = last {
                painter.draw(frame, depth: work.1)
            }
        }
        endwin()
        delscreen(screen)
        events.finish()
        stopped.signal()
    }

    private func readKeys() {
        var ch: wint_t = 0
        while true {
            let result = rbw_get_wch(&ch)
            if result == ERR { return }
            if result == KEY_CODE_YES {
                if Int32(ch) == rbw_key_resize() {
                    var rows: Int32 = 0
                    var cols: Int32 = 0
                    rbw_getmaxyx(&rows, &cols)
                    events.yield(.resize(width: Int(cols), height: Int(rows)))
                } else if let key = Self.key(code: Int32(ch)) {
                    events.yield(.key(key))
                }
            } else if let key = Self.key(character: UInt32(ch)) {
                events.yield(.key(key))
            }
        }
    }

    static func key(code: Int32) -> Key? {
        switch code {
        case KEY_UP: .up
        case KEY_DOWN: .down
        case KEY_LEFT: .left
        case KEY_RIGHT: .right
        case KEY_NPAGE: .pageDown
        case KEY_PPAGE: .pageUp
        case KEY_HOME: .home
        case KEY_END: .end
        case KEY_BTAB: .backTab
        case KEY_BACKSPACE: .backspace
        case KEY_DC: .delete
        case KEY_ENTER: .enter
        default: nil
        }
    }

    static func key(character value: UInt32) -> Key? {
        switch value {
        case 9: return .tab
        case 10, 13: return .enter
        case 27: return .escape
        case 8, 127: return .backspace
        case 1...26: return .control(Character(Unicode.Scalar(value + 96)!))
        default:
            guard let scalar = Unicode.Scalar(value) else { return nil }
            return .character(Character(scalar))
        }
    }
}

/// Writes frames into ncurses: colours mapped to what the terminal has, pairs allocated as met.
struct Painter {
    private var pairs: [PairKey: Int32] = [:]
    private var nextPair: Int32 = 1

    struct PairKey: Hashable {
        var foreground: Int32
        var background: Int32
    }

    mutating func draw(_ frame: Frame, depth: ColorDepth) {
        let colors = Int(rbw_colors())
        for row in 0..<frame.height {
            var covered = false
            for column in 0..<frame.width {
                let cell = frame[row, column]
                // The second half of a wide character drawn just before: ncurses fills it.
                if covered {
                    covered = false
                    if cell.text.isEmpty { continue }
                }
                let shown = cell.text.isEmpty ? " " : cell.text
                covered = CellWidth.of(shown) == 2
                // A base character and at most four marks (ncurses' CCHARW_MAX is 5).
                var text = shown.unicodeScalars.prefix(5).map { wchar_t(bitPattern: $0.value) }
                text.append(0)
                let (attributes, pair) = style(cell.style, depth: depth, colors: colors)
                _ = text.withUnsafeBufferPointer { rbw_put_cell(Int32(row), Int32(column), $0.baseAddress, attributes, pair) }
            }
        }
        if let cursor = frame.cursor {
            curs_set(1)
            move(Int32(cursor.row), Int32(cursor.column))
        } else {
            curs_set(0)
        }
        wnoutrefresh(rbw_stdscr())
        doupdate()
    }

    mutating func style(_ style: Style, depth: ColorDepth, colors: Int) -> (attr_t, Int32) {
        var attributes = rbw_a_normal()
        if style.bold { attributes |= rbw_a_bold() }
        if style.dim { attributes |= rbw_a_dim() }
        if style.underline { attributes |= rbw_a_underline() }
        if style.reverse { attributes |= rbw_a_reverse() }
        guard depth != .none, colors >= 8 else { return (attributes, 0) }
        func index(_ rgb: RGB?) -> Int32 {
            guard let rgb else { return -1 }
            switch depth {
            case .truecolor where colors > 256: return Int32(ColorMapping.direct(rgb))
            case .truecolor, .xterm256: return Int32(colors >= 256 ? ColorMapping.xterm256(rgb) : ColorMapping.ansi16(rgb) % Int(colors))
            case .ansi16: return Int32(ColorMapping.ansi16(rgb) % max(8, min(16, colors)))
            case .none: return -1
            }
        }
        let key = PairKey(foreground: index(style.foreground), background: index(style.background))
        if key.foreground == -1 && key.background == -1 { return (attributes, 0) }
        if let pair = pairs[key] { return (attributes, pair) }
        guard nextPair < rbw_color_pairs() else { return (attributes, 0) }
        let pair = nextPair
        nextPair += 1
        _ = rbw_init_pair(pair, key.foreground, key.background)
        pairs[key] = pair
        return (attributes, pair)
    }
}
