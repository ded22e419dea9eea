import AuditStore
import Foundation
import Testing

/// Whole-file reads: a regular file straight into one array of its size, anything else in
/// chunks, never past the limit.
@Suite("File bytes")
struct FileBytesTests {
    static func temporary(_ bytes: [UInt8]) throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("filebytes-\(UUID().uuidString)").path
        try Data(bytes).write(to: URL(fileURLWithPath: path))
        return path
    }

    @Test("a regular file reads back byte for byte, over several read calls' worth and empty alike", arguments: [0, 1, 4097, 3 << 20])
    func regular(size: Int) throws {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<size).map { _ in UInt8.random(in: 0...255, using: &generator) }
        let path = try Self.temporary(bytes)
        defer { try? FileManager.default.removeItem(atPath: path) }
        let read = try FileBytes.read(path, limit: FileBytes.dataLimit)
        #expect(read.count == size)
        #expect(read == bytes)
    }

    @Test("a regular file larger than the limit is refused before it is read")
    func tooLarge() throws {
        let path = try Self.temporary([UInt8](repeating: 7, count: 2048))
        defer { try? FileManager.default.removeItem(atPath: path) }
        #expect(throws: FileReadError.self) { try FileBytes.read(path, limit: 2047) }
        #expect(try FileBytes.read(path, limit: 2048).count == 2048)
    }

    @Test("a device that never ends stops at the limit with one clear line")
    func endlessDevice() throws {
        do {
            _ = try FileBytes.read("/dev/zero", limit: 3 << 20)
            Issue.record("/dev/zero was read whole")
        } catch {
            #expect(error.description == "cannot read /dev/zero: larger than 3 MiB")
        }
    }

    @Test("a file whose size says nothing (procfs: size 0) is read in chunks to its end")
    func sizeless() throws {
        let read = try FileBytes.read("/proc/self/status", limit: FileBytes.configurationLimit)
        #expect(String(decoding: read, as: UTF8.self).contains("Name:"))
    }

    @Test("a directory and a missing file are refused, each in one line")
    func refused() throws {
        let directory = FileManager.default.temporaryDirectory.path
        #expect(throws: FileReadError.self) { try FileBytes.read(directory, limit: 1024) }
        do {
            _ = try FileBytes.read("/nonexistent/rbacwatch-file", limit: 1024)
            Issue.record("a missing file was read")
        } catch {
            #expect(error.description == "cannot read /nonexistent/rbacwatch-file: No such file or directory")
        }
    }
}
