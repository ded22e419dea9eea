/// Issued access tokens, their lifetimes, and each token's per-minute request budget
/// (`client.credentials.token.rate.per.minute`).
struct TokenStore: Sendable {
    struct Record: Sendable {
        var clientId: String
        var expiresAt: Double
        var windowStart: Double
        var count: Int
    }

    struct Budget: Sendable {
        var allowed: Int
        var count: Int
        var resetSeconds: Int
        /// Set when this request exceeded the budget.
        var retryAfter: Int?
    }

    private var records: [String: Record] = [:]
    /// Separate fixed windows (the audit API's own limit), by token.
    private var extraWindows: [String: (start: Double, count: Int)] = [:]
    private var rng = SystemRandomNumberGenerator()

    mutating func issue(clientId: String, lifetime: Int, now: Double) -> String {
        let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
        let token = String((0..<86).map { _ in alphabet[Int(rng.next() % 64)] })
        records[token] = Record(clientId: clientId, expiresAt: now + Double(lifetime), windowStart: now, count: 0)
        return token
    }

    enum Lookup {
        case valid(Record)
        case expired
        case unknown
    }

    func lookup(_ token: String, now: Double) -> Lookup {
        guard let record = records[token] else { return .unknown }
        return record.expiresAt > now ? .valid(record) : .expired
    }

    mutating func revoke(_ token: String) {
        records.removeValue(forKey: token)
    }

    /// Makes every token expire now (they stay known, so callers get `bad.credentials`).
    mutating func expireAll(now: Double) {
        for key in records.keys { records[key]!.expiresAt = now }
    }

    /// Counts one audit request against the token's audit window; the seconds to wait when over.
    mutating func countAudit(_ token: String, limit: Int, window: Double, now: Double) -> Int? {
        guard limit > 0 else { return nil }
        var entry = extraWindows[token] ?? (now, 0)
        if now - entry.start >= window { entry = (now, 0) }
        entry.count += 1
        extraWindows[token] = entry
        return entry.count > limit ? max(1, Int((entry.start + window - now).rounded(.up))) : nil
    }

    /// Counts one request against the token's fixed window (a minute on the real service).
    mutating func count(_ token: String, limit: Int, window: Double, now: Double) -> Budget {
        guard var record = records[token] else {
            return Budget(allowed: limit, count: 0, resetSeconds: Int(window.rounded(.up)))
        }
        if now - record.windowStart >= window {
            record.windowStart = now
            record.count = 0
        }
        record.count += 1
        records[token] = record
        let reset = max(1, Int((record.windowStart + window - now).rounded(.up)))
        return Budget(
            allowed: limit, count: record.count, resetSeconds: reset,
            retryAfter: limit > 0 && record.count > limit ? reset : nil)
    }
}
