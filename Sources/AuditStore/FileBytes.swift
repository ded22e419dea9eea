import Foundation

/// Reads a whole file straight into a byte array — no intermediate `Data` copy, which matters
/// for snapshot files of a hundred megabytes — and never more than `limit` bytes of it: a file
/// named on the command line may be a device (`/dev/zero`) or a pipe that never ends.
public enum FileBytes {
    /// Rule files, risk policies, themes, secrets: small by nature.
    public static let configurationLimit = 16 << 20
    /// Snapshot and event files: a 100,000-user snapshot is about 130 MB.
    public static let dataLimit = 2 << 30

    public static func read(_ path: String, limit: Int) throws(FileReadError) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw FileReadError(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw FileReadError(path: path, reason: String(cString: strerror(errno))) }
        if (info.st_mode & S_IFMT) == S_IFDIR { throw FileReadError(path: path, reason: "it is a directory") }
        let regular = (info.st_mode & S_IFMT) == S_IFREG
        if regular, Int(info.st_size) > limit { throw FileReadError(path: path, reason: tooLarge(limit)) }
        // A regular file is read straight into one allocation of its size; anything else (a
        // pipe, a device), or a file that grew since, in chunks, up to the limit.
        if regular, info.st_size > 0 {
            let size = Int(info.st_size)
            var failure: Int32 = 0
            var bytes = [UInt8](unsafeUninitializedCapacity: size) { buffer, count in
                count = 0
                while count < size {
                    let got = Foundation.read(fd, buffer.baseAddress! + count, size - count)
                    if got < 0 {
                        if errno == EINTR { continue }
                        failure = errno
                        return
                    }
                    if got == 0 { return }  // shrank since: what is there
                    count += got
                }
            }
            if failure != 0 { throw FileReadError(path: path, reason: String(cString: strerror(failure))) }
            guard bytes.count == size else { return bytes }
            // Grown since the size was taken: the rest in chunks, up to the limit.
            try readChunks(fd, path, into: &bytes, limit: limit)
            return bytes
        }
        var bytes = [UInt8]()
        bytes.reserveCapacity(64 << 10)
        try readChunks(fd, path, into: &bytes, limit: limit)
        return bytes
    }

    static func readChunks(_ fd: Int32, _ path: String, into bytes: inout [UInt8], limit: Int) throws(FileReadError) {
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let got = chunk.withUnsafeMutableBytes { Foundation.read(fd, $0.baseAddress!, $0.count) }
            if got < 0 {
                if errno == EINTR { continue }
                throw FileReadError(path: path, reason: String(cString: strerror(errno)))
            }
            if got == 0 { break }
            guard bytes.count + got <= limit else { throw FileReadError(path: path, reason: tooLarge(limit)) }
            bytes.append(contentsOf: chunk[0..<got])
        }
    }

    static func tooLarge(_ limit: Int) -> String {
        limit >= 1 << 30 ? "larger than \(limit >> 30) GiB" : "larger than \(limit >> 20) MiB"
    }
}

/// A file that could not be read, in one line.
public struct FileReadError: Error, CustomStringConvertible, Sendable {
    public var path: String
    public var reason: String
    public var description: String { "cannot read \(path): \(reason)" }
}

extension Data {
    /// `bytes` as `Data` without copying them (a snapshot is over 100 MB; the database copies it
    /// once more while writing): the array is kept alive, unmodified, for as long as the `Data`.
    static func sharing(_ bytes: [UInt8]) -> Data {
        guard !bytes.isEmpty else { return Data() }
        let pointer = bytes.withUnsafeBytes { UnsafeMutableRawPointer(mutating: $0.baseAddress!) }
        return Data(bytesNoCopy: pointer, count: bytes.count, deallocator: .custom { _, _ in withExtendedLifetime(bytes) {} })
    }
}
