import AuditCore
import AuditStore
import Foundation
import GenesysClient
import Logging

/// Collects a snapshot over the network: the shared path of `snapshot` and `demo`.
enum SnapshotRunner {
    struct Settings {
        var collector = CollectorOptions()
        var concurrency = 8
        var retry = RetryPolicy()
    }

    /// The last snapshot with what the audit events named read again (an incremental drift check).
    static func refresh(
        _ connection: GenesysConnection, base: Snapshot, changes: ChangedEntities, settings: Settings, logger: Logger
    ) async throws -> (Snapshot, CollectionReport) {
        let client = GenesysAPIClient(
            connection: connection, transport: AsyncHTTPClientTransport(idleTimeout: min(.seconds(30), connection.limits.request)),
            retry: settings.retry, maxConcurrentRequests: settings.concurrency, logger: logger)
        var options = settings.collector
        options.deadline = connection.limits.collection
        do {
            let result = try await Collector(client: client, options: options, logger: logger).refresh(base, changes: changes)
            await client.shutdown()
            return result
        } catch {
            await client.shutdown()
            throw error
        }
    }

    static func collect(
        _ connection: GenesysConnection, settings: Settings, logger: Logger, progress: ProgressLine
    ) async throws -> (Snapshot, CollectionReport) {
        let transport = AsyncHTTPClientTransport(idleTimeout: min(.seconds(30), connection.limits.request))
        let client = GenesysAPIClient(
            connection: connection, transport: transport, retry: settings.retry,
            maxConcurrentRequests: settings.concurrency, logger: logger)
        var options = settings.collector
        options.deadline = connection.limits.collection
        let collector = Collector(client: client, options: options, logger: logger)
        // Redraw on a timer, so a wait for the rate-limit window shows as one.
        let ticker = Task {
            while !Task.isCancelled {
                progress.show(describe(await collector.progressNow()))
                try? await Task.sleep(for: .milliseconds(250))
            }
        }
        defer { ticker.cancel() }
        do {
            let result = try await collector.collect()
            ticker.cancel()
            progress.clear()
            await client.shutdown()
            ProcessMemory.releaseFreed()
            return result
        } catch {
            ticker.cancel()
            progress.clear()
            await client.shutdown()
            throw error
        }
    }

    static func describe(_ p: CollectionProgress) -> String {
        var text = "collecting: \(p.phase) · \(p.pages) pages · \(p.requests) requests"
        if let left = p.rateLeft, let allowed = p.rateAllowed { text += " · rate budget \(left)/\(allowed)" }
        if let waiting = p.waiting { text += " · waiting \(waiting.components.seconds + 1) s for the rate limit" }
        return text
    }

    /// The one line that explains a failure, and the exit code that goes with it.
    static func explain(_ error: any Error) -> (message: String, code: Int32) {
        switch error {
        case let error as ConfigurationError: (error.description, RBACWatchExit.usage)
        case let error as OperationError: (error.description, RBACWatchExit.failure)
        case let error as GenesysClientError: (error.description, RBACWatchExit.failure)
        case let error as GenesysAPIError: (error.description, RBACWatchExit.failure)
        case let error as SnapshotFileError: (error.description, RBACWatchExit.failure)
        case let error as StoreError: (error.description, RBACWatchExit.failure)
        case let error as RiskPolicyError: (error.description, RBACWatchExit.usage)
        case is CancellationError: ("interrupted", RBACWatchExit.failure)
        default: ("unexpected error: \(error)", RBACWatchExit.failure)
        }
    }
}

/// The human summary of a snapshot and its collection.
enum SnapshotSummaryText {
    static func lines(_ snapshot: Snapshot, _ report: CollectionReport?, written: (path: String, bytes: Int, sha256: String)?) -> [String] {
        let s = SnapshotSummary(snapshot)
        var lines: [String] = []
        let org = snapshot.organization.map { "\($0.name) (\($0.id))" } ?? "an organisation"
        lines.append("Snapshot of \(org): \(snapshot.isPartial ? "PARTIAL" : "complete")")
        func row(_ label: String, _ value: Int, _ detail: String = "") {
            let padded = label.padding(toLength: 15, withPad: " ", startingAt: 0)
            let number = String(value)
            lines.append("  \(padded)\(String(repeating: " ", count: max(0, 8 - number.count)))\(number)\(detail.isEmpty ? "" : "  (\(detail))")")
        }
        row("divisions", s.divisions)
        row("roles", s.roles, "\(s.builtInRoles) built-in")
        let states = s.usersByState.sorted { $0.value > $1.value }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
        row("users", s.users, states)
        row("groups", s.groups, "\(s.roleEnabledGroups) role-enabled")
        row("teams", s.teams)
        row("OAuth clients", s.oauthClients)
        let kinds = [("PC_USER", "user"), ("PC_GROUP", "group"), ("PC_OAUTH_CLIENT", "OAuth client")]
            .map { "\(s.grantsBySubject[$0.0] ?? 0) \($0.1)" }.joined(separator: ", ")
        row("grants", s.grants, kinds)
        row("role holdings", s.userAccess, "\(s.usersWithInheritedAccess) users inherit through groups, \(s.usersWithAllDivisions) hold roles in every division")
        row("permissions", s.effectivePermissions, "effective, counted per user and division")
        if snapshot.isPartial {
            lines.append("  \(snapshot.problems.count) problem\(snapshot.problems.count == 1 ? "" : "s"):")
            for problem in snapshot.problems {
                lines.append("    \(problem.code) \(problem.endpoint): \(problem.message)")
            }
        }
        if let report {
            let st = report.statistics
            let seconds = Double(report.elapsed.components.seconds) + Double(report.elapsed.components.attoseconds) / 1e18
            var line = "Collected in \(String(format: "%.1f", seconds)) s: \(st.requests) requests (\(report.pages) pages, \(report.logins) login\(report.logins == 1 ? "" : "s")), "
            line += "\(st.rateLimited) × 429, \(st.retries) retries"
            if st.serverErrors + st.transportErrors > 0 { line += ", \(st.serverErrors) server errors, \(st.transportErrors) connection errors" }
            lines.append(line)
            if !report.rewalks.isEmpty || report.referenceFetches > 0 || report.confirmationChanges > 0 {
                lines.append(
                    "  the org changed during collection: \(report.rewalks.count) list walk\(report.rewalks.count == 1 ? "" : "s") repeated, "
                        + "\(report.referenceFetches) entities fetched by reference, \(report.confirmationChanges) changes confirmed")
            }
            if report.verified > 0 {
                lines.append("  verified \(report.verified) users against authorization/subjects: \(report.verifyMismatches) mismatch\(report.verifyMismatches == 1 ? "" : "es")")
            }
        }
        if let written {
            lines.append("Wrote \(written.path) (\(written.bytes) bytes, sha256 \(written.sha256))")
        }
        return lines.map(TerminalSafe.sanitize)
    }
}

/// The C allocator keeps memory the collection freed (hundreds of thousands of decoded pages'
/// strings, spread over a thread's arena each) for reuse; what comes next — a 100 MB canonical
/// document, a stored snapshot read back — does not reuse it. Handing it back to the system
/// after a collection keeps the process's peak near what it holds.
enum ProcessMemory {
    static func releaseFreed() {
        // glibc's malloc_trim, looked up rather than linked: other C libraries have none.
        guard let symbol = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "malloc_trim") else { return }
        typealias Trim = @convention(c) (Int) -> Int32
        _ = unsafeBitCast(symbol, to: Trim.self)(0)
    }
}
