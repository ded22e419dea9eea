import AuditCore
import Foundation

/// Writes output files so that a crash never leaves a half-written one: a private temporary
/// file in the same directory, flushed, then renamed over the target (mode 0600).
///
/// Write-then-rename is for regular files only. A symbolic link is followed deliberately (its
/// target is replaced, the link stays); a device, a FIFO or a terminal (`/dev/null`,
/// `/dev/stdout`, a named pipe) is written in place, never replaced by a file; a directory or a
/// socket is refused with one line.
enum AtomicFile {
    static func write(_ bytes: [UInt8], to path: String) throws {
        var target = path
        var info = stat()
        // What the path leads to, links followed.
        if stat(path, &info) == 0 {
            switch info.st_mode & S_IFMT {
            case S_IFREG:
                var link = stat()
                if lstat(path, &link) == 0, (link.st_mode & S_IFMT) == S_IFLNK {
                    // Replace what the link points at, not the link.
                    guard let resolved = realpath(path, nil) else {
                        throw ConfigurationError("cannot write \(path): \(String(cString: strerror(errno)))")
                    }
                    target = String(cString: resolved)
                    free(resolved)
                }
            case S_IFDIR: throw ConfigurationError("cannot write \(path): it is a directory")
            case S_IFSOCK: throw ConfigurationError("cannot write \(path): it is a socket")
            default: return try writeInPlace(bytes, to: path, shownAs: path)
            }
        }
        let url = URL(fileURLWithPath: target)
        let directory = url.deletingLastPathComponent().path
        let temporary = "\(directory)/.\(url.lastPathComponent).\(getpid()).\(UInt32.random(in: 0...UInt32.max)).tmp"
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw ConfigurationError("cannot write \(path): \(String(cString: strerror(errno)))")
        }
        var failure = writeAll(bytes, to: fd)
        if failure == nil, fsync(fd) != 0 { failure = String(cString: strerror(errno)) }
        close(fd)
        if let failure {
            unlink(temporary)
            throw ConfigurationError("cannot write \(path): \(failure)")
        }
        guard rename(temporary, target) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(temporary)
            throw ConfigurationError("cannot write \(path): \(reason)")
        }
    }

    /// A device, FIFO or terminal: opened as it is and written, never truncated into a file.
    private static func writeInPlace(_ bytes: [UInt8], to target: String, shownAs path: String) throws {
        // Non-blocking open: a FIFO nobody reads fails at once (ENXIO) instead of waiting forever.
        let fd = open(target, O_WRONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)
        guard fd >= 0 else {
            let reason = errno == ENXIO ? "it is a FIFO that nobody is reading" : String(cString: strerror(errno))
            throw ConfigurationError("cannot write \(path): \(reason)")
        }
        defer { close(fd) }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
        var bytes = bytes
        if isatty(fd) == 1 {
            // A terminal gets what stdout would: nothing from the API that it could run.
            let json = bytes.first == UInt8(ascii: "{") || bytes.first == UInt8(ascii: "[")
            bytes = json ? TerminalSafe.sanitizeJSON(bytes) : Array(TerminalSafe.sanitizeLines(String(decoding: bytes, as: UTF8.self)).utf8)
        }
        if let failure = writeAll(bytes, to: fd) { throw ConfigurationError("cannot write \(path): \(failure)") }
    }

    private static func writeAll(_ bytes: [UInt8], to fd: Int32) -> String? {
        var offset = 0
        var failure: String?
        bytes.withUnsafeBytes { buffer in
            while offset < buffer.count {
                let written = Foundation.write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    failure = String(cString: strerror(errno))
                    return
                }
                offset += written
            }
        }
        return failure
    }
}
