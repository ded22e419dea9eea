/// A forward-only JSON reader over UTF-8 bytes, for formats whose shape is known: the caller
/// asks for the value it expects and gets a `ScanError` naming the byte offset when the input
/// is something else. No intermediate tree: values go straight into the caller's structs, which
/// is what makes snapshot files load an order of magnitude faster than with a general decoder.
struct JSONScanner {
    struct ScanError: Error {
        var offset: Int
        var reason: String
    }

    let bytes: [UInt8]
    var index = 0

    init(_ bytes: [UInt8]) {
        self.bytes = bytes
    }

    func fail(_ reason: String) -> ScanError { ScanError(offset: index, reason: reason) }

    mutating func skipSpace() {
        while index < bytes.count {
            switch bytes[index] {
            case 0x20, 0x0A, 0x0D, 0x09: index += 1
            default: return
            }
        }
    }

    mutating func expect(_ byte: UInt8) throws(ScanError) {
        skipSpace()
        guard index < bytes.count, bytes[index] == byte else {
            throw fail("expected '\(Character(Unicode.Scalar(byte)))'")
        }
        index += 1
    }

    /// True (and consumes it) when the next token is `byte`.
    mutating func take(_ byte: UInt8) -> Bool {
        skipSpace()
        if index < bytes.count, bytes[index] == byte {
            index += 1
            return true
        }
        return false
    }

    var atEnd: Bool {
        mutating get {
            skipSpace()
            return index >= bytes.count
        }
    }

    /// Calls `member` for each key of an object; `member` must read (or skip) the value.
    mutating func object(_ member: (inout JSONScanner, String) throws(ScanError) -> Void) throws(ScanError) {
        try expect(UInt8(ascii: "{"))
        if take(UInt8(ascii: "}")) { return }
        repeat {
            let key = try string()
            try expect(UInt8(ascii: ":"))
            try member(&self, key)
        } while take(UInt8(ascii: ","))
        try expect(UInt8(ascii: "}"))
    }

    /// Calls `element` for each element of an array.
    mutating func array(_ element: (inout JSONScanner) throws(ScanError) -> Void) throws(ScanError) {
        try expect(UInt8(ascii: "["))
        if take(UInt8(ascii: "]")) { return }
        repeat {
            try element(&self)
        } while take(UInt8(ascii: ","))
        try expect(UInt8(ascii: "]"))
    }

    mutating func strings() throws(ScanError) -> [String] {
        var result: [String] = []
        try array { (scanner: inout JSONScanner) throws(ScanError) in result.append(try scanner.string()) }
        return result
    }

