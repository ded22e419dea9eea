import Foundation

/// A JSON value as a tree: what schema validation walks.
public indirect enum JSONValue: Sendable, Equatable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object([String: JSONValue])

    /// Parses one JSON value (nesting at most 64 deep); nil when the bytes are not JSON.
    public static func parse(_ bytes: [UInt8]) -> JSONValue? {
        var scanner = JSONScanner(bytes)
        guard let value = try? read(&scanner, depth: 0), scanner.atEnd else { return nil }
        return value
    }

    static func read(_ s: inout JSONScanner, depth: Int) throws(JSONScanner.ScanError) -> JSONValue {
        guard depth < 64 else { throw s.fail("nesting too deep") }
        s.skipSpace()
        guard s.index < s.bytes.count else { throw s.fail("unexpected end") }
        switch s.bytes[s.index] {
        case UInt8(ascii: "{"):
            var members: [String: JSONValue] = [:]
            try s.object { (inner: inout JSONScanner, key: String) throws(JSONScanner.ScanError) in
                members[key] = try read(&inner, depth: depth + 1)
            }
            return .object(members)
        case UInt8(ascii: "["):
            var elements: [JSONValue] = []
            try s.array { (inner: inout JSONScanner) throws(JSONScanner.ScanError) in elements.append(try read(&inner, depth: depth + 1)) }
            return .array(elements)
        case UInt8(ascii: "\""):
            return .string(try s.string())
        case UInt8(ascii: "t"), UInt8(ascii: "f"):
            return .bool(try s.bool())
        case UInt8(ascii: "n"):
            guard s.takeNull() else { throw s.fail("unexpected token") }
            return .null
        default:
            let start = s.index
            try s.skipValue()
            guard let number = Double(String(decoding: s.bytes[start..<s.index], as: UTF8.self)), number.isFinite else {
                throw s.fail("not a number")
            }
            return .number(number)
        }
    }

    public subscript(key: String) -> JSONValue? {
        if case .object(let members) = self { members[key] } else { nil }
    }

    public var string: String? {
        if case .string(let value) = self { value } else { nil }
    }
}

/// The subset of JSON Schema (2020-12) the payload schemas in `schemas/` use: `type` (one or
/// several), `required`, `properties`, `additionalProperties: false`, `items`, `enum`, `const`,
/// `minLength`, `minimum`, `maximum`, `format: date-time`, and `$ref` to `#/$defs/…`. A schema
/// that uses anything else is refused when it is read, so a schema file never validates less
/// than it says.
public struct JSONSchema: Sendable {
    public struct SchemaError: Error, CustomStringConvertible, Sendable {
        public var description: String
    }

    let root: JSONValue
    let definitions: [String: JSONValue]

    static let known: Set<String> = [
        "$schema", "$id", "$defs", "$comment", "title", "description", "type", "required", "properties", "additionalProperties", "items",
        "enum", "const", "minLength", "minimum", "maximum", "format", "$ref", "examples",
    ]

    public init(_ bytes: [UInt8]) throws(SchemaError) {
        guard let root = JSONValue.parse(bytes), case .object = root else { throw SchemaError(description: "a schema must be a JSON object") }
        var definitions: [String: JSONValue] = [:]
        if case .object(let defs)? = root["$defs"] { definitions = defs }
        self.root = root
        self.definitions = definitions
        try Self.check(root, path: "#")
        for (name, definition) in definitions { try Self.check(definition, path: "#/$defs/\(name)") }
    }

    static func check(_ schema: JSONValue, path: String) throws(SchemaError) {
        guard case .object(let members) = schema else { throw SchemaError(description: "\(path): a schema must be an object") }
        for key in members.keys where !known.contains(key) {
            throw SchemaError(description: "\(path): the keyword \(key) is not supported by this validator")
        }
        if case .object(let properties)? = members["properties"] {
            for (name, property) in properties { try check(property, path: "\(path)/properties/\(name)") }
        }
        if let items = members["items"] { try check(items, path: "\(path)/items") }
    }

