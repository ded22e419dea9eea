/// SplitMix64: small, fast, and the same sequence on every platform, so `--seed` always
/// generates the same organisation.
struct SeededRandom: RandomNumberGenerator, Sendable {
    private var state: UInt64

    init(seed: UInt64) {
        state = seed
    }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    private static let hexDigits: [UInt8] = Array("0123456789abcdef".utf8)

    /// A version-4-shaped UUID string, lowercase, as Genesys writes ids.
    mutating func uuid() -> String {
        var bytes = [UInt8](repeating: 0, count: 16)
        let a = next()
        let b = next()
        for i in 0..<8 {
            bytes[i] = UInt8(truncatingIfNeeded: a >> (8 * UInt64(i)))
            bytes[8 + i] = UInt8(truncatingIfNeeded: b >> (8 * UInt64(i)))
        }
        bytes[6] = (bytes[6] & 0x0F) | 0x40
        bytes[8] = (bytes[8] & 0x3F) | 0x80
        var text = [UInt8]()
        text.reserveCapacity(36)
        for (index, byte) in bytes.enumerated() {
            if index == 4 || index == 6 || index == 8 || index == 10 { text.append(UInt8(ascii: "-")) }
            text.append(Self.hexDigits[Int(byte >> 4)])
            text.append(Self.hexDigits[Int(byte & 0x0F)])
        }
        return String(decoding: text, as: UTF8.self)
    }

    mutating func chance(_ probability: Double) -> Bool {
        Double.random(in: 0..<1, using: &self) < probability
    }

    mutating func pick<T>(_ items: [T]) -> T {
        items[Int.random(in: 0..<items.count, using: &self)]
    }

    /// `count` distinct indices from `0..<upper` (all of them when `count >= upper`).
    mutating func sample(_ count: Int, from upper: Int) -> [Int] {
        guard count < upper else { return Array(0..<upper) }
        if count * 4 < upper {
            var chosen = Set<Int>()
            while chosen.count < count { chosen.insert(Int.random(in: 0..<upper, using: &self)) }
            return chosen.sorted()
        }
        var all = Array(0..<upper)
        all.shuffle(using: &self)
        return Array(all.prefix(count)).sorted()
    }
}
