import ArgumentParser
import AuditCore
import AuditStore
import Foundation
import Synchronization
import GenesysClient
import GenesysSimulator

/// `rbacwatch-bench diff`: load two snapshot files, normalise, hash and diff them — beside a
/// naive whole-object deep diff of the same files. Each run happens in a fresh child process so
/// its peak memory is its own.
struct DiffBenchmark: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "diff", abstract: "Measure snapshot comparison: hashed semantic diff vs naive deep diff.")

    @Option(help: "Users in the generated organisation.")
    var users = 100_000

    @Option(help: "Fraction of users (and roles and groups) changed between the two snapshots.")
    var drift = 0.01

    @Option(help: "Seed of the generated organisation.")
    var seed: UInt64 = 1

    @Option(help: "Runs of each strategy (the median is reported).")
    var runs = 5

    @Option(help: "Also write the results as JSON to this file.")
    var json: String?

    @Option(help: "Keep the two snapshot files in this directory (default: a temporary one, removed).")
    var keep: String?

    struct Measurement: Codable {
        var totalSeconds: [Double]
        var medianSeconds: Double
        var medianLoadSeconds: Double
        var medianCompareSeconds: Double
        var peakMemoryMB: [Double]
        var medianPeakMemoryMB: Double
        var differences: Int
        var decodedUsers: Int?
    }

    struct Output: Codable {
        var benchmark = "diff"
        var users: Int
        var drift: Double
        var runs: Int
        var build: String
        var machine: String
        var snapshotBytes: Int
        /// After: two files compared by their bytes, only what differs decoded.
        var indexed: Measurement
        /// Before: both files decoded, hashed and compared (the engine as it was).
        var hashed: Measurement
        var naive: Measurement
        /// Whether the indexed comparison gave exactly the decoded comparison's items.
        var sameItems: Bool
    }

    func validate() throws {
        guard (0...1).contains(drift) else { throw ValidationError("--drift is a fraction between 0 and 1.") }
        guard runs >= 1 else { throw ValidationError("--runs must be at least 1.") }
    }

    func run() async throws {
        let directory = keep ?? FileManager.default.temporaryDirectory.appendingPathComponent("rbacwatch-bench-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { if keep == nil { try? FileManager.default.removeItem(atPath: directory) } }
        let basePath = directory + "/baseline.json"
        let currentPath = directory + "/current.json"

        let baseline = try await Bench.collectedOrganisation(users: users, seed: seed)
        let current = DriftGenerator(seed: seed).apply(drift, to: baseline)
        let baseBytes = baseline.canonicalJSON()
        try Data(baseBytes).write(to: URL(fileURLWithPath: basePath))
        try Data(current.canonicalJSON()).write(to: URL(fileURLWithPath: currentPath))
        Bench.log("wrote two snapshots of \(baseline.users.count) users (\(baseBytes.count / 1_000_000) MB each) to \(directory)")

        var indexed: [WorkerResult] = []
        var hashed: [WorkerResult] = []
        var naive: [WorkerResult] = []
        for run in 1...runs {
            let i = try Self.worker("indexed", basePath, currentPath)
            let h = try Self.worker("hashed", basePath, currentPath)
            let n = try Self.worker("naive", basePath, currentPath)
            Bench.log(
                "run \(run): indexed \(i.totalSeconds) s, \(Int(i.peakMemoryMB)) MB; decoded \(h.totalSeconds) s, \(Int(h.peakMemoryMB)) MB; "
                    + "naive \(n.totalSeconds) s, \(Int(n.peakMemoryMB)) MB")
            indexed.append(i)
            hashed.append(h)
            naive.append(n)
        }
        let same = Set((indexed + hashed).map(\.itemsDigest)).count == 1
        let output = Output(
            users: baseline.users.count, drift: drift, runs: runs, build: Bench.buildConfiguration, machine: Bench.machine(), snapshotBytes: baseBytes.count,
            indexed: Self.summarise(indexed), hashed: Self.summarise(hashed), naive: Self.summarise(naive), sameItems: same)
        Self.printTable(output)
        try Bench.writeJSON(output, to: json)
        if !output.sameItems { throw ExitCode(1) }
    }

    static func summarise(_ results: [WorkerResult]) -> Measurement {
        Measurement(
            totalSeconds: results.map(\.totalSeconds), medianSeconds: Bench.median(results.map(\.totalSeconds)) ?? 0,
            medianLoadSeconds: Bench.median(results.map(\.loadSeconds)) ?? 0,
            medianCompareSeconds: Bench.median(results.map(\.compareSeconds)) ?? 0, peakMemoryMB: results.map(\.peakMemoryMB),
            medianPeakMemoryMB: Bench.median(results.map(\.peakMemoryMB)) ?? 0, differences: results.first?.differences ?? 0,
            decodedUsers: results.first?.decodedUsers)
    }

    static func printTable(_ o: Output) {
        print("")
        print("diff: \(o.users) users, drift \(o.drift), snapshot \(o.snapshotBytes / 1_000_000) MB, \(o.runs) runs each alternating, \(o.build) build, \(o.machine)")
        print("strategy                                      total (median)   load     compare   peak memory   differences   users decoded")
        print("--------------------------------------------  --------------  -------  --------  ------------  -----------   -------------")
        for (name, m) in [
            ("after: files indexed, only changes decoded", o.indexed), ("before: both decoded, hashed, compared", o.hashed),
            ("naive whole-object deep diff", o.naive),
        ] {
            print(
                name.padding(toLength: 44, withPad: " ", startingAt: 0) + "  "
                    + String(format: "%12.2f s  %5.2f s  %6.2f s  %9.0f MB  %11d", m.medianSeconds, m.medianLoadSeconds, m.medianCompareSeconds, m.medianPeakMemoryMB, m.differences)
                    + "   " + (m.decodedUsers.map { String($0) } ?? "–"))
        }
        print(String(format: "after / before: %.2f× the time, %.2f× the memory (goal: ≤ 1.0 s, ≤ 400 MB)", o.indexed.medianSeconds / max(o.hashed.medianSeconds, 1e-9), o.indexed.medianPeakMemoryMB / max(o.hashed.medianPeakMemoryMB, 1e-9)))
        print("the same items, in the same order, from both rbacwatch strategies: \(o.sameItems ? "yes" : "NO")")
    }

    struct WorkerResult: Codable {
        var loadSeconds: Double
        /// Of the compare phase, the part spent hashing (hashed strategy only).
        var hashSeconds: Double?
        var compareSeconds: Double
        var totalSeconds: Double
        var peakMemoryMB: Double
        var differences: Int
        /// SHA-256 of the items' fingerprints and severities, in order: the two rbacwatch
        /// strategies must agree.
        var itemsDigest: String?
        var decodedUsers: Int?
    }

    /// Runs one measurement in a child process (`rbacwatch-bench diff-worker`).
    static func worker(_ mode: String, _ base: String, _ current: String) throws -> WorkerResult {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: ProcessInfo.processInfo.arguments[0])
        process.arguments = ["diff-worker", "--mode", mode, base, current]
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { throw ValidationError("the \(mode) worker failed (status \(process.terminationStatus))") }
        return try JSONDecoder().decode(WorkerResult.self, from: data)
    }
}

