import Foundation

/// A failed collection; the same failure repeating is one entry with a count (no alert storm).
public struct CollectionFailure: Sendable, Equatable {
    /// When it first happened, and most recently.
    public var first: Date
    public var at: Date
    public var message: String
    public var count: Int

    public init(first: Date, at: Date, message: String, count: Int = 1) {
        self.first = first
        self.at = at
        self.message = message
        self.count = count
    }
}

extension [CollectionFailure] {
    /// Records a failure: the same message as the last one counts again, a new one is appended
    /// (the last 50 distinct ones are kept).
    public mutating func record(_ message: String, at date: Date) {
        if let last = self.last, last.message == message {
            self[count - 1].at = date
            self[count - 1].count += 1
        } else {
            append(CollectionFailure(first: date, at: date, message: message))
            if count > 50 { removeFirst(count - 50) }
        }
    }
}