    mutating func string() throws(ScanError) -> String {
        skipSpace()
        guard index < bytes.count, bytes[index] == UInt8(ascii: "\"") else { throw fail("expected a string") }
        index += 1
        let start = index
        // Fast path: no escapes.
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                let text = String(decoding: bytes[start..<index], as: UTF8.self)
                index += 1
                return text
            }
            if byte == UInt8(ascii: "\\") || byte < 0x20 { break }
            index += 1
        }
        var out = Array(bytes[start..<index])
        while index < bytes.count {
            let byte = bytes[index]
            index += 1
            switch byte {
            case UInt8(ascii: "\""):
                return String(decoding: out, as: UTF8.self)
            case UInt8(ascii: "\\"):
                guard index < bytes.count else { throw fail("unterminated escape") }
                let escaped = bytes[index]
                index += 1
                switch escaped {
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(escaped)
                case UInt8(ascii: "u"):
                    var scalar = try hex4()
                    if (0xD800..<0xDC00).contains(scalar), index + 5 < bytes.count, bytes[index] == UInt8(ascii: "\\"),
                        bytes[index + 1] == UInt8(ascii: "u")
                    {
                        // A high surrogate takes the low one that follows; anything else after it
                        // is read on its own and the lone high surrogate becomes U+FFFD.
                        let resume = index
                        index += 2
                        let low = try hex4()
                        if (0xDC00..<0xE000).contains(low) {
                            scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                        } else {
                            index = resume
                        }
                    }
                    out.append(contentsOf: String(Character(Unicode.Scalar(scalar) ?? "\u{FFFD}")).utf8)
                default:
                    throw fail("invalid escape")
                }
            case 0..<0x20:
                throw fail("control character in a string")
            default:
                out.append(byte)
            }
        }
        throw fail("unterminated string")
    }

    private mutating func hex4() throws(ScanError) -> UInt32 {
        guard index + 4 <= bytes.count else { throw fail("bad \\u escape") }
        var value: UInt32 = 0
        for byte in bytes[index..<index + 4] {
            let digit: UInt32
            switch byte {
            case 0x30...0x39: digit = UInt32(byte - 0x30)
            case 0x41...0x46: digit = UInt32(byte - 0x41 + 10)
            case 0x61...0x66: digit = UInt32(byte - 0x61 + 10)
            default: throw fail("bad \\u escape")
            }
            value = value << 4 | digit
        }
        index += 4
        return value
    }

    mutating func bool() throws(ScanError) -> Bool {
        skipSpace()
        if matchLiteral("true") { return true }
        if matchLiteral("false") { return false }
        throw fail("expected true or false")
    }

    mutating func int() throws(ScanError) -> Int {
        skipSpace()
        var negative = false
        if index < bytes.count, bytes[index] == UInt8(ascii: "-") {
            negative = true
            index += 1
        }
        let start = index
        var value = 0
        while index < bytes.count, bytes[index] >= 0x30, bytes[index] <= 0x39 {
            let (product, overflow) = value.multipliedReportingOverflow(by: 10)
            guard !overflow else { throw fail("number too large") }
            value = product + Int(bytes[index] - 0x30)
            index += 1
        }
        guard index > start else { throw fail("expected a number") }
        return negative ? -value : value
    }

    /// Moves past an object or array by its brackets alone, strings' escapes respected, nothing
    /// validated or built; false (index unmoved) when the next value is neither or does not
    /// end. For well-formed input it ends where `skipValue` would; callers that need more
    /// than the end (the known-record check compares the bytes) must not trust the content.
    mutating func skipBracketed() -> Bool {
        skipSpace()
        guard index < bytes.count, bytes[index] == UInt8(ascii: "{") || bytes[index] == UInt8(ascii: "[") else { return false }
        let end: Int? = bytes.withUnsafeBufferPointer { buffer in
            var position = index
            var depth = 0
            var inString = false
            while position < buffer.count {
                let byte = buffer[position]
                if inString {
                    if byte == UInt8(ascii: "\\") {
                        position += 1
                    } else if byte == UInt8(ascii: "\"") {
                        inString = false
                    }
                } else if byte == UInt8(ascii: "\"") {
                    inString = true
                } else if byte == UInt8(ascii: "{") || byte == UInt8(ascii: "[") {
                    depth += 1
                    // As deep as `skipValue` allows, no deeper.
                    if depth > 128 { return nil }
                } else if byte == UInt8(ascii: "}") || byte == UInt8(ascii: "]") {
                    depth -= 1
                    if depth == 0 { return position + 1 }
                }
                position += 1
            }
            return nil
        }
        guard let end else { return false }
        index = end
        return true
    }

    /// Skips any value (for members this reader does not know).
    mutating func skipValue(depth: Int = 0) throws(ScanError) {
        guard depth < 128 else { throw fail("nesting too deep") }
        skipSpace()
        guard index < bytes.count else { throw fail("unexpected end") }
        switch bytes[index] {
        case UInt8(ascii: "{"):
            try object { (scanner: inout JSONScanner, _: String) throws(ScanError) in try scanner.skipValue(depth: depth + 1) }
        case UInt8(ascii: "["):
            try array { (scanner: inout JSONScanner) throws(ScanError) in try scanner.skipValue(depth: depth + 1) }
        case UInt8(ascii: "\""):
            _ = try string()
        case UInt8(ascii: "t"), UInt8(ascii: "f"):
            _ = try bool()
        case UInt8(ascii: "n"):
            guard matchLiteral("null") else { throw fail("unexpected token") }
        default:
            _ = try int()
            while index < bytes.count, [UInt8(ascii: "."), UInt8(ascii: "e"), UInt8(ascii: "E"), UInt8(ascii: "+"), UInt8(ascii: "-")]
                .contains(bytes[index]) || (bytes[index] >= 0x30 && bytes[index] <= 0x39)
            {
                index += 1
            }
        }
    }

    /// A string, or nil for `null`.
    mutating func optionalString() throws(ScanError) -> String? {
        if takeNull() { return nil }
        return try string()
    }

    /// Whether the next value is a string (nothing consumed).
    var peekString: Bool {
        mutating get {
            skipSpace()
            return index < bytes.count && bytes[index] == UInt8(ascii: "\"")
        }
    }

    /// True when the next value is `null` (consumed).
    mutating func takeNull() -> Bool {
        skipSpace()
        return matchLiteral("null")
    }

    private mutating func matchLiteral(_ literal: StaticString) -> Bool {
        let count = literal.utf8CodeUnitCount
        guard index + count <= bytes.count else { return false }
        let matches = literal.withUTF8Buffer { buffer in
            for offset in 0..<count where bytes[index + offset] != buffer[offset] { return false }
            return true
        }
        if matches { index += count }
        return matches
    }
}
