import Foundation

/// One organisation of a fleet, as its organisations file describes it (the gc CLI's profiles
/// are the model: a name, an environment, a client's id and secret — here never the secret
/// itself, only where to read it).
public struct OrganizationConfig: Sendable, Equatable {
    /// Where a credential comes from: an environment variable or a file.
    public enum Source: Sendable, Equatable {
        case environment(String)
        case file(String)
        /// Written in the file: only for a client id, which is not a secret (the gc CLI keeps it in its profile).
        case literal(String)
    }

    public var name: String
    /// A region (`eu-west-1`, `mypurecloud.ie`) or, for a simulator or a proxy, an API URL.
    public var region: String?
    public var apiURL: String?
    public var loginURL: String?
    public var clientId: Source
    public var clientSecret: Source
    public var pollInterval: Double?
    public var driftInterval: Double?
    /// A rules file for this organisation (default: the fleet's).
    public var rules: String?
    /// The destinations (by name, from the fleet's destinations file) this organisation's payloads
    /// go to; nil: all of them.
    public var destinations: [String]?
    /// Listed but not worked (kept for `orgs list`).
    public var disabled = false

    public init(name: String, clientId: Source, clientSecret: Source) {
        self.name = name
        self.clientId = clientId
        self.clientSecret = clientSecret
    }
}

/// Reads an organisations file:
///
/// ```json
/// {"defaults": {"pollIntervalSeconds": 60, "driftIntervalSeconds": 900, "destinations": ["splunk"]},
///  "organizations": [
///    {"name": "emea-prod", "region": "eu-west-1", "clientIdEnv": "EMEA_ID", "clientSecretFile": "/run/secrets/emea"}]}
/// ```
///
/// A file that cannot be read at all is one error; an organisation whose entry is wrong is
/// reported (`invalid`) and the others are kept.
public enum OrganizationsFile {
    public struct ParseError: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    public enum Entry: Sendable, Equatable {
        case valid(OrganizationConfig)
        case invalid(name: String, reason: String)

        public var name: String {
            switch self {
            case .valid(let config): config.name
            case .invalid(let name, _): name
            }
        }
    }

    /// Organisations in one file, at most.
    public static let limit = 1000
    static let secretNames: Set<String> = ["secret", "clientSecret", "client_secret", "password", "token"]

