import Foundation

/// Reads a whole file straight into a byte array — no intermediate `Data` copy, which matters
/// for snapshot files of a hundred megabytes.
public enum FileBytes {
    public static func read(_ path: String) throws(StoreError) -> [UInt8] {
        let fd = open(path, O_RDONLY)
        guard fd >= 0 else {
            throw StoreError(.unavailable, "cannot read \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else {
            throw StoreError(.unavailable, "cannot read \(path): \(String(cString: strerror(errno)))")
        }
        let size = Int(info.st_size)
        var failure: Int32 = 0
        let bytes = [UInt8](unsafeUninitializedCapacity: max(size, 1)) { buffer, count in
            var offset = 0
            while offset < size {
                let got = Foundation.read(fd, buffer.baseAddress! + offset, size - offset)
                if got < 0 {
                    if errno == EINTR { continue }
                    failure = errno
                    break
                }
                if got == 0 { break }
                offset += got
            }
            count = offset
        }
        if failure != 0 { throw StoreError(.unavailable, "cannot read \(path): \(String(cString: strerror(failure)))") }
        return bytes
    }
}
