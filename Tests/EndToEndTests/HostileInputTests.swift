import AuditTestSupport
import Foundation
import GenesysClient
import GenesysSimulator
import Synchronization
import Testing

/// The real binary against a misbehaving server over loopback (the simulator behind
/// `HostileServer`), and against hostile command lines and files. Every case asserts the exit
/// status, the one line on stderr, a bounded wall time, bounded memory, that no credential shows
/// in any output, and that existing files were left alone.
@Suite("Hostile input: the real binary")
struct HostileInputTests {
    /// A simulator behind a hostile server, a private directory with a state file that already
    /// holds a baseline, and a `--out` file that must survive any failure.
    struct Case: Sendable {
        let sim: GenesysSimulator
        let server: HostileServer
        let endpoint: SimulatorEndpoint
        let directory: URL
        let secret: String
        /// What the state file held before the case ran (an empty, migrated store).
        let stateBefore: String

        var state: String { directory.appendingPathComponent("state.sqlite").path }
        var keep: String { directory.appendingPathComponent("keep.json").path }
        var log: String { directory.appendingPathComponent("watch.log").path }

        var environment: [String: String] {
            [
                "GENESYSCLOUD_OAUTHCLIENT_ID": endpoint.clientId, "GENESYSCLOUD_OAUTHCLIENT_SECRET": secret,
                "RBACWATCH_API_URL": endpoint.apiBaseURL, "RBACWATCH_STATE": state, "USER": "tester",
            ]
        }

        func run(_ arguments: [String], timeout: Duration = .seconds(120)) async throws -> MeasuredRun {
            try await CommandRunner.measure(arguments, environment: environment, timeout: timeout)
        }