    /// Every way `value` departs from the schema, as `path: reason` lines (empty: valid).
    public func violations(_ value: JSONValue) -> [String] {
        var out: [String] = []
        validate(value, against: root, at: "$", into: &out, depth: 0)
        return out
    }

    /// Whether `bytes` parse as JSON and meet the schema; the first problems otherwise.
    public func validate(_ bytes: [UInt8]) -> [String] {
        guard let value = JSONValue.parse(bytes) else { return ["$: not JSON"] }
        return violations(value)
    }

    private func validate(_ value: JSONValue, against schema: JSONValue, at path: String, into out: inout [String], depth: Int) {
        guard depth < 32, out.count < 20 else { return }
        if let reference = schema["$ref"]?.string {
            let prefix = "#/$defs/"
            guard reference.hasPrefix(prefix), let target = definitions[String(reference.dropFirst(prefix.count))] else {
                out.append("\(path): unresolvable $ref \(reference)")
                return
            }
            validate(value, against: target, at: path, into: &out, depth: depth + 1)
        }
        if let type = schema["type"] {
            let allowed: [String] =
                switch type {
                case .string(let one): [one]
                case .array(let many): many.compactMap(\.string)
                default: []
                }
            if !allowed.contains(where: { Self.matches(value, type: $0) }) {
                out.append("\(path): expected \(allowed.joined(separator: " or ")), found \(Self.typeName(value))")
                return
            }
        }
        if let constant = schema["const"], constant != value { out.append("\(path): must be \(Self.render(constant))") }
        if case .array(let options)? = schema["enum"], !options.contains(value) {
            out.append("\(path): must be one of \(options.map(Self.render).joined(separator: ", "))")
        }
        switch value {
        case .string(let text):
            if case .number(let minimum)? = schema["minLength"], Double(text.count) < minimum {
                out.append("\(path): shorter than \(Int(minimum)) characters")
            }
            if schema["format"]?.string == "date-time", ISOTimestamp.date(text) == nil { out.append("\(path): not an RFC 3339 date-time") }
        case .number(let number):
            if case .number(let minimum)? = schema["minimum"], number < minimum { out.append("\(path): below \(minimum)") }
            if case .number(let maximum)? = schema["maximum"], number > maximum { out.append("\(path): above \(maximum)") }
        case .array(let elements):
            if let items = schema["items"] {
                for (index, element) in elements.enumerated() { validate(element, against: items, at: "\(path)[\(index)]", into: &out, depth: depth + 1) }
            }
        case .object(let members):
            if case .array(let required)? = schema["required"] {
                for name in required.compactMap(\.string) where members[name] == nil { out.append("\(path): missing \(name)") }
            }
            var properties: [String: JSONValue] = [:]
            if case .object(let declared)? = schema["properties"] { properties = declared }
            for (name, member) in members.sorted(by: { $0.key < $1.key }) {
                if let property = properties[name] {
                    validate(member, against: property, at: "\(path).\(name)", into: &out, depth: depth + 1)
                } else if schema["additionalProperties"] == .bool(false) {
                    out.append("\(path): unexpected member \(name)")
                }
            }
        case .null, .bool:
            break
        }
    }

    static func matches(_ value: JSONValue, type: String) -> Bool {
        switch (type, value) {
        case ("null", .null), ("boolean", .bool), ("number", .number), ("string", .string), ("array", .array), ("object", .object): true
        case ("integer", .number(let number)): number.rounded() == number
        default: false
        }
    }

    static func typeName(_ value: JSONValue) -> String {
        switch value {
        case .null: "null"
        case .bool: "boolean"
        case .number: "number"
        case .string: "string"
        case .array: "array"
        case .object: "object"
        }
    }

    static func render(_ value: JSONValue) -> String {
        switch value {
        case .string(let text): "\"\(text)\""
        case .number(let number): number.rounded() == number && abs(number) < 1e15 ? String(Int64(number)) : String(number)
        case .bool(let flag): String(flag)
        case .null: "null"
        case .array, .object: typeName(value)
        }
    }
}
