import AuditCore
import Foundation
import TerminalUI

#if LIBFUZZER
    // Built with `-sanitize=fuzzer -DLIBFUZZER`: libFuzzer owns `main` and calls this for each
    // input; RBACWATCH_FUZZ_READER chooses the reader (README "Fuzzing").
    let fuzzReader: Readers.Reader = {
        let name = ProcessInfo.processInfo.environment["RBACWATCH_FUZZ_READER"] ?? ""
        guard let reader = Readers.named(name) else {
            FileHandle.standardError.write(
                Data("set RBACWATCH_FUZZ_READER to one of: \(Readers.all.map(\.name).joined(separator: ", "))\n".utf8))
            exit(2)
        }
        return reader
    }()

    @_silgen_name("LLVMFuzzerRunDriver")
    func LLVMFuzzerRunDriver(
        _ argc: UnsafeMutablePointer<CInt>, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>>,
        _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> CInt
    ) -> CInt

    /// SwiftPM names the executable's entry point itself, so libFuzzer is driven from here
    /// (`LLVMFuzzerRunDriver`) rather than from its own `main`.
    @main
    struct LibFuzzerMain {
        static func main() {
            _ = fuzzReader
            var argc = CommandLine.argc
            var argv = CommandLine.unsafeArgv
            exit(LLVMFuzzerRunDriver(&argc, &argv) { data, size in
                fuzzReader.read(data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? [])
                return 0
            })
        }
    }
