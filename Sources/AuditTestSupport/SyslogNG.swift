import Foundation

/// A real syslog receiver for tests: syslog-ng (Debian package `syslog-ng-core`; `.ci/run`
/// installs it) in the foreground with its own config, persist, pid and control files in a
/// temporary directory, listening on loopback over TCP or TLS (RFC 5424 with octet counting) and
/// writing each message's raw text, one per line, to a file. A TLS certificate for `localhost`
/// and 127.0.0.1 is made with openssl at start.
public final class SyslogNG: @unchecked Sendable {
    public struct Missing: Error, CustomStringConvertible {
        public var description: String
    }

    public let directory: URL
    public let port: Int
    public let tls: Bool
    /// The receiver's certificate (PEM), to trust as a CA file.
    public var certificate: String { directory.appendingPathComponent("cert.pem").path }
    public var output: String { directory.appendingPathComponent("received.log").path }
    private let process: Process

    static func executable(_ name: String) -> String? {
        let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin"
        return (path.split(separator: ":").map { "\($0)/\(name)" } + ["/usr/sbin/\(name)", "/usr/bin/\(name)"])
            .first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// Starts syslog-ng and waits (bounded) until it accepts connections.
    public static func start(tls: Bool) async throws -> SyslogNG {
        guard let binary = executable("syslog-ng") else {
            throw Missing(description: "syslog-ng is not installed (Debian package syslog-ng-core; .ci/run installs it)")
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("rbw-syslog-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        if tls {
            guard let openssl = executable("openssl") else { throw Missing(description: "openssl is not installed (Debian package openssl)") }
            let status = try await TestSupport.onDedicatedThread {
                let process = Process()
                process.executableURL = URL(fileURLWithPath: openssl)
                process.arguments = [
                    "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    "-keyout", directory.appendingPathComponent("key.pem").path, "-out", directory.appendingPathComponent("cert.pem").path,
                ]
                process.standardOutput = FileHandle.nullDevice
                process.standardError = FileHandle.nullDevice
                try process.run()
                process.waitUntilExit()
                return process.terminationStatus
            }
            guard status == 0 else { throw Missing(description: "openssl could not make a test certificate (status \(status))") }
        }
        let port = try freePort()
        let transport =
            tls
            ? #"transport("tls") tls(key-file("\#(directory.path)/key.pem") cert-file("\#(directory.path)/cert.pem") peer-verify(optional-untrusted))"#
            : #"transport("tcp")"#
        let config = """
            @version: 3.38
            options { stats-freq(0); keep-hostname(yes); };
            source s_in { syslog(ip("127.0.0.1") port(\(port)) \(transport) flags(store-raw-message) max-connections(20) log-iw-size(2000) log-msg-size(1048576)); };
            destination d_out { file("\(directory.path)/received.log" template("${RAWMSG}\\n") template-escape(no)); };
            log { source(s_in); destination(d_out); flags(flow-control); };
            """
        try Data(config.utf8).write(to: directory.appendingPathComponent("syslog-ng.conf"))
        let process = Process()
        process.executableURL = URL(fileURLWithPath: binary)
        process.arguments = [
            "--foreground", "--no-caps", "--cfgfile", directory.appendingPathComponent("syslog-ng.conf").path,
            "--persist-file", directory.appendingPathComponent("persist").path, "--pidfile", directory.appendingPathComponent("pid").path,
            "--control", directory.appendingPathComponent("ctl").path,
        ]
        let log = directory.appendingPathComponent("syslog-ng.out")
        FileManager.default.createFile(atPath: log.path, contents: nil)
        process.standardOutput = try FileHandle(forWritingTo: log)
        process.standardError = try FileHandle(forWritingTo: log)
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let receiver = SyslogNG(directory: directory, port: port, tls: tls, process: process)
        let deadline = ContinuousClock.now + .seconds(30)
        while !canConnect(port) {
            guard process.isRunning, ContinuousClock.now < deadline else {
                receiver.stop()
                let said = (try? String(contentsOf: log, encoding: .utf8)) ?? ""
                throw Missing(description: "syslog-ng did not start listening on 127.0.0.1:\(port): \(said.prefix(500))")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        return receiver
    }

    init(directory: URL, port: Int, tls: Bool, process: Process) {
        self.directory = directory
        self.port = port
        self.tls = tls
        self.process = process
    }

    /// The raw messages received so far, one per line.
    public func received() -> [String] {
        let text = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").map(String.init)
    }

    /// Waits (bounded) until at least `count` messages arrived.
    public func waitFor(_ count: Int, within limit: Duration = .seconds(30)) async throws -> [String] {
        let deadline = ContinuousClock.now + limit
        while received().count < count, ContinuousClock.now < deadline { try await Task.sleep(for: .milliseconds(50)) }
        return received()
    }

    /// Kills it (SIGKILL: a child spawned from a concurrency thread may inherit a mask that
    /// blocks SIGTERM) and removes its directory.
    public func stop() {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            // Sleeping, not waitUntilExit (which spins the calling thread until the child is reaped).
            for _ in 0..<500 where process.isRunning { usleep(10_000) }
            if !process.isRunning { process.waitUntilExit() }
        }
        try? FileManager.default.removeItem(at: directory)
    }

    public static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw Missing(description: "no socket for a free port") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        guard bound == 0 else { throw Missing(description: "could not bind a free port") }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    static func canConnect(_ port: Int) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        return withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } } == 0
    }
}
