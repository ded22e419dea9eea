import AuditCore
import AuditTestSupport
import Foundation
import SIEMClient
import Testing

/// Syslog delivery to a real syslog-ng, over TCP and TLS: every message arrives byte for byte.
@Suite("Syslog delivery to syslog-ng")
struct SyslogTests {
    /// Payloads whose names carry what CEF and syslog must escape or pass whole.
    static func payloads() -> [DeliveryPayload] {
        let names = ["Admins | ops=1 \\ back\nslash", "山田太郎 — Zoë", "plain", "tab\there \u{1B}[31mred"]
        return names.enumerated().map { index, name in
            DeliveryPayload.finding(
                AuditFinding(
                    fingerprint: "fp-\(index)", ruleId: "RBW-00\(index + 1)", title: "Title | with = signs", severity: [.low, .medium, .high, .critical][index],
                    controls: ["NIST AC-2"], eventIds: ["ev-\(index)"], date: Date(timeIntervalSince1970: 1_800_000_000 + Double(index)),
                    serviceName: "PeoplePermissions", entityType: "Role", entityId: "r-\(index)", entityName: name, action: "Update", actor: "Ana \(name)",
                    actorId: "u-1", clientId: nil, remoteIp: ["203.0.113.7"], evidence: [], status: .open, approval: nil),
                event: nil, organization: Organization(id: "org-1", name: "Acme"))
        }
    }

    static func destination(_ receiver: SyslogNG, format: Syslog.Message, caFile: String?) -> Destination {
        var destination = Destination(name: "syslog", kind: .syslog)
        destination.url = "\(receiver.tls ? "tls" : "tcp")://127.0.0.1:\(receiver.port)"
        destination.message = format
        destination.caFile = caFile
        destination.timeout = .seconds(10)
        return destination
    }

    @Test("over TCP and TLS, JSON and CEF messages arrive intact and framed, CEF escaped, one message per payload", arguments: [false, true])
    func delivered(tls: Bool) async throws {
        let receiver = try await SyslogNG.start(tls: tls)
        defer { receiver.stop() }
        let payloads = Self.payloads()
        var expected: [String] = []
        for format in Syslog.Message.allCases {
            let destination = Self.destination(receiver, format: format, caFile: tls ? receiver.certificate : nil)
            let sender = try SyslogSender(destination: destination, hostname: "rbw-test")
            let header = Syslog.Header(facility: destination.facility, hostname: "rbw-test", appName: "rbacwatch", procId: String(getpid()))
            #expect(await sender.send(Array(payloads.prefix(2))) == .delivered)
            #expect(await sender.send(Array(payloads.dropFirst(2))) == .delivered, "the connection is kept and used again")
            await sender.shutdown()
            expected += payloads.map { String(decoding: Syslog.message($0, header, as: format), as: UTF8.self) }
        }
        let received = try await receiver.waitFor(expected.count)
        #expect(received == expected, "byte for byte:\n\(received.joined(separator: "\n"))")
        let cef = try #require(received.first { $0.contains("CEF:0|") && $0.contains("Admins") })
        #expect(cef.contains("duser=Admins | ops\\=1 \\\\ back\\nslash"), "\(cef)")
        #expect(cef.contains("|RBW-001|RBW-001 Title \\| with = signs:"))
        #expect(received.contains { $0.contains("山田太郎 — Zoë") }, "non-ASCII whole")
        #expect(!received.joined().contains("\u{1B}"), "no raw escape reaches the log")
    }

    @Test("TLS against a certificate nobody vouches for is a configuration failure (the destination pauses), not a retry")
    func untrusted() async throws {
        let receiver = try await SyslogNG.start(tls: true)
        defer { receiver.stop() }
        let sender = try SyslogSender(destination: Self.destination(receiver, format: .json, caFile: nil), hostname: "rbw-test")
        let result = await sender.send(Array(Self.payloads().prefix(1)))
        await sender.shutdown()
        guard case .configuration(let why) = result else {
            Issue.record("expected a configuration failure, got \(result)")
            return
        }
        #expect(why.contains("TLS"), "\(why)")
        var skipping = Self.destination(receiver, format: .json, caFile: nil)
        skipping.insecureSkipVerify = true
        let insecure = try SyslogSender(destination: skipping, hostname: "rbw-test")
        #expect(await insecure.send(Array(Self.payloads().prefix(1))) == .delivered)
        await insecure.shutdown()
        #expect(try await receiver.waitFor(1).count == 1)
    }

    @Test("a receiver that is not there is a transient failure (retried with backoff), not a pause")
    func reconnects() async throws {
        let port = try SyslogNG.freePort()
        var destination = Destination(name: "syslog", kind: .syslog)
        destination.url = "tcp://127.0.0.1:\(port)"
        let sender = try SyslogSender(destination: destination, hostname: "rbw-test")
        let result = await sender.send(Array(Self.payloads().prefix(1)))
        await sender.shutdown()
        guard case .transient = result else {
            Issue.record("expected a transient failure, got \(result)")
            return
        }
    }

    @Test("destinations: syslog urls are tcp:// or tls:// with a port; TLS options only where there is TLS")
    func configuration() throws {
        func parse(_ json: String) throws -> [Destination] { try DestinationsFile.parse(Array(json.utf8)) }
        let parsed = try parse(#"{"destinations":[{"name":"s","kind":"syslog","url":"tls://siem.example:6514","format":"cef","caFile":"/etc/ca.pem","facility":10}]}"#)
        #expect(parsed.first?.syslogAddress?.host == "siem.example" && parsed.first?.syslogAddress?.port == 6514 && parsed.first?.syslogAddress?.tls == true)
        #expect(parsed.first?.message == .cef && parsed.first?.facility == 10)
        #expect(throws: DestinationsFile.ParseError.self) { try parse(#"{"destinations":[{"name":"s","kind":"syslog","url":"udp://h:514"}]}"#) }
        #expect(throws: DestinationsFile.ParseError.self) { try parse(#"{"destinations":[{"name":"s","kind":"syslog","url":"tcp://h:514","caFile":"/x"}]}"#) }
        #expect(throws: DestinationsFile.ParseError.self) { try parse(#"{"destinations":[{"name":"s","kind":"syslog","url":"tcp://h:99999"}]}"#) }
    }
}
