import ArgumentParser
import AuditCore
import AuditStore
import Foundation

/// `rbacwatch approve FINGERPRINT`: sign off one drift item (and what it caused) for a while.
struct ApproveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "approve",
        abstract: "Approve a drift item by its fingerprint (a unique prefix of 6 or more characters will do).",
        discussion: """
            An approval covers exactly that change, and the changes it caused (a grant to a group covers \
            each member's gain from it) — never a different change to the same entity. When it expires \
            the item counts as unapproved again and rbacwatch diff reports the lapse.
            """)

    @OptionGroup var state: StateOptions

    @Argument(help: "Fingerprint of the drift item (from rbacwatch diff).")
    var fingerprint: String

    @Option(help: "Change ticket, e.g. CHG-1234.")
    var ticket: String?

    @Option(help: "Why the change is expected.")
    var note: String?

    @Option(help: "How long the approval lasts: 90m, 72h, 3d, 2w.")
    var expires = "72h"

    @Option(help: "Who approves (default: the login name).")
    var approver: String?

    func validate() throws {
        guard Approval.lifetime(parsing: expires) != nil else {
            throw ValidationError("--expires takes a duration such as 90m, 72h, 3d or 2w, \(DurationText.describe(Approval.lifetimeRange)).")
        }
        guard fingerprint.count >= 6, fingerprint.allSatisfy(\.isHexDigit) else {
            throw ValidationError("a fingerprint is hexadecimal, at least 6 characters.")
        }
    }

    func run() async throws {
        let environment = ProcessInfo.processInfo.environment
        try await CommandErrors.handle {
            let store = try await state.open(environment: environment)
            let finding = try await Self.resolve(fingerprint.lowercased(), in: store)
            let now = Date()
            let approval = Approval(
                fingerprint: finding.fingerprint, ticket: ticket, note: note, approver: Actor.name(approver, environment: environment),
                createdAt: now, expiresAt: now.addingTimeInterval(Approval.lifetime(parsing: expires)!))
            try await store.addApproval(approval)
            Console.out(TerminalSafe.sanitize("Approved \(finding.fingerprint.prefix(12)) (\(finding.severity.name)): \(finding.summary)"))
            Console.out(
                TerminalSafe.sanitize(
                    "  by \(approval.approver)\(ticket.map { ", ticket \($0)" } ?? ""), until \(DriftReport.timestamp(approval.expiresAt))"))
        }
    }

    /// The one finding a prefix names.
    static func resolve(_ prefix: String, in store: any AuditStore) async throws -> Finding {
        var matches = try await store.findings(fingerprintPrefix: prefix)
        if matches.isEmpty {
            // An audit finding: approving it covers the same change when it happens again.
            var seen = Set<String>()
            for finding in try await store.auditFindings(FindingQuery(limit: 100_000)) where finding.fingerprint.hasPrefix(prefix) {
                guard seen.insert(finding.fingerprint).inserted else { continue }
                matches.append(
                    Finding(
                        fingerprint: finding.fingerprint, kind: "audit:" + finding.ruleId, severity: finding.severity, summary: finding.summary,
                        causeFingerprint: nil, firstSeen: finding.date, lastSeen: finding.date, baselineVersion: nil))
            }
        }
        switch matches.count {
        case 0:
            throw ConfigurationError(
                "no drift item or audit finding has a fingerprint starting with \(prefix): run rbacwatch diff or rbacwatch findings list")
        case 1:
            return matches[0]
        default:
            throw ConfigurationError("\(matches.count) drift items start with \(prefix): give more of the fingerprint")
        }
    }
}

/// `rbacwatch approvals list|revoke`.
struct ApprovalsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "approvals", abstract: "List and revoke approvals.", subcommands: [List.self, Revoke.self],
        defaultSubcommand: List.self)

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List approvals in force (--all: with expired and revoked ones).")

        @OptionGroup var state: StateOptions

        @Flag(help: "Include expired and revoked approvals.")
        var all = false

        func run() async throws {
            try await CommandErrors.handle {
                let store = try await state.open(environment: ProcessInfo.processInfo.environment)
                let now = Date()
                let approvals = try await store.approvals().filter { all || $0.status(at: now) == .active }
                guard !approvals.isEmpty else {
                    Console.out(all ? "No approvals." : "No approvals in force.")
                    return
                }
                Console.out("FINGERPRINT   STATUS   EXPIRES               APPROVER        TICKET      CHANGE")
                for approval in approvals {
                    let summary = try await store.findings(fingerprintPrefix: approval.fingerprint).first?.summary ?? ""
                    Console.out(
                        TerminalSafe.sanitize(
                            String(approval.fingerprint.prefix(12)) + "  " + approval.status(at: now).rawValue.padding(toLength: 9, withPad: " ", startingAt: 0)
                                + DriftReport.timestamp(approval.expiresAt).prefix(19).replacingOccurrences(of: "T", with: " ") + "Z  "
                                + approval.approver.padding(toLength: 16, withPad: " ", startingAt: 0)
                                + (approval.ticket ?? "-").padding(toLength: 12, withPad: " ", startingAt: 0) + summary))
                }
            }
        }
    }

    struct Revoke: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Revoke the approvals of a drift item.")

        @OptionGroup var state: StateOptions

        @Argument(help: "Fingerprint (or a unique prefix) of the approved item.")
        var fingerprint: String

        func run() async throws {
            try await CommandErrors.handle {
                let store = try await state.open(environment: ProcessInfo.processInfo.environment)
                let prefix = fingerprint.lowercased()
                let candidates = Set(try await store.approvals().filter { $0.revokedAt == nil && $0.fingerprint.hasPrefix(prefix) }.map(\.fingerprint))
                guard candidates.count == 1, let full = candidates.first else {
                    throw ConfigurationError(
                        candidates.isEmpty
                            ? "no approval in force has a fingerprint starting with \(prefix)"
                            : "\(candidates.count) approvals start with \(prefix): give more of the fingerprint")
                }
                let count = try await store.revokeApprovals(fingerprint: full, at: Date())
                Console.out("Revoked \(count) approval\(count == 1 ? "" : "s") of \(full.prefix(12)).")
            }
        }
    }
}

/// `rbacwatch risk default`: the built-in risk policy, to copy and edit.
struct RiskCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "risk", abstract: "Risk policies.", subcommands: [Default.self])

    struct Default: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the built-in risk policy (JSON).")
        func run() throws { Console.out(RiskPolicy.defaultJSON) }
    }
}
