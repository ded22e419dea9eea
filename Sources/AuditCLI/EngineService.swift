import ServiceLifecycle

/// A piece of the engine as a service. A loop is cancelled when the group shuts it down
/// gracefully; a drain reads until what it reads ends (its loop stopped first), then waits for
/// its turn in the shutdown, so the group sees services end in order.
struct EngineService: Service, CustomStringConvertible {
    enum Kind { case loop, drain }
    let kind: Kind
    let description: String
    let body: @Sendable () async -> Void

    static func loop(_ description: String, _ body: @escaping @Sendable () async -> Void) -> Self {
        Self(kind: .loop, description: description, body: body)
    }

    static func drain(_ description: String, _ body: @escaping @Sendable () async -> Void) -> Self {
        Self(kind: .drain, description: description, body: body)
    }

    func run() async throws {
        switch kind {
        case .loop:
            try await cancelWhenGracefulShutdown { await body() }
        case .drain:
            await body()
            try? await gracefulShutdown()
        }
    }
}