        /// What every hostile case must hold, whatever it does otherwise.
        /// `otherWriter`: another process is writing the same state file meanwhile (its rows move
        /// whatever this run does), so the file is not compared.
        func expectContained(
            _ run: MeasuredRun, wall: Duration, peakMB: Int = 400, otherWriter: Bool = false, sourceLocation: SourceLocation = #_sourceLocation
        ) async {
            #expect(run.signal == nil, "ended by signal \(run.signal ?? 0) (a trap is 4 or 5): \(run.stderr)", sourceLocation: sourceLocation)
            #expect(!run.timedOut && run.wall < wall, "took \(run.wall), allowed \(wall)", sourceLocation: sourceLocation)
            #expect(run.peakBytes < peakMB << 20, "peak \(run.peakBytes >> 20) MB, allowed \(peakMB) MB", sourceLocation: sourceLocation)
            let everything = run.output + ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "")
            #expect(!everything.contains(secret), "the client secret leaked", sourceLocation: sourceLocation)
            for token in server.tokens where token.count >= 8 {
                #expect(!everything.contains(token), "an access token leaked", sourceLocation: sourceLocation)
            }
            #expect(!HostileInputTests.hasUnsafeBytes(run.stderr), "stderr carries raw control characters", sourceLocation: sourceLocation)
            if run.status != 0 && run.status != 3 && run.status != 4 {
                #expect(run.stderrLines.count == 1, "one line on stderr, not: \(run.stderr)", sourceLocation: sourceLocation)
                #expect(run.stderr.hasPrefix("rbacwatch: "), "\(run.stderr)", sourceLocation: sourceLocation)
            }
            #expect((try? String(contentsOfFile: keep, encoding: .utf8)) == "previous", "--out was changed", sourceLocation: sourceLocation)
            if (run.status == 1 || run.status == 2) && !otherWriter {
                let stateAfter = await HostileInputTests.contents(ofState: state)
                #expect(stateAfter == stateBefore, "a failed run changed the state file", sourceLocation: sourceLocation)
            }
        }
    }

    /// Every row of every table of a state file, in order (SQLite's own header counters move
    /// when a file is merely opened, so bytes are not the measure of "unchanged").
    static func contents(ofState path: String) async -> String {
        let script = """
            import sqlite3, sys
            c = sqlite3.connect('file:' + sys.argv[1] + '?mode=ro', uri=True)
            for (name,) in c.execute("select name from sqlite_master where type = 'table' order by name"):
                print(name, sorted(map(repr, c.execute('select * from "%s"' % name).fetchall())))
            """
        let read = try? await CommandRunner.runProcess("/usr/bin/env", ["python3", "-c", script, path], timeout: .seconds(60))
        guard let read, read.status == 0 else { return "python3 could not read the state file: \(read?.stderr ?? "")" }
        return read.stdout
    }

    /// Raw ESC, BEL, DEL, C1 controls or bidi overrides: what a terminal would act on.
    static func hasUnsafeBytes(_ text: String) -> Bool {
        // CSV ends its lines with CRLF, as RFC 4180 says; a CR anywhere else counts.
        text.replacingOccurrences(of: "\r\n", with: "\n").unicodeScalars.contains { scalar in
            switch scalar.value {
            case 0x0A, 0x09: false
            case 0x00...0x1F, 0x7F...0x9F, 0x202A...0x202E, 0x2066...0x2069: true
            default: false
            }
        }
    }

    /// Runs `body` with a hostile server of `rules` in front of a small simulator; the state
    /// file already holds a baseline taken through a clean connection.
    static func withCase(
        _ rules: [HostileServer.Rule], users: Int = 80, _ adjust: @escaping @Sendable (inout SimulatorConfiguration) -> Void = { _ in },
        _ body: @Sendable (Case) async throws -> Void
    ) async throws {
        let sim = await TestSupport.generated(users: users, seed: 31, adjust)
        let directory = try CommandRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        // The simulator and the hostile server answer from a thread of their own: the binary's
        // deadlines must meet the misbehaviour, not a busy test process.
        try await TestSupport.onDedicatedThread { executor in
            try await sim.withRunning { endpoint in
                let server = HostileServer(upstream: endpoint.apiBaseURL, rules: rules, executor: executor)
                try await server.withRunning { url in
                    var hostile = endpoint
                    hostile.apiBaseURL = url
                    hostile.loginBaseURL = url
                    let state = directory.appendingPathComponent("state.sqlite").path
                    // An existing state file (no network needed to make one), which no failure may change.
                    let made = try await CommandRunner.measure(["findings", "list", "--state", state])
                    #expect(made.status == 0, "\(made.stderr)")
                    let test = Case(
                        sim: sim, server: server, endpoint: hostile, directory: directory, secret: endpoint.clientSecret,
                        stateBefore: await Self.contents(ofState: state))
                    try Data("previous".utf8).write(to: URL(fileURLWithPath: test.keep))
                    try await body(test)
                }
            }
        }
    }

    static let rateLimited = #"{"message":"Rate limit exceeded the maximum. Retry the request in [1] seconds","code":"too.many.requests.retry.after","status":429}"#

    // MARK: Numbers

    @Test("Retry-After inf, nan, 1e300 or negative on the login and the lists: no trap, a bounded backoff, a complete snapshot",
        arguments: ["inf", "nan", "-7", "soon"])
    func absurdRetryAfter(_ value: String) async throws {
        let rules: [HostileServer.Rule] = ["/oauth/token", "/api/v2/users", "/api/v2/authorization/roles"].map { path in
            .path(path, times: 2) { _, reply in
                reply = .init(status: 429, json: Self.rateLimited)
                reply.set("Retry-After", value)
            }
        }
        try await Self.withCase(rules) { test in
            let out = test.directory.appendingPathComponent("snap.json").path
            let run = try await test.run(["snapshot", "--out", out])
            await test.expectContained(run, wall: .seconds(90))
            #expect(run.status == 0, "\(run.stderr)")
            #expect(run.stdout.contains(": complete"))
        }
    }

    @Test("Retry-After 999999 on every list: the snapshot stops at --timeout with one line naming where it was")
    func hugeRetryAfter() async throws {
        let rule = HostileServer.Rule.path("/api/v2/users") { _, reply in
            reply = .init(status: 429, json: Self.rateLimited)
            reply.set("Retry-After", "999999")
        }
        try await Self.withCase([rule]) { test in
            let run = try await test.run(["snapshot", "--out", test.keep, "--timeout", "30s"])
            await test.expectContained(run, wall: .seconds(90))
            #expect(run.status == 1)
            #expect(run.stderr.contains("the collection did not finish within 30 s (--timeout): still at lists"), "\(run.stderr)")
        }
    }

    @Test("the audit API answering 429 with Retry-After inf or 999999: watch --once says it is rate limited, in one line, at once")
    func auditRetryAfter() async throws {
        for value in ["inf", "999999"] {
            let rule = HostileServer.Rule.path("/api/v2/audits/query/realtime", method: "POST") { _, reply in
                reply = .init(status: 429, json: Self.rateLimited)
                reply.set("Retry-After", value)
            }
            try await Self.withCase([rule]) { test in
                let run = try await test.run(["watch", "--once", "--no-drift", "--log-file", test.log])
                await test.expectContained(run, wall: .seconds(60))
                #expect(run.status == 1)
                #expect(run.stderr.contains("the audit API is rate limiting us; nothing was lost, run again later"), "\(run.stderr)")
            }
        }
    }

    // MARK: Waits

    @Test("a reply trickled a byte at a time, or never sent: one line naming the endpoint and what it waited for, in bounded time")
    func slowLoris() async throws {
        for (delivery, waited) in [(HostileServer.Delivery.trickleBody(.milliseconds(200)), "the body was still arriving"), (.stall, "waiting for the headers")] {
            let rule = HostileServer.Rule.path("/api/v2/authorization/roles", delivery: delivery)
            try await Self.withCase([rule]) { test in
                // 12 s per request: the healthy ones (the login first) are answered by servers in
                // this test process, which the whole suite keeps busy on two cores — a fresh-clone
                // run saw the login go unanswered for 6 s. Three attempts stay well inside the wall.
                let run = try await test.run(["snapshot", "--out", test.keep, "--request-timeout", "12s"])
                await test.expectContained(run, wall: .seconds(90))
                #expect(run.status == 1)
                #expect(run.stderr.contains("GET /api/v2/authorization/roles failed after 3 attempts"), "\(run.stderr)")
                #expect(run.stderr.contains("within 12 s (\(waited))"), "\(run.stderr)")
            }
        }
    }

    // MARK: Loops

    @Test("a nextUri pointing at the same page, and a pageCount of a billion over repeated rows: a partial snapshot with the reason, few requests")
    func pagingLoops() async throws {
        let firstUsers = Mutex<Data?>(nil)
        let rules: [HostileServer.Rule] = [
            .pagesPointingAtThemselves("/api/v2/groups"),
            .path("/api/v2/users", method: "GET") { request, reply in
                guard request.query.contains("pageNumber"), !request.query.contains("id=") else { return }
                HostileServer.rewriteJSON(&reply) { page in
                    page["pageCount"] = 1_000_000_000
                    page["total"] = 1_000_000_000
                    if let rows = firstUsers.withLock({ $0 }) {
                        page["entities"] = try? JSONSerialization.jsonObject(with: rows)
                    } else if let rows = page["entities"] {
                        let data = try? JSONSerialization.data(withJSONObject: rows)
                        firstUsers.withLock { $0 = data }
                    }
                }
            },
        ]
        try await Self.withCase(rules, users: 1200) { test in
            let out = test.directory.appendingPathComponent("snap.json").path
            let run = try await test.run(["snapshot", "--out", out, "--user-page-size", "100"])
            await test.expectContained(run, wall: .seconds(90), peakMB: 300)
            #expect(run.status == 4, "partial: \(run.stderr)")
            #expect(run.stdout.contains("truncated.list groups: groups: nextUri leads back"), "\(run.stdout)")
            #expect(run.stdout.contains("truncated.list users: users: page 3 repeats rows already read"), "\(run.stdout)")
            #expect(test.server.requests("/api/v2/groups") < 20, "\(test.server.counts)")
            #expect(test.server.requests("/api/v2/users") < 60, "\(test.server.counts)")
        }
    }

    // MARK: Terminal injection

    static let injection = "\u{1B}]52;c;ZXZpbA==\u{07}\u{1B}[2J\u{9B}31m\u{202E}gnp.exe\u{7F}"

    @Test("an audit API error message full of escape sequences reaches stderr and --log-file inert")
    func hostileErrorMessage() async throws {
        let escaped = Self.injection.unicodeScalars.map { $0.value < 0x80 && $0.value >= 0x20 ? String($0) : String(format: "\\u%04X", $0.value) }.joined()
        let rule = HostileServer.Rule.path("/api/v2/audits/query/realtime", method: "POST") { _, reply in
            reply = .init(status: 400, json: #"{"message":"bad \#(escaped) interval","code":"bad.request","status":400}"#)
        }
        try await Self.withCase([rule]) { test in
            let run = try await test.run(["watch", "--once", "--no-drift", "--log-file", test.log, "--log-level", "debug"])
            await test.expectContained(run, wall: .seconds(90))
            #expect(run.status == 1)
            #expect(run.stderr.contains("\\x1B]52;c;ZXZpbA==\\x07"), "\(run.stderr)")
            let log = try String(contentsOfFile: test.log, encoding: .utf8)
            #expect(log.contains("audit poll failed"))
            #expect(!Self.hasUnsafeBytes(log), "the log carries raw control characters")
        }
    }

    @Test("a name full of escape sequences comes out inert in diff as a table, JSON, CSV and OCSF")
    func hostileNamesInReports() async throws {
        try await Self.withCase([], { config in config.extraUserNames = [Self.injection] }) { test in
            let withName = test.directory.appendingPathComponent("with.json").path
            #expect(try await test.run(["snapshot", "--out", withName]).status == 0)
            // The baseline without that user: the same org from a simulator without the extra name.
            let plain = TestSupport.simulator(users: 80, seed: 31)
            let without = test.directory.appendingPathComponent("without.json").path
            try await plain.withRunning { endpoint in
                let env = [
                    "GENESYSCLOUD_OAUTHCLIENT_ID": endpoint.clientId, "GENESYSCLOUD_OAUTHCLIENT_SECRET": endpoint.clientSecret,
                    "RBACWATCH_API_URL": endpoint.apiBaseURL,
                ]
                let made = try await CommandRunner.measure(["snapshot", "--no-store", "--out", without], environment: env)
                #expect(made.status == 0, "\(made.stderr)")
            }
            for format in ["table", "json", "csv", "ocsf"] {
                let run = try await test.run(["diff", "--baseline", without, "--current", withName, "--format", format, "--no-attribution"])
                await test.expectContained(run, wall: .seconds(90))
                #expect(run.status == 0, "\(format): \(run.stderr)")
                #expect(run.stdout.contains("gnp.exe"), "\(format): the user is in the report")
                #expect(!Self.hasUnsafeBytes(run.stdout), "\(format) carries raw control characters")
            }
        }
    }

    // MARK: One poison record

    @Test("one audit event whose eventDate does not parse: quarantined, the rest judged, findings list says so")
    func poisonRecord() async throws {
        let rule = HostileServer.Rule.path("/api/v2/audits/query/realtime", method: "POST") { _, reply in
            HostileServer.rewriteJSON(&reply) { page in
                guard var entities = page["entities"] as? [[String: Any]] else { return }
                for index in entities.indices where (entities[index]["entity"] as? [String: Any])?["name"] as? String == "Poison" {
                    entities[index]["eventDate"] = "31/12/2026 25:61"
                }
                page["entities"] = entities
            }
        }
        // The simulator's clock runs two minutes behind, so its events are older than --lag already.
        try await Self.withCase([rule], { config in config.wallClock = { Date().addingTimeInterval(-120) } }) { test in
            let admin = GenesysAPIClient(
                connection: GenesysConnection(
                    apiBaseURL: test.endpoint.apiBaseURL, loginBaseURL: test.endpoint.loginBaseURL, clientId: test.endpoint.adminClientId,
                    clientSecret: Secret(test.endpoint.adminClientSecret)),
                transport: AsyncHTTPClientTransport())
            for name in ["Poison", "Fine"] {
                _ = try await admin.send("POST", "/api/v2/authorization/roles", body: Array(#"{"name":"\#(name)","permissions":["authorization:grant:add"]}"#.utf8))
            }
            await admin.shutdown()
            let run = try await test.run(["watch", "--once", "--no-drift", "--lag", "5s"])
            await test.expectContained(run, wall: .seconds(90))
            #expect(run.status == 0, "\(run.stderr)")
            #expect(run.stdout.contains(#""name":"Fine""#), "the good event beside it was judged: \(run.stdout)")
            let listed = try await test.run(["findings", "list"])
            #expect(listed.status == 0)
            #expect(listed.stdout.contains("1 audit record quarantined"), "\(listed.stdout)")
            let quarantine = try await test.run(["findings", "quarantine"])
            #expect(quarantine.stdout.contains("31/12/2026 25:61"), "\(quarantine.stdout)")
        }
    }

    // MARK: Secrets

    @Test("a login reply whose token carries a line break: one line, no token, no secret")
    func hostileToken() async throws {
        let rule = HostileServer.Rule.path("/oauth/token") { _, reply in
            HostileServer.rewriteJSON(&reply) { $0["access_token"] = "abc\r\nX-Leak: PLANTED-TOKEN-5521" }
        }
        try await Self.withCase([rule]) { test in
            let run = try await test.run(["snapshot", "--out", test.keep])
            await test.expectContained(run, wall: .seconds(90))
            #expect(run.status == 1)
            #expect(run.stderr.contains("not a valid bearer token (not shown)"), "\(run.stderr)")
            #expect(!run.output.contains("PLANTED-TOKEN"))
        }
    }

    // MARK: Flags

    @Test("a bad flag is refused before anything is contacted: exit 2, one line, no request", arguments: [
        ["snapshot", "--log-level", "loud"], ["watch", "--log-level", "loud"], ["watch", "--once", "--poll-interval", "0s"],
        ["watch", "--lag", "1e300s"], ["diff", "--keep-snapshots=-1"], ["tui", "--interval", "1e300s"],
        ["findings", "list", "--since", "1e300d"], ["approve", "abcdef12", "--expires", "1e300w"], ["snapshot", "--request-timeout", "0s"],
        ["snapshot", "--timeout", "inf"], ["snapshot", "--out", "/nonexistent-dir/x.json"], ["diff", "--out", "/"],
        ["demo", "--summary", "--activity", "1e-300"], ["demo", "--summary", "--users", "100000000"], ["simulate", "--audit-delay", "1e300"],
        ["snapshot", "--verify", "99999999"],
    ])
    func badFlags(_ arguments: [String]) async throws {
        try await Self.withCase([]) { test in
            let run = try await test.run(arguments)
            await test.expectContained(run, wall: .seconds(30))
            #expect(run.status == 2, "\(arguments): \(run.stderr)")
            #expect(test.server.totalRequests == 0, "\(arguments) contacted the server: \(test.server.counts)")
        }
    }

    // MARK: Files

    @Test("a state path that is a link, a directory or another program's database is refused and left exactly as it was")
    func stateFileChecks() async throws {
        let directory = try CommandRunner.temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        // Another program's SQLite database, world-readable as its owner made it.
        let foreign = directory.appendingPathComponent("other.db").path
        let made = try await CommandRunner.runProcess("/usr/bin/env", ["python3", "-c", "import sqlite3; c=sqlite3.connect('\(foreign)'); c.execute('create table t(x)'); c.commit()"])
        #expect(made.status == 0, "\(made.stderr)")
        chmod(foreign, 0o644)
        let target = directory.appendingPathComponent("target.txt").path
        try Data("not yours".utf8).write(to: URL(fileURLWithPath: target))
        chmod(target, 0o644)
        let link = directory.appendingPathComponent("link.sqlite").path
        try FileManager.default.createSymbolicLink(atPath: link, withDestinationPath: target)
        let folder = directory.appendingPathComponent("folder").path
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: false)
        chmod(folder, 0o755)

        for (path, message) in [(foreign, "another program"), (link, "symbolic link"), (folder, "is a directory")] {
            let before = try FileManager.default.attributesOfItem(atPath: path)
            let run = try await CommandRunner.measure(["findings", "list", "--state", path])
            #expect(run.status == 1, "\(path): \(run.stderr)")
            #expect(run.stderrLines.count == 1 && run.stderr.contains(message), "\(run.stderr)")
            #expect(run.stderr.contains("left untouched"), "\(run.stderr)")
            let after = try FileManager.default.attributesOfItem(atPath: path)
            #expect(before[.posixPermissions] as? Int == after[.posixPermissions] as? Int, "\(path): its mode was changed")
            #expect(before[.modificationDate] as? Date == after[.modificationDate] as? Date)
        }
        let targetMode = try FileManager.default.attributesOfItem(atPath: target)[.posixPermissions] as? Int
        #expect(targetMode == 0o644, "the link's target kept its mode")
        #expect(try String(contentsOfFile: target, encoding: .utf8) == "not yours")
    }

    @Test("--out naming a FIFO or /dev/stdout is written in place, never replaced by a file")
    func specialOutputs() async throws {
        try await Self.withCase([]) { test in
            let fifo = test.directory.appendingPathComponent("pipe").path
            #expect(mkfifo(fifo, 0o600) == 0)
            // Read as `cat` would: open (waiting for the writer), read to the end.
            let reader = Task {
                try await onOwnThread { () -> Data in
                    let fd = open(fifo, O_RDONLY)
                    guard fd >= 0 else { return Data() }
                    return Data(CommandRunner.drain(fd))
                }
            }
            let run = try await test.run(["snapshot", "--no-store", "--out", fifo])
            await test.expectContained(run, wall: .seconds(90))
            #expect(run.status == 0, "\(run.stderr)")
            let received = try await reader.value
            #expect(String(decoding: received.prefix(64), as: UTF8.self).hasPrefix("{\n\"schema\":\"rbacwatch.snapshot/1\""))
            // test(1) -p: still a FIFO (not replaced by a file). Not lstat from Swift: which Clang
            // module owns `struct stat` differs between clean and incremental builds.
            #expect(try await CommandRunner.runProcess("/usr/bin/test", ["-p", fifo]).status == 0, "the FIFO is still a FIFO")

            // /dev/stdout is a link to this process's pipe: written through, never replaced.
            let piped = try await test.run(["snapshot", "--no-store", "--out", "/dev/stdout"])
            await test.expectContained(piped, wall: .seconds(90))
            #expect(piped.status == 0, "\(piped.stderr)")
            #expect(piped.stdout.hasPrefix("{\n\"schema\":\"rbacwatch.snapshot/1\""))
            #expect(piped.stderr.contains(": complete"), "the summary goes to stderr when the file is stdout: \(piped.stderr)")
        }
    }

    // MARK: Two processes

    @Test("a second watch on the same state file is refused with one line naming the first; eight processes opening a new file at once all succeed")
    func twoProcesses() async throws {
        try await Self.withCase([]) { test in
            let first = Process()
            first.executableURL = URL(fileURLWithPath: CommandRunner.binary)
            first.arguments = ["watch", "--no-drift", "--poll-interval", "1s", "--log-file", test.log]
            first.environment = test.environment.merging(["PATH": "/usr/bin:/bin", "HOME": test.directory.path]) { a, _ in a }
            first.standardOutput = FileHandle.nullDevice
            first.standardError = FileHandle.nullDevice
            try first.run()
            defer {
                first.terminate()
                first.waitUntilExit()
            }
            // Wait (bounded) until it holds the lock and has polled once.
            let deadline = ContinuousClock.now + .seconds(20)
            while ContinuousClock.now < deadline, ((try? String(contentsOfFile: test.log, encoding: .utf8)) ?? "").contains("watching the audit feed") == false {
                try await Task.sleep(for: .milliseconds(50))
            }
            let second = try await test.run(["watch", "--once", "--no-drift"])
            // The first watch keeps writing its checkpoint (each poll, a second apart).
            await test.expectContained(second, wall: .seconds(20), otherWriter: true)
            #expect(second.status == 1)
            #expect(second.stderr.contains("another rbacwatch (rbacwatch watch (pid \(first.processIdentifier))) is watching this state file"), "\(second.stderr)")

            let fresh = test.directory.appendingPathComponent("fresh.sqlite").path
            let runs = try await withThrowingTaskGroup(of: MeasuredRun.self) { group in
                for _ in 0..<8 { group.addTask { try await CommandRunner.measure(["findings", "list", "--state", fresh]) } }
                var all: [MeasuredRun] = []
                for try await run in group { all.append(run) }
                return all
            }
            for run in runs {
                #expect(run.status == 0, "\(run.stderr)")
                #expect(!run.stderr.contains("already exists"))
            }
        }
    }
}

