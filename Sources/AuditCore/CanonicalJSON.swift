/// A small JSON writer for canonical output: the caller writes object keys in ascending order
/// (checked in debug builds), strings are escaped one way only, no floats, no whitespace except
/// the optional newline between elements of an array. Equal input gives equal bytes, and it is
/// an order of magnitude faster than Foundation's encoder for the same structure.
public struct CanonicalJSONWriter: Sendable {
    public private(set) var bytes: [UInt8] = []

    private struct Level {
        var isObject: Bool
        var isFirst = true
        var newlines = false
        var lastKey: String? = nil
        var expectsValue = false
    }
    private var levels: [Level] = []

    public init(reservingCapacity capacity: Int = 4096) {
        bytes.reserveCapacity(capacity)
    }

    /// The document written, and the writer emptied: the bytes move out rather than being
    /// copied (a 100,000-user snapshot is over 100 MB).
    public mutating func take() -> [UInt8] {
        defer { bytes = [] }
        return bytes
    }

    /// Empties the writer, keeping its memory, to write another document.
    public mutating func reset() {
        bytes.removeAll(keepingCapacity: true)
        levels.removeAll(keepingCapacity: true)
    }

    // MARK: Structure

    /// - Parameter newlines: put each member on its own line (the document's top level).
    public mutating func beginObject(newlines: Bool = false) {
        prepareValue()
        bytes.append(UInt8(ascii: "{"))
        levels.append(Level(isObject: true, newlines: newlines))
    }

    public mutating func endObject() {
        let level = levels.removeLast()
        assert(level.isObject && !level.expectsValue, "unbalanced object")
        if level.newlines && !level.isFirst { bytes.append(UInt8(ascii: "\n")) }
        bytes.append(UInt8(ascii: "}"))
    }

    /// - Parameter newlines: put each element on its own line (for the top-level entity lists,
    ///   so files diff well line by line).
    public mutating func beginArray(newlines: Bool = false) {
        prepareValue()
        bytes.append(UInt8(ascii: "["))
        levels.append(Level(isObject: false, newlines: newlines))
    }

    public mutating func endArray() {
        let level = levels.removeLast()
        assert(!level.isObject, "unbalanced array")
        if level.newlines && !level.isFirst { bytes.append(UInt8(ascii: "\n")) }
        bytes.append(UInt8(ascii: "]"))
    }

    /// - Parameter ordered: `false` only for a document's fixed leading key (the schema tag).
    public mutating func key(_ key: String, ordered: Bool = true) {
        precondition(levels.last?.isObject == true, "key outside an object")
        var level = levels[levels.count - 1]
        if ordered, let last = level.lastKey {
            assert(last < key, "canonical keys must ascend: \(last) then \(key)")
        }
        if !level.isFirst { bytes.append(UInt8(ascii: ",")) }
        if level.newlines { bytes.append(UInt8(ascii: "\n")) }
        level.isFirst = false
        if ordered { level.lastKey = key }
        level.expectsValue = true
        levels[levels.count - 1] = level
        writeString(key)
        bytes.append(UInt8(ascii: ":"))
    }

    // MARK: Values

    public mutating func value(_ string: String) {
        prepareValue()
        writeString(string)
    }

    public mutating func value(_ int: Int) {
        prepareValue()
        bytes.append(contentsOf: String(int).utf8)
    }

    /// A value already encoded as JSON by this writer (a payload inside an envelope).
    public mutating func raw(_ json: [UInt8]) {
        prepareValue()
        bytes.append(contentsOf: json)
    }

    /// A decimal number with up to three fraction digits (epoch seconds with milliseconds).
    public mutating func value(milliseconds: Int64) {
        prepareValue()
        let negative = milliseconds < 0
        let magnitude = milliseconds.magnitude
        if negative { bytes.append(UInt8(ascii: "-")) }
        bytes.append(contentsOf: String(magnitude / 1000).utf8)
        let fraction = magnitude % 1000
        if fraction != 0 {
            bytes.append(UInt8(ascii: "."))
            var digits = Array(String(fraction).utf8)
            while digits.count < 3 { digits.insert(UInt8(ascii: "0"), at: 0) }
            while digits.last == UInt8(ascii: "0") { digits.removeLast() }
            bytes.append(contentsOf: digits)
        }
    }

    public mutating func value(_ bool: Bool) {
        prepareValue()
        bytes.append(contentsOf: bool ? Array("true".utf8) : Array("false".utf8))
    }

    public mutating func value(_ strings: [String]) {
        beginArray()
        for string in strings { value(string) }
        endArray()
    }

    /// Writes `"key": value`, or nothing when the value is absent.
    public mutating func field(_ name: String, _ string: String?) {
        guard let string else { return }
        key(name)
        value(string)
    }

    public mutating func field(_ name: String, _ bool: Bool) {
        key(name)
        value(bool)
    }

    public mutating func field(_ name: String, _ int: Int) {
        key(name)
        value(int)
    }

    public mutating func field(_ name: String, _ strings: [String]) {
        key(name)
        value(strings)
    }

    /// Writes `"key": [ … ]`, each element written by `element`.
    public mutating func field<S: Sequence>(
        _ name: String, newlines: Bool = false, each items: S, _ element: (S.Element, inout CanonicalJSONWriter) -> Void
    ) {
        key(name)
        beginArray(newlines: newlines)
        for item in items { element(item, &self) }
        endArray()
    }

    // MARK: Internals

    private mutating func prepareValue() {
        guard !levels.isEmpty else { return }
        var level = levels[levels.count - 1]
        if level.isObject {
            assert(level.expectsValue, "value without key in object")
            level.expectsValue = false
        } else {
            if !level.isFirst { bytes.append(UInt8(ascii: ",")) }
            if level.newlines { bytes.append(UInt8(ascii: "\n")) }
            level.isFirst = false
        }
        levels[levels.count - 1] = level
    }

    private static let hex: [UInt8] = Array("0123456789abcdef".utf8)

    private mutating func writeString(_ string: String) {
        bytes.append(UInt8(ascii: "\""))
        // Fast path: nothing to escape, copy the bytes as they are.
        let copied = string.utf8.withContiguousStorageIfAvailable { buffer -> Bool in
            for byte in buffer where byte < 0x20 || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") { return false }
            bytes.append(contentsOf: buffer)
            return true
        }
        if copied == true {
            bytes.append(UInt8(ascii: "\""))
            return
        }
        for byte in string.utf8 {
            switch byte {
            case UInt8(ascii: "\""): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
            case UInt8(ascii: "\\"): bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
            case 0x0A: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
            case 0x0D: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
            case 0x09: bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
            case 0..<0x20:
                bytes.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "u"), UInt8(ascii: "0"), UInt8(ascii: "0")])
                bytes.append(Self.hex[Int(byte >> 4)])
                bytes.append(Self.hex[Int(byte & 0x0F)])
            default: bytes.append(byte)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }
}