#else
    /// `rbacwatch-fuzz`: a seeded mutation fuzzer over the hand-written readers, for a bounded
    /// time per reader; a trap, a crash or an input that takes over `--hang` seconds writes the
    /// input to a file and ends the run with one line. `rbacwatch-fuzz seeds DIR` writes the seed
    /// corpora for libFuzzer.
    @main
    struct FuzzCommand {
        static func main() {
            var arguments = Array(CommandLine.arguments.dropFirst())
            if arguments.first == "seeds" {
                writeSeeds(to: arguments.dropFirst().first ?? "fuzz-corpus")
                return
            }
            var options = Options()
            while !arguments.isEmpty {
                let flag = arguments.removeFirst()
                let value = arguments.isEmpty ? "" : arguments.removeFirst()
                switch flag {
                case "--reader": options.readers = value == "all" ? Readers.all.map(\.name) : value.split(separator: ",").map(String.init)
                case "--seconds": options.seconds = Bounded.number(value).map { Bounded.seconds($0, clampedTo: 0.1...86_400) } ?? options.seconds
                case "--seed": options.seed = UInt64(value) ?? options.seed
                case "--max-length": options.maxLength = Bounded.int(value, in: 1...(1 << 24)) ?? options.maxLength
                case "--json": options.json = value
                case "--crash-dir": options.crashDirectory = value
                default:
                    print("usage: rbacwatch-fuzz [--reader NAME|all] [--seconds N] [--seed N] [--max-length BYTES] [--json FILE] [--crash-dir DIR]")
                    print("       rbacwatch-fuzz seeds DIR")
                    print("readers: " + Readers.all.map { "\($0.name) (\($0.about))" }.joined(separator: "; "))
                    exit(flag == "--help" ? 0 : 2)
                }
            }
            let unknown = options.readers.filter { Readers.named($0) == nil }
            guard unknown.isEmpty else {
                print("rbacwatch-fuzz: unknown reader \(unknown.joined(separator: ", ")); readers: \(Readers.all.map(\.name).joined(separator: ", "))")
                exit(2)
            }
            CrashGuard.install(directory: options.crashDirectory)
            var results: [Result] = []
            print("READER         SECONDS      RUNS    RUNS/S  ACCEPTED  CORPUS  CRASHES")
            for name in options.readers {
                let result = Fuzzer(reader: Readers.named(name)!, options: options).run()
                results.append(result)
                print(
                    name.padding(toLength: 13, withPad: " ", startingAt: 0)
                        + String(format: "%8.0f %9d %9.0f %9d %7d %8d", result.seconds, result.runs, Double(result.runs) / max(result.seconds, 0.001), result.accepted, result.corpus, 0))
            }
            if let json = options.json { writeJSON(results, options: options, to: json) }
        }

        static func writeSeeds(to directory: String) {
            for reader in Readers.all {
                let path = "\(directory)/\(reader.name)"
                try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
                for (index, seed) in reader.seeds().enumerated() {
                    FileManager.default.createFile(atPath: "\(path)/seed-\(index)", contents: Data(seed))
                }
            }
            print("seed corpora written under \(directory)/<reader>")
        }

        static func writeJSON(_ results: [Result], options: Options, to path: String) {
            var w = CanonicalJSONWriter()
            w.beginObject()
            w.key("readers")
            w.beginArray(newlines: true)
            for result in results {
                w.beginObject()
                w.field("accepted", result.accepted)
                w.field("corpus", result.corpus)
                w.field("crashes", 0)
                w.field("milliseconds", Int(result.seconds * 1000))
                w.field("reader", result.reader)
                w.field("runs", result.runs)
                w.endObject()
            }
            w.endArray()
            w.field("seed", String(options.seed))
            w.endObject()
            FileManager.default.createFile(atPath: path, contents: Data(w.bytes + [0x0A]))
        }
    }

    struct Options {
        var readers = Readers.all.map(\.name)
        var seconds = 10.0
        var seed: UInt64 = 1
        var maxLength = 64 << 10
        var json: String?
        var crashDirectory = "."
    }

    struct Result {
        var reader: String
        var seconds: Double
        var runs: Int
        var accepted: Int
        var corpus: Int
    }

    /// Mutates seeds and what the reader accepted, runs each input, and keeps a bounded corpus
    /// of accepted ones (valid structure is where the deeper paths are).
    struct Fuzzer {
        let reader: Readers.Reader
        let options: Options

        static let tokens: [[UInt8]] = [
            "\"", "\\", "{", "}", "[", "]", ",", ":", "null", "true", "false", "0", "-1", "1e300", "-1e300", "1.5", "9999999999999999999999",
            "\\uD800", "\\uDC00", "\\u0000", "\\u001b", "\"\"", "[]", "{}", "\u{1B}[2J", "\u{202E}", "\u{9B}", "T", "Z", "+99:99", "*", "\\*",
            "9999-12-31T23:59:59.999Z", "0000-01-01T00:00:00Z", "inf", "nan", "d", "w", "h",
        ].map { Array($0.utf8) }

        func run() -> Result {
            var rng = SplitMix64(seed: options.seed ^ UInt64(truncatingIfNeeded: reader.name.hashValue & 0xFFFF))
            var corpus = reader.seeds()
            let seedCount = corpus.count
            var runs = 0
            var accepted = 0
            let start = ContinuousClock.now
            let budget = Duration.milliseconds(Int64(options.seconds * 1000))
            CrashGuard.reader = reader.name
            while true {
                if runs % 64 == 0, ContinuousClock.now - start >= budget { break }
                var input = corpus[Int(rng.next() % UInt64(corpus.count))]
                let rounds = 1 + Int(rng.next() % 4)
                for _ in 0..<rounds { mutate(&input, &rng, corpus: corpus) }
                if input.count > options.maxLength { input.removeLast(input.count - options.maxLength) }
                CrashGuard.arm(input)
                reader.read(input)
                CrashGuard.disarm()
                runs += 1
                // Inputs that read as valid documents are kept (bounded): mutating them reaches
                // deeper than mutating noise.
                if Self.accepts(reader, input) {
                    accepted += 1
                    if corpus.count < 2000 {
                        corpus.append(input)
                    } else {
                        corpus[seedCount + Int(rng.next() % UInt64(corpus.count - seedCount))] = input
                    }
                }
            }
            let elapsed = ContinuousClock.now - start
            return Result(reader: reader.name, seconds: Bounded.seconds(elapsed), runs: runs, accepted: accepted, corpus: corpus.count)
        }

        /// Whether the input reads as a valid document of the reader's kind.
        static func accepts(_ reader: Readers.Reader, _ input: [UInt8]) -> Bool {
            switch reader.name {
            case "snapshot": (try? Snapshot(canonicalBytes: input)) != nil
            case "audit-events": (try? AuditEvent.parse(input)) != nil || (try? AuditQueryPage.parse(input)) != nil
            case "timestamps": ISOTimestamp.milliseconds(String(decoding: input, as: UTF8.self)) != nil
            case "rules": (try? AuditRule.parseFile(Data(input), source: "fuzz.json")) != nil
            case "risk": (try? RiskPolicy(json: Data(input))) != nil
            case "themes": (try? Theme(json: input)) != nil
            default: false
            }
        }

        func mutate(_ input: inout [UInt8], _ rng: inout SplitMix64, corpus: [[UInt8]]) {
            func position(_ extra: Int = 0) -> Int { Int(rng.next() % UInt64(input.count + extra + 1)) }
            switch rng.next() % 9 {
            case 0 where !input.isEmpty:
                input[position() % input.count] ^= UInt8(1 << (rng.next() % 8))
            case 1 where !input.isEmpty:
                input[position() % input.count] = [0x00, 0xFF, 0x22, 0x5C, 0x7B, 0x7D, 0x5B, 0x5D, 0x2C, 0x3A, 0x1B, 0x80, 0xC0, 0x30, 0x39][Int(rng.next() % 15)]
            case 2, 3:
                input.insert(contentsOf: Self.tokens[Int(rng.next() % UInt64(Self.tokens.count))], at: position())
            case 4 where input.count > 1:
                let start = position() % input.count
                let length = min(input.count - start, 1 + Int(rng.next() % 16))
                input.removeSubrange(start..<(start + length))
            case 5 where input.count > 1:
                let start = position() % input.count
                let length = min(input.count - start, 1 + Int(rng.next() % 64))
                input.insert(contentsOf: input[start..<(start + length)], at: position())
            case 6:
                let other = corpus[Int(rng.next() % UInt64(corpus.count))]
                guard !other.isEmpty else { return }
                let from = Int(rng.next() % UInt64(other.count))
                let cut = position()
                input = Array(input.prefix(cut)) + Array(other[from...])
            case 7 where !input.isEmpty:
                input.removeLast(Int(rng.next() % UInt64(input.count)))
            default:
                // Replace a run of digits with an extreme number.
                if let digit = input.indices.dropFirst(position() % max(1, input.count)).first(where: { (0x30...0x39).contains(input[$0]) }) {
                    var end = digit
                    while end < input.count, (0x30...0x39).contains(input[end]) { end += 1 }
                    input.replaceSubrange(digit..<end, with: Array(["0", "-1", "99999999999999999999", "1e308", "4294967296"][Int(rng.next() % 5)].utf8))
                }
            }
        }
    }

    /// Writes the input in hand to a file when the process traps, crashes or hangs, and ends it
    /// with one line: async-signal-safe (a preallocated buffer, `open`/`write`/`_exit` only).
    enum CrashGuard {
        nonisolated(unsafe) static var buffer = UnsafeMutablePointer<UInt8>.allocate(capacity: 1 << 24)
        nonisolated(unsafe) static var length = 0
        nonisolated(unsafe) static var path = UnsafeMutablePointer<CChar>.allocate(capacity: 4096)
        nonisolated(unsafe) static var reader = ""
        nonisolated(unsafe) static var directory = "."

        static func install(directory: String) {
            self.directory = directory
            for number in [SIGILL, SIGTRAP, SIGSEGV, SIGBUS, SIGABRT, SIGFPE, SIGALRM] {
                signal(number) { signalNumber in
                    let fd = open(CrashGuard.path, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
                    if fd >= 0 {
                        _ = write(fd, CrashGuard.buffer, CrashGuard.length)
                        close(fd)
                    }
                    let message: StaticString = "rbacwatch-fuzz: the reader crashed or hung; the input is in the crash file named below\n"
                    _ = write(STDERR_FILENO, message.utf8Start, message.utf8CodeUnitCount)
                    _ = write(STDERR_FILENO, CrashGuard.path, strlen(CrashGuard.path))
                    _ = write(STDERR_FILENO, "\n", 1)
                    _exit(signalNumber == SIGALRM ? 71 : 70)
                }
            }
        }

        static func arm(_ input: [UInt8]) {
            if reader.isEmpty == false, path[0] == 0 || !String(cString: path).contains("-\(reader)-") {
                let name = "\(directory)/fuzz-crash-\(reader)-\(getpid()).bin"
                _ = name.withCString { strncpy(path, $0, 4095) }
            }
            length = min(input.count, 1 << 24)
            if length > 0 { input.withUnsafeBufferPointer { buffer.update(from: $0.baseAddress!, count: length) } }
            alarm(10)  // an input that takes ten seconds is a hang
        }

        static func disarm() {
            alarm(0)
        }
    }
#endif
