import ArgumentParser
import GenesysSimulator

/// Options shared by every command that starts the simulator (`simulate`, `demo`).
struct SimulatorOptions: ParsableArguments {
    @Option(help: "Seed of the generated organisation: the same seed gives the same org.")
    var seed: UInt64 = 1

    @Option(help: "Number of users to generate.")
    var users = 2000

    @Option(name: .customLong("rate-limit"), help: "Requests per minute per access token (0: unlimited).")
    var rateLimit = 300

    @Option(name: .customLong("token-ttl"), help: "Lifetime of issued access tokens, in seconds.")
    var tokenTTL = 86_400

    @Option(name: .customLong("max-page-size"), help: "Largest page size the offset-paged lists honour.")
    var maxPageSize = 500

    @Option(name: .customLong("latency-ms"), help: "Delay added to every reply, in milliseconds.")
    var latencyMs = 0

    @Option(name: .customLong("latency-jitter-ms"), help: "Random extra delay up to this many milliseconds.")
    var latencyJitterMs = 0

    @Option(name: .customLong("error-rate"), help: "Probability (0-1) that an API request answers 503.")
    var errorRate = 0.0

    @Option(name: .customLong("drop-rate"), help: "Probability (0-1) that an API request's connection is dropped.")
    var dropRate = 0.0

    @Option(
        name: .customLong("auditor-permissions"), parsing: .upToNextOption,
        help: "Permissions of the auditor client's role (default: the read permissions rbacwatch needs).")
    var auditorPermissions: [String] = []

    @Option(name: .customLong("extra-user"), help: "Add a user with this exact name (repeatable).")
    var extraUsers: [String] = []

    @Option(
        name: .customLong("audit-delay"),
        help: "Audit events show in queries up to this many seconds after their eventDate (random per event, so out of order).")
    var auditDelay = 0.0

    @Option(name: .customLong("audit-rate-limit"), help: "Audit query requests per minute per token, besides --rate-limit (0: none).")
    var auditRateLimit = 0

    func validate() throws {
        try FlagCheck.range(users, FlagCheck.users, "--users")
        try FlagCheck.range(rateLimit, 0...1_000_000, "--rate-limit")
        try FlagCheck.range(tokenTTL, 1...172_800, "--token-ttl")
        try FlagCheck.range(maxPageSize, 1...10_000, "--max-page-size")
        try FlagCheck.range(errorRate, 0...1, "--error-rate")
        try FlagCheck.range(dropRate, 0...1, "--drop-rate")
        try FlagCheck.range(latencyMs, 0...60_000, "--latency-ms")
        try FlagCheck.range(latencyJitterMs, 0...60_000, "--latency-jitter-ms")
        try FlagCheck.range(auditDelay, 0...3600, "--audit-delay")
        try FlagCheck.range(auditRateLimit, 0...1_000_000, "--audit-rate-limit")
    }

    func configuration() throws -> SimulatorConfiguration {
        var configuration = SimulatorConfiguration()
        configuration.seed = seed
        configuration.users = users
        configuration.rateLimitPerMinute = rateLimit
        configuration.tokenTTL = tokenTTL
        configuration.maxPageSize = maxPageSize
        configuration.extraUserNames = extraUsers
        configuration.auditArrivalDelaySeconds = auditDelay
        configuration.auditRateLimitPerMinute = auditRateLimit
        if !auditorPermissions.isEmpty {
            configuration.auditorPermissions = auditorPermissions.flatMap { $0.split(separator: ",").map(String.init) }
        }
        var faults = FaultPlan()
        faults.latency = .milliseconds(latencyMs)
        faults.latencyJitter = .milliseconds(latencyJitterMs)
        faults.serverErrorRate = errorRate
        faults.dropRate = dropRate
        configuration.faults = faults
        return configuration
    }
}
