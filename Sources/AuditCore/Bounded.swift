import Foundation

/// Numbers from outside — a reply, a header, a file, a flag — are read here into a range, never
/// converted unchecked: Swift traps on `Int(Double.infinity)`, on `Int(1e300)` and on a
/// `Duration` that overflows, and a trap is a crash that a hostile server or a typo could cause
/// at will. Every reader of an outside number goes through these functions.
public enum Bounded {
    /// A finite decimal number as people and servers write it (`12`, `-3`, `1.5`, `2e3`), or nil.
    /// `inf`, `nan`, `infinity`, hexadecimal floats, blanks inside and empty text are refused.
    public static func number(_ text: some StringProtocol) -> Double? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty, trimmed.utf8.count <= 64 else { return nil }
        var sawDigit = false
        var sawExponent = false
        var sawPoint = false
        var previous: UInt8 = 0
        for byte in trimmed.utf8 {
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): sawDigit = true
            case UInt8(ascii: "."):
                guard !sawPoint, !sawExponent else { return nil }
                sawPoint = true
            case UInt8(ascii: "e"), UInt8(ascii: "E"):
                guard sawDigit, !sawExponent else { return nil }
                sawExponent = true
            case UInt8(ascii: "+"), UInt8(ascii: "-"):
                guard previous == 0 || previous == UInt8(ascii: "e") || previous == UInt8(ascii: "E") else { return nil }
            default: return nil
            }
            previous = byte
        }
        guard sawDigit, let value = Double(trimmed), value.isFinite else { return nil }
        return value
    }

    /// An integer in `range`, or nil (malformed, or outside it).
    public static func int(_ text: some StringProtocol, in range: ClosedRange<Int>) -> Int? {
        guard let value = Int(text.trimmingCharacters(in: .whitespaces)), range.contains(value) else { return nil }
        return value
    }

    /// `seconds` clamped into `range` (NaN reads as the lower bound).
    public static func seconds(_ seconds: Double, clampedTo range: ClosedRange<Double>) -> Double {
        guard !seconds.isNaN else { return range.lowerBound }
        return min(max(seconds, range.lowerBound), range.upperBound)
    }

    /// A `Duration` of `seconds`, clamped into `range` first: never traps.
    public static func duration(seconds: Double, clampedTo range: ClosedRange<Double>) -> Duration {
        let clamped = Self.seconds(seconds, clampedTo: range)
        let milliseconds = (clamped * 1000).rounded()
        // The range is the caller's; still, never let a conversion trap.
        guard milliseconds.magnitude < 9e15 else { return .seconds(Int64(clamped.sign == .minus ? -9e12 : 9e12)) }
        return .milliseconds(Int64(milliseconds))
    }

    /// A `Duration` as seconds, for arithmetic with `TimeInterval`.
    public static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
    }

    /// Epoch milliseconds of `date`, clamped to the years 0001 through 9999 (what ISO-8601 and
    /// every store can hold).
    public static func epochMilliseconds(_ date: Date) -> Int64 {
        let ms = date.timeIntervalSince1970 * 1000
        guard !ms.isNaN else { return 0 }
        return Int64(min(max(ms, Double(earliestMilliseconds)), Double(latestMilliseconds)).rounded())
    }

    /// 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999Z.
    public static let earliestMilliseconds: Int64 = -62_135_596_800_000
    public static let latestMilliseconds: Int64 = 253_402_300_799_999
}

/// A duration typed by a person or written in a file: `90s`, `45m`, `72h`, `3d`, `2w`, with a
/// unit for bare numbers. Out-of-range and malformed text read as nil, and `describe` says what
/// is accepted, so every flag and file key can say it in one line.
public enum DurationText {
    static let factors: [Character: Double] = ["s": 1, "m": 60, "h": 3600, "d": 86_400, "w": 604_800]

    /// Seconds, or nil when `text` is not a duration or lies outside `range`.
    public static func seconds(_ text: String, bareUnit: Double = 1, range: ClosedRange<Double>) -> Double? {
        let trimmed = text.trimmingCharacters(in: .whitespaces).lowercased()
        guard let unit = trimmed.last else { return nil }
        let seconds: Double
        if let factor = factors[unit], let value = Bounded.number(trimmed.dropLast()) {
            seconds = value * factor
        } else if let value = Bounded.number(trimmed) {
            seconds = value * bareUnit
        } else {
            return nil
        }
        guard seconds.isFinite, range.contains(seconds) else { return nil }
        return seconds
    }

    /// `between 1s and 7d`, for messages.
    public static func describe(_ range: ClosedRange<Double>) -> String {
        "between \(format(range.lowerBound)) and \(format(range.upperBound))"
    }

    /// The largest whole unit: `90s`, `5m`, `72h` stays `3d`, `2w`.
    public static func format(_ seconds: Double) -> String {
        let s = Bounded.seconds(seconds, clampedTo: 0...1e12)
        for (unit, factor) in [("w", 604_800.0), ("d", 86_400), ("h", 3600), ("m", 60)] where s >= factor && s.truncatingRemainder(dividingBy: factor) == 0 {
            return "\(Int64(s / factor))\(unit)"
        }
        if s == s.rounded() { return "\(Int64(s))s" }
        return "\(s)s"
    }
}
