import AuditCore
import Testing

@Suite("Organisations file")
struct OrganizationsFileTests {
    static func parse(_ text: String) throws -> [OrganizationsFile.Entry] {
        try OrganizationsFile.parse(Array(text.utf8))
    }

    @Test("entries with defaults, regions or URLs, credentials from variables, files or a literal id")
    func valid() throws {
        let entries = try Self.parse(
            """
            {"defaults": {"pollIntervalSeconds": 30, "destinations": ["splunk"]},
             "organizations": [
               {"name": "emea-prod", "region": "eu-west-1", "clientIdEnv": "EMEA_ID", "clientSecretFile": "/run/secrets/emea"},
               {"name": "us.test_2", "environment": "mypurecloud.com", "clientId": "3f1c", "clientSecretEnv": "US_SECRET",
                "pollIntervalSeconds": 120, "destinations": [], "rules": "/etc/rules", "disabled": true},
               {"name": "lab", "apiUrl": "http://127.0.0.1:8080", "clientIdFile": "/id", "clientSecretEnv": "LAB"}]}
            """)
        guard case .valid(let emea) = entries[0], case .valid(let us) = entries[1], case .valid(let lab) = entries[2] else {
            Issue.record("not all valid: \(entries)")
            return
        }
        #expect(emea.region == "eu-west-1" && emea.clientId == .environment("EMEA_ID") && emea.clientSecret == .file("/run/secrets/emea"))
        #expect(emea.pollInterval == 30 && emea.destinations == ["splunk"], "defaults apply")
        #expect(us.region == "mypurecloud.com" && us.clientId == .literal("3f1c") && us.pollInterval == 120 && us.destinations == [])
        #expect(us.disabled && us.rules == "/etc/rules")
        #expect(lab.apiURL == "http://127.0.0.1:8080" && lab.clientId == .file("/id") && lab.region == nil)
    }

    @Test("a wrong entry is reported by name and the others are kept")
    func invalidEntries() throws {
        let entries = try Self.parse(
            """
            {"organizations": [
               {"name": "ok", "region": "eu-west-1", "clientIdEnv": "A", "clientSecretEnv": "B"},
               {"name": "secret-inline", "region": "eu-west-1", "clientIdEnv": "A", "clientSecret": "hunter2"},
               {"name": "no-secret", "region": "eu-west-1", "clientIdEnv": "A"},
               {"name": "both", "region": "eu-west-1", "apiUrl": "http://x", "clientIdEnv": "A", "clientSecretEnv": "B"},
               {"name": "fast", "region": "eu-west-1", "clientIdEnv": "A", "clientSecretEnv": "B", "pollIntervalSeconds": 1e300},
               {"name": "bad name!", "region": "eu-west-1"},
               {"name": "typo", "region": "eu-west-1", "clientIdEnv": "A", "clientSecretEnv": "B", "destination": ["x"]}]}
            """)
        #expect(entries.count == 7)
        guard case .valid = entries[0] else { Issue.record("the good entry was lost"); return }
        func reason(_ index: Int) -> String {
            if case .invalid(_, let reason) = entries[index] { return reason }
            return "valid"
        }
        #expect(reason(1).contains("secrets are never written in this file") && !reason(1).contains("hunter2"))
        #expect(reason(2).contains("the client secret: name an environment variable"))
        #expect(reason(3).contains("a region or an apiUrl, not both"))
        #expect(reason(4).contains("pollIntervalSeconds must be a number of seconds from 1 to 3600"))
        #expect(entries[5].name == "#6" && reason(5).contains("a name of letters"))
        #expect(reason(6) == "unknown member destination")
    }

    @Test("a file that cannot be used at all is one error")
    func fileErrors() {
        for text in [
            "not json", "[]", #"{"organizations": []}"#, #"{"orgs": []}"#, #"{"organizations": {}}"#,
            #"{"organizations": [{"name": "a", "region": "x", "clientIdEnv": "A", "clientSecretEnv": "B"}, {"name": "a", "region": "x", "clientIdEnv": "A", "clientSecretEnv": "B"}]}"#,
            #"{"defaults": {"region": "x"}, "organizations": [{"name": "a", "region": "x", "clientIdEnv": "A", "clientSecretEnv": "B"}]}"#,
        ] {
            #expect(throws: OrganizationsFile.ParseError.self, "\(text)") { try Self.parse(text) }
        }
    }
}