/// The measured work, alone in its process.
struct DiffWorker: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "diff-worker", shouldDisplay: false)

    @Option var mode: String
    @Argument var baseline: String
    @Argument var current: String

    func run() throws {
        let start = ContinuousClock.now
        var loaded = start
        var hashed: ContinuousClock.Instant?
        var differences = 0
        var digest: String?
        var decodedUsers: Int?
        switch mode {
        case "indexed":
            let (a, b) = try Self.readBoth(baseline, current)
            loaded = ContinuousClock.now
            let comparison = try DriftEngine.diff(baselineBytes: a, currentBytes: b)
            differences = comparison.result.items.count
            digest = Self.digest(comparison.result.items)
            decodedUsers = comparison.decodedUsers
        case "hashed":
            let (bytesA, bytesB) = try Self.readBoth(baseline, current)
            let a = try Snapshot(canonicalBytes: bytesA)
            let b = try Snapshot(canonicalBytes: bytesB)
            loaded = ContinuousClock.now
            let digestA = SnapshotDigest(a)
            let digestB = SnapshotDigest(b)
            hashed = ContinuousClock.now
            let items = DriftEngine.diff(baseline: a, current: b, baselineDigest: digestA, currentDigest: digestB).items
            differences = items.count
            digest = Self.digest(items)
            decodedUsers = a.users.count + b.users.count
        case "naive":
            let a = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: baseline)))
            let b = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: current)))
            loaded = ContinuousClock.now
            differences = NaiveDeepDiff.compare(a, b)
        default:
            throw ValidationError("unknown mode \(mode)")
        }
        let end = ContinuousClock.now
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        let result = DiffBenchmark.WorkerResult(
            loadSeconds: Bench.seconds(loaded - start), hashSeconds: hashed.map { Bench.seconds($0 - loaded) },
            compareSeconds: Bench.seconds(end - loaded), totalSeconds: Bench.seconds(end - start),
            peakMemoryMB: Bench.peakMemoryMB() ?? Double(usage.ru_maxrss) / 1024, differences: differences, itemsDigest: digest,
            decodedUsers: decodedUsers)
        print(String(decoding: try JSONEncoder().encode(result), as: UTF8.self))
    }

    /// Both files at once, one per core (the same for both rbacwatch strategies).
    static func readBoth(_ a: String, _ b: String) throws -> ([UInt8], [UInt8]) {
        let paths = [a, b]
        let read = Mutex<[Int: Result<[UInt8], FileReadError>]>([:])
        DispatchQueue.concurrentPerform(iterations: 2) { index in
            let result = Result { () throws(FileReadError) -> [UInt8] in try FileBytes.read(paths[index], limit: FileBytes.dataLimit) }
            read.withLock { $0[index] = result }
        }
        let results = read.withLock { $0 }
        return (try results[0]!.get(), try results[1]!.get())
    }

    static func digest(_ items: [DriftItem]) -> String {
        ContentHash.sha256Hex(Array(items.map { "\($0.fingerprint) \($0.severity.name) \($0.escalation)" }.joined(separator: "\n").utf8))
    }
}