    public static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 64
            && name.unicodeScalars.allSatisfy { ($0.isASCII && CharacterSet.alphanumerics.contains($0)) || $0 == "-" || $0 == "_" || $0 == "." }
    }

    public static func parse(_ bytes: [UInt8]) throws(ParseError) -> [Entry] {
        guard let root = JSONValue.parse(bytes), case .object(let top) = root else {
            throw ParseError(description: "the organisations file is not a JSON object")
        }
        for key in top.keys.sorted() where !["defaults", "organizations"].contains(key) {
            throw ParseError(description: "the organisations file has an unknown member \(TerminalSafe.sanitize(key)) (known: defaults, organizations)")
        }
        guard case .array(let list)? = top["organizations"] else {
            throw ParseError(description: "the organisations file needs an \"organizations\" array")
        }
        guard !list.isEmpty else { throw ParseError(description: "the organisations file lists no organisation") }
        guard list.count <= limit else { throw ParseError(description: "at most \(limit) organisations in one file") }
        var defaults: [String: JSONValue] = [:]
        if let value = top["defaults"] {
            guard case .object(let members) = value else { throw ParseError(description: "defaults must be an object") }
            let allowed: Set<String> = ["pollIntervalSeconds", "driftIntervalSeconds", "rules", "destinations"]
            for key in members.keys.sorted() where !allowed.contains(key) {
                throw ParseError(description: "defaults: unknown member \(TerminalSafe.sanitize(key)) (known: \(allowed.sorted().joined(separator: ", ")))")
            }
            defaults = members
        }
        var entries: [Entry] = []
        var seen = Set<String>()
        for (index, value) in list.enumerated() {
            let entry = parse(value, at: index, defaults: defaults)
            guard !seen.contains(entry.name) else {
                throw ParseError(description: "organisation \(entry.name): the name is used twice")
            }
            seen.insert(entry.name)
            entries.append(entry)
        }
        return entries
    }

    static func parse(_ value: JSONValue, at index: Int, defaults: [String: JSONValue]) -> Entry {
        guard case .object(var members) = value else { return .invalid(name: "#\(index + 1)", reason: "not an object") }
        guard let rawName = members["name"]?.string, isValidName(rawName) else {
            return .invalid(name: "#\(index + 1)", reason: "a name of letters, digits, - _ . (at most 64) is required")
        }
        let name = rawName
        for (key, value) in defaults where members[key] == nil { members[key] = value }
        do {
            return .valid(try config(name: name, members))
        } catch {
            return .invalid(name: name, reason: error.description)
        }
    }

    static func config(name: String, _ members: [String: JSONValue]) throws(ParseError) -> OrganizationConfig {
        let known: Set<String> = [
            "name", "region", "environment", "apiUrl", "loginUrl", "clientIdEnv", "clientIdFile", "clientId", "clientSecretEnv", "clientSecretFile",
            "pollIntervalSeconds", "driftIntervalSeconds", "rules", "destinations", "disabled",
        ]
        for key in members.keys.sorted() where !known.contains(key) {
            if secretNames.contains(key) {
                throw ParseError(description: "\(key): secrets are never written in this file — name an environment variable (clientSecretEnv) or a file (clientSecretFile)")
            }
            throw ParseError(description: "unknown member \(TerminalSafe.sanitize(key))")
        }
        func string(_ key: String) throws(ParseError) -> String? {
            guard let value = members[key] else { return nil }
            guard let text = value.string, !text.isEmpty, text.utf8.count <= 2048 else { throw ParseError(description: "\(key) must be a non-empty string") }
            return text
        }
        func seconds(_ key: String, _ range: ClosedRange<Double>) throws(ParseError) -> Double? {
            guard let value = members[key] else { return nil }
            guard case .number(let number) = value, number.isFinite, range.contains(number) else {
                throw ParseError(description: "\(key) must be a number of seconds from \(Int(range.lowerBound)) to \(Int(range.upperBound))")
            }
            return number
        }
        func source(_ what: String, env: String, file: String) throws(ParseError) -> OrganizationConfig.Source {
            let variable = try string(env)
            let path = try string(file)
            switch (variable, path) {
            case (let variable?, nil): return .environment(variable)
            case (nil, let path?): return .file(path)
            case (nil, nil): throw ParseError(description: "\(what): name an environment variable (\(env)) or a file (\(file))")
            default: throw ParseError(description: "\(env) or \(file), not both")
            }
        }
        let clientId: OrganizationConfig.Source
        if let literal = try string("clientId") {
            clientId = .literal(literal)
        } else {
            clientId = try source("the client id", env: "clientIdEnv", file: "clientIdFile")
        }
        var config = OrganizationConfig(name: name, clientId: clientId, clientSecret: try source("the client secret", env: "clientSecretEnv", file: "clientSecretFile"))
        let region = try string("region")
        let environment = try string("environment")
        if region != nil && environment != nil { throw ParseError(description: "region or environment, not both") }
        config.region = region ?? environment
        config.apiURL = try string("apiUrl")
        config.loginURL = try string("loginUrl")
        if config.region == nil && config.apiURL == nil { throw ParseError(description: "a region (or environment) or an apiUrl is required") }
        if config.region != nil && config.apiURL != nil { throw ParseError(description: "a region or an apiUrl, not both") }
        config.pollInterval = try seconds("pollIntervalSeconds", 1...3600)
        config.driftInterval = try seconds("driftIntervalSeconds", 1...(7 * 86_400))
        config.rules = try string("rules")
        if let value = members["destinations"] {
            guard case .array(let items) = value, items.count <= 64 else { throw ParseError(description: "destinations must be a list of destination names") }
            var names: [String] = []
            for item in items {
                guard let text = item.string, !text.isEmpty, text.utf8.count <= 64 else { throw ParseError(description: "destinations must be a list of destination names") }
                names.append(text)
            }
            config.destinations = names
        }
        if let value = members["disabled"] {
            guard case .bool(let flag) = value else { throw ParseError(description: "disabled must be true or false") }
            config.disabled = flag
        }
        return config
    }
}
