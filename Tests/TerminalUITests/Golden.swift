import Foundation
import Testing

@testable import TerminalUI

/// Golden frames: a frame's text and a map of its styles, compared with a recorded file under
/// `Snapshots/`. `RECORD_SNAPSHOTS=1 swift test --filter TerminalUITests` re-records them; a
/// missing file is recorded and the test fails, so a new golden is always looked at once.
enum Golden {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Snapshots")

    /// The frame as a person reads it, then each row's styles as letters with a legend: a colour
    /// that moves, a lost highlight or a severity shown in the wrong colour changes the file.
    static func describe(_ frame: Frame) -> String {
        var legend: [Style: Character] = [:]
        var order: [Style] = []
        let letters = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
        var styleRows: [String] = []
        for row in 0..<frame.height {
            var line = ""
            for column in 0..<frame.width {
                let style = frame[row, column].style
                if legend[style] == nil {
                    legend[style] = order.count < letters.count ? letters[order.count] : "?"
                    order.append(style)
                }
                line.append(legend[style]!)
            }
            styleRows.append(line)
        }
        var out = "size \(frame.width)x\(frame.height)"
        if let cursor = frame.cursor { out += " cursor \(cursor.row),\(cursor.column)" }
        out += "\n" + String(repeating: "=", count: frame.width) + "\n"
        out += frame.text + "\n"
        out += String(repeating: "=", count: frame.width) + "\n"
        out += styleRows.joined(separator: "\n") + "\n"
        for style in order { out += "\(legend[style]!) \(describe(style))\n" }
        return out
    }

    static func describe(_ style: Style) -> String {
        func hex(_ rgb: RGB?) -> String {
            guard let rgb else { return "-" }
            return "#" + [rgb.r, rgb.g, rgb.b].map { String($0, radix: 16).leftPadded(2) }.joined()
        }
        var attributes: [String] = []
        if style.bold { attributes.append("bold") }
        if style.dim { attributes.append("dim") }
        if style.underline { attributes.append("underline") }
        if style.reverse { attributes.append("reverse") }
        return "fg \(hex(style.foreground)) bg \(hex(style.background))" + (attributes.isEmpty ? "" : " " + attributes.joined(separator: ","))
    }

    static func check(_ frame: Frame, _ name: String, sourceLocation: SourceLocation = #_sourceLocation) throws {
        let actual = describe(frame)
        let url = directory.appendingPathComponent(name + ".txt")
        let record = ProcessInfo.processInfo.environment["RECORD_SNAPSHOTS"] == "1"
        guard !record, let expected = try? String(contentsOf: url, encoding: .utf8) else {
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            try actual.write(to: url, atomically: true, encoding: .utf8)
            if !record { Issue.record("recorded a new golden frame \(name).txt: look at it and commit it", sourceLocation: sourceLocation) }
            return
        }
        guard actual != expected else { return }
        let a = actual.split(separator: "\n", omittingEmptySubsequences: false)
        let e = expected.split(separator: "\n", omittingEmptySubsequences: false)
        let line = zip(a, e).enumerated().first { $0.element.0 != $0.element.1 }?.offset ?? min(a.count, e.count)
        Issue.record(
            """
            frame \(name) differs from Snapshots/\(name).txt at line \(line + 1) (RECORD_SNAPSHOTS=1 re-records):
            expected: \(line < e.count ? String(e[line]) : "<end>")
            actual:   \(line < a.count ? String(a[line]) : "<end>")
            """, sourceLocation: sourceLocation)
    }
}

extension String {
    func leftPadded(_ width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}