/// The approach of the seed article: match top-level entities by id and compare whole objects
/// deeply — every entity, every time, no hashing, no semantics. Returns the number of entities
/// added, removed or modified.
enum NaiveDeepDiff {
    static func compare(_ a: Any, _ b: Any) -> Int {
        guard let left = a as? [String: Any], let right = b as? [String: Any] else { return deepEqual(a, b) ? 0 : 1 }
        var differences = 0
        for key in Set(left.keys).union(right.keys) {
            let l = left[key]
            let r = right[key]
            if let la = l as? [[String: Any]], let ra = r as? [[String: Any]], la.first?["id"] != nil || ra.first?["id"] != nil {
                let lm = Dictionary(la.compactMap { item in (item["id"] as? String).map { ($0, item) } }, uniquingKeysWith: { a, _ in a })
                let rm = Dictionary(ra.compactMap { item in (item["id"] as? String).map { ($0, item) } }, uniquingKeysWith: { a, _ in a })
                for (id, item) in rm {
                    if let old = lm[id] {
                        if !deepEqual(old, item) { differences += 1 }
                    } else {
                        differences += 1
                    }
                }
                differences += lm.keys.filter { rm[$0] == nil }.count
            } else if let l, let r {
                if !deepEqual(l, r) { differences += 1 }
            } else {
                differences += 1
            }
        }
        return differences
    }

    static func deepEqual(_ a: Any, _ b: Any) -> Bool {
        switch (a, b) {
        case let (x as [String: Any], y as [String: Any]):
            guard x.count == y.count else { return false }
            for (key, value) in x {
                guard let other = y[key], deepEqual(value, other) else { return false }
            }
            return true
        case let (x as [Any], y as [Any]):
            guard x.count == y.count else { return false }
            return zip(x, y).allSatisfy { deepEqual($0, $1) }
        case let (x as String, y as String): return x == y
        case let (x as NSNumber, y as NSNumber): return x == y
        case (is NSNull, is NSNull): return true
        default: return false
        }
    }
}

/// Changes a fraction of an organisation the way drift happens: grants added and removed, users
/// moved and deactivated, group members changed, roles edited.
struct DriftGenerator {
    var seed: UInt64

    func apply(_ fraction: Double, to snapshot: Snapshot) -> Snapshot {
        var rng = SplitMix64(seed: seed &+ 99)
        var users = snapshot.users
        var grants = snapshot.grants
        var groups = snapshot.groups
        var roles = snapshot.roles
        let divisions = snapshot.divisions.map(\.id)
        let roleIds = roles.map(\.id)
        // At least one change of each kind for any non-zero fraction; none for zero.
        func share(_ total: Int) -> Int { fraction == 0 ? 0 : max(1, Int(Double(total) * fraction)) }
        let count = share(users.count)
        for _ in 0..<count {
            let index = Int(rng.next() % UInt64(users.count))
            switch rng.next() % 4 {
            case 0:
                grants.append(
                    Grant(
                        subjectId: users[index].id, subjectKind: .user, roleId: roleIds[Int(rng.next() % UInt64(roleIds.count))],
                        divisionId: divisions[Int(rng.next() % UInt64(divisions.count))]))
            case 1:
                if let grant = grants.firstIndex(where: { $0.subjectId == users[index].id }) { grants.remove(at: grant) }
            case 2:
                users[index].divisionId = divisions[Int(rng.next() % UInt64(divisions.count))]
            default:
                users[index].state = users[index].state == "active" ? "inactive" : "active"
            }
        }
        for _ in 0..<share(groups.count) where !groups.isEmpty {
            let index = Int(rng.next() % UInt64(groups.count))
            if groups[index].rolesEnabled { groups[index].memberIds.append(users[Int(rng.next() % UInt64(users.count))].id) }
        }
        for _ in 0..<share(roles.count) {
            let index = Int(rng.next() % UInt64(roles.count))
            roles[index].policies.append(PermissionPolicy(domain: "analytics", entityName: "dataExport", actions: ["add"]))
        }
        let resolvedGroups = groups.map { group in
            Group(
                id: group.id, name: group.name, description: group.description, type: group.type, state: group.state,
                visibility: group.visibility, rolesEnabled: group.rolesEnabled, memberIds: group.memberIds)
        }
        let resolvedRoles = roles.map {
            Role(
                id: $0.id, name: $0.name, description: $0.description, defaultRoleId: $0.defaultRoleId, isBuiltIn: $0.isBuiltIn,
                policies: $0.policies, legacyPermissions: $0.legacyPermissions)
        }
        return Snapshot.resolving(
            organization: snapshot.organization, divisions: snapshot.divisions, roles: resolvedRoles, users: users,
            groups: resolvedGroups, teams: snapshot.teams, oauthClients: snapshot.oauthClients, grants: grants,
            problems: snapshot.problems)
    }
}
